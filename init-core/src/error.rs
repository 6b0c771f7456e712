//! `StepError`: what went wrong in one attempt of a step, and whether retrying can help.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::time::Duration;

/// The error type every boxed error converts into.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Whether a failed attempt can succeed if it is tried again.
///
/// ```
/// use init_core::{ErrorClass, StepError};
/// assert_eq!(StepError::transient("postgres:5432: connection refused").class(), ErrorClass::Transient);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// Retrying can help: connection refused or reset, a name that does not resolve yet, the
    /// timeout of one attempt, HTTP 429 and 5xx, Vault sealed or in standby.
    Transient,
    /// Retrying cannot help: HTTP 400/401/403/404, a template error, a checksum mismatch, a file
    /// that cannot be written for lack of permission.
    Permanent,
    /// The step's configuration is wrong (a bad address, URL, mode or template). Found by
    /// [`Step::validate`](crate::Step::validate) before anything runs; never retried.
    Invalid,
}

/// The error of one attempt of a [`Step`](crate::Step).
///
/// A `StepError` says whether a retry can help ([`is_transient`](Self::is_transient)), carries a
/// lowercase message naming the thing that failed, and keeps the error that caused it as its
/// [`source`](Self::source). Any standard error converts into it with `?`: an [`io::Error`] is
/// classified by its kind, anything else counts as transient (the kubelet would retry it too).
///
/// `StepError` deliberately does not implement [`std::error::Error`], so that the blanket
/// conversion from every error type can exist (as with `anyhow::Error`); convert it with
/// `Box::<dyn Error + Send + Sync>::from` where a standard error is needed.
///
/// # Examples
///
/// ```
/// use init_core::StepError;
///
/// let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
/// let err = StepError::transient("postgres:5432").with_source(refused);
/// assert!(err.is_transient());
/// assert_eq!(err.to_string(), "postgres:5432: connection refused");
///
/// fn parse(port: &str) -> Result<u16, StepError> {
///     Ok(port.parse::<u16>()?) // unclassified errors from `?` are transient
/// }
/// assert!(parse("x").unwrap_err().is_transient());
/// ```
pub struct StepError {
    class: ErrorClass,
    message: String,
    source: Option<BoxError>,
    retry_after: Option<Duration>,
    poll: Option<Poll>,
}

/// How soon a step asked to be polled again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Poll {
    /// At the wait cadence ([`StepError::with_wait_cadence`]).
    WaitCadence,
    /// After this long ([`StepError::with_poll_after`]).
    After(Duration),
}

/// The shortest wait [`StepError::with_poll_after`] gets: a hint of zero cannot make a busy loop.
pub(crate) const MIN_POLL_AFTER: Duration = Duration::from_millis(10);

impl StepError {
    /// An error that a later attempt may not meet.
    ///
    /// ```
    /// assert!(init_core::StepError::transient("vault is sealed").is_transient());
    /// ```
    pub fn transient(message: impl Into<String>) -> Self {
        Self::with_class(ErrorClass::Transient, message)
    }

    /// An error that every later attempt would meet too; the step fails at once.
    ///
    /// ```
    /// assert!(init_core::StepError::permanent("secret/orders/db: permission denied (403)").is_permanent());
    /// ```
    pub fn permanent(message: impl Into<String>) -> Self {
        Self::with_class(ErrorClass::Permanent, message)
    }

