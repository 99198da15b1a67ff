//! The event invoke config operations (asynchronous invocation settings per function,
//! version or alias): Put, Update, Get, Delete and List, with Lambda's validation and
//! messages.

use axum::http::StatusCode;
use axum::response::Response;
use kiln_core::{AccountContext, EventInvokeConfig, FunctionName, Qualifier};
use kiln_engine::{DestinationRule, EngineError, EventInvokeConfigChange};
use serde::Deserialize;
use serde_json::{Value, json};

use super::function_ref::{self, FunctionRef, NameShape};
use super::{engine_error, json, no_content, paging};
use crate::ApiState;
use crate::error::ApiError;
use crate::request::RequestContext;
use crate::validate::{self, Violations};
use crate::wire;

/// Most configs in one page of ListFunctionEventInvokeConfigs.
const LIST_PAGE_LIMIT: usize = 50;
/// Longest destination ARN the model allows.
const MAX_DESTINATION_LENGTH: usize = 350;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ConfigInput {
    maximum_retry_attempts: Option<i64>,
    maximum_event_age_in_seconds: Option<i64>,
    #[serde(default, deserialize_with = "wire::optional_object")]
    destination_config: Option<DestinationConfigInput>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DestinationConfigInput {
    #[serde(default, deserialize_with = "wire::optional_object")]
    on_success: Option<DestinationInput>,
    #[serde(default, deserialize_with = "wire::optional_object")]
    on_failure: Option<DestinationInput>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DestinationInput {
    destination: Option<String>,
}

/// `PUT /2019-09-25/functions/{FunctionName}/event-invoke-config`.
pub(crate) async fn put(state: &ApiState, context: &RequestContext) -> Result<Response, ApiError> {
    change(state, context, true).await
}

/// `POST /2019-09-25/functions/{FunctionName}/event-invoke-config`.
pub(crate) async fn update(
    state: &ApiState,
    context: &RequestContext,
) -> Result<Response, ApiError> {
    change(state, context, false).await
}

async fn change(
    state: &ApiState,
    context: &RequestContext,
    replace: bool,
) -> Result<Response, ApiError> {
    let engine = state.engine();
    let account = engine.account();
    let reference = function_ref::from_request(context, account, NameShape::Function)?;
    let input: ConfigInput = context.json()?;
    let mut violations = Violations::default();
    if let Some(value) = input.maximum_retry_attempts {
        violations.range(value, "maximumRetryAttempts", 0, 2);
    }
    if let Some(value) = input.maximum_event_age_in_seconds {
        violations.range(value, "maximumEventAgeInSeconds", 60, 21_600);
    }
    if let Some(destinations) = &input.destination_config {
        for (field, destination) in [
            (
                "destinationConfig.onSuccess.destination",
                &destinations.on_success,
            ),
            (
                "destinationConfig.onFailure.destination",
                &destinations.on_failure,
            ),
        ] {
            if let Some(arn) = destination.as_ref().and_then(|d| d.destination.as_deref()) {
                violations.length(arn, field, 0, MAX_DESTINATION_LENGTH);
                violations.pattern(arn, field, &validate::DESTINATION_ARN);
            }
        }
    }
    violations.finish()?;
    let doesnt_exist = || ApiError::not_found("The function doesn't exist.");
    let qualifier = match reference.parsed_qualifier() {
        None => None,
        Some(Ok(qualifier)) => Some(qualifier),
        Some(Err(_)) => return Err(doesnt_exist()),
    };
    if input.maximum_retry_attempts.is_none()
        && input.maximum_event_age_in_seconds.is_none()
        && input.destination_config.is_none()
    {
        return Err(ApiError::invalid_parameter(
            "You must specify at least one of error handling or destination setting.",
        ));
    }
    let destination = |input: &Option<DestinationInput>| {
        input.as_ref().map(|destination| {
            destination
                .destination
                .clone()
                .filter(|arn| !arn.is_empty())
        })
    };
    let change = EventInvokeConfigChange {
        maximum_retry_attempts: input
            .maximum_retry_attempts
            .and_then(|value| u32::try_from(value).ok()),
        maximum_event_age_seconds: input
            .maximum_event_age_in_seconds
            .and_then(|value| u32::try_from(value).ok()),
        on_success: input
            .destination_config
            .as_ref()
            .and_then(|config| destination(&config.on_success)),
        on_failure: input
            .destination_config
            .as_ref()
            .and_then(|config| destination(&config.on_failure)),
    };
    let config = engine
        .put_event_invoke_config(&reference.name, qualifier.as_ref(), change, replace)
        .await
        .map_err(|error| match error {
            EngineError::FunctionNotFound { .. } => doesnt_exist(),
            EngineError::InvalidDestination(rule) => {
                destination_error(rule, input.destination_config.as_ref())
            }
            other => config_error(account, other),
        })?;
    Ok(json(
        StatusCode::OK,
        &render(account, &reference.name, &config),
    ))
}

/// `GET /2019-09-25/functions/{FunctionName}/event-invoke-config`.
pub(crate) fn get(state: &ApiState, context: &RequestContext) -> Result<Response, ApiError> {
    let engine = state.engine();
    let account = engine.account();
    let reference = function_ref::from_request(context, account, NameShape::Namespaced)?;
    let qualifier = qualifier_or_missing(account, &reference)?;
    let config = engine
        .event_invoke_config(&reference.name, qualifier.as_ref())
        .map_err(|error| config_error(account, error))?;
    Ok(json(
        StatusCode::OK,
        &render(account, &reference.name, &config),
    ))
}

/// `DELETE /2019-09-25/functions/{FunctionName}/event-invoke-config`.
pub(crate) async fn delete(
    state: &ApiState,
    context: &RequestContext,
) -> Result<Response, ApiError> {
    let engine = state.engine();
    let account = engine.account();
    let reference = function_ref::from_request(context, account, NameShape::Namespaced)?;
    let qualifier = qualifier_or_missing(account, &reference)?;
    engine
        .delete_event_invoke_config(&reference.name, qualifier.as_ref())
        .await
        .map_err(|error| config_error(account, error))?;
    Ok(no_content())
}

/// `GET /2019-09-25/functions/{FunctionName}/event-invoke-config/list`.
pub(crate) fn list(state: &ApiState, context: &RequestContext) -> Result<Response, ApiError> {
    let engine = state.engine();
    let account = engine.account();
    let reference = function_ref::from_request(context, account, NameShape::Namespaced)?;
    let mut violations = Violations::default();
    let max_items = paging::max_items(context, &mut violations, 50, LIST_PAGE_LIMIT)?;
    violations.finish()?;
    let skip = match context.query_param("Marker") {
        None => 0,
        Some(marker) => marker
            .parse::<usize>()
            .map_err(|_| ApiError::invalid_parameter("Invalid Marker"))?,
    };
    let configs =
        engine
            .list_event_invoke_configs(&reference.name)
            .map_err(|error| match error {
                EngineError::FunctionNotFound { .. } => {
                    ApiError::not_found("The function doesn't exist.")
                }
                other => engine_error(account, other),
            })?;
    let page: Vec<Value> = configs
        .iter()
        .skip(skip)
        .take(max_items)
        .map(|config| render(account, &reference.name, config))
        .collect();
    let mut body = json!({ "FunctionEventInvokeConfigs": page });
    if skip + max_items < configs.len() {
        body["NextMarker"] = json!((skip + max_items).to_string());
    }
    Ok(json(StatusCode::OK, &body))
}

/// A qualifier that names nothing Kiln can have still gets the "no config" answer.
fn qualifier_or_missing(
    account: &AccountContext,
    reference: &FunctionRef,
) -> Result<Option<Qualifier>, ApiError> {
    match reference.parsed_qualifier() {
        None => Ok(None),
        Some(Ok(qualifier)) => Ok(Some(qualifier)),
        Some(Err(text)) => Err(no_config(account, &reference.name, text)),
    }
}

fn no_config(account: &AccountContext, name: &FunctionName, qualifier: &str) -> ApiError {
    ApiError::not_found(format!(
        "The function {}:{qualifier} doesn't have an EventInvokeConfig",
        account.function_arn(name)
    ))
}

fn config_error(account: &AccountContext, error: EngineError) -> ApiError {
    match error {
        EngineError::EventInvokeConfigNotFound { name, qualifier } => {
            no_config(account, &name, &qualifier)
        }
        EngineError::FunctionNotFound { name, qualifier } => no_config(
            account,
            &name,
            qualifier.as_deref().unwrap_or(Qualifier::LATEST),
        ),
        other => engine_error(account, other),
    }
}

/// Lambda's messages for a refused destination.
fn destination_error(rule: DestinationRule, input: Option<&DestinationConfigInput>) -> ApiError {
    match rule {
        DestinationRule::FunctionMissing { arn } => {
            ApiError::invalid_parameter(format!("The destination ARN {arn} is invalid."))
        }
        DestinationRule::ItselfAsDestination => ApiError::invalid_parameter(
            "You can't specify the function as a destination for itself.",
        ),
        DestinationRule::UnsupportedService { arn, service } => {
            ApiError::invalid_parameter(format!(
                "The destination ARN {arn} is invalid. Kiln has no {} to deliver to: \
                 destinations must be SQS queues or Lambda functions.",
                service_name(&service)
            ))
        }
        DestinationRule::NotADestination => {
            let describe = |kind: &str, destination: Option<&DestinationInput>| {
                destination.map_or_else(
                    || "null".to_owned(),
                    |destination| {
                        format!(
                            "{kind}(destination={})",
                            destination.destination.as_deref().unwrap_or("null")
                        )
                    },
                )
            };
            ApiError::invalid_parameter(format!(
                "The provided destination config DestinationConfig(onSuccess={}, onFailure={}) \
                 is invalid.",
                describe(
                    "OnSuccess",
                    input.and_then(|config| config.on_success.as_ref())
                ),
                describe(
                    "OnFailure",
                    input.and_then(|config| config.on_failure.as_ref())
                ),
            ))
        }
    }
}

fn service_name(service: &str) -> &str {
    match service {
        "sns" => "SNS topic",
        "events" => "EventBridge event bus",
        "s3" => "S3 bucket",
        other => other,
    }
}

/// Lambda's `FunctionEventInvokeConfig`: only the limits that were set.
fn render(account: &AccountContext, name: &FunctionName, config: &EventInvokeConfig) -> Value {
    let destination = |arn: &Option<String>| match arn {
        Some(arn) => json!({ "Destination": arn }),
        None => json!({}),
    };
    let mut body = json!({
        "DestinationConfig": {
            "OnFailure": destination(&config.on_failure),
            "OnSuccess": destination(&config.on_success),
        },
        "FunctionArn": format!("{}:{}", account.function_arn(name), config.qualifier),
        "LastModified": config.last_modified as f64 / 1000.0,
    });
    if let Some(age) = config.maximum_event_age_seconds {
        body["MaximumEventAgeInSeconds"] = json!(age);
    }
    if let Some(retries) = config.maximum_retry_attempts {
        body["MaximumRetryAttempts"] = json!(retries);
    }
    body
}
