//! `kiln serve`: configuration, wiring and shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use kiln_api::sqs::SqsState;
use kiln_api::{ApiConfig, ApiState};
use kiln_core::AccountContext;
use kiln_engine::execution::{ExecutionConfig, InterpreterOverrides};
use kiln_engine::{AsyncConfig, Engine, EngineConfig, RetryPolicy};
use kiln_queues::QueueService;
use kiln_store::Store;
use tokio::net::TcpListener;

/// Settings of `kiln serve`; each flag can also be set by its `KILN_*` variable.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to serve every API on.
    #[arg(long, env = "KILN_LISTEN", default_value = "127.0.0.1:9700")]
    listen: SocketAddr,

    /// Address of the SQS-compatible queue endpoint (its own port, as queue URLs point at it);
    /// `off` disables it.
    #[arg(long, env = "KILN_SQS_LISTEN", default_value = "127.0.0.1:9701", value_parser = parse_optional_address)]
    sqs_listen: OptionalAddress,

    /// Directory holding Kiln's database and code packages.
    #[arg(long, env = "KILN_DATA_DIR", default_value = "./.kiln")]
    data_dir: PathBuf,

    /// The twelve-digit account id in every ARN Kiln issues.
    #[arg(long, env = "KILN_ACCOUNT_ID", default_value = "000000000000")]
    account_id: String,

    /// The region in every ARN Kiln issues.
    #[arg(long, env = "KILN_REGION", default_value = "us-east-1")]
    region: String,

    /// How long creates and updates stay Pending/InProgress, e.g. `2s` or `500ms`. The default,
    /// 0, finishes them at once; a delay reproduces Lambda's timing, so that deployment scripts
    /// which forget to wait for the function to become Active fail here as on AWS.
    #[arg(long, env = "KILN_DEPLOYMENT_DELAY", default_value = "0s", value_parser = parse_duration)]
    deployment_delay: Duration,

    /// The account's concurrency limit: at most this many invocations run at once, reserved
    /// concurrency included (Lambda's `ConcurrentExecutions`; 100 of it always stays
    /// unreserved).
    #[arg(long, env = "KILN_CONCURRENCY_LIMIT", default_value_t = kiln_engine::DEFAULT_CONCURRENCY_LIMIT, value_parser = clap::value_parser!(u32).range(1..))]
    concurrency_limit: u32,

    /// Idle execution environments are shut down after this long (e.g. `10m`, `30s`).
    #[arg(long, env = "KILN_KEEP_ALIVE", default_value = "10m", value_parser = parse_duration)]
    keep_alive: Duration,

    /// Idle execution environments are frozen after this long, as Lambda freezes them between
    /// invocations (`off` to never freeze).
    #[arg(long, env = "KILN_FREEZE_AFTER", default_value = "1s", value_parser = parse_optional_duration)]
    freeze_after: OptionalDuration,

    /// `auto` isolates functions as strongly as this machine allows; `plain` runs them as
    /// ordinary child processes (development only: no isolation, no memory or CPU limits).
    #[arg(long, env = "KILN_ISOLATION", default_value = "auto", value_parser = ["auto", "plain"])]
    isolation: String,

    /// The Python interpreter for python3.x functions (default: the newest found).
    #[arg(long, env = "KILN_PYTHON")]
    python: Option<PathBuf>,

    /// The `node` binary for nodejs functions (default: the one found).
    #[arg(long, env = "KILN_NODE")]
    node: Option<PathBuf>,

    /// How long a shutdown (SIGINT, SIGTERM) waits for requests in flight before closing
    /// their connections.
    #[arg(long, env = "KILN_SHUTDOWN_GRACE", default_value = "5s", value_parser = parse_duration)]
    shutdown_grace: Duration,

    /// Multiplies every asynchronous retry and backoff delay and the maximum event age
    /// (0.01 turns Lambda's one-minute retry into 0.6 s), for tests of retry behaviour.
    #[arg(long, env = "KILN_RETRY_DELAY_SCALE", default_value = "1.0", value_parser = parse_scale)]
    retry_delay_scale: f64,

    /// Most asynchronous invocation attempts of one function running at once (its reserved
    /// concurrency, if higher).
    #[arg(long, env = "KILN_ASYNC_CONCURRENCY", default_value = "16", value_parser = clap::value_parser!(u16).range(1..))]
    async_concurrency: u16,

    /// Log filter, in `tracing` EnvFilter syntax (for example `info,kiln_api=debug`).
    #[arg(long, env = "KILN_LOG", default_value = "info")]
    log: String,
}

