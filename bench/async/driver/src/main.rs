//! The async bench's load generator, driven by `bench/async/bench.py`: sends one request
//! (method, path, headers, body) over and over from `--concurrency` keep-alive connections for
//! `--seconds`, checks every answer's status, and prints one JSON line (requests/s, p50, p99).
//! A body containing `{seq}` gets a unique number per request.
//!
//! The client runs on one thread (like `wrk -t1`) so that the server keeps the other core.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

#[derive(Parser)]
struct Cli {
    /// `http://HOST:PORT`.
    #[arg(long)]
    url: String,
    #[arg(long, default_value = "POST")]
    method: String,
    #[arg(long, default_value = "/")]
    path: String,
    /// `Name: value`, repeatable.
    #[arg(long)]
    header: Vec<String>,
    #[arg(long, default_value = "")]
    body: String,
    #[arg(long, default_value_t = 200)]
    expect_status: u16,
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run(cli))
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

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1e6
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let cli = Arc::new(cli);
    let stop = Arc::new(AtomicBool::new(false));
    let sequence = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..cli.concurrency {
        let mut sender = connect(&cli.url).await?;
        let (cli, stop, sequence) = (Arc::clone(&cli), Arc::clone(&stop), Arc::clone(&sequence));
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let body = cli.body.replace(
                    "{seq}",
                    &sequence.fetch_add(1, Ordering::Relaxed).to_string(),
                );
                let mut request = Request::builder()
                    .method(cli.method.as_str())
                    .uri(cli.path.as_str())
                    .header("host", "127.0.0.1");
                for header in &cli.header {
                    let (name, value) = header.split_once(':').context("header without ':'")?;
                    request = request.header(name.trim(), value.trim());
                }
                let request = request.body(Full::new(Bytes::from(body)))?;
                let started = Instant::now();
                sender.ready().await?;
                let response = sender.send_request(request).await?;
                let status = response.status().as_u16();
                let bytes = response.into_body().collect().await?.to_bytes();
                if status != cli.expect_status {
                    bail!("answered {status}: {}", String::from_utf8_lossy(&bytes));
                }
                latencies.push(started.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(cli.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    println!(
        "{}",
        serde_json::json!({
            "concurrency": cli.concurrency, "requests": latencies.len(), "seconds": elapsed,
            "requests_per_s": latencies.len() as f64 / elapsed,
            "p50_us": percentile(&latencies, 0.5), "p99_us": percentile(&latencies, 0.99),
        })
    );
    Ok(())
}
