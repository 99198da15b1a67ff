//! Recursive loop detection settings: GetFunctionRecursionConfig and
//! PutFunctionRecursionConfig.

use axum::http::StatusCode;
use axum::response::Response;
use kiln_core::RecursiveLoop;
use serde::Deserialize;
use serde_json::json;

use super::versions::unqualified;
use super::{engine_error, json, lookup};
use crate::ApiState;
use crate::error::ApiError;
use crate::request::RequestContext;
use crate::validate::Violations;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutRecursionConfigRequest {
    recursive_loop: Option<String>,
}

/// `GET /2024-08-31/functions/{FunctionName}/recursion-config`.
pub(crate) fn get(state: &ApiState, context: &RequestContext) -> Result<Response, ApiError> {
    let name = unqualified(context, state)?;
    let function = lookup(state, &name)?;
    Ok(json(
        StatusCode::OK,
        &json!({ "RecursiveLoop": function.recursive_loop.as_str() }),
    ))
}

/// `PUT /2024-08-31/functions/{FunctionName}/recursion-config`.
pub(crate) async fn put(state: &ApiState, context: &RequestContext) -> Result<Response, ApiError> {
    let request: PutRecursionConfigRequest = context.json()?;
    let name = unqualified(context, state)?;
    let mut violations = Violations::default();
    match &request.recursive_loop {
        None => violations.add_null("recursiveLoop"),
        Some(value) => violations.one_of(value, "recursiveLoop", &["Terminate", "Allow"]),
    }
    violations.finish()?;
    let setting = request
        .recursive_loop
        .as_deref()
        .and_then(RecursiveLoop::parse)
        .expect("validated above");
    let engine = state.engine();
    let setting = engine
        .put_recursion_config(&name, setting)
        .await
        .map_err(|error| engine_error(engine.account(), error))?;
    Ok(json(
        StatusCode::OK,
        &json!({ "RecursiveLoop": setting.as_str() }),
    ))
}
