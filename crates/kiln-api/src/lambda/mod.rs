//! The AWS Lambda REST API (restJson1, API version 2015-03-31).
//!
//! [`handle`] dispatches a routed request to its resource module. Operations Kiln does not
//! implement yet answer `501 NotImplementedException` naming the operation (never a 404 page or
//! a hang); `docs/compat.md` lists them.

mod account;
mod concurrency;
mod config;
mod event_invoke_config;
mod event_sources;
mod function_ref;
mod functions;
mod invoke;
mod layers;
mod paging;
mod recursion;
mod render;
mod runtimes;
mod tags;
mod versions;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use kiln_core::{AccountContext, FunctionName};
use kiln_engine::{AliasRule, BusyActivity, EngineError, UnzipError};

use crate::ApiState;
use crate::error::{ApiError, ErrorCode};
use crate::operation::Operation;
use crate::request::RequestContext;

/// Runs one Lambda operation.
pub(crate) async fn handle(
    state: &ApiState,
    context: RequestContext,
) -> Result<Response, ApiError> {
    use Operation::*;
    match context.operation.operation {
        CreateFunction => functions::create(state, &context).await,
        GetFunction => functions::get(state, &context),
        GetFunctionConfiguration => functions::get_configuration(state, &context),
        ListFunctions => functions::list(state, &context),
        UpdateFunctionCode => functions::update_code(state, &context).await,
        UpdateFunctionConfiguration => functions::update_configuration(state, &context).await,
        DeleteFunction => functions::delete(state, &context).await,
        Invoke => invoke::invoke(state, &context).await,
        InvokeAsync => invoke::invoke_async(state, &context).await,
        PutFunctionEventInvokeConfig => event_invoke_config::put(state, &context).await,
        UpdateFunctionEventInvokeConfig => event_invoke_config::update(state, &context).await,
        GetFunctionEventInvokeConfig => event_invoke_config::get(state, &context),
        DeleteFunctionEventInvokeConfig => event_invoke_config::delete(state, &context).await,
        ListFunctionEventInvokeConfigs => event_invoke_config::list(state, &context),
        GetAccountSettings => account::get_settings(state),
        TagResource => tags::tag(state, &context).await,
        UntagResource => tags::untag(state, &context).await,
        ListTags => tags::list(state, &context),
        PublishVersion => versions::publish(state, &context).await,
        ListVersionsByFunction => versions::list_versions(state, &context),
        CreateAlias => versions::create_alias(state, &context).await,
        GetAlias => versions::get_alias(state, &context),
        ListAliases => versions::list_aliases(state, &context),
        UpdateAlias => versions::update_alias(state, &context).await,
        DeleteAlias => versions::delete_alias(state, &context).await,
        CreateEventSourceMapping => event_sources::create(state, &context).await,
        GetEventSourceMapping => event_sources::get(state, &context),
        ListEventSourceMappings => event_sources::list(state, &context),
        UpdateEventSourceMapping => event_sources::update(state, &context).await,
        DeleteEventSourceMapping => event_sources::delete(state, &context).await,
        PublishLayerVersion => layers::publish(state, &context).await,
        GetLayerVersion => layers::get(state, &context),
        GetLayerVersionByArn => layers::get_by_arn(state, &context),
        ListLayers => layers::list_layers(state, &context),
        ListLayerVersions => layers::list_versions(state, &context),
        DeleteLayerVersion => layers::delete(state, &context).await,
        AddLayerVersionPermission => layers::add_permission(state, &context).await,
        GetLayerVersionPolicy => layers::get_policy(state, &context),
        RemoveLayerVersionPermission => layers::remove_permission(state, &context).await,
        PutFunctionConcurrency => concurrency::put_reserved(state, &context).await,
        GetFunctionConcurrency => concurrency::get_reserved(state, &context),
        DeleteFunctionConcurrency => concurrency::delete_reserved(state, &context).await,
        PutProvisionedConcurrencyConfig => concurrency::put_provisioned(state, &context).await,
        GetProvisionedConcurrencyConfig => concurrency::get_provisioned(state, &context),
        ListProvisionedConcurrencyConfigs => concurrency::list_provisioned(state, &context),
        DeleteProvisionedConcurrencyConfig => {
            concurrency::delete_provisioned(state, &context).await
        }
        GetFunctionRecursionConfig => recursion::get(state, &context),
        PutFunctionRecursionConfig => recursion::put(state, &context).await,
        other => Err(ApiError::new(
            ErrorCode::NotImplemented,
            format!(
                "Kiln does not implement the Lambda operation {} yet (see docs/compat.md).",
                other.name()
            ),
        )),
    }
}

