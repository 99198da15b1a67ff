//! The invoke bench's native half, driven by `bench/invoke/bench.py`:
//!
//! - `load`: an HTTP/1.1 keep-alive load generator (one connection per concurrent worker, one
//!   thread, like `wrk -t1`) that checks every answer and prints latency percentiles and
//!   throughput as one JSON line;
//! - `floor`: the loopback floor, a trivial hyper server that echoes the request body (the same
//!   HTTP stack as Kiln, nothing behind it);
//! - `cold-floor`: the cold-start floor, a minimal Runtime API that starts a function's
//!   bootstrap as a plain child process (no isolation, no platform) and times spawn to response;
//! - `idle-floor`: the memory floor, idle plain processes of a bootstrap parked in `/next`.
//!
//! A Python client could not measure this: its own per-request cost is larger than the
//! latencies being measured.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::{Parser, Subcommand};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Sends requests and prints one JSON line of results.
    Load(LoadArgs),
    /// Serves the loopback floor: every request is answered 200 with its own body.
    Floor {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
    },
    /// Times plain-process cold starts of a bootstrap against a minimal Runtime API.
    ColdFloor(ColdArgs),
    /// Starts `--n` plain processes of a bootstrap, each left waiting in `/next` (the memory
    /// floor of an idle function), prints `ready` once all wait, and stops them all when stdin
    /// closes.
    IdleFloor(ColdArgs),
}

#[derive(clap::Args)]
struct LoadArgs {
    /// Target URLs (`http://HOST:PORT/PATH`, one host:port for all); requests go round-robin.
    #[arg(long = "url")]
    urls: Vec<String>,
    /// More target URLs, one per line.
    #[arg(long)]
    urls_file: Option<PathBuf>,
    /// The POST body of every request.
    #[arg(long, default_value = "{}")]
    body: String,
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// Measured requests (default: one per URL).
    #[arg(long)]
    requests: Option<usize>,
    /// Unmeasured requests sent first over the same connections.
    #[arg(long, default_value_t = 0)]
    warmup: usize,
    /// Every answer's body must contain this.
    #[arg(long)]
    expect: Option<String>,
    /// Writes every measured latency (microseconds, one per line) here.
    #[arg(long)]
    raw_out: Option<PathBuf>,
}

#[derive(clap::Args)]
struct ColdArgs {
    #[arg(long)]
    program: PathBuf,
    #[arg(long = "arg")]
    args: Vec<String>,
    /// `NAME=VALUE`, repeatable; the child gets only these plus `AWS_LAMBDA_RUNTIME_API`.
    #[arg(long = "env")]
    env: Vec<String>,
    #[arg(long)]
    cwd: Option<PathBuf>,
    #[arg(long, default_value_t = 20)]
    n: usize,
    #[arg(long, default_value = "{}")]
    event: String,
    #[arg(long)]
    expect: Option<String>,
    #[arg(long)]
    raw_out: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Load(args) => current_thread()?.block_on(load(args)),
        Command::Floor { listen } => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(floor(listen)),
        Command::ColdFloor(args) => current_thread()?.block_on(cold_floor(args)),
        Command::IdleFloor(args) => current_thread()?.block_on(idle_floor(args)),
    }
}

fn current_thread() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

// ------------------------------------------------------------------------------------------
// load

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(authority: &str) -> anyhow::Result<Sender> {
    let stream = TcpStream::connect(authority)
        .await
        .with_context(|| format!("connecting to {authority}"))?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

fn split_url(url: &str) -> anyhow::Result<(String, String)> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("{url}: only http:// URLs"))?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    Ok((
        authority.to_owned(),
        format!("/{}", path.trim_start_matches('/')),
    ))
}

struct Plan {
    authority: String,
    paths: Vec<String>,
    body: Bytes,
    expect: Option<String>,
}

