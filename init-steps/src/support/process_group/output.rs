//! A program's output: each stream read to its end, masked (a secret split across reads or
//! across the line cut is masked whole), cut into lines of at most [`MAX_LINE`] bytes, and
//! handed to a callback or logged; the last lines kept for an error message ([`Tail`]).

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::Poll;

use init_core::{Context, StreamMasker};
use tokio::io::{AsyncRead, ReadBuf};

/// A line longer than this is handed over in pieces of this size.
pub(crate) const MAX_LINE: usize = 8 * 1024;

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
pub(super) async fn pump<R>(
    reader: Option<R>,
    stream: Stream,
    ctx: &Context,
    on_line: &Mutex<&mut OnLine<'_>>,
) where
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
pub(super) fn drain_pipe(
    pipe: io::Result<OwnedFd>,
    stream: Stream,
    ctx: Context,
    span: tracing::Span,
) {
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
