//! The log line formatter of `run_main`: it redacts every field value and the message of each
//! event and span with the [`Redactor`] *before* writing them as text or JSON, so escaping can
//! never hide a secret from the redactor and a JSON line always parses.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

use crate::logging::LogFormat;
use crate::redact::{REDACTED, Redactor};

/// One field's value, already redacted.
#[derive(Debug, Clone, PartialEq)]
enum FieldValue {
    /// Recorded as a `&str`: quoted in text lines.
    Str(String),
    /// Recorded through `Debug` or `Display` (`?x`, `%x`, the message): written as it is.
    Formatted(String),
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
}

/// Collects the fields of an event or span, redacting each value as it is recorded.
struct Collect<'a> {
    redactor: &'a Redactor,
    fields: Vec<(&'static str, FieldValue)>,
}

impl<'a> Collect<'a> {
    fn new(redactor: &'a Redactor) -> Self {
        Self {
            redactor,
            fields: Vec::new(),
        }
    }

    fn text(&self, text: &str) -> String {
        self.redactor.redact(text).into_owned()
    }

    /// A number, unless its decimal text is a registered secret.
    fn number(&mut self, field: &Field, text: String, value: FieldValue) {
        let value = if self.redactor.is_secret(&text) {
            FieldValue::Formatted(REDACTED.to_owned())
        } else {
            value
        };
        self.fields.push((field.name(), value));
    }
}

