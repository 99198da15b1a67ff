//! Kiln's HTTP surface: one port for every AWS-compatible API, like an AWS edge.
//!
//! A request is dispatched in three steps, all in [`dispatch`]:
//!
//! 1. Kiln's own endpoints (`/_kiln/...`: health, code downloads) are served directly.
//! 2. Anything else is matched against the Lambda route table ([`operation::ROUTES`]), which
//!    lists every Lambda operation. The body is read up to the operation's limit.
//! 3. The operation's handler (one module per resource under [`lambda`]) validates the wire
//!    input, calls the engine, and renders Lambda's JSON. Errors become [`ApiError`]s, which
//!    know their AWS wire form.
//!
//! Only this crate knows AWS wire shapes; the engine sees typed commands. The SQS-compatible
//! queue service has its own port and router ([`sqs::router`]).

pub mod error;
mod kiln_endpoints;
mod lambda;
mod logs_endpoint;
pub mod operation;
mod request;
pub mod sqs;
mod validate;
mod wire;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, Request};
use axum::response::{IntoResponse, Response};
use kiln_engine::Engine;
use tracing::Instrument;

pub use error::{ApiError, ErrorCode};
use request::RequestContext;

/// Settings of the HTTP surface.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Where clients reach Kiln, used when a request carries no `Host` header
    /// (for example `127.0.0.1:9700`).
    pub public_address: String,
}

/// Shared state of every request.
#[derive(Debug, Clone)]
pub struct ApiState {
    inner: Arc<ApiInner>,
}

#[derive(Debug)]
struct ApiInner {
    engine: Engine,
    config: ApiConfig,
}

impl ApiState {
    pub fn new(engine: Engine, config: ApiConfig) -> Self {
        Self {
            inner: Arc::new(ApiInner { engine, config }),
        }
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub(crate) fn config(&self) -> &ApiConfig {
        &self.inner.config
    }
}

/// The router serving every API on one port.
pub fn router(state: ApiState) -> Router {
    Router::new().fallback(dispatch).with_state(state).layer(
        tower_http::catch_panic::CatchPanicLayer::custom(
            |_panic: Box<dyn std::any::Any + Send + 'static>| {
                tracing::error!("request handler panicked");
                with_request_id(
                    ApiError::internal("An internal error occurred while handling the request.")
                        .into_response(),
                    &new_request_id(),
                )
            },
        ),
    )
}

/// Serves one request: routes it, runs it, and stamps the response with a request id.
async fn dispatch(State(state): State<ApiState>, request: Request<Body>) -> Response {
    let request_id = new_request_id();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = match kiln_endpoints::handle(&state, &method, &path, request.uri().query()).await
    {
        Some(response) => response,
        None => match RequestContext::read(&state, request, &request_id).await {
            Ok(context) => {
                let operation = context.operation.operation;
                let span = tracing::debug_span!(
                    "lambda",
                    operation = operation.name(),
                    request_id = %request_id
                );
                match lambda::handle(&state, context).instrument(span).await {
                    Ok(response) => response,
                    Err(error) => {
                        log_error(operation.name(), &error);
                        error.into_response()
                    }
                }
            }
            Err(error) => {
                tracing::debug!(%method, %path, %error, "request refused before dispatch");
                error.into_response()
            }
        },
    };
    with_request_id(response, &request_id)
}

fn log_error(operation: &str, error: &ApiError) {
    if error.code.status().is_server_error() && error.code != ErrorCode::NotImplemented {
        tracing::error!(operation, %error, "request failed");
    } else {
        tracing::debug!(operation, %error, "request refused");
    }
}

fn new_request_id() -> String {
    kiln_engine::ids::new_request_id()
}

fn with_request_id(mut response: Response, request_id: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-amzn-RequestId", value);
    }
    response
}

#[cfg(test)]
mod tests;
