//! What a Vault step does with the secret data it read: keep the chosen fields, register every
//! value with the redactor, write files (one field raw, JSON, `.env`) atomically, and publish
//! the data as a secret. Shared by [`KvRead`](super::KvRead) and [`VaultRead`](super::VaultRead).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use init_core::{Context, Publication, StepError};
use serde_json::{Map, Value};

use crate::support::file_output::{DefaultMode, FileOutput};

/// What to write where.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Output {
    /// One field's value, raw (a string as its bytes, anything else as JSON).
    Field(String, PathBuf),
    /// All (chosen) fields as a JSON object.
    Json(PathBuf),
    /// All (chosen) fields as `NAME="value"` lines.
    Env(PathBuf),
}

impl Output {
    fn path(&self) -> &PathBuf {
        match self {
            Self::Field(_, p) | Self::Json(p) | Self::Env(p) => p,
        }
    }
}

/// The fields to keep, the name to publish under and the files to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SecretOutputs {
    fields: Option<Vec<String>>,
    plain_fields: Vec<String>,
    publish: Option<String>,
    outputs: Vec<Output>,
    /// The files' mode (`0o600` unless asked otherwise: the data is secret) and owner.
    pub(crate) file: FileOutput,
}

/// What [`SecretOutputs::deliver`] did, for the step's log line.
#[derive(Debug)]
pub(crate) struct Delivered {
    /// How many fields were kept.
    pub(crate) fields: usize,
    /// The files written.
    pub(crate) files: Vec<String>,
}

impl SecretOutputs {
    /// Every field, nothing published, no file, mode `0o600`.
    #[must_use]
    pub(crate) fn new() -> Self {
        Self {
            fields: None,
            plain_fields: Vec::new(),
            publish: None,
            outputs: Vec::new(),
            file: FileOutput::default(),
        }
    }

    pub(crate) fn field(&mut self, field: String) {
        self.fields.get_or_insert_with(Vec::new).push(field);
    }

    pub(crate) fn fields(&mut self, fields: impl IntoIterator<Item = String>) {
        self.fields.get_or_insert_with(Vec::new).extend(fields);
    }

    pub(crate) fn plain_fields(&mut self, fields: impl IntoIterator<Item = String>) {
        self.plain_fields.extend(fields);
    }

    pub(crate) fn publish(&mut self, name: String) {
        self.publish = Some(name);
    }

    /// The name the data is published under, if any.
    pub(crate) fn published(&self) -> Option<&str> {
        self.publish.as_deref()
    }

    /// What the step publishes: its name, with the chosen fields as keys when they were given
    /// (without, the secret's keys are known only when it is read).
    pub(crate) fn publications(&self) -> Vec<Publication> {
        self.publish
            .iter()
            .map(|name| match &self.fields {
                Some(fields) => Publication::new(name.as_str()).with_keys(fields.iter().cloned()),
                None => Publication::new(name.as_str()),
            })
            .collect()
    }

    pub(crate) fn write_field(&mut self, field: String, path: PathBuf) {
        self.outputs.push(Output::Field(field, path));
    }

    pub(crate) fn write_json(&mut self, path: PathBuf) {
        self.outputs.push(Output::Json(path));
    }

    pub(crate) fn write_env(&mut self, path: PathBuf) {
        self.outputs.push(Output::Env(path));
    }

    /// Checks the configuration; `subject` names the secret in messages.
    pub(crate) fn validate(&self, subject: &str) -> Result<(), StepError> {
        self.file.validate(subject)?;
        if self.publish.is_none() && self.outputs.is_empty() {
            return Err(StepError::invalid(format!(
                "{subject}: nothing to do: expected publish_secret, write_field, write_json or write_env"
            )));
        }
        if self.publish.as_deref().is_some_and(|n| n.trim().is_empty()) {
            return Err(StepError::invalid(format!(
                "{subject}: publish_secret(\"\"): expected a name"
            )));
        }
        if self.plain_fields.iter().any(String::is_empty) {
            return Err(StepError::invalid(format!(
                "{subject}: plain_fields: expected field names, got \"\""
            )));
        }
        if let Some(fields) = &self.fields {
            if fields.iter().any(|f| f.is_empty()) {
                return Err(StepError::invalid(format!(
                    "{subject}: field \"\": expected a field name"
                )));
            }
            for output in &self.outputs {
                if let Output::Field(field, _) = output
                    && !fields.contains(field)
                {
                    return Err(StepError::invalid(format!(
                        "{subject}: write_field(\"{field}\"): expected one of the chosen fields ({})",
                        fields.join(", ")
                    )));
                }
            }
        }
        let mut seen = HashSet::new();
        for output in &self.outputs {
            let path = output.path();
            if path.as_os_str().is_empty() {
                return Err(StepError::invalid(format!(
                    "{subject}: file path \"\": expected a path"
                )));
            }
            if !seen.insert(path) {
                return Err(StepError::invalid(format!(
                    "{subject}: {} is written twice: expected one output per file",
                    path.display()
                )));
            }
        }
        Ok(())
    }

