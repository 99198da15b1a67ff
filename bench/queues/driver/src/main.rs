//! The queue bench's native half, driven by `bench/queues/bench.py`; every mode prints one JSON
//! line of results.
//!
//! - `send`: durable sends over the SQS JSON protocol, `--batch 10` (SendMessageBatch) or
//!   `--batch 1` (SendMessage), from `--concurrency` keep-alive connections for `--seconds`;
//! - `drain`: ReceiveMessage (10) + DeleteMessageBatch from `--concurrency` connections until
//!   `--messages` were received and deleted;
//! - `floor-http`: a trivial hyper server that answers every request with a fixed
//!   SendMessageBatch-shaped body (the same HTTP stack as Kiln, nothing behind it);
//! - `floor-sqlite`: SQLite's own durable commit rate with Kiln's settings (WAL,
//!   `synchronous=FULL`): one transaction per 10-row batch, one writer, no HTTP.
//!
//! The client runs on one thread (like `wrk -t1`) so that the server keeps the other core.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::{Parser, Subcommand};
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Send {
        #[arg(long)]
        url: String,
        #[arg(long)]
        queue_url: String,
        #[arg(long, default_value_t = 10)]
        batch: usize,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        #[arg(long, default_value_t = 100)]
        body_bytes: usize,
    },
    Drain {
        #[arg(long)]
        url: String,
        #[arg(long)]
        queue_url: String,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        #[arg(long)]
        messages: u64,
    },
    FloorHttp {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
    },
    FloorSqlite {
        #[arg(long)]
        dir: std::path::PathBuf,
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
    },
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Send {
            url,
            queue_url,
            batch,
            concurrency,
            seconds,
            body_bytes,
        } => runtime.block_on(send(
            url,
            queue_url,
            batch,
            concurrency,
            seconds,
            body_bytes,
        )),
        Command::Drain {
            url,
            queue_url,
            concurrency,
            messages,
        } => runtime.block_on(drain(url, queue_url, concurrency, messages)),
        Command::FloorHttp { listen } => runtime.block_on(floor_http(listen)),
        Command::FloorSqlite { dir, seconds } => floor_sqlite(&dir, seconds),
    }
}

