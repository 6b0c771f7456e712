//! Runs a program in its own process group, reads its output (masked, then cut into lines) and
//! stops the whole group when the run is dropped: the machinery behind `Command` and `Render`'s
//! check command. The group (start, stop, reap) is here; reading its output is in `output.rs`.
//!
//! # Process groups, cancellation and zombies
//!
//! Each run starts the program in a new process group. When the run is dropped (cancellation,
//! an attempt timeout, the step's or the plan's deadline), the whole group gets `SIGTERM` at
//! once, in the drop itself, so a process that exits right after (SIGTERM to the init binary)
//! still stops its children; a background thread then waits up to the grace period and sends
//! `SIGKILL` to whatever is left, and reaps the program. That thread holds a
//! [`init_core::CleanupGuard`] of the context's
//! [`cleanups`](init_core::Context::cleanups), so `run_main_then_exec` waits for it before it
//! execs. When the program exits by itself, processes it left behind in its group are stopped
//! the same way.
//!
//! No zombies: the program itself is always reaped (by the runtime, or by the kill thread).
//! Processes of its group that were orphaned and handed to us (we are PID 1 in the container, or
//! a subreaper) are reaped by a `waitpid` on the group, which never touches children that other
//! code started. A process that leaves the group (`setsid`, a daemon) is out of reach.
//!
//! While the group stops, its output is still read and logged, so a program that shuts down
//! cleanly is not killed by `SIGPIPE` on the way. After the program exits by itself, its output
//! is awaited for at most half a second more: a process it left in the background may keep the
//! pipes open.

mod output;

use std::future::{Future, poll_fn};
use std::io;
use std::pin::pin;
use std::process::{ExitStatus, Stdio};
use std::sync::Mutex;
use std::task::Poll;
use std::time::{Duration, Instant};

use init_core::{CleanupGuard, Context};
use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use tokio::process::{Child, ChildStderr, ChildStdout};

pub(crate) use output::Stream;
#[cfg(any(feature = "command", feature = "template"))]
pub(crate) use output::Tail;
#[cfg(feature = "command")]
pub(crate) use output::log_line;
use output::{OnLine, drain_pipe, pump};

/// After the program exits, how long its output may still take to reach end of file (a process
/// it left in the background may hold the pipes open).
const DRAIN: Duration = Duration::from_millis(500);
/// How often the kill thread looks at the group.
const POLL: Duration = Duration::from_millis(10);
/// How long the kill thread waits for the group to be reaped after `SIGKILL`.
const REAP_LIMIT: Duration = Duration::from_secs(2);

/// Why a run gave no exit status.
#[derive(Debug)]
pub(crate) enum RunError {
    /// The program could not be started.
    Spawn(io::Error),
    /// It started, but waiting for it failed.
    Wait(io::Error),
}

/// Runs `cmd` in a new process group with an empty stdin, handing each line of its output
/// (secrets masked, at most [`MAX_LINE`](output::MAX_LINE) bytes) to `on_line`, and returns its
/// exit status. Dropping the future stops the group (see the [module docs](self)); `grace` is the time
/// between `SIGTERM` and `SIGKILL` (zero: `SIGKILL` at once).
pub(crate) async fn run(
    cmd: &mut tokio::process::Command,
    ctx: &Context,
    grace: Duration,
    on_line: &mut OnLine<'_>,
) -> Result<ExitStatus, RunError> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn().map_err(RunError::Spawn)?;
    let Some(pid) = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .filter(|&p| p > 0)
    else {
        let _ = child.start_kill();
        return Err(RunError::Wait(io::Error::other(
            "started without a process id",
        )));
    };
    // From here on, dropping the run (cancellation, timeout) stops the whole group.
    let mut group = Group {
        stdout: child.stdout.take(),
        stderr: child.stderr.take(),
        leader: Some(child),
        pgid: Pid::from_raw(pid),
        grace,
        ctx: ctx.clone(),
        span: tracing::Span::current(),
    };
    tracing::debug!(pid, "program started");

    // Both streams feed one callback; the lock is never contended (one task polls both).
    let on_line = Mutex::new(on_line);
    let status = {
        let mut out = pin!(pump(group.stdout.as_mut(), Stream::Stdout, ctx, &on_line));
        let mut err = pin!(pump(group.stderr.as_mut(), Stream::Stderr, ctx, &on_line));
        let (mut out_done, mut err_done) = (false, false);
        let mut drain = |cx: &mut std::task::Context<'_>| {
            out_done = out_done || out.as_mut().poll(cx).is_ready();
            err_done = err_done || err.as_mut().poll(cx).is_ready();
            out_done && err_done
        };
        let status = {
            let mut wait = pin!(wait(&mut group.leader));
            poll_fn(|cx| {
                drain(cx);
                wait.as_mut().poll(cx)
            })
            .await
        };
        // A process left in the background may hold the pipes open: take what arrives soon,
        // then stop waiting.
        let drained = poll_fn(|cx| {
            if drain(cx) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        });
        let _ = tokio::time::timeout(DRAIN, drained).await;
        status
    };
    // Stops what the program left behind in its group, if anything.
    drop(group);
    status.map_err(RunError::Wait)
}

