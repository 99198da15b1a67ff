//! Event source mappings: Create, Get, List, Update, Delete (SQS sources).

use axum::http::StatusCode;
use axum::response::Response;
use kiln_core::{AccountContext, EventSourceMapping, FunctionName};
use kiln_engine::{EngineError, EventSourceMappingUpdate, EventSourceRule, NewEventSourceMapping};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::config;
use super::function_ref::{self, NameShape};
use super::{json, paging};
use crate::ApiState;
use crate::error::{ApiError, ErrorCode};
use crate::request::RequestContext;
use crate::validate::{self, Violations};

/// Server-side cap on `ListEventSourceMappings` page size.
const LIST_PAGE_LIMIT: usize = 100;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct FilterIn {
    pattern: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct FilterCriteriaIn {
    filters: Option<Vec<FilterIn>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ScalingConfigIn {
    maximum_concurrency: Option<i64>,
}

/// The fields Create and Update share.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MappingFields {
    function_name: Option<String>,
    enabled: Option<bool>,
    batch_size: Option<i64>,
    maximum_batching_window_in_seconds: Option<i64>,
    #[serde(default, deserialize_with = "crate::wire::optional_object")]
    filter_criteria: Option<FilterCriteriaIn>,
    function_response_types: Option<Vec<String>>,
    #[serde(default, deserialize_with = "crate::wire::optional_object")]
    scaling_config: Option<ScalingConfigIn>,
    // Settings of stream and broker sources, which an SQS mapping refuses.
    starting_position: Option<String>,
    starting_position_timestamp: Option<Value>,
    parallelization_factor: Option<Value>,
    destination_config: Option<Value>,
    maximum_record_age_in_seconds: Option<Value>,
    bisect_batch_on_function_error: Option<Value>,
    maximum_retry_attempts: Option<Value>,
    tumbling_window_in_seconds: Option<Value>,
    topics: Option<Value>,
    queues: Option<Value>,
    source_access_configurations: Option<Value>,
    self_managed_event_source: Option<Value>,
    document_d_b_event_source_config: Option<Value>,
    #[serde(rename = "KMSKeyArn")]
    kms_key_arn: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateRequest {
    event_source_arn: Option<String>,
    #[serde(flatten)]
    fields: MappingFields,
}

/// `POST /2015-03-31/event-source-mappings`.
pub(crate) async fn create(
    state: &ApiState,
    context: &RequestContext,
) -> Result<Response, ApiError> {
    let request: CreateRequest = context.json()?;
    let engine = state.engine();
    let account = engine.account();
    let mut violations = Violations::default();
    if let Some(arn) = &request.event_source_arn {
        violations.length(arn, "eventSourceArn", 12, 1024);
        violations.pattern(arn, "eventSourceArn", &validate::EVENT_SOURCE_ARN);
    }
    match &request.fields.function_name {
        None => violations.add_null("functionName"),
        Some(name) => check_function_name(name, &mut violations),
    }
    check_fields(&request.fields, &mut violations);
    violations.finish()?;

    let Some(event_source_arn) = request.event_source_arn else {
        return Err(config::refuse("Unrecognized event source."));
    };
    refuse_unsupported(&request.fields)?;
    let (function_name, qualifier) = function(
        request.fields.function_name.as_deref().unwrap_or_default(),
        account,
    )?;
    let fields = request.fields;
    let mapping = engine
        .create_event_source_mapping(NewEventSourceMapping {
            event_source_arn,
            function_name,
            qualifier,
            batch_size: fields.batch_size.map(to_u32),
            maximum_batching_window_seconds: fields.maximum_batching_window_in_seconds.map(to_u32),
            enabled: fields.enabled.unwrap_or(true),
            filter_patterns: fields.filter_criteria.as_ref().and_then(filter_patterns),
            report_batch_item_failures: reports_failures(fields.function_response_types.as_deref()),
            maximum_concurrency: fields
                .scaling_config
                .as_ref()
                .and_then(|scaling| scaling.maximum_concurrency)
                .map(to_u32),
        })
        .await
        .map_err(|error| mapping_error(account, error))?;
    Ok(json(StatusCode::ACCEPTED, &render(account, &mapping)))
}

/// `GET /2015-03-31/event-source-mappings/{UUID}`.
pub(crate) fn get(state: &ApiState, context: &RequestContext) -> Result<Response, ApiError> {
    let account = state.engine().account();
    let mapping = state
        .engine()
        .event_source_mapping(context.param("UUID"))
        .map_err(|error| mapping_error(account, error))?;
    Ok(json(StatusCode::OK, &render(account, &mapping)))
}

/// `GET /2015-03-31/event-source-mappings`.
pub(crate) fn list(state: &ApiState, context: &RequestContext) -> Result<Response, ApiError> {
    let account = state.engine().account();
    let mut violations = Violations::default();
    let source = context.query_param("EventSourceArn");
    if let Some(arn) = source {
        violations.pattern(arn, "eventSourceArn", &validate::EVENT_SOURCE_ARN);
    }
    let function_filter = context.query_param("FunctionName");
    if let Some(name) = function_filter {
        check_function_name(name, &mut violations);
    }
    let max_items = paging::max_items(context, &mut violations, 10_000, LIST_PAGE_LIMIT)?;
    violations.finish()?;
    let function_filter = function_filter
        .map(|name| function(name, account))
        .transpose()?;
    let after = paging::marker(context)?;
    let mut matching = state
        .engine()
        .event_source_mappings()
        .into_iter()
        .filter(|mapping| source.is_none_or(|arn| mapping.event_source_arn == arn))
        .filter(|mapping| {
            function_filter.as_ref().is_none_or(|(name, qualifier)| {
                &mapping.function_name == name
                    && (qualifier.is_none() || &mapping.qualifier == qualifier)
            })
        })
        .filter(|mapping| {
            after
                .as_deref()
                .is_none_or(|after| mapping.uuid.as_str() > after)
        });
    let page: Vec<EventSourceMapping> = matching.by_ref().take(max_items).collect();
    let mut body = json!({
        "EventSourceMappings": page.iter().map(|mapping| render(account, mapping)).collect::<Vec<_>>(),
    });
    if matching.next().is_some()
        && let Some(last) = page.last()
    {
        body["NextMarker"] = json!(paging::encode_marker(&last.uuid));
    }
    Ok(json(StatusCode::OK, &body))
}

/// `PUT /2015-03-31/event-source-mappings/{UUID}`.
pub(crate) async fn update(
    state: &ApiState,
    context: &RequestContext,
) -> Result<Response, ApiError> {
    let fields: MappingFields = context.json()?;
    let engine = state.engine();
    let account = engine.account();
    let mut violations = Violations::default();
    if let Some(name) = &fields.function_name {
        check_function_name(name, &mut violations);
    }
    check_fields(&fields, &mut violations);
    violations.finish()?;
    let uuid = context.param("UUID");
    // An unknown mapping is reported before the settings' semantics.
    engine
        .event_source_mapping(uuid)
        .map_err(|error| mapping_error(account, error))?;
    refuse_unsupported(&fields)?;
    let function = fields
        .function_name
        .as_deref()
        .map(|name| function(name, account))
        .transpose()?;
    let update = EventSourceMappingUpdate {
        function,
        batch_size: fields.batch_size.map(to_u32),
        maximum_batching_window_seconds: fields.maximum_batching_window_in_seconds.map(to_u32),
        enabled: fields.enabled,
        // An empty FilterCriteria removes the filters.
        filter_patterns: fields.filter_criteria.as_ref().map(filter_patterns),
        report_batch_item_failures: fields
            .function_response_types
            .as_deref()
            .map(|types| reports_failures(Some(types))),
        maximum_concurrency: fields
            .scaling_config
            .as_ref()
            .map(|scaling| scaling.maximum_concurrency.map(to_u32)),
    };
    let mapping = engine
        .update_event_source_mapping(uuid, update)
        .await
        .map_err(|error| mapping_error(account, error))?;
    Ok(json(StatusCode::ACCEPTED, &render(account, &mapping)))
}

/// `DELETE /2015-03-31/event-source-mappings/{UUID}`.
pub(crate) async fn delete(
    state: &ApiState,
    context: &RequestContext,
) -> Result<Response, ApiError> {
    let account = state.engine().account();
    let mapping = state
        .engine()
        .delete_event_source_mapping(context.param("UUID"))
        .await
        .map_err(|error| mapping_error(account, error))?;
    Ok(json(StatusCode::ACCEPTED, &render(account, &mapping)))
}

/// Lambda's `EventSourceMappingConfiguration` of an SQS mapping.
fn render(account: &AccountContext, mapping: &EventSourceMapping) -> Value {
    let mut function_arn = account.function_arn(&mapping.function_name);
    if let Some(qualifier) = &mapping.qualifier {
        function_arn.push(':');
        function_arn.push_str(qualifier);
    }
    let mut out = Map::new();
    out.insert("UUID".into(), json!(mapping.uuid));
    out.insert("BatchSize".into(), json!(mapping.batch_size));
    out.insert(
        "MaximumBatchingWindowInSeconds".into(),
        json!(mapping.maximum_batching_window_seconds),
    );
    out.insert("EventSourceArn".into(), json!(mapping.event_source_arn));
    if let Some(patterns) = &mapping.filter_patterns {
        let filters: Vec<Value> = patterns
            .iter()
            .map(|pattern| json!({ "Pattern": pattern }))
            .collect();
        out.insert("FilterCriteria".into(), json!({ "Filters": filters }));
    }
    out.insert("FunctionArn".into(), json!(function_arn));
    // Seconds since the epoch, as a JSON number (the model's timestamp format).
    out.insert(
        "LastModified".into(),
        json!(mapping.last_modified as f64 / 1000.0),
    );
    out.insert("State".into(), json!(mapping.state.as_str()));
    out.insert("StateTransitionReason".into(), json!("USER_INITIATED"));
    let response_types: Vec<&str> = if mapping.report_batch_item_failures {
        vec!["ReportBatchItemFailures"]
    } else {
        Vec::new()
    };
    out.insert("FunctionResponseTypes".into(), json!(response_types));
    if let Some(maximum) = mapping.maximum_concurrency {
        out.insert(
            "ScalingConfig".into(),
            json!({ "MaximumConcurrency": maximum }),
        );
    }
    out.insert(
        "EventSourceMappingArn".into(),
        json!(account.event_source_mapping_arn(&mapping.uuid)),
    );
    Value::Object(out)
}

/// Maps the engine's event source errors to Lambda's.
pub(crate) fn mapping_error(account: &AccountContext, error: EngineError) -> ApiError {
    match error {
        EngineError::EventSourceMappingNotFound => {
            ApiError::not_found("The resource you requested does not exist.")
        }
        EngineError::EventSourceFunctionMissing => config::refuse("Function does not exist"),
        EngineError::UnrecognizedEventSource => config::refuse("Unrecognized event source."),
        EngineError::UnsupportedEventSource { service } => config::refuse(&format!(
            "Kiln does not support event sources of {service} yet; only SQS queues of Kiln's \
             SQS service (see docs/compat.md)."
        )),
        EngineError::EventSourceQueueMissing => config::refuse(
            "Error occurred while ReceiveMessage. SQS Error Code: \
             AWS.SimpleQueueService.NonExistentQueue. SQS Error Message: The specified queue \
             does not exist.",
        ),
        EngineError::DuplicateEventSourceMapping {
            uuid,
            event_source_arn,
            function,
        } => ApiError::conflict(format!(
            "An event source mapping with SQS arn (\" {event_source_arn} \") and function (\" \
             {function} \") already exists. Please update or delete the existing mapping with \
             UUID {uuid}"
        )),
        EngineError::EventSourceMappingBusy { state } => ApiError::new(
            ErrorCode::ResourceInUse,
            format!(
                "Cannot update the event source mapping because it is in use (state {}).",
                state.as_str()
            ),
        ),
        EngineError::EventSourceRule(rule) => config::refuse(&match rule {
            EventSourceRule::BatchWindowRequired => "Maximum batch window in seconds must be \
                                                     greater than 0 if maximum batch size is \
                                                     greater than 10"
                .to_owned(),
            EventSourceRule::FifoBatchSize => {
                "Batch size must be between 1 and 10 inclusive for FIFO queues.".to_owned()
            }
            EventSourceRule::VisibilityTimeoutTooShort {
                queue_seconds,
                function_seconds,
            } => format!(
                "Queue visibility timeout: {queue_seconds} seconds is less than Function timeout: \
                 {function_seconds} seconds"
            ),
            EventSourceRule::InvalidFilter => "Invalid filter pattern definition.".to_owned(),
        }),
        other => super::engine_error(account, other),
    }
}

fn check_function_name(name: &str, violations: &mut Violations) {
    if name.chars().count() > 140 {
        violations.add(name, "functionName", validate::max_length(140));
    }
    violations.pattern(name, "functionName", &validate::FUNCTION_NAME);
}

fn check_fields(fields: &MappingFields, violations: &mut Violations) {
    if let Some(size) = fields.batch_size {
        violations.range(size, "batchSize", 1, 10_000);
    }
    if let Some(window) = fields.maximum_batching_window_in_seconds {
        violations.range(window, "maximumBatchingWindowInSeconds", 0, 300);
    }
    if let Some(types) = &fields.function_response_types {
        for kind in types {
            violations.one_of(kind, "functionResponseTypes", &["ReportBatchItemFailures"]);
        }
    }
    if let Some(maximum) = fields
        .scaling_config
        .as_ref()
        .and_then(|scaling| scaling.maximum_concurrency)
    {
        violations.range(maximum, "scalingConfig.maximumConcurrency", 2, 1000);
    }
    if let Some(position) = &fields.starting_position {
        violations.one_of(
            position,
            "startingPosition",
            &["LATEST", "AT_TIMESTAMP", "TRIM_HORIZON"],
        );
    }
    if let Some(filters) = fields
        .filter_criteria
        .as_ref()
        .and_then(|criteria| criteria.filters.as_ref())
    {
        for filter in filters {
            if let Some(pattern) = &filter.pattern {
                violations.length(pattern, "filterCriteria.filters.member.pattern", 0, 4096);
            }
        }
    }
}

/// Settings of stream and broker sources: Lambda refuses them for an SQS mapping.
fn refuse_unsupported(fields: &MappingFields) -> Result<(), ApiError> {
    let given = [
        ("StartingPosition", fields.starting_position.is_some()),
        (
            "StartingPositionTimestamp",
            fields.starting_position_timestamp.is_some(),
        ),
        (
            "ParallelizationFactor",
            fields.parallelization_factor.is_some(),
        ),
        ("DestinationConfig", fields.destination_config.is_some()),
        (
            "MaximumRecordAgeInSeconds",
            fields.maximum_record_age_in_seconds.is_some(),
        ),
        (
            "BisectBatchOnFunctionError",
            fields.bisect_batch_on_function_error.is_some(),
        ),
        (
            "MaximumRetryAttempts",
            fields.maximum_retry_attempts.is_some(),
        ),
        (
            "TumblingWindowInSeconds",
            fields.tumbling_window_in_seconds.is_some(),
        ),
        ("Topics", fields.topics.is_some()),
        ("Queues", fields.queues.is_some()),
        (
            "SourceAccessConfigurations",
            fields.source_access_configurations.is_some(),
        ),
        (
            "SelfManagedEventSource",
            fields.self_managed_event_source.is_some(),
        ),
        (
            "DocumentDBEventSourceConfig",
            fields.document_d_b_event_source_config.is_some(),
        ),
        ("KMSKeyArn", fields.kms_key_arn.is_some()),
    ];
    match given.iter().find(|(_, present)| *present) {
        Some((name, _)) => Err(config::refuse(&format!(
            "Unsupported {name} parameter for given event source mapping type."
        ))),
        None => Ok(()),
    }
}

/// The function (and qualifier) a mapping invokes.
fn function(
    raw: &str,
    account: &AccountContext,
) -> Result<(FunctionName, Option<String>), ApiError> {
    let reference = function_ref::parse(raw, None, account, NameShape::Function)?;
    Ok((reference.name, reference.qualifier))
}

/// `Some(patterns)` for criteria with filters, `None` for empty criteria.
fn filter_patterns(criteria: &FilterCriteriaIn) -> Option<Vec<String>> {
    let patterns: Vec<String> = criteria
        .filters
        .iter()
        .flatten()
        .map(|filter| filter.pattern.clone().unwrap_or_default())
        .collect();
    (!patterns.is_empty()).then_some(patterns)
}

fn reports_failures(types: Option<&[String]>) -> bool {
    types.is_some_and(|types| types.iter().any(|kind| kind == "ReportBatchItemFailures"))
}

/// A value already range-checked by the validator.
fn to_u32(value: i64) -> u32 {
    u32::try_from(value).unwrap_or_default()
}