async fn connect(url: &str) -> anyhow::Result<Sender> {
    let authority = url.trim_start_matches("http://").trim_end_matches('/');
    let stream = TcpStream::connect(authority)
        .await
        .with_context(|| format!("connecting {authority}"))?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

async fn call(
    sender: &mut Sender,
    operation: &str,
    body: Bytes,
) -> anyhow::Result<serde_json::Value> {
    sender.ready().await?;
    let request = Request::post("/")
        .header("host", "127.0.0.1")
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", format!("AmazonSQS.{operation}"))
        .body(Full::new(body))?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let bytes = response.into_body().collect().await?.to_bytes();
    if status != StatusCode::OK {
        bail!(
            "{operation} answered {status}: {}",
            String::from_utf8_lossy(&bytes)
        );
    }
    Ok(serde_json::from_slice(&bytes)?)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1e6
}

async fn send(
    url: String,
    queue_url: String,
    batch: usize,
    concurrency: usize,
    seconds: f64,
    body_bytes: usize,
) -> anyhow::Result<()> {
    let payload = "x".repeat(body_bytes);
    let body = if batch == 1 {
        serde_json::json!({"QueueUrl": queue_url, "MessageBody": payload})
    } else {
        let entries: Vec<_> = (0..batch)
            .map(|i| serde_json::json!({"Id": format!("m{i}"), "MessageBody": payload}))
            .collect();
        serde_json::json!({"QueueUrl": queue_url, "Entries": entries})
    };
    let operation = if batch == 1 {
        "SendMessage"
    } else {
        "SendMessageBatch"
    };
    let body = Bytes::from(body.to_string());
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let mut sender = connect(&url).await?;
        let body = body.clone();
        let stop = Arc::clone(&stop);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let answer = call(&mut sender, operation, body.clone()).await?;
                if batch > 1 && answer["Successful"].as_array().map_or(0, Vec::len) != batch {
                    bail!("not every entry was sent: {answer}");
                }
                latencies.push(started.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let requests = latencies.len();
    println!(
        "{}",
        serde_json::json!({
            "mode": "send", "batch": batch, "concurrency": concurrency,
            "requests": requests, "messages": requests * batch, "seconds": elapsed,
            "messages_per_s": (requests * batch) as f64 / elapsed,
            "requests_per_s": requests as f64 / elapsed,
            "p50_us": percentile(&latencies, 0.5), "p99_us": percentile(&latencies, 0.99),
        })
    );
    Ok(())
}

async fn drain(
    url: String,
    queue_url: String,
    concurrency: usize,
    messages: u64,
) -> anyhow::Result<()> {
    let done = Arc::new(AtomicU64::new(0));
    let receive = Bytes::from(serde_json::json!({"QueueUrl": queue_url, "MaxNumberOfMessages": 10, "VisibilityTimeout": 300}).to_string());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let mut sender = connect(&url).await?;
        let done = Arc::clone(&done);
        let receive = receive.clone();
        let queue_url = queue_url.clone();
        tasks.push(tokio::spawn(async move {
            while done.load(Ordering::Relaxed) < messages {
                let answer = call(&mut sender, "ReceiveMessage", receive.clone()).await?;
                let Some(received) = answer["Messages"].as_array().filter(|m| !m.is_empty()) else {
                    break;
                };
                let entries: Vec<_> = received
                    .iter()
                    .enumerate()
                    .map(|(i, m)| serde_json::json!({"Id": format!("d{i}"), "ReceiptHandle": m["ReceiptHandle"]}))
                    .collect();
                let deleted = call(&mut sender, "DeleteMessageBatch", Bytes::from(serde_json::json!({"QueueUrl": queue_url, "Entries": entries}).to_string())).await?;
                let count = deleted["Successful"].as_array().map_or(0, Vec::len);
                done.fetch_add(count as u64, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let total = done.load(Ordering::Relaxed);
    println!(
        "{}",
        serde_json::json!({"mode": "drain", "concurrency": concurrency, "messages": total, "seconds": elapsed, "messages_per_s": total as f64 / elapsed})
    );
    Ok(())
}

async fn floor_http(listen: SocketAddr) -> anyhow::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    println!("floor listening on http://{}", listener.local_addr()?);
    let entries: Vec<_> = (0..10)
        .map(|i| serde_json::json!({"Id": format!("m{i}"), "MessageId": "00000000-0000-0000-0000-000000000000", "MD5OfMessageBody": "00000000000000000000000000000000"}))
        .collect();
    let answer = Bytes::from(serde_json::json!({"Successful": entries, "Failed": []}).to_string());
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let answer = answer.clone();
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
                    let answer = answer.clone();
                    async move {
                        // Read the whole request, as a real endpoint must.
                        let _ = request.into_body().collect().await;
                        Ok::<_, hyper::Error>(Response::new(Full::new(answer)))
                    }
                });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn floor_sqlite(dir: &std::path::Path, seconds: f64) -> anyhow::Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(dir.join(format!("floor.db{suffix}")));
    }
    let connection = rusqlite::Connection::open(dir.join("floor.db"))?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "FULL")?;
    connection.execute_batch(
        "CREATE TABLE IF NOT EXISTS messages (seq INTEGER PRIMARY KEY, body TEXT NOT NULL)",
    )?;
    let body = "x".repeat(100);
    let started = Instant::now();
    let mut commits = 0u64;
    let mut seq = 0i64;
    let mut latencies = Vec::new();
    while started.elapsed().as_secs_f64() < seconds {
        let began = Instant::now();
        let transaction = connection.unchecked_transaction()?;
        for _ in 0..10 {
            seq += 1;
            transaction.execute(
                "INSERT INTO messages (seq, body) VALUES (?1, ?2)",
                rusqlite::params![seq, body],
            )?;
        }
        transaction.commit()?;
        latencies.push(began.elapsed());
        commits += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    println!(
        "{}",
        serde_json::json!({
            "mode": "floor-sqlite", "commits": commits, "commits_per_s": commits as f64 / elapsed,
            "messages_per_s": (commits * 10) as f64 / elapsed,
            "commit_p50_us": percentile(&latencies, 0.5), "commit_p99_us": percentile(&latencies, 0.99),
        })
    );
    Ok(())
}
