//! A server process started by a test: its log file, a readiness wait that shows the log when
//! the server does not come up, and a watchdog that stops it by PID when the test binary ends.
//!
//! Rust never drops statics, so a server shared by a whole test binary cannot be stopped by a
//! destructor. Each server therefore gets a watchdog: `/bin/sh` reading a pipe whose write end
//! only the test binary holds. When the binary ends, however it ends (even `SIGKILL`), the kernel
//! closes that end, the watchdog's `cat` sees end-of-file, and it signals the server's process
//! group, waits for it, and removes its directory. An owned server stops earlier, in `Drop`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::os::unix::process::CommandExt;

use crate::StartError;

/// How long a server may take to become ready (a cold `initdb` on a busy 2-core machine included).
const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// How long a stopping server gets before `SIGKILL`.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// How many lines of the server's log a start failure shows.
const LOG_TAIL_LINES: usize = 60;

/// The watchdog: waits for end-of-file on its stdin, then stops the process group `$1` with
/// signal `$2` (then `KILL` after 10 s) and removes the directory `$3`.
const WATCHDOG: &str = r#"
cat >/dev/null
kill -s "$2" -- "-$1" 2>/dev/null
i=0
while kill -0 "$1" 2>/dev/null && [ "$i" -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
kill -s KILL -- "-$1" 2>/dev/null
rm -rf -- "$3"
"#;

/// A running server: the child process (leader of its own process group), its watchdog, and
/// the file its stdout and stderr go to.
#[derive(Debug)]
pub(crate) struct ServerProcess {
    server: &'static str,
    child: Child,
    watchdog: Child,
    /// Held open: the watchdog acts when it closes.
    watchdog_pipe: Option<ChildStdin>,
    log: PathBuf,
    stop: Signal,
}

impl ServerProcess {
    /// Starts `command` in its own process group with stdout and stderr appended to `log`, and
    /// its watchdog, which removes `dir` once the server is gone.
    pub(crate) fn spawn(
        server: &'static str,
        mut command: Command,
        log: &Path,
        stop: Signal,
        dir: &Path,
    ) -> Result<Self, StartError> {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| StartError::failed(server, format!("{}: {e}", log.display()), ""))?;
        let err = out
            .try_clone()
            .map_err(|e| StartError::failed(server, format!("{}: {e}", log.display()), ""))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            // Its own group: a ^C at the terminal does not reach it, the watchdog does.
            .process_group(0)
            .spawn()
            .map_err(|e| {
                let program = command.get_program().to_string_lossy().into_owned();
                StartError::failed(server, format!("{program}: {e}"), "")
            })?;
        let mut watchdog = Command::new("/bin/sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg("initkit-test-watchdog")
            .arg(child.id().to_string())
            .arg(stop.as_str().trim_start_matches("SIG"))
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| StartError::failed(server, format!("/bin/sh: {e}"), ""))?;
        let watchdog_pipe = watchdog.stdin.take();
        Ok(Self {
            server,
            child,
            watchdog,
            watchdog_pipe,
            log: log.to_owned(),
            stop,
        })
    }

    /// The server's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the server has written so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls `ready` until it says yes; fails, showing the log's tail, when the server exits
    /// first or is not ready in time.
    pub(crate) fn wait_ready(
        &mut self,
        mut ready: impl FnMut(&str) -> bool,
    ) -> Result<(), StartError> {
        let started = Instant::now();
        loop {
            if ready(&self.log()) {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(self.failure(format!("exited during start-up ({status})")));
            }
            if started.elapsed() > READY_TIMEOUT {
                return Err(self.failure(format!("not ready after {}s", READY_TIMEOUT.as_secs())));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// A start failure with the tail of the log.
    pub(crate) fn failure(&self, reason: String) -> StartError {
        StartError::failed(self.server, reason, &tail(&self.log(), LOG_TAIL_LINES))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let group = Pid::from_raw(self.child.id() as i32);
        let _ = killpg(group, self.stop);
        let deadline = Instant::now() + STOP_GRACE;
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = killpg(group, Signal::SIGKILL);
        let _ = self.child.wait();
        // Stopped here already: the watchdog must not signal a PID that may be reused.
        let _ = self.watchdog.kill();
        let _ = self.watchdog.wait();
        drop(self.watchdog_pipe.take());
    }
}

/// The last `lines` lines of `text`.
pub(crate) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Runs a set-up command (`initdb`, `mariadb-install-db`) to completion; a failure carries its
/// output.
pub(crate) fn run_setup(server: &'static str, command: &mut Command) -> Result<(), StartError> {
    let program = command.get_program().to_string_lossy().into_owned();
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| StartError::failed(server, format!("{program}: {e}"), ""))?;
    if output.status.success() {
        return Ok(());
    }
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Err(StartError::failed(
        server,
        format!("{program} failed ({})", output.status),
        &tail(&text, LOG_TAIL_LINES),
    ))
}