/// A JSON response with the given status.
pub(crate) fn json(status: StatusCode, body: &serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// An empty `204 No Content`.
pub(crate) fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// `Function not found: ARN[:QUALIFIER]`, Lambda's 404 for functions and versions.
pub(crate) fn function_not_found(
    account: &AccountContext,
    name: &str,
    qualifier: Option<&str>,
) -> ApiError {
    let mut arn = format!(
        "arn:{}:lambda:{}:{}:function:{name}",
        account.partition, account.region, account.account_id
    );
    if let Some(qualifier) = qualifier {
        arn.push(':');
        arn.push_str(qualifier);
    }
    ApiError::not_found(format!("Function not found: {arn}"))
}

/// Maps an engine error to the AWS error a Lambda user would get.
pub(crate) fn engine_error(account: &AccountContext, error: EngineError) -> ApiError {
    match error {
        EngineError::FunctionNotFound { name, qualifier } => {
            function_not_found(account, name.as_str(), qualifier.as_deref())
        }
        EngineError::FunctionExists { name } => {
            ApiError::conflict(format!("Function already exist: {name}"))
        }
        EngineError::Busy { name, activity } => ApiError::conflict(match activity {
            BusyActivity::Updating => format!(
                "The operation cannot be performed at this time. An update is in progress for \
                 resource: {}",
                account.function_arn(&name)
            ),
            BusyActivity::Creating => "The operation cannot be performed at this time. The \
                                       function is currently in the following state: Pending"
                .to_owned(),
        }),
        EngineError::RevisionMismatch => ApiError::new(
            ErrorCode::PreconditionFailed,
            "The Revision Id provided does not match the latest Revision Id. \
             Call the GetFunction/GetAlias API to retrieve the latest Revision Id",
        ),
        EngineError::CannotDeleteLatest => ApiError::invalid_parameter(
            "$LATEST version cannot be deleted without deleting the function.",
        ),
        EngineError::TooManyTags => {
            ApiError::invalid_parameter("Number of tags exceeds resource tag limit.")
        }
        EngineError::ZippedTooLarge { limit } => ApiError::new(
            ErrorCode::RequestEntityTooLarge,
            format!("Zipped size must be smaller than {limit} bytes"),
        ),
        EngineError::UnzippedTooLarge { limit } => {
            ApiError::invalid_parameter(format!("Unzipped size must be smaller than {limit} bytes"))
        }
        EngineError::InvalidZip(reason) => invalid_zip(&reason),
        EngineError::CodeShaMismatch { given, current } => ApiError::invalid_parameter(format!(
            "CodeSHA256 ({given}) is different from current CodeSHA256 in $LATEST ({current}). \
             Please try again with the CodeSHA256 in $LATEST."
        )),
        EngineError::AliasExists { name, alias } => ApiError::conflict(format!(
            "Alias already exists: {}:{alias}",
            account.function_arn(&name)
        )),
        EngineError::AliasNotFound { name, alias } => ApiError::not_found(format!(
            "Cannot find alias arn: {}:{alias}",
            account.function_arn(&name)
        )),
        EngineError::VersionInUse { aliases } => ApiError::conflict(format!(
            "Unable to delete version because the following aliases reference it: [{}]",
            aliases.join(", ")
        )),
        EngineError::InvalidAlias(rule) => alias_rule_error(rule),
        error @ (EngineError::EventSourceMappingNotFound
        | EngineError::EventSourceFunctionMissing
        | EngineError::UnrecognizedEventSource
        | EngineError::UnsupportedEventSource { .. }
        | EngineError::EventSourceQueueMissing
        | EngineError::DuplicateEventSourceMapping { .. }
        | EngineError::EventSourceMappingBusy { .. }
        | EngineError::EventSourceRule(_)) => event_sources::mapping_error(account, error),
        error @ (EngineError::LayerVersionNotFound { .. }
        | EngineError::CodeWithLayersTooLarge { .. }
        | EngineError::NoLayerPolicy
        | EngineError::PolicyRevisionMismatch
        | EngineError::StatementExists { .. }
        | EngineError::StatementNotFound { .. }) => layers::layer_error(account, error),
        EngineError::EventInvokeConfigNotFound { name, qualifier } => ApiError::not_found(format!(
            "The function {}:{qualifier} doesn't have an EventInvokeConfig",
            account.function_arn(&name)
        )),
        EngineError::InvalidDestination(rule) => {
            ApiError::invalid_parameter(format!("The destination config is invalid: {rule}."))
        }
        EngineError::Throttled { reason } => ApiError::throttled(reason.as_str()),
        EngineError::RecursiveInvocation { .. } => ApiError::new(
            ErrorCode::RecursiveInvocation,
            kiln_engine::recursion::STOPPED_MESSAGE,
        ),
        EngineError::Concurrency(rule) => concurrency::rule_error(rule),
        EngineError::ProvisionedConfigNotFound => ApiError::new(
            ErrorCode::ProvisionedConcurrencyConfigNotFound,
            "No Provisioned Concurrency Config found for this function",
        ),
        error @ (EngineError::Store(_) | EngineError::Internal(_)) => {
            tracing::error!(%error, "engine failure");
            ApiError::internal("An internal error occurred while handling the request.")
        }
    }
}

/// Lambda's error for an alias rule a create or update broke.
fn alias_rule_error(rule: AliasRule) -> ApiError {
    match rule {
        AliasRule::AdditionalIsPrimary(version) => ApiError::invalid_parameter(format!(
            "Invalid function version {version}. Function version {version} is already \
             included in routing configuration."
        )),
        // Lambda sends this one without `Type`.
        AliasRule::RoutingFromLatest => ApiError::invalid_parameter(
            "$LATEST is not supported for an alias pointing to more than 1 version",
        )
        .without_type(),
        AliasRule::DifferentRoles => ApiError::invalid_parameter(
            "Specified versions must be associated with the same execution role",
        ),
        AliasRule::DifferentDeadLetterQueues => ApiError::invalid_parameter(
            "Specified versions must be associated with the same dead-letter queue config",
        ),
    }
}

/// Lambda's message for an archive it cannot unzip; for archives Kiln refuses on purpose
/// (hostile paths and links) the reason is appended.
fn invalid_zip(reason: &UnzipError) -> ApiError {
    const MESSAGE: &str =
        "Could not unzip uploaded file. Please check your file, then try to upload again.";
    match reason {
        UnzipError::NotAZip(_) | UnzipError::CorruptEntry { .. } => {
            ApiError::invalid_parameter(MESSAGE)
        }
        refused => ApiError::invalid_parameter(format!("{MESSAGE} Kiln refused it: {refused}.")),
    }
}

/// Looks a function up in the engine's snapshot, mapping absence to Lambda's 404.
pub(crate) fn lookup(
    state: &ApiState,
    name: &FunctionName,
) -> Result<std::sync::Arc<kiln_core::Function>, ApiError> {
    state
        .engine()
        .function(name)
        .map_err(|error| engine_error(state.engine().account(), error))
}
