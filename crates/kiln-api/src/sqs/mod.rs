//! The SQS endpoint: SQS's JSON protocol (what current SDKs and the aws CLI speak) and its
//! older query protocol, both served from [`router`] on Kiln's SQS port.
//!
//! A request is one of:
//!
//! - JSON: `POST /` with `X-Amz-Target: AmazonSQS.Operation` and an
//!   `application/x-amz-json-1.0` body. Errors are `{"__type": "com.amazonaws.sqs#Shape",
//!   "message": ...}` with the `x-amzn-query-error: CODE;Sender` header, from which SDKs take
//!   the classic error code (`AWS.SimpleQueueService.NonExistentQueue`).
//! - Query: form parameters with `Action=Operation` (in the body or the URL), answered in XML.
//!
//! Both are converted to one input document and handled by [`ops`], so every operation works
//! in both protocols.

mod error;
mod ops;
mod query;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kiln_queues::QueueService;
use serde_json::Value;
use tracing::Instrument;

pub use error::{SqsError, SqsErrorCode};

/// Largest request body accepted (a batch of messages may total 1 MiB before encoding).
const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

/// Settings and state of the SQS endpoint.
#[derive(Debug, Clone)]
pub struct SqsState {
    queues: QueueService,
    /// Where clients reach the SQS port when a request carries no `Host` header.
    public_address: String,
}

impl SqsState {
    pub fn new(queues: QueueService, public_address: String) -> Self {
        SqsState {
            queues,
            public_address,
        }
    }
}

/// The router of the SQS port.
pub fn router(state: SqsState) -> Router {
    Router::new().fallback(handle).with_state(state).layer(
        tower_http::catch_panic::CatchPanicLayer::custom(
            |_panic: Box<dyn std::any::Any + Send + 'static>| {
                tracing::error!("SQS request handler panicked");
                let error = SqsError::new(
                    SqsErrorCode::InternalError,
                    "We encountered an internal error. Please try again.",
                );
                json_error(&error, &uuid::Uuid::new_v4().to_string())
            },
        ),
    )
}

enum Protocol {
    Json,
    Query,
}

async fn handle(State(state): State<SqsState>, request: Request<Body>) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let (parts, body) = request.into_parts();
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty())
        .map_or_else(|| state.public_address.clone(), str::to_owned);
    let path = parts.uri.path().to_owned();
    let path_queue = queue_from_path(&path);
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let Ok(body) = axum::body::to_bytes(body, MAX_REQUEST_BYTES).await else {
        let error = SqsError::invalid(format!(
            "The request is larger than {MAX_REQUEST_BYTES} bytes."
        ));
        return json_error(&error, &request_id);
    };
    let (protocol, operation, input) = match target {
        Some(target) => {
            let operation = target
                .strip_prefix("AmazonSQS.")
                .unwrap_or(&target)
                .to_owned();
            let input = if body.is_empty() {
                Ok(Value::Object(serde_json::Map::new()))
            } else {
                serde_json::from_slice::<Value>(&body)
                    .ok()
                    .filter(Value::is_object)
                    .ok_or_else(|| {
                        SqsError::new(
                            SqsErrorCode::MalformedRequest,
                            "Malformed JSON request body.",
                        )
                    })
            };
            (Protocol::Json, operation, input)
        }
        None => {
            let mut parameters: Vec<(String, String)> = parts
                .uri
                .query()
                .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
                .unwrap_or_default();
            if is_form(&parts.headers) || !body.is_empty() {
                parameters.extend(form_urlencoded::parse(&body).into_owned());
            }
            let action = parameters
                .iter()
                .find(|(key, _)| key == "Action")
                .map(|(_, value)| value.clone());
            match action {
                Some(action) => (
                    Protocol::Query,
                    action,
                    Ok(query::to_json_input(&parameters)),
                ),
                None => {
                    let error = SqsError::new(
                        SqsErrorCode::MissingParameter,
                        "The request must contain the parameter Action.",
                    );
                    return xml_error(&error, &request_id);
                }
            }
        }
    };
    let context = ops::Context {
        queues: &state.queues,
        base_url: format!("http://{host}"),
        path_queue,
        trace_header: parts
            .headers
            .get("x-amzn-trace-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    let span = tracing::debug_span!("sqs", operation = %operation, request_id = %request_id);
    let outcome = match input {
        Ok(input) => {
            ops::run(&context, &operation, &input)
                .instrument(span)
                .await
        }
        Err(error) => Err(error),
    };
    match (protocol, outcome) {
        (Protocol::Json, Ok(result)) => {
            json_response(StatusCode::OK, result.to_string(), &request_id)
        }
        (Protocol::Query, Ok(result)) => xml_response(
            StatusCode::OK,
            query::render_result(&operation, &result, &request_id),
            &request_id,
        ),
        (protocol, Err(error)) => {
            if error.code.status().is_server_error() {
                tracing::error!(%operation, %error, "SQS request failed");
            } else {
                tracing::debug!(%operation, %error, "SQS request refused");
            }
            match protocol {
                Protocol::Json => json_error(&error, &request_id),
                Protocol::Query => xml_error(&error, &request_id),
            }
        }
    }
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

/// `/ACCOUNT/NAME` -> the queue URL itself (query clients post to it).
fn queue_from_path(path: &str) -> Option<String> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    (segments.len() == 2).then(|| path.to_owned())
}

fn with_request_id(mut response: Response, request_id: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-amzn-RequestId", value);
    }
    response
}

fn json_response(status: StatusCode, body: String, request_id: &str) -> Response {
    let response = (
        status,
        [(header::CONTENT_TYPE, "application/x-amz-json-1.0")],
        body,
    )
        .into_response();
    with_request_id(response, request_id)
}

fn json_error(error: &SqsError, request_id: &str) -> Response {
    let body = serde_json::json!({ "__type": error.code.shape(), "message": error.message });
    let mut response = json_response(error.code.status(), body.to_string(), request_id);
    let fault = if error.code.is_sender_fault() {
        "Sender"
    } else {
        "Receiver"
    };
    if let Ok(value) = HeaderValue::from_str(&format!("{};{fault}", error.code.query_code())) {
        response.headers_mut().insert("x-amzn-query-error", value);
    }
    response
}

fn xml_response(status: StatusCode, body: String, request_id: &str) -> Response {
    let response = (status, [(header::CONTENT_TYPE, "text/xml")], body).into_response();
    with_request_id(response, request_id)
}

fn xml_error(error: &SqsError, request_id: &str) -> Response {
    xml_response(
        error.code.status(),
        query::render_error(error, request_id),
        request_id,
    )
}

#[cfg(test)]
mod tests;