    /// A configuration error, as returned by [`Step::validate`](crate::Step::validate).
    ///
    /// ```
    /// let err = init_core::StepError::invalid("address \"postgres\": expected host:port");
    /// assert!(err.is_invalid() && !err.is_transient());
    /// ```
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::with_class(ErrorClass::Invalid, message)
    }

    /// An error of the given class.
    ///
    /// ```
    /// use init_core::{ErrorClass, StepError};
    /// assert!(StepError::with_class(ErrorClass::Permanent, "gone").is_permanent());
    /// ```
    pub fn with_class(class: ErrorClass, message: impl Into<String>) -> Self {
        Self {
            class,
            message: message.into(),
            source: None,
            retry_after: None,
            poll: None,
        }
    }

    /// Classifies any standard error: an [`io::Error`] (also when it is the outermost error of a
    /// box) by its kind, anything else as transient. The message is the error's own. A boxed
    /// `StepError` comes back unchanged (class, message and retry hint).
    ///
    /// ```
    /// use std::io::{Error, ErrorKind};
    /// let err = init_core::StepError::from_error(Error::from(ErrorKind::PermissionDenied));
    /// assert!(err.is_permanent());
    ///
    /// let boxed: init_core::BoxError = init_core::StepError::permanent("gone (404)").into();
    /// let back = init_core::StepError::from_error(boxed);
    /// assert!(back.is_permanent());
    /// assert_eq!(back.to_string(), "gone (404)");
    /// ```
    pub fn from_error(error: impl Into<BoxError>) -> Self {
        let error: BoxError = error.into();
        // A `StepError` that went through a box comes back unchanged.
        let error = match error.downcast::<AsStd>() {
            Ok(step) => return step.0,
            Err(other) => other,
        };
        let class = match error.downcast_ref::<io::Error>() {
            Some(io) => classify_io(io.kind()),
            None => ErrorClass::Transient,
        };
        Self {
            class,
            message: String::new(),
            source: Some(error),
            retry_after: None,
            poll: None,
        }
    }

    /// Keeps `source` as the cause; it is shown after the message (`message: source`).
    ///
    /// ```
    /// let err = init_core::StepError::permanent("/config/app.toml")
    ///     .with_source(std::io::Error::from(std::io::ErrorKind::PermissionDenied));
    /// assert_eq!(err.to_string(), "/config/app.toml: permission denied");
    /// ```
    #[must_use]
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// A server's hint of when to try again (HTTP `Retry-After`): the executor waits this long
    /// or the policy's next backoff delay, whichever is longer, so a hint of zero never makes a
    /// request storm; the time left of the step's timeout and the plan's deadline caps the wait
    /// either way. HTTP, download and Vault steps set it from the header.
    ///
    /// ```
    /// use std::time::Duration;
    /// let err = init_core::StepError::transient("busy (503)").with_retry_after(Duration::from_secs(2));
    /// assert_eq!(err.retry_after(), Some(Duration::from_secs(2)));
    /// ```
    #[must_use]
    pub fn with_retry_after(mut self, delay: Duration) -> Self {
        self.retry_after = Some(delay);
        self
    }

    /// Asks the executor to poll again at the wait cadence instead of the policy's next
    /// backoff delay, for a failure that is cheap to retry and likely to clear any moment: a
    /// refused connection, a server that is starting up. Every built-in wait (TCP, HTTP, the
    /// databases) uses this one cadence: the interval is 4 % of the time the step has waited,
    /// at least 10 ms and at most 100 ms (10 ms for the first quarter second, 40 ms after one
    /// second, 100 ms from two and a half), so a server started together with its client is
    /// noticed within milliseconds, and a long wait costs a few ms of CPU per second, not
    /// tens. The time left caps the wait,
    /// and the policy's attempt limit still counts each poll. A
    /// [`with_retry_after`](Self::with_retry_after) hint on the same error wins.
    ///
    /// ```
    /// let err = init_core::StepError::transient("db:5432: connection refused").with_wait_cadence();
    /// assert!(err.at_wait_cadence());
    /// assert_eq!(err.poll_after(), None);
    /// ```
    #[must_use]
    pub fn with_wait_cadence(mut self) -> Self {
        self.poll = Some(Poll::WaitCadence);
        self
    }

    /// Asks the executor to poll again after `delay` instead of the policy's next backoff
    /// delay, for a failure that is cheap to retry at a pace of the step's own (the built-in
    /// waits use [`with_wait_cadence`](Self::with_wait_cadence) instead). The executor waits
    /// at least 10 ms, so a zero cannot make a busy loop; the time left caps the wait, and the
    /// policy's attempt limit still counts each poll. A
    /// [`with_retry_after`](Self::with_retry_after) hint on the same error wins.
    ///
    /// ```
    /// use std::time::Duration;
    /// let err = init_core::StepError::transient("/run/ready: not there yet")
    ///     .with_poll_after(Duration::from_millis(100));
    /// assert_eq!(err.poll_after(), Some(Duration::from_millis(100)));
    /// ```
    #[must_use]
    pub fn with_poll_after(mut self, delay: Duration) -> Self {
        self.poll = Some(Poll::After(delay));
        self
    }

    /// Puts `context` in front of the message: `context: message`.
    ///
    /// ```
    /// let err = init_core::StepError::permanent("not found (404)").context("secret/orders/db");
    /// assert_eq!(err.to_string(), "secret/orders/db: not found (404)");
    /// ```
    #[must_use]
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = if self.message.is_empty() {
            context.to_string()
        } else {
            format!("{context}: {}", self.message)
        };
        self
    }

    /// The class: transient, permanent or invalid.
    ///
    /// ```
    /// # use init_core::{ErrorClass, StepError};
    /// assert_eq!(StepError::invalid("x").class(), ErrorClass::Invalid);
    /// ```
    pub fn class(&self) -> ErrorClass {
        self.class
    }

    /// Whether a later attempt may succeed.
    ///
    /// ```
    /// assert!(init_core::StepError::transient("x").is_transient());
    /// ```
    pub fn is_transient(&self) -> bool {
        self.class == ErrorClass::Transient
    }

    /// Whether every later attempt would fail too.
    ///
    /// ```
    /// assert!(init_core::StepError::permanent("x").is_permanent());
    /// ```
    pub fn is_permanent(&self) -> bool {
        self.class == ErrorClass::Permanent
    }

    /// Whether this is a configuration error found by validation.
    ///
    /// ```
    /// assert!(init_core::StepError::invalid("x").is_invalid());
    /// ```
    pub fn is_invalid(&self) -> bool {
        self.class == ErrorClass::Invalid
    }

    /// The server's hint of when to try again, if any.
    ///
    /// ```
    /// assert_eq!(init_core::StepError::transient("x").retry_after(), None);
    /// ```
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The poll interval the step asked for before the next attempt, if any.
    ///
    /// ```
    /// assert_eq!(init_core::StepError::transient("x").poll_after(), None);
    /// ```
    pub fn poll_after(&self) -> Option<Duration> {
        match self.poll {
            Some(Poll::After(delay)) => Some(delay),
            Some(Poll::WaitCadence) | None => None,
        }
    }

    /// Whether the step asked to be polled again at the wait cadence
    /// ([`with_wait_cadence`](Self::with_wait_cadence)).
    ///
    /// ```
    /// assert!(!init_core::StepError::transient("x").at_wait_cadence());
    /// ```
    pub fn at_wait_cadence(&self) -> bool {
        self.poll == Some(Poll::WaitCadence)
    }

    /// The error's own message, without its sources.
    ///
    /// ```
    /// let err = init_core::StepError::transient("redis:6379").with_source(std::io::Error::other("reset"));
    /// assert_eq!(err.message(), "redis:6379");
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The error that caused this one.
    ///
    /// ```
    /// let err = init_core::StepError::transient("x").with_source(std::io::Error::other("cause"));
    /// assert_eq!(err.source().unwrap().to_string(), "cause");
    /// ```
    pub fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

