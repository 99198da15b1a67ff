//! Turning an HTTP request into a routed, size-checked [`RequestContext`].

use axum::body::{Body, Bytes};
use axum::http::{Request, header};
use http_body_util::{BodyExt, Limited};
use percent_encoding::percent_decode_str;
use serde::de::DeserializeOwned;

use crate::ApiState;
use crate::error::{ApiError, ErrorCode};
use crate::operation::{self, Matched, Operation};

/// Largest request body of operations that carry code (a 50 MB zip, base64 in JSON).
const CODE_UPLOAD_BODY_LIMIT: u64 = 70_167_211;
/// Largest request body of every other operation, and of a synchronous invoke's payload
/// (6 MB; requests must be smaller than this).
const DEFAULT_BODY_LIMIT: u64 = 6_291_456;

/// A routed request with its body read.
#[derive(Debug)]
pub(crate) struct RequestContext {
    /// The request's id (`x-amzn-RequestId`); an invocation runs under it.
    pub request_id: String,
    pub operation: Matched,
    pub query: Vec<(String, String)>,
    pub headers: axum::http::HeaderMap,
    pub body: Bytes,
    /// `host[:port]` clients used to reach Kiln, for URLs handed back to them.
    pub host: String,
}

impl RequestContext {
    /// Routes the request and reads its body within the operation's limit.
    pub(crate) async fn read(
        state: &ApiState,
        request: Request<Body>,
        request_id: &str,
    ) -> Result<Self, ApiError> {
        let (parts, body) = request.into_parts();
        let segments = decode_path(parts.uri.path())?;
        let query = decode_query(parts.uri.query().unwrap_or(""));
        let operation =
            operation::route(parts.method.as_str(), &segments, &query).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::UnknownOperation,
                    format!(
                        "No Lambda operation matches {} {}",
                        parts.method,
                        parts.uri.path()
                    ),
                )
            })?;
        let limit = body_limit(operation.operation);
        let too_large_code = match operation.operation {
            Operation::Invoke => ErrorCode::RequestTooLarge,
            _ => ErrorCode::RequestEntityTooLarge,
        };
        let too_large = || {
            let operation_name = match operation.operation {
                // Lambda names Invoke's limit after the old action name.
                Operation::Invoke => "InvokeFunction",
                other => other.name(),
            };
            ApiError::new(
                too_large_code,
                format!(
                    "Request must be smaller than {limit} bytes for the {operation_name} operation"
                ),
            )
        };
        let declared_length = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        // "Request must be smaller than LIMIT bytes": LIMIT itself is too large.
        if declared_length.is_some_and(|length| length >= limit) {
            return Err(too_large());
        }
        let body = Limited::new(body, usize::try_from(limit - 1).unwrap_or(usize::MAX))
            .collect()
            .await
            .map_err(|error| {
                if error.is::<http_body_util::LengthLimitError>() {
                    too_large()
                } else {
                    ApiError::invalid_content(format!("Could not read the request body: {error}"))
                }
            })?
            .to_bytes();
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
            .unwrap_or_else(|| state.config().public_address.clone());
        Ok(Self {
            request_id: request_id.to_owned(),
            operation,
            query,
            headers: parts.headers,
            body,
            host,
        })
    }

    /// A request header as text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// A path parameter; routing guarantees the ones in the template exist.
    pub(crate) fn param(&self, name: &str) -> &str {
        self.operation.param(name).unwrap_or_default()
    }

    /// The first value of a query parameter.
    pub(crate) fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Every value of a repeated query parameter (`?tagKeys=a&tagKeys=b`).
    pub(crate) fn query_values(&self, name: &str) -> Vec<&str> {
        self.query
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .collect()
    }

    /// The body parsed as a JSON object into `T`; an empty body is `{}`.
    pub(crate) fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        let body: &[u8] = if self.body.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &self.body
        };
        let invalid = |error: &dyn std::fmt::Display| {
            ApiError::invalid_content(format!(
                "Could not parse request body into json: Could not parse payload into json: {error}"
            ))
        };
        // Parsing to a map first refuses a top-level array, which serde's derived struct
        // deserializers would otherwise accept as positional fields.
        let object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(body).map_err(|e| invalid(&e))?;
        serde_json::from_value(serde_json::Value::Object(object)).map_err(|e| invalid(&e))
    }
}

fn body_limit(operation: Operation) -> u64 {
    match operation {
        Operation::CreateFunction
        | Operation::UpdateFunctionCode
        | Operation::PublishLayerVersion => CODE_UPLOAD_BODY_LIMIT,
        _ => DEFAULT_BODY_LIMIT,
    }
}

/// Splits the raw path on `/` first, then percent-decodes each segment, so an encoded `/`
/// or `:` inside an ARN stays inside its segment.
fn decode_path(path: &str) -> Result<Vec<String>, ApiError> {
    path.split('/')
        .filter(|segment| !segment.is_empty())
        .map(|segment| {
            percent_decode_str(segment)
                .decode_utf8()
                .map(|decoded| decoded.into_owned())
                .map_err(|_| ApiError::invalid_content("The request path is not valid UTF-8."))
        })
        .collect()
}

/// Decodes `a=1&b=2`, treating `+` as a space as form encoding does.
fn decode_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_query_part(key), decode_query_part(value))
        })
        .collect()
}

fn decode_query_part(part: &str) -> String {
    let spaced = part.replace('+', " ");
    percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_decoded_after_splitting() {
        assert_eq!(
            decode_path("/2017-03-31/tags/arn%3Aaws%3Alambda%3Aus-east-1%3A0%3Afunction%3Af")
                .unwrap(),
            vec![
                "2017-03-31",
                "tags",
                "arn:aws:lambda:us-east-1:0:function:f"
            ]
        );
        assert_eq!(decode_path("/a/b%2Fc").unwrap(), vec!["a", "b/c"]);
        assert!(decode_path("/a/%ff").is_err());
    }

    #[test]
    fn query_pairs_are_decoded_and_repeatable() {
        assert_eq!(
            decode_query("tagKeys=a&tagKeys=b%20c&flag&x=1+2"),
            vec![
                ("tagKeys".to_owned(), "a".to_owned()),
                ("tagKeys".to_owned(), "b c".to_owned()),
                ("flag".to_owned(), String::new()),
                ("x".to_owned(), "1 2".to_owned()),
            ]
        );
    }
}