/// The program's process group while a run owns it. Dropping it while anything of the group
/// is left (the run was cancelled or timed out while the program ran, or the program exited
/// and left processes behind) sends `SIGTERM` to the group at once and leaves the rest
/// (`SIGKILL` after the grace period, reaping) to a background thread.
#[derive(Debug)]
struct Group {
    /// The program, until it has been reaped.
    leader: Option<Child>,
    stdout: Option<ChildStdout>,
    stderr: Option<ChildStderr>,
    /// The program's pid, which is the group's id; always positive.
    pgid: Pid,
    grace: Duration,
    /// For the lines the program writes while it stops, and the clean-up registry.
    ctx: Context,
    span: tracing::Span,
}

impl Group {
    /// Sends `SIGTERM` to the group now; threads keep reading its output, send `SIGKILL` after
    /// the grace period, and reap.
    fn terminate(&mut self) {
        let (pgid, grace) = (self.pgid, self.grace);
        let first = if grace.is_zero() {
            Signal::SIGKILL
        } else {
            Signal::SIGTERM
        };
        let _ = killpg(pgid, first);
        let pipes = [
            (
                self.stdout.take().map(ChildStdout::into_owned_fd),
                Stream::Stdout,
            ),
            (
                self.stderr.take().map(ChildStderr::into_owned_fd),
                Stream::Stderr,
            ),
        ];
        for (pipe, stream) in pipes {
            if let Some(pipe) = pipe {
                drain_pipe(pipe, stream, self.ctx.clone(), self.span.clone());
            }
        }
        let leader = self.leader.take();
        // Counted until the group is killed and reaped: an exec waits for it.
        let guard = self.ctx.cleanups().begin();
        let spawned = std::thread::Builder::new()
            .name("initkit-kill".to_owned())
            .spawn(move || reap_group(leader, pgid, grace, guard));
        if spawned.is_err() {
            // No thread: do not leave anything running (the guard went with the closure).
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if self.leader.is_some() {
            self.terminate();
        } else if group_exists(self.pgid) {
            tracing::debug!(
                pgid = self.pgid.as_raw(),
                "program left processes behind; stopping them"
            );
            self.terminate();
        }
    }
}

/// Waits for the program to exit, and reaps it.
async fn wait(leader: &mut Option<Child>) -> io::Result<ExitStatus> {
    let Some(child) = leader.as_mut() else {
        return Err(io::Error::other("already reaped"));
    };
    let status = child.wait().await;
    *leader = None;
    status
}

/// Waits until the group is gone or `grace` has passed, then `SIGKILL`s it and reaps; drops
/// `_done` when finished.
fn reap_group(mut leader: Option<Child>, pgid: Pid, grace: Duration, _done: CleanupGuard) {
    // Validation bounds `grace`; a sum past the clock's range would mean "never": kill now.
    let deadline = Instant::now().checked_add(grace);
    let deadline = deadline.unwrap_or_else(Instant::now);
    let mut killed = grace.is_zero();
    loop {
        reap_members(pgid);
        if let Some(child) = &mut leader
            && !matches!(child.try_wait(), Ok(None))
        {
            // Exited and reaped, or reaped by `reap_members` (then `try_wait` fails).
            leader = None;
        }
        if leader.is_none() && !group_exists(pgid) {
            return;
        }
        let now = Instant::now();
        if !killed && now >= deadline {
            let _ = killpg(pgid, Signal::SIGKILL);
            killed = true;
        }
        if killed && now.saturating_duration_since(deadline) >= REAP_LIMIT {
            // Unreapable (not our children, or stuck in the kernel): the runtime's orphan
            // queue takes the program.
            return;
        }
        std::thread::sleep(POLL);
    }
}

/// Reaps every exited member of the group that is our child: the orphans handed to us when
/// we are PID 1 or a subreaper. Only this group's processes are touched.
fn reap_members(pgid: Pid) {
    let group = Pid::from_raw(-pgid.as_raw());
    while let Ok(status) = waitpid(group, Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
}

/// Whether any process (a zombie included) is still in the group.
fn group_exists(pgid: Pid) -> bool {
    !matches!(killpg(pgid, None), Err(Errno::ESRCH))
}
