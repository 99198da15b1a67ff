//! Concurrency: PutFunctionConcurrency, GetFunctionConcurrency, DeleteFunctionConcurrency
//! (reserved concurrency), and PutProvisionedConcurrencyConfig,
//! GetProvisionedConcurrencyConfig, ListProvisionedConcurrencyConfigs,
//! DeleteProvisionedConcurrencyConfig.

use axum::http::StatusCode;
use axum::response::Response;
use kiln_core::{FunctionName, Qualifier, VersionId};
use kiln_engine::{ConcurrencyRule, ProvisionedConcurrencyStatus};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::function_ref::{self, NameShape};
use super::paging::{self, encode_marker, marker};
use super::versions::unqualified;
use super::{engine_error, function_not_found, json, lookup, no_content};
use crate::ApiState;
use crate::error::ApiError;
use crate::request::RequestContext;
use crate::validate::Violations;
use crate::wire::lambda_timestamp;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutFunctionConcurrencyRequest {
    reserved_concurrent_executions: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutProvisionedConcurrencyRequest {
    provisioned_concurrent_executions: Option<i64>,
}

/// `PUT /2017-10-31/functions/{FunctionName}/concurrency`.
pub(crate) async fn put_reserved(
    state: &ApiState,
    context: &RequestContext,
) -> Result<Response, ApiError> {
    let request: PutFunctionConcurrencyRequest = context.json()?;
    let name = unqualified(context, state)?;
    let engine = state.engine();
    // AWS answers a missing function before it looks at the value.
    if engine.function(&name).is_err() {
        return Err(function_not_found(
            engine.account(),
            name.as_str(),
            Some(Qualifier::LATEST),
        ));
    }
    let mut violations = Violations::default();
    match request.reserved_concurrent_executions {
        None => violations.add_null("reservedConcurrentExecutions"),
        Some(value) => violations.range(value, "reservedConcurrentExecutions", 0, i64::MAX),
    }
    violations.finish()?;
    let reserved = u32::try_from(request.reserved_concurrent_executions.unwrap_or_default())
        .unwrap_or(u32::MAX);
    let reserved = engine
        .put_function_concurrency(&name, reserved)
        .await
        .map_err(|error| engine_error(engine.account(), error))?;
    Ok(json(
        StatusCode::OK,
        &json!({ "ReservedConcurrentExecutions": reserved }),
    ))
}

/// `GET /2019-09-30/functions/{FunctionName}/concurrency`.
pub(crate) fn get_reserved(
    state: &ApiState,
    context: &RequestContext,
) -> Result<Response, ApiError> {
    let name = unqualified(context, state)?;
    let function = lookup(state, &name)?;
    let body = match function.reserved_concurrency {
        Some(reserved) => json!({ "ReservedConcurrentExecutions": reserved }),
        None => json!({}),
    };
    Ok(json(StatusCode::OK, &body))
}

/// `DELETE /2017-10-31/functions/{FunctionName}/concurrency`.
pub(crate) async fn delete_reserved(
    state: &ApiState,
    context: &RequestContext,
) -> Result<Response, ApiError> {
    let name = unqualified(context, state)?;
    let engine = state.engine();
    engine
        .delete_function_concurrency(&name)
        .await
        .map_err(|error| engine_error(engine.account(), error))?;
    Ok(no_content())
}

/// `PUT /2019-09-30/functions/{FunctionName}/provisioned-concurrency?Qualifier=`.
pub(crate) async fn put_provisioned(
    state: &ApiState,
    context: &RequestContext,
) -> Result<Response, ApiError> {
    let request: PutProvisionedConcurrencyRequest = context.json()?;
    let mut violations = Violations::default();
    match request.provisioned_concurrent_executions {
        None => violations.add_null("provisionedConcurrentExecutions"),
        Some(value) => violations.range(value, "provisionedConcurrentExecutions", 1, i64::MAX),
    }
    violations.finish()?;
    let requested =
        u32::try_from(request.provisioned_concurrent_executions.unwrap_or(1)).unwrap_or(u32::MAX);
    let (name, qualifier) = provisioned_target(state, context)?;
    let engine = state.engine();
    let status = engine
        .put_provisioned_concurrency(&name, &qualifier, requested)
        .await
        .map_err(|error| engine_error(engine.account(), error))?;
    Ok(json(StatusCode::ACCEPTED, &render_status(&status, None)))
}

/// `GET /2019-09-30/functions/{FunctionName}/provisioned-concurrency?Qualifier=`.
pub(crate) fn get_provisioned(
    state: &ApiState,
    context: &RequestContext,
) -> Result<Response, ApiError> {
    let (name, qualifier) = provisioned_target(state, context)?;
    refuse_latest(&qualifier)?;
    let engine = state.engine();
    let status = engine
        .provisioned_concurrency(&name, &qualifier)
        .map_err(|error| engine_error(engine.account(), error))?;
    Ok(json(StatusCode::OK, &render_status(&status, None)))
}

/// `GET /2019-09-30/functions/{FunctionName}/provisioned-concurrency?List=ALL`.
pub(crate) fn list_provisioned(
    state: &ApiState,
    context: &RequestContext,
) -> Result<Response, ApiError> {
    let mut violations = crate::validate::Violations::default();
    let max_items = paging::max_items(context, &mut violations, 10_000, 50)?;
    violations.finish()?;
    let name = unqualified(context, state)?;
    let after = marker(context)?;
    let engine = state.engine();
    let configs = engine
        .list_provisioned_concurrency(&name)
        .map_err(|error| engine_error(engine.account(), error))?;
    let mut entries = configs.iter().filter(|status| {
        after
            .as_deref()
            .is_none_or(|marker| status.qualifier.as_str() > marker)
    });
    let page: Vec<_> = entries.by_ref().take(max_items).collect();
    let mut body = json!({
        "ProvisionedConcurrencyConfigs": page
            .iter()
            .map(|status| {
                let arn = format!(
                    "{}:{}",
                    engine.account().function_arn(&name),
                    status.qualifier
                );
                render_status(status, Some(arn))
            })
            .collect::<Vec<_>>(),
    });
    if entries.next().is_some()
        && let Some(last) = page.last()
    {
        body["NextMarker"] = json!(encode_marker(&last.qualifier));
    }
    Ok(json(StatusCode::OK, &body))
}

/// `DELETE /2019-09-30/functions/{FunctionName}/provisioned-concurrency?Qualifier=`.
pub(crate) async fn delete_provisioned(
    state: &ApiState,
    context: &RequestContext,
) -> Result<Response, ApiError> {
    let (name, qualifier) = provisioned_target(state, context)?;
    refuse_latest(&qualifier)?;
    let engine = state.engine();
    engine
        .delete_provisioned_concurrency(&name, &qualifier)
        .await
        .map_err(|error| engine_error(engine.account(), error))?;
    Ok(no_content())
}

/// The function and the qualifier (from `?Qualifier=` or a qualified name) a provisioned
/// concurrency operation is about.
fn provisioned_target(
    state: &ApiState,
    context: &RequestContext,
) -> Result<(FunctionName, Qualifier), ApiError> {
    let account = state.engine().account();
    let reference = function_ref::from_request(context, account, NameShape::Function)?;
    match reference.parsed_qualifier() {
        Some(Ok(qualifier)) => Ok((reference.name, qualifier)),
        Some(Err(text)) => Err(function_not_found(
            account,
            reference.name.as_str(),
            Some(text),
        )),
        None => {
            let mut violations = Violations::default();
            violations.add_null("qualifier");
            violations.finish()?;
            Err(ApiError::invalid_parameter("The qualifier is missing."))
        }
    }
}

/// Get and Delete refuse `$LATEST` with this message; Put with another (from the engine).
fn refuse_latest(qualifier: &Qualifier) -> Result<(), ApiError> {
    if *qualifier == Qualifier::Version(VersionId::Latest) {
        return Err(ApiError::invalid_parameter(
            "The function resource provided must be an alias or a published version.",
        ));
    }
    Ok(())
}

/// Lambda's provisioned concurrency configuration; `FunctionArn` only in lists.
fn render_status(status: &ProvisionedConcurrencyStatus, function_arn: Option<String>) -> Value {
    let mut out = Map::new();
    if let Some(arn) = function_arn {
        out.insert("FunctionArn".into(), json!(arn));
    }
    out.insert(
        "RequestedProvisionedConcurrentExecutions".into(),
        json!(status.requested),
    );
    out.insert(
        "AvailableProvisionedConcurrentExecutions".into(),
        json!(status.allocated),
    );
    out.insert(
        "AllocatedProvisionedConcurrentExecutions".into(),
        json!(status.allocated),
    );
    out.insert("Status".into(), json!(status.status.as_str()));
    if let Some(reason) = &status.status_reason {
        out.insert("StatusReason".into(), json!(reason));
    }
    out.insert(
        "LastModified".into(),
        json!(lambda_timestamp(status.last_modified)),
    );
    Value::Object(out)
}

/// Lambda's error for a concurrency rule a setting broke. Several of these come without
/// `Type`, as the AWS recordings show.
pub(crate) fn rule_error(rule: ConcurrencyRule) -> ApiError {
    match rule {
        ConcurrencyRule::ReservedBelowUnreservedMinimum { minimum } => {
            ApiError::invalid_parameter(format!(
                "Specified ReservedConcurrentExecutions for function decreases account's \
                 UnreservedConcurrentExecution below its minimum value of [{minimum}]."
            ))
            .without_type()
        }
        // Lambda's spacing.
        ConcurrencyRule::ReservedBelowProvisioned {
            reserved,
            provisioned,
        } => ApiError::invalid_parameter(format!(
            " ReservedConcurrentExecutions  {reserved} should not be lower than function's total \
             provisioned concurrency [{provisioned}]."
        ))
        .without_type(),
        ConcurrencyRule::ProvisionedOverUnreserved { unreserved } => {
            ApiError::invalid_parameter(format!(
                "Specified ConcurrentExecutions for function is greater than account's \
                 unreserved concurrency [{unreserved}]."
            ))
            .without_type()
        }
        ConcurrencyRule::ProvisionedBelowUnreservedMinimum { minimum } => {
            ApiError::invalid_parameter(format!(
                "Specified ConcurrentExecutions for function decreases account's \
                 UnreservedConcurrentExecution below its minimum value of [{minimum}]."
            ))
            .without_type()
        }
        ConcurrencyRule::ProvisionedOverReserved => ApiError::invalid_parameter(
            "Requested Provisioned Concurrency should not be greater than the \
             reservedConcurrentExecution for function",
        ),
        ConcurrencyRule::ProvisionedOnUnpublished => ApiError::invalid_parameter(
            "Provisioned Concurrency Configs cannot be applied to unpublished function versions.",
        ),
        ConcurrencyRule::VersionAlreadyProvisioned => ApiError::conflict(
            "Alias can't be used for Provisioned Concurrency configuration on an already \
             Provisioned version",
        ),
        ConcurrencyRule::VersionProvisionedThroughAlias => {
            ApiError::conflict("Version is pointed by a Provisioned Concurrency alias")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_messages_keep_lambdas_spacing_and_shape() {
        let error = rule_error(ConcurrencyRule::ReservedBelowProvisioned {
            reserved: 1,
            provisioned: 2,
        });
        assert_eq!(
            error.body(),
            json!({"message": " ReservedConcurrentExecutions  1 should not be lower than function's total provisioned concurrency [2]."})
        );
        let error = rule_error(ConcurrencyRule::VersionProvisionedThroughAlias);
        assert_eq!(error.code.status(), StatusCode::CONFLICT);
    }
}
