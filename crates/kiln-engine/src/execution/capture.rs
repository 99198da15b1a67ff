//! Capturing one environment's stdout and stderr, line by line, into its log stream.
//!
//! A reader task follows both pipes and writes each complete line as it arrives. Platform lines
//! (`INIT_START`, `START`, `END`, `REPORT`) are written by the invoke path itself, under the same
//! lock as every pipe read: when an invocation ends, [`Capture::finish`] first drains what the
//! runtime wrote before posting its response (the bytes are already in the pipe), then writes
//! `END` and `REPORT`, so output is never reported after its `END` and the invocation's tail (for
//! `X-Amz-Log-Type: Tail`) is complete. No task hand-off is on the invoke path.

use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, Weak};

use tokio::net::unix::pipe;
use tokio::sync::watch;

use super::logs::{LogEvent, LogStore};

/// The most of an invocation's log that `X-Amz-Log-Result` carries.
pub(crate) const TAIL_BYTES: usize = 4096;
/// Longer lines are split into several events, as CloudWatch Logs limits events.
const MAX_LINE_BYTES: usize = 256 * 1024;

/// Builds the `REPORT` line once the invocation's output has been drained.
pub(crate) type ReportLine = Box<dyn FnOnce() -> String + Send>;

/// The handle to an environment's capture; clones share it.
#[derive(Debug, Clone)]
pub(crate) struct Capture {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: Mutex<State>,
    /// Dropped with the last handle: the reader task then stops.
    _stop: watch::Sender<()>,
}

#[derive(Debug)]
struct State {
    store: LogStore,
    group: Arc<str>,
    stream: Arc<str>,
    /// The current invocation's log, while one runs.
    tail: Option<String>,
    stdout: Stream,
    stderr: Stream,
}

impl Capture {
    /// Starts capturing the read ends (non-blocking) of an environment's stdout and stderr.
    pub(crate) fn start(
        output: (OwnedFd, OwnedFd),
        store: LogStore,
        group: Arc<str>,
        stream: Arc<str>,
    ) -> std::io::Result<Self> {
        let (stdout, stdout_pipe) = Stream::open(output.0)?;
        let (stderr, stderr_pipe) = Stream::open(output.1)?;
        let (capture, stop) = Self::new(stdout, stderr, store, group, stream);
        tokio::spawn(read_pipes(
            Arc::downgrade(&capture.inner),
            stop,
            stdout_pipe,
            stderr_pipe,
        ));
        Ok(capture)
    }

    /// A capture of platform lines only, for an environment that never started.
    pub(crate) fn without_output(store: LogStore, group: Arc<str>, stream: Arc<str>) -> Self {
        Self::new(Stream::closed(), Stream::closed(), store, group, stream).0
    }

