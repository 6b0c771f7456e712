//! Runs a program in its own process group, reads its output (masked, then cut into lines) and
//! stops the whole group when the run is dropped: the machinery behind `Command` and `Render`'s
//! check command.
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

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::pin::{Pin, pin};
use std::process::{ExitStatus, Stdio};
use std::sync::Mutex;
use std::task::Poll;
use std::time::{Duration, Instant};

use init_core::{CleanupGuard, Context, StreamMasker};
use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::process::{Child, ChildStderr, ChildStdout};

/// A line longer than this is handed over in pieces of this size.
pub(crate) const MAX_LINE: usize = 8 * 1024;
/// After the program exits, how long its output may still take to reach end of file (a process
/// it left in the background may hold the pipes open).
const DRAIN: Duration = Duration::from_millis(500);
/// How often the kill thread looks at the group.
const POLL: Duration = Duration::from_millis(10);
/// How long the kill thread waits for the group to be reaped after `SIGKILL`.
const REAP_LIMIT: Duration = Duration::from_secs(2);

/// Which of the program's output streams a line comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// What receives each line of a program's output.
pub(crate) type OnLine<'a> = dyn FnMut(Stream, &str) + Send + 'a;

/// Why a run gave no exit status.
#[derive(Debug)]
pub(crate) enum RunError {
    /// The program could not be started.
    Spawn(io::Error),
    /// It started, but waiting for it failed.
    Wait(io::Error),
}

/// Runs `cmd` in a new process group with an empty stdin, handing each line of its output
/// (secrets masked, at most [`MAX_LINE`] bytes) to `on_line`, and returns its exit status.
/// Dropping the future stops the group (see the [module docs](self)); `grace` is the time
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

/// The last `capacity` non-empty lines of a stream (each at most [`MAX_LINE`] bytes): what is
/// kept of a program's output for its error message and the log at failure.
#[derive(Debug)]
pub(crate) struct Tail {
    lines: VecDeque<String>,
    capacity: usize,
}

impl Tail {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            lines: VecDeque::with_capacity(capacity),
            capacity,
        }
    }

    /// Keeps `line` unless it is blank; forgets the oldest line when full.
    pub(crate) fn push(&mut self, line: &str) {
        if line.trim().is_empty() || self.capacity == 0 {
            return;
        }
        if self.lines.len() == self.capacity {
            self.lines.pop_front();
        }
        self.lines.push_back(line.to_owned());
    }

    pub(crate) fn lines(&self) -> impl DoubleEndedIterator<Item = &str> + ExactSizeIterator {
        self.lines.iter().map(String::as_str)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}

/// Logs one line of a program's output (already masked) in the current span, at `info` with
/// its stream; blank lines are not logged.
pub(crate) fn log_line(stream: Stream, line: &str) {
    if !line.trim().is_empty() {
        tracing::info!(stream = stream.as_str(), "{line}");
    }
}

