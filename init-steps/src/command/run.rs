//! One attempt: the program started in its own process group with the context's environment,
//! its output logged line by line, its end classified; and the checks before any run.

use std::ffi::{OsStr, OsString};

use async_trait::async_trait;
use init_core::{Context, Publication, Reference, Step, StepError, ValidateContext, ValuePath};

use super::builder::{Command, EnvSource, Program};
use super::exit::spawn_error;
use super::output::{MAX_ERROR_LINE, Stderr};
use crate::support::process_group::{self, RunError, Stream};
use crate::support::text::shorten;

impl Command {
    /// The `tokio` command for one attempt (the process-group runner adds the pipes and the
    /// group).
    fn command(&self, ctx: &Context) -> Result<tokio::process::Command, StepError> {
        let argv = self.argv();
        let mut cmd = tokio::process::Command::new(argv[0]);
        cmd.args(&argv[1..]).env_clear().envs(ctx.env_vars());
        for (key, source) in &self.env {
            match source {
                EnvSource::Literal(value) => cmd.env(key, value),
                EnvSource::Value(path) => cmd.env(key, published(ctx, path, key)?),
            };
        }
        if let Some(dir) = &self.current_dir {
            cmd.current_dir(dir);
        }
        Ok(cmd)
    }
}

#[async_trait]
impl Step for Command {
    fn name(&self) -> &str {
        &self.name
    }

    fn publishes(&self) -> Option<Vec<Publication>> {
        Some(Vec::new())
    }

    fn reads(&self) -> Vec<Reference> {
        self.env
            .iter()
            .filter_map(|(key, source)| match source {
                EnvSource::Value(path) if path.check().is_ok() => {
                    Some(path.reference(format!("environment variable {}", key.to_string_lossy())))
                }
                _ => None,
            })
            .collect()
    }

    fn validate(&self, _cx: &ValidateContext<'_>) -> Result<(), StepError> {
        match &self.program {
            Program::Argv(argv) => match argv.first() {
                None => {
                    return Err(StepError::invalid(
                        "command: expected a program, got an empty argv",
                    ));
                }
                Some(p) if p.is_empty() => {
                    return Err(StepError::invalid(
                        "command: expected a program, got an empty name",
                    ));
                }
                Some(_) => {}
            },
            Program::Shell(script) if script.trim().is_empty() => {
                return Err(StepError::invalid(
                    "sh: expected a script, got an empty one",
                ));
            }
            Program::Shell(_) => {}
        }
        let label = self.label();
        for arg in self.argv() {
            if arg.as_encoded_bytes().contains(&0) {
                return Err(StepError::invalid(format!(
                    "{label}: argument {:?}: expected no NUL byte",
                    arg.to_string_lossy()
                )));
            }
        }
        for (key, source) in &self.env {
            let bytes = key.as_encoded_bytes();
            if bytes.is_empty() || bytes.contains(&b'=') || bytes.contains(&0) {
                return Err(StepError::invalid(format!(
                    "{label}: environment variable {:?}: expected a name without '=' or NUL",
                    key.to_string_lossy()
                )));
            }
            match source {
                EnvSource::Literal(value) if value.as_encoded_bytes().contains(&0) => {
                    return Err(StepError::invalid(format!(
                        "{label}: environment variable {}: expected a value without NUL",
                        key.to_string_lossy()
                    )));
                }
                EnvSource::Value(path) => {
                    if let Err(err) = path.check() {
                        return Err(StepError::invalid(format!(
                            "{label}: environment variable {}: {err}",
                            key.to_string_lossy()
                        )));
                    }
                }
                EnvSource::Literal(_) => {}
            }
        }
        init_core::check_duration("kill_grace", self.grace).map_err(|e| e.context(&label))?;
        if let Some(code) = self
            .transient_exit_codes
            .iter()
            .find(|c| !(1..=255).contains(*c))
        {
            return Err(StepError::invalid(format!(
                "{label}: transient exit code {code}: expected 1 to 255"
            )));
        }
        Ok(())
    }

    async fn run(&self, ctx: &Context) -> Result<(), StepError> {
        let label = self.label();
        let mut cmd = self.command(ctx)?;
        let mut stderr = Stderr::default();
        let mut on_line = |stream: Stream, line: &str| {
            process_group::log_line(stream, line);
            if stream == Stream::Stderr {
                stderr.push(line);
            }
        };
        let status = match process_group::run(&mut cmd, ctx, self.grace, &mut on_line).await {
            Ok(status) => status,
            Err(RunError::Spawn(err)) => {
                return Err(spawn_error(&label, self.current_dir.as_deref(), err));
            }
            Err(RunError::Wait(err)) => {
                return Err(StepError::transient(format!("{label}: wait")).with_source(err));
            }
        };
        let result = self.classify(status, stderr.error_line());
        if result.is_err() && !stderr.tail.is_empty() {
            let tail: Vec<_> = stderr
                .tail
                .lines()
                .map(|line| shorten(line, MAX_ERROR_LINE))
                .collect();
            tracing::warn!(
                program = %label,
                stderr_tail = ?tail,
                "command failed; the last {} lines of its stderr",
                tail.len()
            );
        }
        result
    }
}

/// The value published under `path`, as an environment value.
fn published(ctx: &Context, path: &ValuePath, key: &OsStr) -> Result<OsString, StepError> {
    path.text(ctx)
        .map(OsString::from)
        .map_err(|e| e.context(format!("environment variable {}", key.to_string_lossy())))
}