    fn new(
        stdout: Stream,
        stderr: Stream,
        store: LogStore,
        group: Arc<str>,
        stream: Arc<str>,
    ) -> (Self, watch::Receiver<()>) {
        let (stop, stopped) = watch::channel(());
        let inner = Inner {
            state: Mutex::new(State {
                store,
                group,
                stream,
                tail: None,
                stdout,
                stderr,
            }),
            _stop: stop,
        };
        (
            Self {
                inner: Arc::new(inner),
            },
            stopped,
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Writes a platform line (`INIT_START ...`, `START ...`).
    pub(crate) fn platform(&self, line: String) {
        self.lock().emit(line);
    }

    /// Starts collecting an invocation's lines for its tail, with its first platform line
    /// (`START ...` or `INIT_START ...`).
    pub(crate) fn begin(&self, first_line: String) {
        let mut state = self.lock();
        state.tail = Some(String::new());
        state.emit(first_line);
    }

    /// Ends an invocation: drains pending output, writes `lines` (platform errors, `END`),
    /// then the `REPORT` line that `report` builds, and returns the invocation's last 4 KB of
    /// log when `want_tail`.
    pub(crate) fn finish(
        &self,
        lines: Vec<String>,
        report: ReportLine,
        want_tail: bool,
    ) -> Option<String> {
        let mut state = self.lock();
        let drained: Vec<String> = state
            .stdout
            .drain()
            .into_iter()
            .chain(state.stderr.drain())
            .collect();
        drained.into_iter().for_each(|line| state.emit(line));
        lines.into_iter().for_each(|line| state.emit(line));
        state.emit(report());
        let collected = state.tail.take().unwrap_or_default();
        want_tail.then(|| last_bytes(&collected, TAIL_BYTES).to_owned())
    }
}

impl State {
    fn emit(&mut self, message: String) {
        if let Some(tail) = &mut self.tail {
            tail.push_str(&message);
            tail.push('\n');
            // Only the end is ever reported; keep the buffer bounded.
            if tail.len() > 4 * TAIL_BYTES {
                let keep = last_bytes(tail, TAIL_BYTES).to_owned();
                *tail = keep;
            }
        }
        self.store.write(LogEvent {
            timestamp_millis: kiln_core::now_millis(),
            group: Arc::clone(&self.group),
            stream: Arc::clone(&self.stream),
            message,
        });
    }

    fn stream(&mut self, which: Which) -> &mut Stream {
        match which {
            Which::Stdout => &mut self.stdout,
            Which::Stderr => &mut self.stderr,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Which {
    Stdout,
    Stderr,
}

/// Follows both pipes until both are closed or the capture is dropped. Every read happens
/// under the state lock (so that [`Capture::finish`]'s drain and this task never split one
/// line's order); the lock is never held across an await.
async fn read_pipes(
    capture: Weak<Inner>,
    mut stop: watch::Receiver<()>,
    stdout: Option<pipe::Receiver>,
    stderr: Option<pipe::Receiver>,
) {
    let (mut stdout, mut stderr) = (stdout, stderr);
    loop {
        let which = tokio::select! {
            ready = readable(stdout.as_ref()) => (Which::Stdout, ready),
            ready = readable(stderr.as_ref()) => (Which::Stderr, ready),
            _ = stop.changed() => return,
        };
        let Some(inner) = capture.upgrade() else {
            return;
        };
        let mut state = inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (which, ready) = which;
        let pipe = match which {
            Which::Stdout => &mut stdout,
            Which::Stderr => &mut stderr,
        };
        let open = ready.is_ok()
            && pipe
                .as_ref()
                .is_some_and(|pipe| state.read_available(which, pipe));
        if !open {
            *pipe = None;
            let stream = state.stream(which);
            stream.close();
            if let Some(line) = stream.flush() {
                state.emit(line);
            }
        }
        drop(state);
        if stdout.is_none() && stderr.is_none() {
            return;
        }
    }
}

impl State {
    /// Reads what `pipe` has now; `false` once it is closed.
    fn read_available(&mut self, which: Which, pipe: &pipe::Receiver) -> bool {
        let mut buffer = [0u8; 16 * 1024];
        loop {
            match pipe.try_read(&mut buffer) {
                Ok(0) => return false,
                Ok(read) => {
                    let lines = self.stream(which).push(&buffer[..read]);
                    lines.into_iter().for_each(|line| self.emit(line));
                }
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => return true,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
    }
}

async fn readable(pipe: Option<&pipe::Receiver>) -> std::io::Result<()> {
    match pipe {
        Some(pipe) => pipe.readable().await,
        None => std::future::pending().await,
    }
}

/// One output pipe's line assembly, plus a duplicate of its descriptor for draining: tokio's
/// `try_read` only reads once the reactor has reported the pipe readable, which may not have
/// happened yet when an invocation ends, so it could miss output the runtime wrote just before
/// posting its response.
#[derive(Debug)]
struct Stream {
    raw: Option<std::fs::File>,
    partial: Vec<u8>,
}

impl Stream {
    /// A stream over the non-blocking read end of a pipe, and the pipe for the reader task.
    fn open(fd: OwnedFd) -> std::io::Result<(Self, Option<pipe::Receiver>)> {
        let raw = std::fs::File::from(fd.try_clone()?);
        Ok((
            Self {
                raw: Some(raw),
                partial: Vec::new(),
            },
            Some(pipe::Receiver::from_owned_fd(fd)?),
        ))
    }

    fn closed() -> Self {
        Self {
            raw: None,
            partial: Vec::new(),
        }
    }

    fn close(&mut self) {
        self.raw = None;
    }

    /// Appends `data`, returning the complete lines it finished.
    fn push(&mut self, data: &[u8]) -> Vec<String> {
        self.partial.extend_from_slice(data);
        let mut lines = Vec::new();
        while let Some(end) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            lines.push(String::from_utf8_lossy(&line[..line.len() - 1]).into_owned());
        }
        while self.partial.len() > MAX_LINE_BYTES {
            let line: Vec<u8> = self.partial.drain(..MAX_LINE_BYTES).collect();
            lines.push(String::from_utf8_lossy(&line).into_owned());
        }
        lines
    }

    /// What is left without a newline.
    fn flush(&mut self) -> Option<String> {
        if self.partial.is_empty() {
            return None;
        }
        let line = String::from_utf8_lossy(&self.partial).into_owned();
        self.partial.clear();
        Some(line)
    }

    /// Reads everything already in the pipe without waiting.
    fn drain(&mut self) -> Vec<String> {
        use std::io::Read;
        let mut lines = Vec::new();
        let mut buffer = [0u8; 16 * 1024];
        while let Some(raw) = &mut self.raw {
            match raw.read(&mut buffer) {
                Ok(0) => self.close(),
                Ok(read) => lines.extend(self.push(&buffer[..read])),
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => self.close(),
            }
        }
        lines.extend(self.flush());
        lines
    }
}

/// The last `limit` bytes of `text`, starting at a character boundary.
pub(crate) fn last_bytes(text: &str, limit: usize) -> &str {
    if text.len() <= limit {
        return text;
    }
    let mut start = text.len() - limit;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn last_bytes_respects_character_boundaries() {
        assert_eq!(last_bytes("hello", 10), "hello");
        assert_eq!(last_bytes("hello", 3), "llo");
        assert_eq!(last_bytes("héllo", 4), "llo");
    }

    #[test]
    fn lines_are_split_and_partial_lines_kept() {
        let mut stream = Stream::closed();
        assert_eq!(stream.push(b"a\nb"), vec!["a"]);
        assert_eq!(stream.push(b"c\n\nd"), vec!["bc", ""]);
        assert_eq!(stream.flush(), Some("d".to_owned()));
        assert_eq!(stream.flush(), None);
    }

    #[tokio::test]
    async fn output_written_before_finish_precedes_end_and_fills_the_tail() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(dir.path().to_owned()).unwrap();
        let mut live = store.subscribe();
        let (out_read, out_write) = std::io::pipe().unwrap();
        let (err_read, err_write) = std::io::pipe().unwrap();
        let (out_read, err_read) = (OwnedFd::from(out_read), OwnedFd::from(err_read));
        // As for real environments: tokio needs non-blocking read ends.
        kiln_sandbox::set_nonblocking(&out_read).unwrap();
        kiln_sandbox::set_nonblocking(&err_read).unwrap();
        let capture = Capture::start(
            (out_read, err_read),
            store,
            Arc::from("/aws/lambda/f"),
            Arc::from("stream"),
        )
        .unwrap();
        capture.begin("START".into());
        let mut out = std::fs::File::from(OwnedFd::from(out_write));
        let mut err = std::fs::File::from(OwnedFd::from(err_write));
        out.write_all(b"hello\nno newline").unwrap();
        err.write_all(b"oops\n").unwrap();
        let tail = capture
            .finish(vec!["END".into()], Box::new(|| "REPORT".to_owned()), true)
            .unwrap();
        let mut order = Vec::new();
        for _ in 0..6 {
            order.push(live.recv().await.unwrap().message);
        }
        assert_eq!(order[0], "START");
        assert_eq!(&order[4..], ["END", "REPORT"]);
        let mut middle = order[1..4].to_vec();
        middle.sort();
        assert_eq!(middle, ["hello", "no newline", "oops"]);
        assert!(
            tail.starts_with("START\n") && tail.ends_with("END\nREPORT\n"),
            "{tail}"
        );
        assert!(tail.contains("no newline\n") && tail.contains("oops\n"));
    }
}