/// Reads `reader` to its end, handing each line (masked) to `on_line`.
async fn pump<R>(reader: Option<R>, stream: Stream, ctx: &Context, on_line: &Mutex<&mut OnLine<'_>>)
where
    R: AsyncRead + Unpin,
{
    let Some(mut reader) = reader else { return };
    let mut output = Output::new(ctx);
    let mut buf = vec![0; 4096];
    let mut emit = |line: &[u8]| {
        let mut on_line = on_line.lock().unwrap_or_else(|e| e.into_inner());
        (*on_line)(stream, &String::from_utf8_lossy(line));
    };
    loop {
        match read(&mut reader, &mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => output.push(&buf[..n], &mut emit),
        }
    }
    output.finish(&mut emit);
}

/// A program's output stream: masked first (a secret split across reads or across the line
/// cut is masked whole), then split into lines.
struct Output {
    masker: StreamMasker,
    lines: Lines,
}

impl Output {
    fn new(ctx: &Context) -> Self {
        Self {
            masker: ctx.redactor().stream(),
            lines: Lines::default(),
        }
    }

    fn push(&mut self, bytes: &[u8], emit: &mut impl FnMut(&[u8])) {
        let masked = self.masker.push_bytes(bytes);
        self.lines.push(masked.as_bytes(), emit);
    }

    fn finish(&mut self, emit: &mut impl FnMut(&[u8])) {
        let masked = self.masker.finish();
        self.lines.push(masked.as_bytes(), emit);
        self.lines.finish(emit);
    }
}

/// Logs what the program still writes to `pipe` while it stops (blocking reads, until every
/// writer is gone), so a program that shuts down cleanly is not killed by `SIGPIPE`.
fn drain_pipe(pipe: io::Result<OwnedFd>, stream: Stream, ctx: Context, span: tracing::Span) {
    let Ok(pipe) = pipe else { return };
    // If no thread can be started, the pipe is closed here.
    let _ = std::thread::Builder::new()
        .name("initkit-drain".to_owned())
        .spawn(move || {
            let _entered = span.enter();
            let mut file = std::fs::File::from(pipe);
            let mut output = Output::new(&ctx);
            let mut buf = vec![0; 4096];
            let mut emit = |line: &[u8]| log_line(stream, &String::from_utf8_lossy(line));
            loop {
                match file.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => output.push(&buf[..n], &mut emit),
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            output.finish(&mut emit);
        });
}

/// One read, without tokio's `io-util`.
async fn read<R: AsyncRead + Unpin>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    poll_fn(|cx| {
        let mut read_buf = ReadBuf::new(buf);
        match Pin::new(&mut *reader).poll_read(cx, &mut read_buf) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(read_buf.filled().len())),
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// Splits a byte stream into lines (without `\n` or `\r\n`), cutting lines longer than
/// [`MAX_LINE`] into pieces.
#[derive(Debug, Default)]
struct Lines {
    partial: Vec<u8>,
}

impl Lines {
    fn push(&mut self, mut bytes: &[u8], emit: &mut impl FnMut(&[u8])) {
        while !bytes.is_empty() {
            let room = MAX_LINE - self.partial.len();
            match bytes.iter().position(|&b| b == b'\n') {
                Some(i) if i <= room => {
                    self.partial.extend_from_slice(&bytes[..i]);
                    self.flush(emit);
                    bytes = &bytes[i + 1..];
                }
                _ => {
                    let take = bytes.len().min(room);
                    self.partial.extend_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                    if self.partial.len() == MAX_LINE {
                        self.flush(emit);
                    }
                }
            }
        }
    }

    fn finish(&mut self, emit: &mut impl FnMut(&[u8])) {
        if !self.partial.is_empty() {
            self.flush(emit);
        }
    }

    fn flush(&mut self, emit: &mut impl FnMut(&[u8])) {
        let line = self.partial.strip_suffix(b"\r").unwrap_or(&self.partial);
        emit(line);
        self.partial.clear();
    }
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
        if let Some(pipe) = self.stdout.take() {
            drain_pipe(
                pipe.into_owned_fd(),
                Stream::Stdout,
                self.ctx.clone(),
                self.span.clone(),
            );
        }
        if let Some(pipe) = self.stderr.take() {
            drain_pipe(
                pipe.into_owned_fd(),
                Stream::Stderr,
                self.ctx.clone(),
                self.span.clone(),
            );
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

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut lines = Lines::default();
        let mut out = Vec::new();
        let mut emit = |l: &[u8]| out.push(l.to_vec());
        for chunk in chunks {
            lines.push(chunk, &mut emit);
        }
        lines.finish(&mut emit);
        out
    }

    #[test]
    fn lines_are_split_across_chunks_and_crlf_is_trimmed() {
        let out = split(&[b"one\r\ntw", b"o\nthr", b"ee"]);
        assert_eq!(out, [b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]);
    }

    #[test]
    fn long_lines_are_cut_into_pieces() {
        let long = vec![b'x'; MAX_LINE * 2 + 10];
        let mut input = long.clone();
        input.extend_from_slice(b"\nend\n");
        let out = split(&[&input]);
        assert_eq!(out.len(), 4);
        assert_eq!(out[0].len(), MAX_LINE);
        assert_eq!(out[1].len(), MAX_LINE);
        assert_eq!(out[2].len(), 10);
        assert_eq!(out[3], b"end");
    }

    #[test]
    fn a_line_of_exactly_the_maximum_is_one_line() {
        let mut input = vec![b'y'; MAX_LINE];
        input.push(b'\n');
        let out = split(&[&input]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].len(), MAX_LINE);
    }

    #[test]
    fn the_tail_keeps_the_last_non_blank_lines() {
        let mut tail = Tail::new(2);
        for line in ["a", "  ", "b", "c", ""] {
            tail.push(line);
        }
        assert_eq!(tail.lines().collect::<Vec<_>>(), ["b", "c"]);
    }
}