/// The class of an [`io::ErrorKind`]: what waits for the network or a slow volume is transient,
/// what a retry cannot change is permanent.
///
/// ```
/// use init_core::{classify_io, ErrorClass};
/// use std::io::ErrorKind;
/// assert_eq!(classify_io(ErrorKind::ConnectionRefused), ErrorClass::Transient);
/// assert_eq!(classify_io(ErrorKind::PermissionDenied), ErrorClass::Permanent);
/// ```
pub fn classify_io(kind: io::ErrorKind) -> ErrorClass {
    use io::ErrorKind::{
        AlreadyExists, ArgumentListTooLong, CrossesDevices, DirectoryNotEmpty, FileTooLarge,
        InvalidData, InvalidFilename, InvalidInput, IsADirectory, NotADirectory, NotSeekable,
        OutOfMemory, PermissionDenied, QuotaExceeded, ReadOnlyFilesystem, StorageFull,
        TooManyLinks, Unsupported,
    };
    match kind {
        PermissionDenied | InvalidInput | InvalidData | Unsupported | AlreadyExists
        | ReadOnlyFilesystem | IsADirectory | NotADirectory | DirectoryNotEmpty
        | InvalidFilename | FileTooLarge | StorageFull | QuotaExceeded | CrossesDevices
        | TooManyLinks | ArgumentListTooLong | NotSeekable | OutOfMemory => ErrorClass::Permanent,
        _ => ErrorClass::Transient,
    }
}

impl fmt::Display for StepError {
    /// `message: source: source's source …`, each part once.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut last = String::new();
        if !self.message.is_empty() {
            f.write_str(&self.message)?;
            last.clone_from(&self.message);
            first = false;
        }
        let mut next = self.source();
        while let Some(err) = next {
            let text = err.to_string();
            // Many errors repeat their source in their own message; print each part once.
            if !text.is_empty() && !last.ends_with(&text) {
                if !first {
                    f.write_str(": ")?;
                }
                f.write_str(&tidy(&text))?;
                first = false;
                last = text;
            }
            next = err.source();
        }
        Ok(())
    }
}

/// Std's io errors say "Connection refused (os error 111)"; our messages are lowercase and
/// leave out the errno, which says nothing more to the reader.
fn tidy(text: &str) -> std::borrow::Cow<'_, str> {
    let text = match text.rfind(" (os error ") {
        Some(at) if text.ends_with(')') => &text[..at],
        _ => text,
    };
    crate::text::lowercase_first(text)
}

impl fmt::Debug for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepError")
            .field("class", &self.class)
            .field("message", &self.to_string())
            .field("retry_after", &self.retry_after)
            .field("poll", &self.poll)
            .finish()
    }
}

impl<E> From<E> for StepError
where
    E: StdError + Send + Sync + 'static,
{
    fn from(error: E) -> Self {
        Self::from_error(error)
    }
}

impl From<StepError> for BoxError {
    fn from(error: StepError) -> Self {
        Box::new(AsStd(error))
    }
}

/// `StepError` seen as a standard error (see the note on [`StepError`]).
struct AsStd(StepError);

impl fmt::Debug for AsStd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for AsStd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl StdError for AsStd {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0.source()
    }
}
