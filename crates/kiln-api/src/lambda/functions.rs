//! Functions: Create, Get, GetConfiguration, List, UpdateCode, UpdateConfiguration, Delete.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use kiln_core::{
    Function, FunctionConfig, FunctionVersion, LoggingConfig, PackageType, Qualifier, TracingMode,
    VersionId,
};
use kiln_engine::{CodeUpdate, ConfigUpdate, NewFunction};
use serde::Deserialize;
use serde_json::{Value, json};

use super::config::{self, ConfigFields};
use super::function_ref::{self, FunctionRef, NameShape};
use super::paging;
use super::render::{self, View};
use super::tags;
use super::{engine_error, function_not_found, json, lookup, no_content};
use crate::ApiState;
use crate::error::ApiError;
use crate::request::RequestContext;
use crate::validate::Violations;

/// Server-side cap on `ListFunctions` page size, as Lambda's.
const LIST_PAGE_LIMIT: usize = 50;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct FunctionCodeIn {
    zip_file: Option<String>,
    #[serde(rename = "S3Bucket")]
    s3_bucket: Option<String>,
    #[serde(rename = "S3Key")]
    s3_key: Option<String>,
    #[serde(rename = "S3ObjectVersion")]
    s3_object_version: Option<String>,
    image_uri: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateFunctionRequest {
    function_name: Option<String>,
    #[serde(default, deserialize_with = "crate::wire::optional_object")]
    code: Option<FunctionCodeIn>,
    publish: Option<bool>,
    publish_to: Option<String>,
    package_type: Option<String>,
    architectures: Option<Vec<String>>,
    tags: Option<BTreeMap<String, String>>,
    code_signing_config_arn: Option<String>,
    #[serde(flatten)]
    fields: ConfigFields,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateFunctionCodeRequest {
    zip_file: Option<String>,
    #[serde(rename = "S3Bucket")]
    s3_bucket: Option<String>,
    #[serde(rename = "S3Key")]
    s3_key: Option<String>,
    #[serde(rename = "S3ObjectVersion")]
    s3_object_version: Option<String>,
    image_uri: Option<String>,
    architectures: Option<Vec<String>>,
    publish: Option<bool>,
    publish_to: Option<String>,
    dry_run: Option<bool>,
    revision_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateFunctionConfigurationRequest {
    revision_id: Option<String>,
    #[serde(flatten)]
    fields: ConfigFields,
}

/// `POST /2015-03-31/functions`.
pub(crate) async fn create(
    state: &ApiState,
    context: &RequestContext,
) -> Result<Response, ApiError> {
    let request: CreateFunctionRequest = context.json()?;
    let engine = state.engine();
    let account = engine.account();

    let mut violations = Violations::default();
    match &request.function_name {
        None => violations.add_null("functionName"),
        Some(name) => {
            if name.chars().count() > 140 {
                violations.add(name, "functionName", crate::validate::max_length(140));
            }
            violations.pattern(name, "functionName", &crate::validate::FUNCTION_NAME);
        }
    }
    if request.fields.role.is_none() {
        violations.add_null("role")
    }
    if request.code.is_none() {
        violations.add_null("code");
    }
    config::check_model_constraints(&request.fields, &mut violations);
    if let Some(architectures) = &request.architectures {
        config::check_architectures(architectures, &mut violations);
    }
    if let Some(package_type) = &request.package_type {
        violations.one_of(package_type, "packageType", &["Zip", "Image"]);
    }
    if let Some(publish_to) = &request.publish_to {
        violations.one_of(publish_to, "publishTo", &["LATEST_PUBLISHED"]);
    }
    if let Some(tags) = &request.tags {
        tags::check_tag_constraints(tags, &mut violations);
    }
    let dead_letter = request
        .fields
        .dead_letter_config
        .as_ref()
        .and_then(|config| config::dead_letter(config, &mut violations));
    violations.finish()?;

    let raw_name = request.function_name.as_deref().unwrap_or_default();
    let FunctionRef { name, qualifier } =
        function_ref::parse(raw_name, None, account, NameShape::Create)?;
    if qualifier.is_some() {
        return Err(config::refuse(
            "The function name cannot carry a qualifier when creating a function.",
        ));
    }
    if request.package_type.as_deref() == Some("Image") {
        return Err(config::refuse(
            "Kiln does not support container image functions (PackageType Image); deploy a .zip \
             package instead.",
        ));
    }
    if request.code_signing_config_arn.is_some() {
        return Err(config::refuse(
            "Kiln does not support code signing (CodeSigningConfigArn); see docs/compat.md.",
        ));
    }
    config::check_supported(&request.fields)?;
    refuse_publish_to(request.publish_to.as_deref())?;
    let (Some(runtime), Some(handler)) = (&request.fields.runtime, &request.fields.handler) else {
        return Err(config::refuse(
            "Runtime and Handler are mandatory parameters for functions created with deployment \
             packages.",
        ));
    };
    let tags = request.tags.clone().unwrap_or_default();
    if tags.len() > tags::MAX_TAGS {
        return Err(config::refuse("Number of tags exceeds resource tag limit."));
    }
    let environment = request
        .fields
        .environment
        .as_ref()
        .map(config::environment)
        .transpose()?;
    let zip = code_source(
        request.code.as_ref().and_then(|c| c.zip_file.as_deref()),
        request.code.as_ref().and_then(|c| c.s3_bucket.as_deref()),
        request.code.as_ref().and_then(|c| c.s3_key.as_deref()),
        request
            .code
            .as_ref()
            .and_then(|c| c.s3_object_version.as_deref()),
        request.code.as_ref().and_then(|c| c.image_uri.as_deref()),
    )?;

    let fields = &request.fields;
    // The pins keep the layers' packages until the function has committed.
    let (layers, _layer_pins) = match &fields.layers {
        Some(arns) => {
            let (layers, pins) = super::layers::function_layers(engine, arns)?;
            (layers, Some(pins))
        }
        None => (Vec::new(), None),
    };
    let function_config = FunctionConfig {
        description: fields.description.clone().unwrap_or_default(),
        runtime: runtime.clone(),
        handler: handler.clone(),
        role: fields.role.clone().unwrap_or_default(),
        memory_size_mb: int(fields.memory_size, 128),
        timeout_seconds: int(fields.timeout, 3),
        environment,
        ephemeral_storage_mb: int(fields.ephemeral_storage.as_ref().and_then(|s| s.size), 512),
        architecture: config::architecture(request.architectures.as_deref().unwrap_or(&[])),
        package_type: PackageType::Zip,
        tracing_mode: fields
            .tracing_config
            .as_ref()
            .and_then(config::tracing_mode)
            .unwrap_or(TracingMode::PassThrough),
        logging: fields.logging_config.as_ref().map_or_else(
            || LoggingConfig::default_for(&name),
            |requested| config::logging(requested, None, &name),
        ),
        kms_key_arn: fields.kms_key_arn.clone().filter(|arn| !arn.is_empty()),
        vpc: fields.vpc_config.as_ref().and_then(config::vpc),
        dead_letter,
        layers,
    };
    let created = engine
        .create_function(NewFunction {
            name: name.clone(),
            config: function_config,
            zip,
            tags,
            publish: request.publish == Some(true),
        })
        .await
        .map_err(|error| engine_error(account, error))?;
    let function = lookup(state, &name)?;
    // With Publish=true Lambda answers with version 1 under the unqualified ARN.
    Ok(json(
        StatusCode::CREATED,
        &render::configuration_as(
            account,
            &function,
            &created,
            account.function_arn(&name),
            View::Full,
        ),
    ))
}

/// `GET /2015-03-31/functions/{FunctionName}`.
pub(crate) fn get(state: &ApiState, context: &RequestContext) -> Result<Response, ApiError> {
    let (function, version, arn) = resolve(state, context)?;
    Ok(json(
        StatusCode::OK,
        &render::get_function(
            state.engine().account(),
            &function,
            &version,
            arn,
            &context.host,
        ),
    ))
}

/// `GET /2015-03-31/functions/{FunctionName}/configuration`.
pub(crate) fn get_configuration(
    state: &ApiState,
    context: &RequestContext,
) -> Result<Response, ApiError> {
    let (function, version, arn) = resolve(state, context)?;
    Ok(json(
        StatusCode::OK,
        &render::configuration_as(
            state.engine().account(),
            &function,
            &version,
            arn,
            View::Full,
        ),
    ))
}

/// Finds the version a Get* request names (an alias names the version it points to), with
/// the `FunctionArn` to show: qualified as the caller qualified it.
fn resolve(
    state: &ApiState,
    context: &RequestContext,
) -> Result<(Arc<Function>, FunctionVersion, String), ApiError> {
    let account = state.engine().account();
    let reference = function_ref::from_request(context, account, NameShape::Namespaced)?;
    let not_found = || {
        function_not_found(
            account,
            reference.name.as_str(),
            reference.qualifier.as_deref(),
        )
    };
    let function = state
        .engine()
        .function(&reference.name)
        .map_err(|_| not_found())?;
    let version = match reference.parsed_qualifier() {
        None => function.latest.clone(),
        Some(Ok(Qualifier::Version(id))) => function.version(id).cloned().ok_or_else(not_found)?,
        Some(Ok(Qualifier::Alias(alias))) => function
            .aliases
            .get(&alias)
            .and_then(|alias| function.version(alias.version_id()))
            .cloned()
            .ok_or_else(not_found)?,
        // No version or alias has a name such as `$latest`.
        Some(Err(_)) => return Err(not_found()),
    };
    let arn = match &reference.qualifier {
        None => account.function_arn(&function.name),
        Some(qualifier) => format!("{}:{qualifier}", account.function_arn(&function.name)),
    };
    Ok((function, version, arn))
}

/// `GET /2015-03-31/functions`.
pub(crate) fn list(state: &ApiState, context: &RequestContext) -> Result<Response, ApiError> {
    let mut violations = Violations::default();
    let function_version = context.query_param("FunctionVersion");
    if let Some(value) = function_version {
        violations.one_of(value, "functionVersion", &["ALL"]);
    }
    let max_items = paging::max_items(context, &mut violations, 10_000, LIST_PAGE_LIMIT)?;
    if let Some(region) = context.query_param("MasterRegion") {
        violations.length(region, "masterRegion", 1, 50);
    }
    violations.finish()?;

    let account = state.engine().account();
    let all_versions = function_version == Some("ALL");
    // Lambda@Edge replicas are listed by master region; Kiln has none.
    if context.query_param("MasterRegion").is_some() {
        if !all_versions {
            return Err(config::refuse(
                "MasterRegion can only be specified together with FunctionVersion ALL.",
            ));
        }
        return Ok(json(StatusCode::OK, &json!({"Functions": []})));
    }
    let after = match context.query_param("Marker") {
        None => None,
        Some(marker) => Some(decode_marker(marker)?),
    };

    let mut page = Vec::new();
    let mut next_marker = None;
    // The marker's function may contribute nothing more and every other function at least
    // one entry, so `max_items + 2` functions fill a page and reveal whether another follows.
    let from = after.as_ref().map(|(name, _)| name.as_str());
    'functions: for function in state.engine().functions_from(from, max_items + 2) {
        for version in function.versions() {
            if !all_versions && version.version_id() != VersionId::Latest {
                continue;
            }
            let position = (
                function.name.to_string(),
                version.version_id().as_lambda_string(),
            );
            if after
                .as_ref()
                .is_some_and(|after| !is_after(&position, after))
            {
                continue;
            }
            if page.len() == max_items {
                next_marker = page.last().map(|(position, _)| encode_marker(position));
                break 'functions;
            }
            let rendered =
                render::configuration(account, &function, version, all_versions, View::Listing);
            page.push((position, rendered));
        }
    }
    let functions: Vec<Value> = page.into_iter().map(|(_, entry)| entry).collect();
    let mut body = json!({ "Functions": functions });
    if let Some(marker) = next_marker {
        body["NextMarker"] = json!(marker);
    }
    Ok(json(StatusCode::OK, &body))
}

/// Whether `position` comes after the marker's position in (name, version) order, where
/// `$LATEST` sorts before published versions and versions compare numerically.
fn is_after(position: &(String, String), marker: &(String, String)) -> bool {
    let key = |(name, version): &(String, String)| {
        let rank = match VersionId::parse(version) {
            Some(VersionId::Latest) | None => 0,
            Some(VersionId::Published(number)) => number.saturating_add(1),
        };
        (name.clone(), rank)
    };
    key(position) > key(marker)
}

fn encode_marker((name, version): &(String, String)) -> String {
    paging::encode_marker(&format!("{name}:{version}"))
}

fn decode_marker(marker: &str) -> Result<(String, String), ApiError> {
    let text = paging::decode_marker(marker)?;
    let (name, version) = text
        .split_once(':')
        .ok_or_else(|| config::refuse("The marker provided is not valid."))?;
    Ok((name.to_owned(), version.to_owned()))
}

/// `PUT /2015-03-31/functions/{FunctionName}/code`.
pub(crate) async fn update_code(
    state: &ApiState,
    context: &RequestContext,
) -> Result<Response, ApiError> {
    let request: UpdateFunctionCodeRequest = context.json()?;
    let engine = state.engine();
    let account = engine.account();
    let mut violations = Violations::default();
    if let Some(architectures) = &request.architectures {
        config::check_architectures(architectures, &mut violations);
    }
    if let Some(publish_to) = &request.publish_to {
        violations.one_of(publish_to, "publishTo", &["LATEST_PUBLISHED"]);
    }
    violations.finish()?;
    let name = unqualified_target(context, account)?;
    lookup(state, &name)?;
    refuse_publish_to(request.publish_to.as_deref())?;
    if request.image_uri.is_some() {
        return Err(config::refuse(
            "Please don't provide ImageUri when updating a function with packageType Zip.",
        ));
    }
    let zip = code_source(
        request.zip_file.as_deref(),
        request.s3_bucket.as_deref(),
        request.s3_key.as_deref(),
        request.s3_object_version.as_deref(),
        None,
    )?;
    let updated = engine
        .update_function_code(
            &name,
            CodeUpdate {
                zip,
                architecture: request.architectures.as_deref().map(config::architecture),
                expected_revision: request.revision_id.clone(),
                dry_run: request.dry_run.unwrap_or(false),
                publish: request.publish == Some(true),
            },
        )
        .await
        .map_err(|error| engine_error(account, error))?;
    let function = lookup(state, &name)?;
    Ok(json(
        StatusCode::OK,
        &render::configuration(account, &function, &updated, false, View::Full),
    ))
}

/// `PUT /2015-03-31/functions/{FunctionName}/configuration`.
pub(crate) async fn update_configuration(
    state: &ApiState,
    context: &RequestContext,
) -> Result<Response, ApiError> {
    let request: UpdateFunctionConfigurationRequest = context.json()?;
    let engine = state.engine();
    let account = engine.account();
    let mut violations = Violations::default();
    config::check_model_constraints(&request.fields, &mut violations);
    let fields = &request.fields;
    let dead_letter = fields
        .dead_letter_config
        .as_ref()
        .map(|config| config::dead_letter(config, &mut violations));
    violations.finish()?;
    let name = unqualified_target(context, account)?;
    let function = lookup(state, &name)?;
    config::check_supported(fields)?;
    let environment = fields
        .environment
        .as_ref()
        .map(config::environment)
        .transpose()?;
    // The pins keep the layers' packages until the update has committed.
    let (layers, _layer_pins) = match &fields.layers {
        Some(arns) => {
            let (layers, pins) = super::layers::function_layers(engine, arns)?;
            (Some(layers), Some(pins))
        }
        None => (None, None),
    };
    let update = ConfigUpdate {
        description: fields.description.clone(),
        runtime: fields.runtime.clone(),
        handler: fields.handler.clone(),
        role: fields.role.clone(),
        memory_size_mb: fields.memory_size.map(|value| int(Some(value), 128)),
        timeout_seconds: fields.timeout.map(|value| int(Some(value), 3)),
        environment: environment.map(Some),
        ephemeral_storage_mb: fields
            .ephemeral_storage
            .as_ref()
            .map(|storage| int(storage.size, 512)),
        tracing_mode: fields
            .tracing_config
            .as_ref()
            .and_then(config::tracing_mode),
        logging: fields.logging_config.as_ref().map(|requested| {
            config::logging(requested, Some(&function.latest.config.logging), &name)
        }),
        kms_key_arn: fields
            .kms_key_arn
            .as_ref()
            .map(|arn| Some(arn.clone()).filter(|arn| !arn.is_empty())),
        vpc: fields.vpc_config.as_ref().map(config::vpc),
        dead_letter,
        layers,
    };
    let updated = engine
        .update_function_configuration(&name, update, request.revision_id.as_deref())
        .await
        .map_err(|error| engine_error(account, error))?;
    let function = lookup(state, &name)?;
    Ok(json(
        StatusCode::OK,
        &render::configuration(account, &function, &updated, false, View::Full),
    ))
}

/// `DELETE /2015-03-31/functions/{FunctionName}[?Qualifier=]`.
pub(crate) async fn delete(
    state: &ApiState,
    context: &RequestContext,
) -> Result<Response, ApiError> {
    let engine = state.engine();
    let account = engine.account();
    let reference = function_ref::from_request(context, account, NameShape::Namespaced)?;
    // Lambda's order: the qualifier's kind first, then the function's existence (reported
    // without the qualifier); deleting a version that does not exist succeeds.
    let version = match reference.parsed_qualifier() {
        None | Some(Err(_)) => None,
        Some(Ok(Qualifier::Version(VersionId::Latest))) => {
            return Err(engine_error(
                account,
                kiln_engine::EngineError::CannotDeleteLatest,
            ));
        }
        Some(Ok(Qualifier::Alias(_))) => {
            return Err(config::refuse(
                "Deletion of aliases is not currently supported.",
            ));
        }
        Some(Ok(Qualifier::Version(id))) => Some(id),
    };
    lookup(state, &reference.name)?;
    if reference.parsed_qualifier().is_some_and(|q| q.is_err()) {
        // A qualifier naming nothing Kiln can have, on an existing function.
        return Err(function_not_found(account, reference.name.as_str(), None));
    }
    engine
        .delete_function(&reference.name, version)
        .await
        .map_err(|error| engine_error(account, error))?;
    Ok(no_content())
}

/// The function an Update* request names; those act on `$LATEST` only.
fn unqualified_target(
    context: &RequestContext,
    account: &kiln_core::AccountContext,
) -> Result<kiln_core::FunctionName, ApiError> {
    let reference = function_ref::from_request(context, account, NameShape::Function)?;
    match reference.parsed_qualifier() {
        None | Some(Ok(Qualifier::Version(VersionId::Latest))) => Ok(reference.name),
        Some(_) => Err(config::refuse(
            "This operation is permitted on Lambda functions only. Aliases and versions do not \
             support this operation. Please specify either a function name or an unqualified \
             function ARN.",
        )),
    }
}

/// `PublishTo` publishes to Lambda Managed Instances' capacity providers, which Kiln does
/// not have; refused rather than silently ignored.
fn refuse_publish_to(publish_to: Option<&str>) -> Result<(), ApiError> {
    if publish_to.is_some() {
        return Err(config::refuse(
            "Kiln does not support PublishTo (Lambda Managed Instances); use Publish=true.",
        ));
    }
    Ok(())
}

/// The zip bytes of a code source; only `ZipFile` is available until Kiln serves S3.
fn code_source(
    zip_file: Option<&str>,
    s3_bucket: Option<&str>,
    s3_key: Option<&str>,
    s3_object_version: Option<&str>,
    image_uri: Option<&str>,
) -> Result<Vec<u8>, ApiError> {
    if image_uri.is_some() {
        return Err(config::refuse(
            "Kiln does not support container image functions (Code.ImageUri); deploy a .zip \
             package instead.",
        ));
    }
    match (zip_file, s3_bucket.or(s3_key).or(s3_object_version)) {
        (Some(_), Some(_)) => Err(config::refuse(
            "Please provide either ZipFile or S3Bucket and S3Key, not both.",
        )),
        (Some(encoded), None) => config::decode_zip_file(encoded),
        (None, Some(_)) => Err(config::refuse(
            "Error occurred while GetObject. S3 Error Code: NoSuchBucket. S3 Error Message: The \
             specified bucket does not exist (Kiln does not serve S3 yet: upload the package \
             with Code.ZipFile, for example `aws lambda create-function --zip-file fileb://code.zip`).",
        )),
        (None, None) => Err(config::refuse("Please provide a source for function code.")),
    }
}

/// An integer field already range-checked by the validator.
fn int(value: Option<i64>, default: u32) -> u32 {
    value
        .and_then(|value| u32::try_from(value).ok())
        .unwrap_or(default)
}