/// Runs the server until SIGINT or SIGTERM.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    init_tracing(&args.log)?;
    let account = account(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("kiln")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(args, account))
}

fn init_tracing(filter: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .with_context(|| format!("invalid log filter {filter:?}"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    Ok(())
}

fn account(args: &ServeArgs) -> anyhow::Result<AccountContext> {
    if args.account_id.len() != 12 || !args.account_id.bytes().all(|b| b.is_ascii_digit()) {
        bail!(
            "--account-id must be twelve digits, got {:?}",
            args.account_id
        );
    }
    let region_ok = args.region.len() >= 6
        && args.region.ends_with(|c: char| c.is_ascii_digit())
        && args
            .region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !region_ok {
        bail!(
            "--region must look like an AWS region (us-east-1), got {:?}",
            args.region
        );
    }
    Ok(AccountContext {
        partition: "aws".to_owned(),
        account_id: args.account_id.clone(),
        region: args.region.clone(),
    })
}

async fn serve(args: ServeArgs, account: AccountContext) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating data directory {}", args.data_dir.display()))?;
    let _lock = lock_data_dir(&args.data_dir)?;
    match kiln_sandbox::raise_open_files_limit() {
        Ok(limit) => tracing::debug!(limit, "open files limit"),
        Err(error) => tracing::warn!(%error, "cannot raise the open files limit"),
    }
    let store = Store::open(&args.data_dir)
        .with_context(|| format!("opening the store in {}", args.data_dir.display()))?;
    // Bound before the engine starts, so that functions learn the real address.
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let address = listener.local_addr().context("reading the bound address")?;
    let reachable = reachable_address(address);
    let queues = match args.sqs_listen.0 {
        Some(sqs_address) => {
            let queues = QueueService::open(&args.data_dir, account.clone())
                .with_context(|| format!("opening the queues in {}", args.data_dir.display()))?;
            let sqs_listener = TcpListener::bind(sqs_address).await.with_context(|| {
                format!("binding the SQS endpoint to {sqs_address} (--sqs-listen)")
            })?;
            let bound = sqs_listener
                .local_addr()
                .context("reading the bound SQS address")?;
            Some((queues, sqs_listener, bound))
        }
        None => None,
    };
    // Functions reach the SQS endpoint through `AWS_ENDPOINT_URL_SQS`.
    let sqs_reachable = queues
        .as_ref()
        .map(|(_, _, bound)| reachable_address(*bound));
    let config = EngineConfig {
        deployment_delay: args.deployment_delay,
        concurrency_limit: args.concurrency_limit,
        execution: ExecutionConfig {
            keep_alive: args.keep_alive,
            freeze_after: args.freeze_after.0,
            endpoint_url: format!("http://{reachable}"),
            sqs_endpoint_url: sqs_reachable.map(|address| format!("http://{address}")),
            force_plain: args.isolation == "plain",
            interpreters: InterpreterOverrides {
                python: args.python.clone(),
                node: args.node.clone(),
            },
        },
        async_invocation: AsyncConfig {
            retry_policy: RetryPolicy::scaled(args.retry_delay_scale),
            concurrency: usize::from(args.async_concurrency),
        },
        ..EngineConfig::default()
    };
    // Event source mappings poll the queues in-process.
    let mapped_queues = queues.as_ref().map(|(queues, _, _)| queues.clone());
    let engine = Engine::start(store, account, config, mapped_queues)
        .await
        .context("starting the engine")?;
    let state = ApiState::new(
        engine.clone(),
        ApiConfig {
            public_address: reachable.to_string(),
        },
    );
    tracing::info!(%address, data_dir = %args.data_dir.display(), "kiln listening");
    // Scripts and tests read the bound address (useful with port 0) from this line.
    println!("Kiln listening on http://{address}");
    let sqs_server = queues.map(|(queues, sqs_listener, bound)| {
        let reachable = reachable_address(bound);
        let router = kiln_api::sqs::router(SqsState::new(queues.clone(), reachable.to_string()));
        tracing::info!(address = %bound, "kiln SQS endpoint listening");
        // Read by scripts and tests after the main line (useful with port 0).
        println!("Kiln SQS listening on http://{bound}");
        let grace = args.shutdown_grace;
        (
            queues,
            tokio::spawn(serve_http(sqs_listener, router, grace)),
        )
    });

    serve_http(listener, kiln_api::router(state), args.shutdown_grace).await;
    // Pollers stop before the queues close: a batch in flight finishes or returns to its queue.
    engine.shutdown();
    if let Some((queues, server)) = sqs_server {
        // Both servers stop on the same signal; wait for the SQS one to finish its requests.
        let _ = server.await;
        // Commits what the writer still holds.
        queues.shutdown();
    }
    tracing::info!("kiln stopped");
    Ok(())
}

/// The address clients on this machine use for a bound one: loopback for a wildcard bind.
fn reachable_address(bound: SocketAddr) -> SocketAddr {
    if bound.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], bound.port()))
    } else {
        bound
    }
}

