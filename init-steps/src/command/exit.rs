//! How a run ends: the exit status or signal classified as success, transient or permanent,
//! and a program that cannot be started.

use std::ffi::OsStr;
use std::io;
use std::path::Path;
use std::process::ExitStatus;

use init_core::{ErrorClass, StepError, classify_io};
use nix::errno::Errno;
use nix::sys::signal::Signal;

use super::builder::{Command, Program};
use super::output::MAX_ERROR_LINE;
use crate::support::text::shorten;

/// Programs that report a child killed by signal `n` as exit status `128+n`.
const SHELLS: [&str; 7] = ["sh", "bash", "dash", "ash", "ksh", "mksh", "zsh"];

impl Command {
    /// Whether the program is a shell, which reports a child killed by a signal as `128+n`.
    fn is_shell(&self) -> bool {
        match &self.program {
            Program::Shell(_) => true,
            Program::Argv(argv) => argv
                .first()
                .and_then(|p| Path::new(p).file_name())
                .and_then(OsStr::to_str)
                .is_some_and(|name| SHELLS.contains(&name)),
        }
    }

    pub(super) fn classify(
        &self,
        status: ExitStatus,
        error_line: Option<&str>,
    ) -> Result<(), StepError> {
        use std::os::unix::process::ExitStatusExt;
        let label = self.label();
        let with_line = |message: String| match error_line {
            Some(line) => format!("{message}: {}", shorten(line, MAX_ERROR_LINE)),
            None => message,
        };
        if let Some(code) = status.code() {
            if code == 0 {
                return Ok(());
            }
            if self.transient_exit_codes.contains(&code) {
                return Err(StepError::transient(with_line(format!(
                    "{label}: exited with code {code}"
                ))));
            }
            // A shell's `128+n`: a process it ran was killed by signal `n`.
            let signal = code
                .checked_sub(128)
                .filter(|_| self.is_shell())
                .and_then(|n| Signal::try_from(n).ok());
            return Err(match signal {
                Some(sig) => {
                    let message = with_line(format!(
                        "{label}: exited with code {code}, a process it ran was killed by signal {} ({})",
                        sig as i32,
                        sig.as_str()
                    ));
                    if is_crash(sig) {
                        StepError::permanent(message)
                    } else {
                        StepError::transient(message)
                    }
                }
                None => {
                    StepError::permanent(with_line(format!("{label}: exited with code {code}")))
                }
            });
        }
        let signal = status.signal().unwrap_or_default();
        let (name, crashed) = match Signal::try_from(signal) {
            Ok(sig) => (sig.as_str(), is_crash(sig)),
            Err(_) => ("unknown signal", false),
        };
        let message = with_line(format!("{label}: killed by signal {signal} ({name})"));
        Err(if crashed {
            StepError::permanent(message)
        } else {
            StepError::transient(message)
        })
    }
}

/// A program that cannot be started: one that is missing, not executable, not a program or
/// behind a symlink loop is permanent (it is the same on every attempt), a lack of resources
/// (`ENOMEM`, `EAGAIN`, no file descriptor left) or a program still being written (`ETXTBSY`)
/// transient.
pub(super) fn spawn_error(label: &str, dir: Option<&Path>, err: io::Error) -> StepError {
    let class = match err.raw_os_error().map(Errno::from_raw) {
        Some(Errno::ENOMEM | Errno::EAGAIN | Errno::EMFILE | Errno::ENFILE | Errno::ETXTBSY) => {
            ErrorClass::Transient
        }
        Some(
            Errno::ENOENT
            | Errno::EACCES
            | Errno::EPERM
            | Errno::ENOEXEC
            | Errno::ELOOP
            | Errno::ENOTDIR
            | Errno::EISDIR
            | Errno::ENAMETOOLONG
            | Errno::E2BIG,
        ) => ErrorClass::Permanent,
        _ => match err.kind() {
            io::ErrorKind::NotFound => ErrorClass::Permanent,
            kind => classify_io(kind),
        },
    };
    // The kernel says "not found" for a missing working directory too: name the right thing.
    let context = match dir {
        Some(dir) if err.kind() == io::ErrorKind::NotFound && !dir.is_dir() => {
            format!("{label}: cannot start in {}", dir.display())
        }
        _ => format!("{label}: cannot start"),
    };
    StepError::with_class(class, context).with_source(err)
}

/// Signals that mean the program crashed: another attempt would crash too.
fn is_crash(signal: Signal) -> bool {
    matches!(
        signal,
        Signal::SIGSEGV
            | Signal::SIGBUS
            | Signal::SIGILL
            | Signal::SIGFPE
            | Signal::SIGABRT
            | Signal::SIGSYS
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class_of(errno: Errno) -> ErrorClass {
        spawn_error("migrate", None, io::Error::from_raw_os_error(errno as i32)).class()
    }

    #[test]
    fn spawn_errors_for_lack_of_resources_are_transient() {
        for errno in [
            Errno::ENOMEM,
            Errno::EAGAIN,
            Errno::EMFILE,
            Errno::ENFILE,
            Errno::ETXTBSY,
        ] {
            assert_eq!(class_of(errno), ErrorClass::Transient, "{errno}");
        }
    }

    #[test]
    fn spawn_errors_that_repeat_on_every_attempt_are_permanent() {
        for errno in [
            Errno::ENOENT,
            Errno::EACCES,
            Errno::ENOEXEC,
            Errno::ELOOP,
            Errno::ENOTDIR,
            Errno::ENAMETOOLONG,
        ] {
            assert_eq!(class_of(errno), ErrorClass::Permanent, "{errno}");
        }
    }
}
