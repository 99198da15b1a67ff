//! Kiln's own endpoints: `/_kiln/` (health, code package downloads, logs) and Prometheus'
//! `/metrics`.

use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::ApiState;
use crate::error::{ApiError, ErrorCode};

const PREFIX: &str = "/_kiln/";

/// Serves the request if it is for a Kiln endpoint; `None` leaves it to the AWS APIs.
pub(crate) async fn handle(
    state: &ApiState,
    method: &Method,
    full_path: &str,
    query: Option<&str>,
) -> Option<Response> {
    if full_path == "/metrics" && (method == Method::GET || method == Method::HEAD) {
        return Some(metrics(state));
    }
    let path = full_path.strip_prefix(PREFIX)?;
    if method != Method::GET && method != Method::HEAD {
        return Some(unknown(method, full_path));
    }
    if path == "health" {
        return Some(health(state));
    }
    if let Some(function) = path.strip_prefix("logs/") {
        let query = query.unwrap_or_default();
        let param = |name: &str| {
            query
                .split('&')
                .filter_map(|pair| pair.split_once('='))
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value)
        };
        let since = param("since")
            .and_then(|value| value.parse().ok())
            .unwrap_or(0);
        let follow = param("follow") == Some("true");
        return Some(crate::logs_endpoint::serve(state, function, since, follow).await);
    }
    if let Some(digest) = path
        .strip_prefix("code/")
        .and_then(|file| file.strip_suffix(".zip"))
    {
        return Some(code(state, digest).await);
    }
    Some(unknown(method, full_path))
}

/// Lambda's metrics per function, in Prometheus' text format.
fn metrics(state: &ApiState) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.engine().metrics_text(),
    )
        .into_response()
}

fn health(state: &ApiState) -> Response {
    let body = json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "functions": state.engine().usage().function_count,
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// A stored code package, as `GetFunction`'s `Code.Location` points to.
async fn code(state: &ApiState, digest: &str) -> Response {
    let well_formed = digest.len() == 64
        && digest
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let not_found = || ApiError::not_found("No code package has that digest.").into_response();
    if !well_formed {
        return not_found();
    }
    match tokio::fs::read(state.engine().blobs().path(digest)).await {
        Ok(bytes) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/zip")],
            bytes,
        )
            .into_response(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => not_found(),
        Err(error) => {
            tracing::error!(%error, digest, "reading a code package failed");
            ApiError::internal("The code package could not be read.").into_response()
        }
    }
}

fn unknown(method: &Method, path: &str) -> Response {
    ApiError::new(
        ErrorCode::UnknownOperation,
        format!("No Kiln endpoint matches {method} {path}"),
    )
    .into_response()
}
