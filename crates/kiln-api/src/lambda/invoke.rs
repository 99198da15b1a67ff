//! Invoke: run a function and return its result, or queue it (`InvocationType: Event`, and
//! the legacy `InvokeAsync`) and answer 202 once the event is durable.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use bytes::Bytes;
use kiln_core::Qualifier;
use kiln_engine::execution::InvokeRequest;

use super::function_ref::{self, NameShape};
use super::{engine_error, function_not_found};
use crate::ApiState;
use crate::error::{ApiError, ErrorCode};
use crate::request::RequestContext;
use crate::validate::Violations;

/// The longest `X-Amz-Client-Context` Lambda accepts (base64 characters).
const MAX_CLIENT_CONTEXT: usize = 3583;
/// The largest payload of an asynchronous `Invoke` (1 MB since 2025; it was 256 KB).
const MAX_ASYNC_PAYLOAD: usize = 1_048_576;
/// The largest payload of the legacy `InvokeAsync`, whose limit stayed 256 KB.
const MAX_INVOKE_ASYNC_PAYLOAD: usize = 262_144;

/// `POST /2015-03-31/functions/{FunctionName}/invocations`.
pub(crate) async fn invoke(
    state: &ApiState,
    context: &RequestContext,
) -> Result<Response, ApiError> {
    let engine = state.engine();
    let account = engine.account();
    let invocation_type = context
        .header("X-Amz-Invocation-Type")
        .unwrap_or("RequestResponse");
    let log_type = context.header("X-Amz-Log-Type").unwrap_or("None");
    let mut violations = Violations::default();
    violations.one_of(
        invocation_type,
        "invocationType",
        &["Event", "RequestResponse", "DryRun"],
    );
    violations.one_of(log_type, "logType", &["None", "Tail"]);
    violations.finish()?;

    let reference = function_ref::from_request(context, account, NameShape::Namespaced)?;
    let qualifier = match reference.parsed_qualifier() {
        None => None,
        Some(Ok(qualifier)) => Some(qualifier),
        Some(Err(text)) => {
            return Err(function_not_found(
                account,
                reference.name.as_str(),
                Some(text),
            ));
        }
    };
    let client_context = context
        .header("X-Amz-Client-Context")
        .map(decode_client_context)
        .transpose()?;
    let payload = payload(&context.body)?;

    match invocation_type {
        "DryRun" => {
            // Validates that the function and version exist, runs nothing.
            let function = engine
                .function(&reference.name)
                .map_err(|error| engine_error(account, error))?;
            let exists = match &qualifier {
                None => true,
                Some(Qualifier::Version(id)) => function.version(*id).is_some(),
                Some(Qualifier::Alias(alias)) => function.aliases.contains_key(alias),
            };
            if !exists {
                return Err(function_not_found(
                    account,
                    reference.name.as_str(),
                    reference.qualifier.as_deref(),
                ));
            }
            Ok(empty(StatusCode::NO_CONTENT))
        }
        "Event" => {
            check_async_size(&payload, MAX_ASYNC_PAYLOAD)?;
            engine
                .invoke_async(
                    &reference.name,
                    qualifier.as_ref(),
                    context.request_id.clone(),
                    payload,
                    trace_header(context),
                )
                .await
                .map_err(|error| engine_error(account, error))?;
            Ok(empty(StatusCode::ACCEPTED))
        }
        _ => {
            let response = engine
                .invoke(
                    &reference.name,
                    qualifier.as_ref(),
                    InvokeRequest {
                        request_id: context.request_id.clone(),
                        payload,
                        client_context,
                        log_tail: log_type == "Tail",
                        trace_header: trace_header(context),
                    },
                )
                .await
                .map_err(|error| engine_error(account, error))?;
            let mut reply = Response::new(Body::from(response.payload));
            let headers = reply.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            if let Ok(version) = HeaderValue::from_str(&response.executed_version) {
                headers.insert("X-Amz-Executed-Version", version);
            }
            if response.function_error {
                headers.insert(
                    "X-Amz-Function-Error",
                    HeaderValue::from_static("Unhandled"),
                );
            }
            if let Some(tail) = response.log_tail {
                let encoded = base64::engine::general_purpose::STANDARD.encode(tail);
                if let Ok(value) = HeaderValue::from_str(&encoded) {
                    headers.insert("X-Amz-Log-Result", value);
                }
            }
            Ok(reply)
        }
    }
}