impl Visit for Collect<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        let value = if field.name() == "message" {
            FieldValue::Formatted(self.text(value))
        } else {
            FieldValue::Str(self.text(value))
        };
        self.fields.push((field.name(), value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = self.text(&format!("{value:?}"));
        self.fields
            .push((field.name(), FieldValue::Formatted(text)));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        // The whole chain, as `StepError` prints it: `message: source: source's source`.
        let mut text = value.to_string();
        let mut next = value.source();
        while let Some(err) = next {
            let part = err.to_string();
            if !text.contains(&part) {
                text.push_str(": ");
                text.push_str(&part);
            }
            next = err.source();
        }
        let text = self.text(&text);
        self.fields
            .push((field.name(), FieldValue::Formatted(text)));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.fields.push((field.name(), FieldValue::Bool(value)));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.number(field, value.to_string(), FieldValue::I64(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.number(field, value.to_string(), FieldValue::U64(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.number(field, value.to_string(), FieldValue::F64(value));
    }
}

/// Formats the fields of spans (and events) with their values redacted: `k=v` pairs for text
/// lines, a JSON object for JSON lines. The format is also in the type (`JSON`), because span
/// extensions keep formatted fields by type: a text layer and a JSON layer on one registry
/// must not read each other's.
pub(crate) struct RedactingFields<const JSON: bool> {
    pub(crate) redactor: Redactor,
}

impl<const JSON: bool> RedactingFields<JSON> {
    const FORMAT: LogFormat = if JSON {
        LogFormat::Json
    } else {
        LogFormat::Text
    };
}

impl<'w, const JSON: bool> FormatFields<'w> for RedactingFields<JSON> {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut collect = Collect::new(&self.redactor);
        fields.record(&mut collect);
        match Self::FORMAT {
            LogFormat::Text => write_text_fields(&mut writer, &collect.fields, false),
            LogFormat::Json => {
                writer.write_char('{')?;
                write_json_fields(&mut writer, &collect.fields, false)?;
                writer.write_char('}')
            }
        }
    }

    fn add_fields(
        &self,
        current: &'w mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        let mut collect = Collect::new(&self.redactor);
        fields.record(&mut collect);
        if collect.fields.is_empty() {
            return Ok(());
        }
        match Self::FORMAT {
            LogFormat::Text => {
                let leading = !current.fields.is_empty();
                write_text_fields(&mut current.as_writer(), &collect.fields, leading)
            }
            LogFormat::Json => {
                // `{...}`: reopen the object and append.
                let had_fields = current.fields.len() > 2;
                current.fields.pop();
                if current.fields.is_empty() {
                    current.fields.push('{');
                }
                let mut writer = current.as_writer();
                write_json_fields(&mut writer, &collect.fields, had_fields)?;
                writer.write_char('}')
            }
        }
    }
}

/// ` k=v k2="v2"`; a string recorded as `&str` is quoted (escaped after it was redacted), the
/// message is written first without its name.
fn write_text_fields(
    writer: &mut Writer<'_>,
    fields: &[(&'static str, FieldValue)],
    mut leading_space: bool,
) -> fmt::Result {
    for (name, value) in fields {
        if leading_space {
            writer.write_char(' ')?;
        }
        leading_space = true;
        if *name != "message" {
            write!(writer, "{name}=")?;
        }
        match value {
            FieldValue::Str(s) => write!(writer, "{}", Sanitized(&format!("{s:?}")))?,
            FieldValue::Formatted(s) => write!(writer, "{}", Sanitized(s))?,
            FieldValue::Bool(b) => write!(writer, "{b}")?,
            FieldValue::I64(n) => write!(writer, "{n}")?,
            FieldValue::U64(n) => write!(writer, "{n}")?,
            FieldValue::F64(n) => write!(writer, "{n}")?,
        }
    }
    Ok(())
}

/// `"k":v,"k2":v2` (serde_json escaping, after redaction).
fn write_json_fields(
    writer: &mut Writer<'_>,
    fields: &[(&'static str, FieldValue)],
    mut leading_comma: bool,
) -> fmt::Result {
    for (name, value) in fields {
        if leading_comma {
            writer.write_char(',')?;
        }
        leading_comma = true;
        let json = match value {
            FieldValue::Str(s) | FieldValue::Formatted(s) => serde_json::Value::from(s.as_str()),
            FieldValue::Bool(b) => (*b).into(),
            FieldValue::I64(n) => (*n).into(),
            FieldValue::U64(n) => (*n).into(),
            // NaN and infinities have no JSON number: serde_json makes them null.
            FieldValue::F64(n) => (*n).into(),
        };
        write!(writer, "{}:{json}", serde_json::Value::from(*name))?;
    }
    Ok(())
}

/// Text with the control characters that drive a terminal (ESC, BEL, BS, FF, DEL, C1) escaped,
/// as tracing-subscriber does for its own text lines.
struct Sanitized<'a>(&'a str);

impl fmt::Display for Sanitized<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '\x1b' | '\x07' | '\x08' | '\x0c' | '\x7f' => write!(f, "\\x{:02x}", u32::from(c))?,
                c if ('\u{80}'..='\u{9f}').contains(&c) => write!(f, "\\u{{{:x}}}", u32::from(c))?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// Formats one event as a text or JSON line, its fields and message redacted before they are
/// escaped or encoded.
pub(crate) struct RedactingFormat {
    pub(crate) redactor: Redactor,
    pub(crate) format: LogFormat,
}

impl<S, N> FormatEvent<S, N> for RedactingFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut timestamp = String::new();
        if SystemTime
            .format_time(&mut Writer::new(&mut timestamp))
            .is_err()
        {
            timestamp.clear();
        }
        let level = *event.metadata().level();
        let mut collect = Collect::new(&self.redactor);
        event.record(&mut collect);
        // The message first, as people read it.
        collect.fields.sort_by_key(|(name, _)| *name != "message");
        match self.format {
            LogFormat::Text => {
                write!(writer, "{timestamp} ")?;
                write_level(&mut writer, level)?;
                writer.write_char(' ')?;
                if let Some(scope) = ctx.event_scope() {
                    for span in scope.from_root() {
                        write!(writer, "{}", span.name())?;
                        if let Some(fields) = span.extensions().get::<FormattedFields<N>>()
                            && !fields.is_empty()
                        {
                            write!(writer, "{{{fields}}}")?;
                        }
                        writer.write_str(": ")?;
                    }
                }
                write_text_fields(&mut writer, &collect.fields, false)?;
            }
            LogFormat::Json => {
                write!(
                    writer,
                    "{{\"timestamp\":{},\"level\":{}",
                    serde_json::Value::from(timestamp),
                    serde_json::Value::from(level.as_str())
                )?;
                write_json_fields(&mut writer, &collect.fields, true)?;
                if let Some(span) = ctx.lookup_current() {
                    writer.write_str(",\"span\":{")?;
                    let ext = span.extensions();
                    let inner = ext
                        .get::<FormattedFields<N>>()
                        .and_then(|f| f.fields.strip_prefix('{')?.strip_suffix('}'))
                        .unwrap_or_default();
                    if !inner.is_empty() {
                        write!(writer, "{inner},")?;
                    }
                    write!(
                        writer,
                        "\"name\":{}}}",
                        serde_json::Value::from(span.name())
                    )?;
                }
                writer.write_char('}')?;
            }
        }
        writeln!(writer)
    }
}

fn write_level(writer: &mut Writer<'_>, level: Level) -> fmt::Result {
    if !writer.has_ansi_escapes() {
        return write!(writer, "{level:>5}");
    }
    let color = match level {
        Level::ERROR => "31",
        Level::WARN => "33",
        Level::INFO => "32",
        Level::DEBUG => "34",
        Level::TRACE => "35",
    };
    write!(writer, "\x1b[{color}m{level:>5}\x1b[0m")
}
