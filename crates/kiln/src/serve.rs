//! `kiln serve`: configuration, wiring and shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use kiln_api::{ApiConfig, ApiState};
use kiln_core::AccountContext;
use kiln_engine::{CodeLimits, Engine};
use kiln_store::Store;
use tokio::net::TcpListener;

/// Settings of `kiln serve`; each flag can also be set by its `KILN_*` variable.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to serve every API on.
    #[arg(long, env = "KILN_LISTEN", default_value = "127.0.0.1:9700")]
    listen: SocketAddr,

    /// Directory holding Kiln's database and code packages.
    #[arg(long, env = "KILN_DATA_DIR", default_value = "./.kiln")]
    data_dir: PathBuf,

    /// The twelve-digit account id in every ARN Kiln issues.
    #[arg(long, env = "KILN_ACCOUNT_ID", default_value = "000000000000")]
    account_id: String,

    /// The region in every ARN Kiln issues.
    #[arg(long, env = "KILN_REGION", default_value = "us-east-1")]
    region: String,

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
    let store = Store::open(&args.data_dir)
        .with_context(|| format!("opening the store in {}", args.data_dir.display()))?;
    let engine = Engine::start(store, account, CodeLimits::default())
        .await
        .context("starting the engine")?;

    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let address = listener.local_addr().context("reading the bound address")?;
    let state = ApiState::new(
        engine,
        ApiConfig {
            public_address: address.to_string(),
        },
    );
    tracing::info!(%address, data_dir = %args.data_dir.display(), "kiln listening");
    // Scripts and tests read the bound address (useful with port 0) from this line.
    println!("Kiln listening on http://{address}");

    axum::serve(listener, kiln_api::router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving HTTP")?;
    tracing::info!("kiln stopped");
    Ok(())
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