/// `POST /2014-11-13/functions/{FunctionName}/invoke-async`: the deprecated asynchronous
/// invoke, answering `202 {"Status": 202}` once the event is durable.
pub(crate) async fn invoke_async(
    state: &ApiState,
    context: &RequestContext,
) -> Result<Response, ApiError> {
    let engine = state.engine();
    let account = engine.account();
    let reference = function_ref::from_request(context, account, NameShape::Namespaced)?;
    let qualifier = match reference.parsed_qualifier() {
        None => None,
        Some(Ok(qualifier)) => Some(qualifier),
        Some(Err(text)) => {
            return Err(function_not_found(
                account,
                reference.name.as_str(),
                Some(text),
            ));
        }
    };
    let payload = payload(&context.body)?;
    check_async_size(&payload, MAX_INVOKE_ASYNC_PAYLOAD)?;
    engine
        .invoke_async(
            &reference.name,
            qualifier.as_ref(),
            context.request_id.clone(),
            payload,
            trace_header(context),
        )
        .await
        .map_err(|error| engine_error(account, error))?;
    Ok(super::json(
        StatusCode::ACCEPTED,
        &serde_json::json!({ "Status": 202 }),
    ))
}

/// The caller's X-Ray trace header: SDKs running in a function forward the function's own
/// (`_X_AMZN_TRACE_ID`), which is how recursive loop detection follows a chain of invocations.
fn trace_header(context: &RequestContext) -> Option<String> {
    context.header("X-Amzn-Trace-Id").map(str::to_owned)
}

/// Lambda's 413 for an event over the asynchronous limit.
fn check_async_size(payload: &Bytes, limit: usize) -> Result<(), ApiError> {
    if payload.len() > limit {
        return Err(ApiError::new(
            ErrorCode::RequestEntityTooLarge,
            format!(
                "{} byte payload is too large for the Event invocation type (limit {limit} bytes)",
                payload.len()
            ),
        ));
    }
    Ok(())
}

/// The payload, which must be JSON; an empty one is `{}`.
fn payload(body: &Bytes) -> Result<Bytes, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Bytes::from_static(b"{}"));
    }
    serde_json::from_slice::<serde::de::IgnoredAny>(body).map_err(|error| {
        ApiError::invalid_content(format!(
            "Could not parse request body into json: Could not parse payload into json: {error}"
        ))
    })?;
    Ok(body.clone())
}

/// `X-Amz-Client-Context`: base64 of a JSON object, passed to the runtime decoded.
fn decode_client_context(encoded: &str) -> Result<String, ApiError> {
    let invalid =
        || ApiError::invalid_content("Client context must be a valid Base64-encoded JSON object.");
    if encoded.len() > MAX_CLIENT_CONTEXT {
        let mut violations = Violations::default();
        violations.add(
            encoded,
            "clientContext",
            crate::validate::max_length(MAX_CLIENT_CONTEXT),
        );
        violations.finish()?;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| invalid())?;
    let text = String::from_utf8(decoded).map_err(|_| invalid())?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|_| invalid())?;
    if !value.is_object() {
        return Err(invalid());
    }
    Ok(text)
}

fn empty(status: StatusCode) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_must_be_json() {
        assert_eq!(payload(&Bytes::new()).unwrap(), Bytes::from_static(b"{}"));
        assert_eq!(
            payload(&Bytes::from_static(b"[1]")).unwrap(),
            Bytes::from_static(b"[1]")
        );
        let error = payload(&Bytes::from_static(b"{nope")).unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidRequestContent);
    }

    #[test]
    fn client_context_is_base64_json() {
        let encoded = base64::engine::general_purpose::STANDARD.encode(r#"{"custom":{"a":1}}"#);
        assert_eq!(
            decode_client_context(&encoded).unwrap(),
            r#"{"custom":{"a":1}}"#
        );
        assert!(decode_client_context("not base64!").is_err());
        let list = base64::engine::general_purpose::STANDARD.encode("[1]");
        assert!(decode_client_context(&list).is_err());
    }
}
