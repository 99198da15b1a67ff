//! Client commands: `kiln invoke`, `kiln logs`, `kiln doctor`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine as _;
use bytes::Bytes;
use clap::Args;
use http_body_util::{BodyExt, Full};
use hyper::Request;

use crate::client::Endpoint;

/// Where the client commands find Kiln.
#[derive(Debug, Args)]
pub struct EndpointArgs {
    /// The Kiln to talk to.
    #[arg(long, env = "KILN_ENDPOINT", default_value = "http://127.0.0.1:9700")]
    endpoint: String,
}

/// `kiln invoke`.
#[derive(Debug, Args)]
pub struct InvokeArgs {
    /// The function name or ARN.
    function: String,
    /// The event: JSON text, or `@path` to read it from a file (`@-` for stdin).
    #[arg(long, default_value = "{}")]
    payload: String,
    /// A version or alias.
    #[arg(long)]
    qualifier: Option<String>,
    /// Don't print the invocation's log.
    #[arg(long)]
    no_logs: bool,
    #[command(flatten)]
    endpoint: EndpointArgs,
}

/// Runs a function once: the log goes to stderr, the result to stdout. Exits with 1 on a
/// function error.
pub fn invoke(args: InvokeArgs) -> anyhow::Result<()> {
    let payload = match args.payload.strip_prefix('@') {
        Some("-") => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .context("reading stdin")?;
            text
        }
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?,
        None => args.payload.clone(),
    };
    let endpoint = Endpoint::parse(&args.endpoint.endpoint)?;
    let mut path = format!(
        "/2015-03-31/functions/{}/invocations",
        percent_encode(&args.function)
    );
    if let Some(qualifier) = &args.qualifier {
        path.push_str(&format!("?Qualifier={}", percent_encode(qualifier)));
    }
    let request = Request::post(path)
        .header("X-Amz-Log-Type", if args.no_logs { "None" } else { "Tail" })
        .header("Content-Type", "application/json")
        .body(Full::new(Bytes::from(payload)))
        .context("building the request")?;
    let (response, body) = runtime()?.block_on(endpoint.call(request))?;
    if !response.status().is_success() {
        let code = response
            .headers()
            .get("x-amzn-ErrorType")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("Error");
        bail!("{code}: {}", error_message(&body));
    }
    if let Some(tail) = response
        .headers()
        .get("X-Amz-Log-Result")
        .and_then(|v| v.to_str().ok())
    {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(tail)
            .unwrap_or_default();
        eprint!("{}", String::from_utf8_lossy(&decoded));
    }
    println!("{}", String::from_utf8_lossy(&body));
    if response.headers().contains_key("X-Amz-Function-Error") {
        std::process::exit(1);
    }
    Ok(())
}

/// `kiln logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The function name.
    function: String,
    /// Keep printing new events as they arrive.
    #[arg(long, short)]
    follow: bool,
    /// Only events newer than this (e.g. `10m`, `1h`; default: everything).
    #[arg(long)]
    since: Option<String>,
    #[command(flatten)]
    endpoint: EndpointArgs,
}

/// Prints a function's log events (`timestamp message`), following them with `--follow`.
pub fn logs(args: LogsArgs) -> anyhow::Result<()> {
    let since = match &args.since {
        None => 0,
        Some(text) => {
            let ago = crate::serve::parse_duration(text).map_err(anyhow::Error::msg)?;
            let now = kiln_core::now_millis();
            now - i64::try_from(ago.as_millis()).unwrap_or(i64::MAX).min(now)
        }
    };
    let endpoint = Endpoint::parse(&args.endpoint.endpoint)?;
    let path = format!(
        "/_kiln/logs/{}?since={since}&follow={}",
        percent_encode(&args.function),
        args.follow
    );
    runtime()?.block_on(async move {
        let request = Request::get(path)
            .body(Full::new(Bytes::new()))
            .context("building the request")?;
        let mut body = endpoint.send(request).await?.into_body();
        let mut pending = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.context("reading the log stream")?;
            let Some(data) = frame.data_ref() else {
                continue;
            };
            pending.extend_from_slice(data);
            while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                print_event(&line);
            }
        }
        Ok(())
    })
}

