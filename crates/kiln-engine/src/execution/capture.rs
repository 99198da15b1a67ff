//! Capturing one environment's stdout and stderr, line by line, into its log stream.
//!
//! One task owns both pipes and the environment's platform lines (`INIT_START`, `START`,
//! `END`, `REPORT`), so everything lands in the stream in order. When an invocation ends, the
//! task first drains what the runtime wrote before posting its response (the bytes are already
//! in the pipe), then writes `END` and `REPORT`: output is never reported after its `END`, and
//! the invocation's tail (for `X-Amz-Log-Type: Tail`) is complete.

use std::os::fd::OwnedFd;
use std::sync::Arc;

use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::sync::{mpsc, oneshot};

use super::logs::{LogEvent, LogStore};

/// The most of an invocation's log that `X-Amz-Log-Result` carries.
pub(crate) const TAIL_BYTES: usize = 4096;
/// Longer lines are split into several events, as CloudWatch Logs limits events.
const MAX_LINE_BYTES: usize = 256 * 1024;

/// Builds the `REPORT` line when the invocation's output has been drained.
pub(crate) type ReportLine = Box<dyn FnOnce() -> String + Send>;

enum Control {
    Platform(String),
    Begin(String),
    Finish {
        lines: Vec<String>,
        report: ReportLine,
        tail: Option<oneshot::Sender<String>>,
    },
}

/// The handle to an environment's capture task.
#[derive(Debug, Clone)]
pub(crate) struct Capture {
    control: mpsc::UnboundedSender<Control>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Control")
    }
}

impl Capture {
    /// Starts capturing the read ends of an environment's stdout and stderr pipes.
    pub(crate) fn start(
        output: (OwnedFd, OwnedFd),
        store: LogStore,
        group: Arc<str>,
        stream: Arc<str>,
    ) -> std::io::Result<Self> {
        let stdout = Stream::open(output.0)?;
        let stderr = Stream::open(output.1)?;
        Ok(Self::spawn(stdout, stderr, store, group, stream))
    }

    /// A capture of platform lines only, for an environment that never started.
    pub(crate) fn without_output(store: LogStore, group: Arc<str>, stream: Arc<str>) -> Self {
        Self::spawn(Stream::closed(), Stream::closed(), store, group, stream)
    }

    fn spawn(
        stdout: Stream,
        stderr: Stream,
        store: LogStore,
        group: Arc<str>,
        stream: Arc<str>,
    ) -> Self {
        let (control, commands) = mpsc::unbounded_channel();
        let mut task = Task {
            store,
            group,
            stream,
            tail: None,
            stdout,
            stderr,
            commands,
        };
        tokio::spawn(async move { task.run().await });
        Self { control }
    }

    /// Writes a platform line (`INIT_START ...`, `START ...`).
    pub(crate) fn platform(&self, line: String) {
        let _ = self.control.send(Control::Platform(line));
    }

    /// Starts collecting an invocation's lines for its tail, with its first platform line
    /// (`START ...` or `INIT_START ...`).
    pub(crate) fn begin(&self, first_line: String) {
        let _ = self.control.send(Control::Begin(first_line));
    }

    /// Ends an invocation: drains pending output, writes `lines` (platform errors, `END`),
    /// then the `REPORT` line that `report` builds (reading accounting off the invoke path),
    /// and returns the invocation's last 4 KB of log when `want_tail` (only then does the
    /// caller wait).
    pub(crate) async fn finish(
        &self,
        lines: Vec<String>,
        report: ReportLine,
        want_tail: bool,
    ) -> Option<String> {
        let (sender, receiver) = if want_tail {
            let (sender, receiver) = oneshot::channel();
            (Some(sender), Some(receiver))
        } else {
            (None, None)
        };
        let _ = self.control.send(Control::Finish {
            lines,
            report,
            tail: sender,
        });
        match receiver {
            Some(receiver) => receiver.await.ok(),
            None => None,
        }
    }
}

/// One output pipe: read asynchronously as data arrives, and synchronously when an
/// invocation ends (through a duplicate of the descriptor: tokio's `try_read` only reads once
/// the reactor has reported the pipe readable, which may not have happened yet, so it could
/// miss output the runtime wrote just before posting its response).
struct Stream {
    pipe: Option<pipe::Receiver>,
    raw: Option<std::fs::File>,
    partial: Vec<u8>,
}

impl Stream {
    /// A stream over the non-blocking read end of a pipe.
    fn open(fd: OwnedFd) -> std::io::Result<Self> {
        let raw = std::fs::File::from(fd.try_clone()?);
        Ok(Self {
            pipe: Some(pipe::Receiver::from_owned_fd(fd)?),
            raw: Some(raw),
            partial: Vec::new(),
        })
    }

    fn closed() -> Self {
        Self {
            pipe: None,
            raw: None,
            partial: Vec::new(),
        }
    }

    fn close(&mut self) {
        self.pipe = None;
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

struct Task {
    store: LogStore,
    group: Arc<str>,
    stream: Arc<str>,
    /// The current invocation's log, while one runs.
    tail: Option<String>,
    stdout: Stream,
    stderr: Stream,
    commands: mpsc::UnboundedReceiver<Control>,
}

impl Task {
    async fn run(&mut self) {
        let mut out_buffer = vec![0u8; 16 * 1024];
        let mut err_buffer = vec![0u8; 16 * 1024];
        loop {
            let stdout_open = self.stdout.pipe.is_some();
            let stderr_open = self.stderr.pipe.is_some();
            tokio::select! {
                read = read_some(self.stdout.pipe.as_mut(), &mut out_buffer), if stdout_open => {
                    match read {
                        Ok(0) | Err(_) => {
                            self.stdout.close();
                            if let Some(line) = self.stdout.flush() {
                                self.emit(line);
                            }
                        }
                        Ok(n) => {
                            let lines = self.stdout.push(&out_buffer[..n]);
                            lines.into_iter().for_each(|line| self.emit(line));
                        }
                    }
                }
                read = read_some(self.stderr.pipe.as_mut(), &mut err_buffer), if stderr_open => {
                    match read {
                        Ok(0) | Err(_) => {
                            self.stderr.close();
                            if let Some(line) = self.stderr.flush() {
                                self.emit(line);
                            }
                        }
                        Ok(n) => {
                            let lines = self.stderr.push(&err_buffer[..n]);
                            lines.into_iter().for_each(|line| self.emit(line));
                        }
                    }
                }
                command = self.commands.recv() => match command {
                    None => return,
                    Some(Control::Platform(line)) => self.emit(line),
                    Some(Control::Begin(line)) => {
                        self.tail = Some(String::new());
                        self.emit(line);
                    }
                    Some(Control::Finish { lines, report, tail }) => {
                        let drained: Vec<String> = self
                            .stdout
                            .drain()
                            .into_iter()
                            .chain(self.stderr.drain())
                            .collect();
                        drained.into_iter().for_each(|line| self.emit(line));
                        lines.into_iter().for_each(|line| self.emit(line));
                        self.emit(report());
                        let collected = self.tail.take().unwrap_or_default();
                        if let Some(tail) = tail {
                            let _ = tail.send(last_bytes(&collected, TAIL_BYTES).to_owned());
                        }
                    }
                },
            }
        }
    }

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
}

async fn read_some(pipe: Option<&mut pipe::Receiver>, buffer: &mut [u8]) -> std::io::Result<usize> {
    match pipe {
        Some(pipe) => pipe.read(buffer).await,
        None => std::future::pending().await,
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
            .await
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
