//! Logging set-up for `run_main`: `INITKIT_LOG` (env-filter syntax), `INITKIT_LOG_FORMAT`
//! (`text` or `json`), and a stderr writer that passes every line through the redactor.

use std::io::{self, IsTerminal, Write};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

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

    /// Installs the global subscriber, writing to stderr through `redactor`. Does nothing if a
    /// global subscriber is already set (a test harness's, say).
    ///
    /// ```
    /// let settings = init_core::LogSettings::from_lookup(|_| None).unwrap();
    /// settings.install(init_core::Redactor::new());
    /// ```
    pub fn install(&self, redactor: Redactor) {
        let filter = EnvFilter::try_new(&self.filter).unwrap_or_else(|_| EnvFilter::new("info"));
        let writer = RedactingStderr { redactor };
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(writer)
            .with_target(false);
        let _ = match self.format {
            LogFormat::Text => builder.with_ansi(io::stderr().is_terminal()).try_init(),
            LogFormat::Json => builder
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .try_init(),
        };
    }
}

/// Hands out one buffer per log event; the buffer is redacted and written to stderr in one
/// piece when the event is done.
struct RedactingStderr {
    redactor: Redactor,
}

impl<'a> MakeWriter<'a> for RedactingStderr {
    type Writer = RedactedLine<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        RedactedLine {
            redactor: &self.redactor,
            buf: Vec::with_capacity(256),
        }
    }
}

struct RedactedLine<'a> {
    redactor: &'a Redactor,
    buf: Vec<u8>,
}

impl Write for RedactedLine<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for RedactedLine<'_> {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.buf);
        let clean = self.redactor.redact(&text);
        let _ = io::stderr().lock().write_all(clean.as_bytes());
    }
}