fn print_event(line: &[u8]) {
    let Ok(event) = serde_json::from_slice::<serde_json::Value>(line) else {
        return;
    };
    let millis = event["timestamp"].as_i64().unwrap_or(0);
    let message = event["message"]
        .as_str()
        .unwrap_or_default()
        .replace('\r', "\n");
    println!("{} {message}", iso(millis));
}

/// `kiln doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Use this interpreter for python3.x functions.
    #[arg(long, env = "KILN_PYTHON")]
    python: Option<PathBuf>,
    /// Use this `node` for nodejs functions.
    #[arg(long, env = "KILN_NODE")]
    node: Option<PathBuf>,
}

/// Prints what isolation this machine gives functions and which runtimes can run.
pub fn doctor(args: DoctorArgs) -> anyhow::Result<()> {
    let scratch = tempfile_dir()?;
    let result = runtime()?.block_on(async {
        let sandboxer = kiln_sandbox::Sandboxer::start(kiln_sandbox::SandboxerConfig {
            root_mount_point: scratch.join("root"),
            uid: 993,
            gid: 990,
            force_plain: false,
        });
        let capabilities = sandboxer.capabilities().clone();
        let catalog = kiln_engine::execution::RuntimeCatalog::detect(
            &scratch,
            &kiln_engine::execution::InterpreterOverrides {
                python: args.python.clone(),
                node: args.node.clone(),
            },
        )?;
        anyhow::Ok((capabilities, catalog.status()))
    });
    let _ = std::fs::remove_dir_all(&scratch);
    let (capabilities, runtimes) = result?;
    println!("Isolation: {}", capabilities.tier.name());
    println!(
        "  functions isolated from the host and each other: {}",
        yes_no(capabilities.tier.isolates())
    );
    println!(
        "  memory and CPU limits enforced: {}",
        yes_no(capabilities.tier.limits())
    );
    println!(
        "  running as root: {}",
        yes_no(capabilities.running_as_root)
    );
    for limitation in &capabilities.limitations {
        println!("  note: {limitation}");
    }
    if !capabilities.tier.isolates() {
        println!("  WARNING: functions would run as plain processes (development only)");
    }
    println!("Runtimes:");
    for status in runtimes {
        match status.interpreters.first() {
            Some(_) => {
                for interpreter in &status.interpreters {
                    println!(
                        "  {}: {} (version {})",
                        status.family,
                        interpreter.executable.display(),
                        interpreter.version
                    );
                }
            }
            None if status.family.starts_with("provided") => {
                println!("  {}: {}", status.family, status.install_hint);
            }
            None => println!("  {}: unavailable. {}", status.family, status.install_hint),
        }
    }
    Ok(())
}

fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("kiln-doctor-{}", std::process::id()));
    std::fs::create_dir_all(&dir).context("creating a scratch directory")?;
    Ok(dir)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn error_message(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|value| {
            value
                .get("message")
                .or_else(|| value.get("Message"))
                .and_then(|m| m.as_str())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned())
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b'$') {
                (byte as char).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

/// Epoch milliseconds as an ISO 8601 UTC timestamp.
fn iso(millis: i64) -> String {
    let seconds = millis.div_euclid(1000);
    let nanos = u32::try_from(millis.rem_euclid(1000) * 1_000_000).unwrap_or(0);
    let time = std::time::UNIX_EPOCH + Duration::new(u64::try_from(seconds).unwrap_or(0), nanos);
    let since = time
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let days = i64::try_from(since.as_secs() / 86_400).unwrap_or(0);
    let (year, month, day) = civil(days);
    let in_day = since.as_secs() % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3600,
        in_day / 60 % 60,
        in_day % 60,
        since.subsec_millis()
    )
}

fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}
