//! A no-op Lambda function on the `lambda_runtime` crate: it returns its event unchanged, so a
//! benchmark measures the platform, not the handler.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(event.payload)
}

// The default multi-threaded runtime, as in `cargo lambda new`'s template.
#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handler)).await
}