    /// Keeps the chosen fields of `data`, registers every value as a secret, writes the files
    /// and publishes the data.
    ///
    /// # Errors
    ///
    /// A chosen field that is missing (naming the fields present, never their values), a field
    /// name a `.env` file cannot hold, a file that cannot be written: all permanent.
    pub(crate) async fn deliver(
        &self,
        ctx: &Context,
        data: Map<String, Value>,
        subject: &str,
    ) -> Result<Delivered, StepError> {
        let data = match &self.fields {
            None => data,
            Some(fields) => fields
                .iter()
                .map(|f| match data.get(f) {
                    Some(v) => Ok((f.clone(), v.clone())),
                    None => Err(missing_field(subject, f, &data)),
                })
                .collect::<Result<Map<_, _>, _>>()?,
        };
        // Registered before anything else happens, under the name it is published as (so the
        // warning about short values names the same paths as the publish).
        let secret: Map<String, Value> = data
            .iter()
            .filter(|(field, _)| !self.plain_fields.contains(field))
            .map(|(field, value)| (field.clone(), value.clone()))
            .collect();
        ctx.register_secret_value(
            self.publish.as_deref().unwrap_or(subject),
            &Value::Object(secret),
        );
        let files = self.files(&data, subject)?;
        let mut written = Vec::new();
        let swept = Arc::default();
        for (path, bytes) in files {
            (self.file)
                .stage(subject, path, bytes, DefaultMode::Secret, &swept)
                .await?
                .commit(subject)
                .await?;
            written.push(path.display().to_string());
        }
        let fields = data.len();
        if let Some(name) = &self.publish {
            ctx.publish_secret_except(name.clone(), Value::Object(data), &self.plain_fields);
        }
        Ok(Delivered {
            fields,
            files: written,
        })
    }

    /// Every file to write, and its content.
    fn files(
        &self,
        data: &Map<String, Value>,
        subject: &str,
    ) -> Result<Vec<(&PathBuf, Vec<u8>)>, StepError> {
        self.outputs
            .iter()
            .map(|output| {
                let bytes = match output {
                    Output::Field(field, _) => match data.get(field) {
                        Some(Value::String(s)) => s.clone().into_bytes(),
                        Some(other) => other.to_string().into_bytes(),
                        None => return Err(missing_field(subject, field, data)),
                    },
                    Output::Json(_) => {
                        let mut bytes = serde_json::to_vec_pretty(data)
                            .map_err(|e| StepError::permanent(subject.to_owned()).with_source(e))?;
                        bytes.push(b'\n');
                        bytes
                    }
                    Output::Env(_) => env_file(data, subject)?.into_bytes(),
                };
                Ok((output.path(), bytes))
            })
            .collect()
    }
}

fn missing_field(subject: &str, field: &str, data: &Map<String, Value>) -> StepError {
    let present: Vec<&str> = data.keys().map(String::as_str).collect();
    StepError::permanent(format!(
        "{subject}: no field \"{field}\" (fields: {})",
        if present.is_empty() {
            "none".to_owned()
        } else {
            present.join(", ")
        }
    ))
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `NAME="value"` lines, sorted by name, escaped for a POSIX shell's double quotes.
fn env_file(data: &Map<String, Value>, subject: &str) -> Result<String, StepError> {
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    let mut out = String::new();
    for name in names {
        if !is_env_name(name) {
            return Err(StepError::permanent(format!(
                "{subject}: field \"{name}\" cannot be a .env name: expected letters, digits and \
                 '_', not starting with a digit"
            )));
        }
        let value = match &data[name] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        out.push_str(name);
        out.push_str("=\"");
        for c in value.chars() {
            if matches!(c, '\\' | '"' | '$' | '`') {
                out.push('\\');
            }
            out.push(c);
        }
        out.push_str("\"\n");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn env_files_are_sorted_and_shell_escaped() {
        let data = json!({"B": "x\"$`\\y\nz", "A": 5, "_c": true});
        let Value::Object(map) = data else {
            unreachable!()
        };
        assert_eq!(
            env_file(&map, "s").unwrap(),
            "A=\"5\"\nB=\"x\\\"\\$\\`\\\\y\nz\"\n_c=\"true\"\n"
        );
    }

    #[test]
    fn env_files_refuse_names_a_shell_cannot_read() {
        let Value::Object(map) = json!({"db-password": "x"}) else {
            unreachable!()
        };
        let err = env_file(&map, "secret/db").unwrap_err();
        assert!(err.is_permanent());
        assert!(err.to_string().contains("\"db-password\""));
        assert!(!err.to_string().contains("\"x\""));
    }
}
