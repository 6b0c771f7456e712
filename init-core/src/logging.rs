//! Logging set-up for `run_main`: `INITKIT_LOG` (env-filter syntax), `INITKIT_LOG_FORMAT`
//! (`text` or `json`), and the redacting log layer.

use std::io::{self, IsTerminal};

use tracing::Subscriber;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer};

use crate::log_format::{RedactingFields, RedactingFormat};
use crate::redact::Redactor;

/// How log lines are written.
///
/// ```
/// assert_eq!("json".parse::<init_core::LogFormat>().unwrap(), init_core::LogFormat::Json);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// One human-readable line per event (the default).
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(format!(
                "INITKIT_LOG_FORMAT = \"{other}\": expected one of: text, json"
            )),
        }
    }
}

/// The logging configuration `run_main` reads from the environment.
///
/// # Default
///
/// Filter `info`, [`LogFormat::Text`].
///
/// ```
/// use init_core::{LogFormat, LogSettings};
/// let settings = LogSettings::from_lookup(|key| match key {
///     "INITKIT_LOG" => Some("debug".into()),
///     "INITKIT_LOG_FORMAT" => Some("json".into()),
///     _ => None,
/// })
/// .unwrap();
/// assert_eq!(settings.format(), LogFormat::Json);
/// assert_eq!(settings.filter(), "debug");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    filter: String,
    format: LogFormat,
}

impl LogSettings {
    /// Reads `INITKIT_LOG` and `INITKIT_LOG_FORMAT` through `lookup`.
    ///
    /// # Errors
    ///
    /// A filter that env-filter cannot parse, or a format other than `text` or `json`; the
    /// message names the variable and what was expected.
    ///
    /// ```
    /// let err = init_core::LogSettings::from_lookup(|k| (k == "INITKIT_LOG_FORMAT").then(|| "xml".into()));
    /// assert!(err.unwrap_err().contains("expected one of: text, json"));
    /// ```
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let filter = lookup("INITKIT_LOG")
            .filter(|f| !f.trim().is_empty())
            .unwrap_or_else(|| "info".to_owned());
        EnvFilter::try_new(&filter).map_err(|e| {
            format!("INITKIT_LOG = \"{filter}\": expected env-filter directives such as `info` or `init_steps=debug` ({e})")
        })?;
        let format = lookup("INITKIT_LOG_FORMAT").unwrap_or_default().parse()?;
        Ok(Self { filter, format })
    }

    /// The env-filter directives.
    ///
    /// ```
    /// let s = init_core::LogSettings::from_lookup(|_| None).unwrap();
    /// assert_eq!(s.filter(), "info");
    /// ```
    pub fn filter(&self) -> &str {
        &self.filter
    }

    /// The line format.
    ///
    /// ```
    /// let s = init_core::LogSettings::from_lookup(|_| None).unwrap();
    /// assert_eq!(s.format(), init_core::LogFormat::Text);
    /// ```
    pub fn format(&self) -> LogFormat {
        self.format
    }

    /// Installs the global subscriber, writing to stderr, every field and message redacted by
    /// `redactor` before it is escaped or encoded (see [`layer`](Self::layer)). Does nothing
    /// if a global subscriber is already set (a test harness's, say).
    ///
    /// ```
    /// let settings = init_core::LogSettings::from_lookup(|_| None).unwrap();
    /// settings.install(init_core::Redactor::new());
    /// ```
    pub fn install(&self, redactor: Redactor) {
        let ansi = self.format == LogFormat::Text && io::stderr().is_terminal();
        let _ = tracing_subscriber::registry()
            .with(self.build_layer(redactor, io::stderr, ansi))
            .try_init();
    }

    /// The log layer `run_main` installs, writing to `writer`: this filter, this format, and
    /// every field value and message of every event and span redacted by `redactor` *before*
    /// it is quoted or JSON-encoded, so no escaping hides a secret and every JSON line parses.
    /// Compose it with other layers (an OpenTelemetry exporter, say) on a
    /// [`tracing_subscriber::registry()`].
    ///
    /// A text line: `2026-01-01T00:00:00.000000Z  INFO step{step="db"}: message key=value`.
    /// A JSON line: `{"timestamp":…,"level":"INFO","message":…,"key":…,"span":{"step":"db","name":"step"}}`.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use tracing_subscriber::layer::SubscriberExt;
    ///
    /// #[derive(Clone, Default)]
    /// struct Buffer(Arc<Mutex<Vec<u8>>>);
    /// impl std::io::Write for Buffer {
    ///     fn write(&mut self, b: &[u8]) -> std::io::Result<usize> { self.0.lock().unwrap().write(b) }
    ///     fn flush(&mut self) -> std::io::Result<()> { Ok(()) }
    /// }
    ///
    /// let redactor = init_core::Redactor::new();
    /// redactor.register("pa\"ss\\w0rd");
    /// let settings = init_core::LogSettings::from_lookup(|k| (k == "INITKIT_LOG_FORMAT").then(|| "json".into())).unwrap();
    /// let buffer = Buffer::default();
    /// let out = buffer.clone();
    /// let subscriber = tracing_subscriber::registry().with(settings.layer(redactor, move || out.clone()));
    /// tracing::subscriber::with_default(subscriber, || {
    ///     tracing::info!(password = "pa\"ss\\w0rd", "login with {}", "pa\"ss\\w0rd");
    /// });
    /// let line = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    /// let json: serde_json::Value = serde_json::from_str(&line).unwrap();
    /// assert_eq!(json["password"], "[redacted]");
    /// assert_eq!(json["message"], "login with [redacted]");
    /// ```
    pub fn layer<S, W>(
        &self,
        redactor: Redactor,
        writer: W,
    ) -> impl Layer<S> + Send + Sync + 'static
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
        W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
    {
        self.build_layer(redactor, writer, false)
    }

    fn build_layer<S, W>(
        &self,
        redactor: Redactor,
        writer: W,
        ansi: bool,
    ) -> impl Layer<S> + Send + Sync + 'static
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
        W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
    {
        let filter = EnvFilter::try_new(&self.filter).unwrap_or_else(|_| EnvFilter::new("info"));
        let format = RedactingFormat {
            redactor: redactor.clone(),
            format: self.format,
        };
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(writer)
            .with_ansi(ansi)
            .event_format(format);
        match self.format {
            LogFormat::Text => layer
                .fmt_fields(RedactingFields::<false> { redactor })
                .with_filter(filter)
                .boxed(),
            LogFormat::Json => layer
                .fmt_fields(RedactingFields::<true> { redactor })
                .with_filter(filter)
                .boxed(),
        }
    }
}
