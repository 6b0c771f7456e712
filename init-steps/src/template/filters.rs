//! Our filters: `required`, `b64encode`, `b64decode`, `sha256` and `tojson`. None of them
//! turns an undefined value into output.

use base64::Engine as _;
use minijinja::ErrorKind;
use minijinja::value::Value;
use sha2::Digest as _;

use super::strict::{defined, defined_throughout};
use crate::support::hex::hex;

pub(super) fn filter_required(
    value: Value,
    message: Option<String>,
) -> Result<Value, minijinja::Error> {
    if message.is_none() {
        // Named by the render: `undefined value values.db.password`.
        defined(&value)?;
    }
    let missing =
        value.is_undefined() || value.is_none() || value.as_str().is_some_and(str::is_empty);
    if missing {
        Err(minijinja::Error::new(
            ErrorKind::InvalidOperation,
            message.unwrap_or_else(|| "a required value is missing".to_owned()),
        ))
    } else {
        Ok(value)
    }
}

fn bytes_of<'a>(value: &'a Value, filter: &str) -> Result<&'a [u8], minijinja::Error> {
    defined(value)?;
    value.as_bytes().ok_or_else(|| {
        minijinja::Error::new(
            ErrorKind::InvalidOperation,
            format!("{filter} expects a string, got {}", value.kind()),
        )
    })
}

pub(super) fn filter_b64encode(value: Value) -> Result<String, minijinja::Error> {
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes_of(&value, "b64encode")?))
}

pub(super) fn filter_b64decode(value: Value) -> Result<String, minijinja::Error> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(bytes_of(&value, "b64decode")?)
        .map_err(|_| {
            minijinja::Error::new(
                ErrorKind::InvalidOperation,
                "b64decode: the input is not valid base64",
            )
        })?;
    String::from_utf8(bytes).map_err(|_| {
        minijinja::Error::new(
            ErrorKind::InvalidOperation,
            "b64decode: the decoded bytes are not UTF-8",
        )
    })
}

pub(super) fn filter_sha256(value: Value) -> Result<String, minijinja::Error> {
    Ok(hex(&sha2::Sha256::digest(bytes_of(&value, "sha256")?)))
}

pub(super) fn filter_tojson(
    value: Value,
    indent: Option<usize>,
) -> Result<String, minijinja::Error> {
    defined_throughout(&value)?;
    let failed = |e: serde_json::Error| {
        minijinja::Error::new(
            ErrorKind::InvalidOperation,
            "tojson: cannot serialize the value",
        )
        .with_source(e)
    };
    match indent {
        None => serde_json::to_string(&value).map_err(failed),
        Some(width) => {
            // serde_json indents by two spaces, and a JSON line starts with indentation only
            // (strings cannot hold a raw newline).
            let pretty = serde_json::to_string_pretty(&value).map_err(failed)?;
            let lines: Vec<String> = pretty
                .lines()
                .map(|line| {
                    let body = line.trim_start_matches(' ');
                    let depth = (line.len() - body.len()) / 2;
                    format!("{}{body}", " ".repeat(depth * width))
                })
                .collect();
            Ok(lines.join("\n"))
        }
    }
}
