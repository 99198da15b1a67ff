//! One binary, many behaviours: the event's `action` picks what the handler does, so a single
//! build covers every Runtime API case the end-to-end tests exercise.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

/// Invocations this process has served: proves the environment (and its globals) are reused.
static COUNT: AtomicU64 = AtomicU64::new(0);
/// Set once when the process starts: tells execution environments apart.
static TOKEN: OnceLock<String> = OnceLock::new();

fn token() -> &'static str {
    TOKEN.get_or_init(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        format!("{nanos:x}-{}", std::process::id())
    })
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let (payload, ctx) = event.into_parts();
    let count = COUNT.fetch_add(1, Ordering::SeqCst) + 1;
    let action = payload
        .get("action")
        .and_then(Value::as_str)
        .unwrap_or("echo")
        .to_owned();
    println!("rust-lambda action={action} request={}", ctx.request_id);
    eprintln!("rust-lambda stderr line");
    match action.as_str() {
        "echo" => Ok(json!({"runtime": "rust", "echo": payload})),
        "error" => Err(format!("rust handler failed on purpose: {}", payload["message"]).into()),
        "panic" => panic!("rust handler panicked on purpose"),
        "env" => {
            let names = [
                "AWS_LAMBDA_FUNCTION_NAME",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                "AWS_LAMBDA_FUNCTION_VERSION",
                "AWS_LAMBDA_LOG_GROUP_NAME",
                "AWS_LAMBDA_LOG_STREAM_NAME",
                "AWS_LAMBDA_RUNTIME_API",
                "AWS_REGION",
                "AWS_DEFAULT_REGION",
                "AWS_EXECUTION_ENV",
                "LAMBDA_TASK_ROOT",
                "LAMBDA_RUNTIME_DIR",
                "TZ",
                "_HANDLER",
                "_X_AMZN_TRACE_ID",
                "KILN_TEST_VAR",
            ];
            let env: serde_json::Map<String, Value> = names
                .iter()
                .map(|name| {
                    let value = std::env::var(name)
                        .map(Value::String)
                        .unwrap_or(Value::Null);
                    (name.to_string(), value)
                })
                .collect();
            let cwd = std::env::current_dir()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            Ok(json!({
                "env": env,
                "cwd": cwd,
                "uid": std::fs::read_to_string("/proc/self/status").ok().and_then(|s| {
                    s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1).unwrap_or("").to_owned())
                }),
                "context": {
                    "request_id": ctx.request_id,
                    "deadline_ms": ctx.deadline,
                    "remaining_ms": ctx.deadline as i64 - now_ms() as i64,
                    "invoked_function_arn": ctx.invoked_function_arn,
                    "xray_trace_id": ctx.xray_trace_id,
                    "client_context_custom": ctx.client_context.map(|c| c.custom),
                    "function_name": ctx.env_config.function_name,
                    "memory": ctx.env_config.memory,
                    "version": ctx.env_config.version,
                    "log_group": ctx.env_config.log_group,
                    "log_stream": ctx.env_config.log_stream,
                },
            }))
        }
        "sleep" => {
            let ms = payload["ms"].as_u64().unwrap_or(1000);
            let started = now_ms();
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(json!({"slept_ms": ms, "started_ms": started, "token": token()}))
        }
        "alloc" => {
            // Grow 1 MiB at a time, touching every page, so the cgroup sees real usage.
            let mb = payload["mb"].as_u64().unwrap_or(300) as usize;
            let mut blocks: Vec<Vec<u8>> = Vec::with_capacity(mb);
            for i in 0..mb {
                let mut block = vec![0u8; 1 << 20];
                block.fill((i % 251) as u8 + 1); // a memset, fast even unoptimised
                blocks.push(block);
            }
            let total: usize = blocks.iter().map(|b| b[b.len() - 1] as usize).sum();
            Ok(json!({"allocated_mb": mb, "checksum": std::hint::black_box(total)}))
        }
        "crash" => {
            let code = payload["code"].as_i64().unwrap_or(3) as i32;
            println!("rust-lambda exiting with {code}");
            std::process::exit(code);
        }
        "count" => Ok(json!({"count": count, "token": token()})),
        "tmp" => {
            use std::io::Write;
            let path = "/tmp/rust-lambda.txt";
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?;
            writeln!(file, "{}", ctx.request_id)?;
            let lines = std::fs::read_to_string(path)?.lines().count();
            Ok(json!({"lines": lines, "count": count, "token": token()}))
        }
        other => Err(format!("unknown action {other:?}").into()),
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    println!("rust-lambda init token={}", token());
    lambda_runtime::run(service_fn(handler)).await
}