impl Plan {
    async fn send(&self, sender: &mut Sender, index: usize) -> anyhow::Result<Duration> {
        let path = &self.paths[index % self.paths.len()];
        let request = Request::post(path.as_str())
            .header(hyper::header::HOST, self.authority.as_str())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(self.body.clone()))?;
        sender.ready().await?;
        let started = Instant::now();
        let response = sender.send_request(request).await?;
        let status = response.status();
        let function_error = response.headers().get("x-amz-function-error").cloned();
        let body = response.into_body().collect().await?.to_bytes();
        let elapsed = started.elapsed();
        if status != StatusCode::OK || function_error.is_some() {
            bail!(
                "{path}: {status} {function_error:?}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        if let Some(expected) = &self.expect
            && !String::from_utf8_lossy(&body).contains(expected.as_str())
        {
            bail!(
                "{path}: the answer lacks {expected:?}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        Ok(elapsed)
    }
}

/// Runs `count` requests over `senders`, each worker taking the next index; returns the
/// latencies and the wall time of the whole phase.
async fn phase(
    plan: &Arc<Plan>,
    senders: Vec<Sender>,
    first_index: usize,
    count: usize,
) -> anyhow::Result<(Vec<Sender>, Vec<Duration>, Duration)> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for mut sender in senders {
        let plan = Arc::clone(plan);
        let next = Arc::clone(&next);
        workers.spawn(async move {
            let mut latencies = Vec::with_capacity(count);
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= count {
                    break;
                }
                latencies.push(plan.send(&mut sender, first_index + index).await?);
            }
            anyhow::Ok((sender, latencies))
        });
    }
    let mut senders = Vec::new();
    let mut latencies = Vec::with_capacity(count);
    while let Some(result) = workers.join_next().await {
        let (sender, mut worker_latencies) = result??;
        senders.push(sender);
        latencies.append(&mut worker_latencies);
    }
    Ok((senders, latencies, started.elapsed()))
}

async fn load(args: LoadArgs) -> anyhow::Result<()> {
    let mut urls = args.urls.clone();
    if let Some(file) = &args.urls_file {
        let text = std::fs::read_to_string(file)?;
        urls.extend(
            text.lines()
                .filter(|line| !line.trim().is_empty())
                .map(str::to_owned),
        );
    }
    if urls.is_empty() {
        bail!("no --url or --urls-file given");
    }
    let mut authority = None;
    let mut paths = Vec::new();
    for url in &urls {
        let (host, path) = split_url(url)?;
        if authority.get_or_insert_with(|| host.clone()) != &host {
            bail!("all URLs must share one host:port");
        }
        paths.push(path);
    }
    let requests = args.requests.unwrap_or(paths.len());
    let plan = Arc::new(Plan {
        authority: authority.expect("at least one URL"),
        paths,
        body: Bytes::from(args.body),
        expect: args.expect,
    });
    let mut senders = Vec::new();
    for _ in 0..args.concurrency.max(1) {
        senders.push(connect(&plan.authority).await?);
    }
    let (senders, _, _) = phase(&plan, senders, 0, args.warmup).await?;
    let (_, mut latencies, wall) = phase(&plan, senders, args.warmup, requests).await?;
    if let Some(path) = &args.raw_out {
        let text: String = latencies
            .iter()
            .map(|latency| format!("{:.1}\n", micros(*latency)))
            .collect();
        std::fs::write(path, text)?;
    }
    latencies.sort_unstable();
    let mut summary = summarize(&latencies);
    summary["concurrency"] = args.concurrency.into();
    summary["per_second"] = round1(requests as f64 / wall.as_secs_f64()).into();
    summary["wall_ms"] = round1(wall.as_secs_f64() * 1000.0).into();
    println!("{summary}");
    Ok(())
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

/// Percentiles (nearest rank) of sorted latencies, in microseconds.
fn summarize(sorted: &[Duration]) -> serde_json::Value {
    let rank = |p: f64| -> f64 {
        if sorted.is_empty() {
            return f64::NAN;
        }
        let index = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        round1(micros(sorted[index.clamp(1, sorted.len()) - 1]))
    };
    let mean = sorted.iter().map(|d| micros(*d)).sum::<f64>() / sorted.len().max(1) as f64;
    serde_json::json!({
        "requests": sorted.len(),
        "p50_us": rank(50.0),
        "p90_us": rank(90.0),
        "p99_us": rank(99.0),
        "min_us": rank(0.0),
        "max_us": rank(100.0),
        "mean_us": round1(mean),
    })
}

// ------------------------------------------------------------------------------------------
// floor

async fn floor(listen: SocketAddr) -> anyhow::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    // bench.py reads the port from this line.
    println!("listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio::spawn(async move {
            let service = hyper::service::service_fn(|request: Request<Incoming>| async move {
                let body = request.into_body().collect().await?.to_bytes();
                Ok::<_, hyper::Error>(
                    Response::builder()
                        .header(hyper::header::CONTENT_TYPE, "application/json")
                        .body(Full::new(body))
                        .expect("valid response"),
                )
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

// ------------------------------------------------------------------------------------------
// cold-floor

/// One sample's Runtime API: hands out one event, waits for its response.
struct MiniRuntimeApi {
    event: Mutex<Option<Bytes>>,
    done: Mutex<Option<oneshot::Sender<Result<Bytes, String>>>>,
}

const REQUEST_ID: &str = "00000000-0000-4000-8000-000000000001";

impl MiniRuntimeApi {
    fn finish(&self, outcome: Result<Bytes, String>) {
        let sender = self.done.lock().expect("not poisoned").take();
        if let Some(sender) = sender {
            let _ = sender.send(outcome);
        }
    }

    async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let path = request.uri().path().to_owned();
        let method = request.method().clone();
        let body = match request.into_body().collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => Bytes::new(),
        };
        let accepted = || {
            Response::builder()
                .status(StatusCode::ACCEPTED)
                .body(Full::new(Bytes::from_static(b"{\"status\":\"OK\"}")))
                .expect("valid response")
        };
        if method == Method::GET && path == "/2018-06-01/runtime/invocation/next" {
            let event = self.event.lock().expect("not poisoned").take();
            let Some(event) = event else {
                // One event per sample; the sample ends (and this server with it) once answered.
                std::future::pending::<()>().await;
                unreachable!("pending never completes");
            };
            let deadline = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .expect("after 1970")
                .as_millis()
                + 60_000;
            return Response::builder()
                .header("content-type", "application/json")
                .header("lambda-runtime-aws-request-id", REQUEST_ID)
                .header("lambda-runtime-deadline-ms", deadline.to_string())
                .header(
                    "lambda-runtime-invoked-function-arn",
                    "arn:aws:lambda:us-east-1:000000000000:function:bench",
                )
                .header(
                    "lambda-runtime-trace-id",
                    "Root=1-00000000-000000000000000000000000",
                )
                .body(Full::new(event))
                .expect("valid response");
        }
        if path.ends_with("/response") {
            self.finish(Ok(body));
            return accepted();
        }
        if path.ends_with("/error") {
            self.finish(Err(format!("{path}: {}", String::from_utf8_lossy(&body))));
            return accepted();
        }
        Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Full::new(Bytes::new()))
            .expect("valid response")
    }
}

fn parse_env(pairs: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    let mut env = Vec::new();
    for pair in pairs {
        let (name, value) = pair
            .split_once('=')
            .with_context(|| format!("--env {pair}: expected NAME=VALUE"))?;
        env.push((name.to_owned(), value.to_owned()));
    }
    Ok(env)
}

async fn cold_floor(args: ColdArgs) -> anyhow::Result<()> {
    let env = parse_env(&args.env)?;
    let mut latencies = Vec::new();
    for _ in 0..args.n {
        latencies.push(cold_sample(&args, &env).await?);
    }
    if let Some(path) = &args.raw_out {
        let text: String = latencies
            .iter()
            .map(|latency| format!("{:.1}\n", micros(*latency)))
            .collect();
        std::fs::write(path, text)?;
    }
    latencies.sort_unstable();
    println!("{}", summarize(&latencies));
    Ok(())
}

/// Counts `/next` requests and never answers them.
async fn park(
    waiting: Arc<std::sync::atomic::AtomicUsize>,
    notify: Arc<tokio::sync::Notify>,
) -> Response<Full<Bytes>> {
    waiting.fetch_add(1, Ordering::SeqCst);
    notify.notify_one();
    std::future::pending().await
}

async fn idle_floor(args: ColdArgs) -> anyhow::Result<()> {
    use tokio::io::AsyncReadExt;
    let env = parse_env(&args.env)?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let waiting = Arc::new(AtomicUsize::new(0));
    let notify = Arc::new(tokio::sync::Notify::new());
    {
        let (waiting, notify) = (Arc::clone(&waiting), Arc::clone(&notify));
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (waiting, notify) = (Arc::clone(&waiting), Arc::clone(&notify));
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |_request| {
                        let (waiting, notify) = (Arc::clone(&waiting), Arc::clone(&notify));
                        async move { Ok::<_, std::convert::Infallible>(park(waiting, notify).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    }
    let mut children = Vec::new();
    for _ in 0..args.n {
        let mut command = tokio::process::Command::new(&args.program);
        command
            .args(&args.args)
            .env_clear()
            .envs(env.iter().map(|(name, value)| (name, value)))
            .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        if let Some(cwd) = &args.cwd {
            command.current_dir(cwd);
        }
        children.push(command.spawn()?);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while waiting.load(Ordering::SeqCst) < args.n {
        if tokio::time::timeout_at(deadline, notify.notified())
            .await
            .is_err()
        {
            bail!(
                "only {} of {} processes reached /next",
                waiting.load(Ordering::SeqCst),
                args.n
            );
        }
    }
    println!("ready");
    // Until bench.py closes our stdin.
    let mut rest = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut rest).await;
    for child in &mut children {
        let _ = child.kill().await;
    }
    Ok(())
}

async fn cold_sample(args: &ColdArgs, env: &[(String, String)]) -> anyhow::Result<Duration> {
    // A fresh listener per sample, so nothing of the last child's connections lingers.
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let (done, outcome) = oneshot::channel();
    let api = Arc::new(MiniRuntimeApi {
        event: Mutex::new(Some(Bytes::from(args.event.clone()))),
        done: Mutex::new(Some(done)),
    });
    let server = {
        let api = Arc::clone(&api);
        tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let _ = stream.set_nodelay(true);
                let api = Arc::clone(&api);
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let api = Arc::clone(&api);
                        async move { Ok::<_, std::convert::Infallible>(api.handle(request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        })
    };
    let mut command = tokio::process::Command::new(&args.program);
    command
        .args(&args.args)
        .env_clear()
        .envs(env.iter().map(|(name, value)| (name, value)))
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    if let Some(cwd) = &args.cwd {
        command.current_dir(cwd);
    }
    let started = Instant::now();
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {}", args.program.display()))?;
    let result = tokio::time::timeout(Duration::from_secs(10), outcome).await;
    let elapsed = started.elapsed();
    let _ = child.kill().await;
    server.abort();
    let body = match result {
        Err(_) => bail!("no response within 10 s"),
        Ok(Err(_)) => bail!("the Runtime API stopped"),
        Ok(Ok(Err(error))) => bail!("the function failed: {error}"),
        Ok(Ok(Ok(body))) => body,
    };
    if let Some(expected) = &args.expect
        && !String::from_utf8_lossy(&body).contains(expected.as_str())
    {
        bail!(
            "the answer lacks {expected:?}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    Ok(elapsed)
}
