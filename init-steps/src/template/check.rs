//! The check command: runs on each rendered temp file before it replaces the destination.

use std::path::Path;
use std::time::Duration;

use init_core::{Context, StepError};

use crate::support::process_group::{self, RunError, Stream, Tail};

/// How long a check command's processes get between `SIGTERM` and `SIGKILL` when the attempt
/// is dropped.
const CHECK_GRACE: Duration = Duration::from_secs(5);
/// How many of the last lines of each of the check's output streams are kept for its error.
const CHECK_TAIL: usize = 10;

/// Runs the check command on the temp file, in its own process group with the context's
/// environment; keeps the last lines of its output (masked) for the error message.
pub(super) async fn run_check(
    ctx: &Context,
    dest: &Path,
    argv: &[String],
    temp: &Path,
) -> Result<(), StepError> {
    let temp = temp.to_string_lossy();
    let args: Vec<String> = argv.iter().map(|a| a.replace("{}", &temp)).collect();
    let shown = argv.join(" ");
    let mut cmd = tokio::process::Command::new(&args[0]);
    cmd.args(&args[1..]).env_clear().envs(ctx.env_vars());
    let (mut stdout, mut stderr) = (Tail::new(CHECK_TAIL), Tail::new(CHECK_TAIL));
    let mut on_line = |stream: Stream, line: &str| match stream {
        Stream::Stdout => stdout.push(line),
        Stream::Stderr => stderr.push(line),
    };
    let status = match process_group::run(&mut cmd, ctx, CHECK_GRACE, &mut on_line).await {
        Ok(status) => status,
        Err(RunError::Spawn(err)) => {
            return Err(StepError::permanent(format!(
                "{}: check \"{shown}\": cannot start it",
                dest.display()
            ))
            .with_source(err));
        }
        Err(RunError::Wait(err)) => {
            return Err(StepError::transient(format!(
                "{}: check \"{shown}\": wait",
                dest.display()
            ))
            .with_source(err));
        }
    };
    if status.success() {
        return Ok(());
    }
    let shown_lines = if stderr.is_empty() { &stdout } else { &stderr };
    // Masked in the stream, before it is cut: a secret across the cut would leave its tail.
    let tail = tail_lines(shown_lines.lines(), 3, 400);
    let status = match status.code() {
        Some(code) => format!("exit status {code}"),
        None => "killed by a signal".to_owned(),
    };
    let mut message = format!("{}: check \"{shown}\" failed ({status})", dest.display());
    if !tail.is_empty() {
        message.push_str(": ");
        message.push_str(&tail);
    }
    Err(StepError::permanent(message))
}

/// The last `lines` of `kept` (trimmed), joined by ` / `, at most `max` characters.
fn tail_lines<'a>(
    kept: impl DoubleEndedIterator<Item = &'a str> + ExactSizeIterator,
    lines: usize,
    max: usize,
) -> String {
    let kept: Vec<&str> = kept.map(str::trim).collect();
    let joined = kept[kept.len().saturating_sub(lines)..].join(" / ");
    let count = joined.chars().count();
    if count <= max {
        joined
    } else {
        let skip = count - max;
        format!("…{}", joined.chars().skip(skip + 1).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails_the_last_lines() {
        let mut kept = Tail::new(10);
        for line in ["a", "", " b ", "c", "d"] {
            kept.push(line);
        }
        assert_eq!(tail_lines(kept.lines(), 3, 100), "b / c / d");
        assert_eq!(tail_lines(["abcdef"].into_iter(), 3, 4), "…def");
    }
}