/// How long a client may take to send a request's headers (slow-client protection).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Accepts HTTP/1.1 connections until a shutdown signal, then lets requests in flight finish
/// for at most `grace` before closing everything.
async fn serve_http(listener: TcpListener, router: axum::Router, grace: Duration) {
    use hyper::server::conn::http1;
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::server::graceful::GracefulShutdown;
    use hyper_util::service::TowerToHyperService;

    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown_signal());
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(error) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(%error, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Small request/response exchanges must not wait for Nagle's algorithm.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .serve_connection(
                TokioIo::new(stream),
                TowerToHyperService::new(router.clone()),
            );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            ?grace,
            "requests still in flight after the shutdown grace period; closing them"
        );
    }
}

/// An address flag that can be `off`.
#[derive(Debug, Clone, Copy)]
struct OptionalAddress(Option<SocketAddr>);

fn parse_optional_address(text: &str) -> Result<OptionalAddress, String> {
    if text.trim() == "off" {
        return Ok(OptionalAddress(None));
    }
    text.trim()
        .parse()
        .map(|address| OptionalAddress(Some(address)))
        .map_err(|_| format!("{text:?} is not an address such as 127.0.0.1:9701, or off"))
}

/// A duration flag that can be `off`.
#[derive(Debug, Clone, Copy)]
struct OptionalDuration(Option<Duration>);

fn parse_optional_duration(text: &str) -> Result<OptionalDuration, String> {
    if text.trim() == "off" {
        return Ok(OptionalDuration(None));
    }
    parse_duration(text).map(|duration| OptionalDuration(Some(duration)))
}

/// Parses `250ms`, `2s`, `1.5s`, `10m`, `1h` or a bare number of seconds.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, scale) = if let Some(ms) = text.strip_suffix("ms") {
        (ms, 0.001)
    } else if let Some(s) = text.strip_suffix('s') {
        (s, 1.0)
    } else if let Some(m) = text.strip_suffix('m') {
        (m, 60.0)
    } else if let Some(h) = text.strip_suffix('h') {
        (h, 3600.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 500ms or 2s"))?;
    if !value.is_finite() || value < 0.0 {
        return Err(format!("{text:?} is not a duration such as 500ms or 2s"));
    }
    Ok(Duration::from_secs_f64(value * scale))
}

/// Holds an exclusive lock on the data directory, so two servers never share one store.
fn lock_data_dir(data_dir: &std::path::Path) -> anyhow::Result<std::fs::File> {
    let path = data_dir.join("kiln.lock");
    let file =
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "another kiln is already using the data directory {}",
            data_dir.display()
        ),
        Err(std::fs::TryLockError::Error(error)) => {
            Err(error).with_context(|| format!("locking {}", path.display()))
        }
    }
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = interrupt => tracing::info!("SIGINT received, shutting down"),
        () = terminate => tracing::info!("SIGTERM received, shutting down"),
    }
}

/// A non-negative, finite scale factor.
fn parse_scale(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() && value >= 0.0 => Ok(value),
        _ => Err(format!("`{text}` is not a non-negative number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert!(parse_optional_duration("off").unwrap().0.is_none());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn scales_are_non_negative_numbers() {
        assert_eq!(parse_scale("0.01"), Ok(0.01));
        assert_eq!(parse_scale("1"), Ok(1.0));
        assert!(parse_scale("-1").is_err());
        assert!(parse_scale("inf").is_err());
        assert!(parse_scale("fast").is_err());
    }
}
