//! Layers: PublishLayerVersion, GetLayerVersion, GetLayerVersionByArn, ListLayers,
//! ListLayerVersions, DeleteLayerVersion, the layer version permissions, and the `Layers`
//! parameter of CreateFunction and UpdateFunctionConfiguration.

use axum::http::StatusCode;
use axum::response::Response;
use kiln_core::{AccountContext, Architecture, FunctionLayer, LayerStatement, LayerVersion};
use kiln_engine::{
    Engine, EngineError, LayerPins, MAX_FUNCTION_LAYERS, NewLayerStatement, NewLayerVersion,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::paging::{decode_marker, encode_marker};
use super::render::code_location;
use super::runtimes::AWS_CREATABLE;
use super::{config, engine_error, json, no_content, paging};
use crate::ApiState;
use crate::error::{ApiError, ErrorCode};
use crate::request::RequestContext;
use crate::validate::{self, Violations};

/// `ListLayers` and `ListLayerVersions` pages hold at most this many items, as on Lambda.
const LIST_PAGE_LIMIT: usize = 50;

/// Every `Runtime` of the service model, in the order AWS lists them when a `ListLayers`
/// filter is not one of them (recorded from AWS). Publishing accepts all of them too, while
/// its error message lists only the runtimes new functions may use.
const MODEL_RUNTIMES: &[&str] = &[
    "ruby3.5",
    "ruby2.6",
    "dotnetcore1.0",
    "python3.7",
    "nodejs8.10",
    "nasa",
    "ruby2.7",
    "python2.7-greengrass",
    "dotnetcore2.0",
    "python3.8",
    "java21",
    "dotnet6",
    "dotnetcore2.1",
    "python3.9",
    "java11",
    "nodejs6.10",
    "provided",
    "dotnetcore3.1",
    "dotnet8",
    "java25",
    "java17",
    "nodejs",
    "nodejs4.3",
    "java8.al2",
    "go1.x",
    "dotnet10",
    "nodejs20.x",
    "go1.9",
    "byol",
    "nodejs10.x",
    "provided.al2023",
    "nodejs22.x",
    "python3.10",
    "java8",
    "nodejs12.x",
    "python3.11",
    "nodejs24.x",
    "nodejs8.x",
    "python3.12",
    "nodejs14.x",
    "nodejs8.9",
    "nodejs26.x",
    "python3.13",
    "python3.14",
    "nodejs16.x",
    "python3.15",
    "provided.al2",
    "nodejs4.3-edge",
    "nodejs18.x",
    "ruby3.2",
    "python3.4",
    "ruby3.3",
    "ruby3.4",
    "ruby2.5",
    "python3.6",
    "python2.7",
];

const ARCHITECTURES: &[&str] = &["x86_64", "arm64"];

const NOT_FOUND: &str = "The resource you requested does not exist.";

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LayerContentIn {
    zip_file: Option<String>,
    #[serde(rename = "S3Bucket")]
    s3_bucket: Option<String>,
    #[serde(rename = "S3Key")]
    s3_key: Option<String>,
    #[serde(rename = "S3ObjectVersion")]
    s3_object_version: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PublishLayerVersionRequest {
    description: Option<String>,
    #[serde(default, deserialize_with = "crate::wire::optional_object")]
    content: Option<LayerContentIn>,
    compatible_runtimes: Option<Vec<String>>,
    license_info: Option<String>,
    compatible_architectures: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AddLayerVersionPermissionRequest {
    statement_id: Option<String>,
    action: Option<String>,
    principal: Option<String>,
    organization_id: Option<String>,
}

/// `POST /2018-10-31/layers/{LayerName}/versions`.
pub(crate) async fn publish(
    state: &ApiState,
    context: &RequestContext,
) -> Result<Response, ApiError> {
    let request: PublishLayerVersionRequest = context.json()?;
    let engine = state.engine();
    let account = engine.account();
    let mut violations = Violations::default();
    let raw_name = context.param("LayerName");
    check_layer_name(raw_name, &mut violations);
    if let Some(description) = &request.description {
        violations.length(description, "description", 0, 256);
    }
    if request.content.is_none() {
        violations.add_null("content");
    }
    if let Some(runtimes) = &request.compatible_runtimes {
        let listed = format!("[{}]", runtimes.join(", "));
        if runtimes.len() > 15 {
            violations.add(&listed, "compatibleRuntimes", validate::max_length(15));
        } else if runtimes
            .iter()
            .any(|runtime| !MODEL_RUNTIMES.contains(&runtime.as_str()))
        {
            violations.add(
                &listed,
                "compatibleRuntimes",
                validate::enum_set(AWS_CREATABLE),
            );
        }
    }
    if let Some(license) = &request.license_info {
        violations.length(license, "licenseInfo", 0, 512);
    }
    if let Some(architectures) = &request.compatible_architectures {
        let listed = format!("[{}]", architectures.join(", "));
        if architectures.len() > 2 {
            violations.add(&listed, "compatibleArchitectures", validate::max_length(2));
        } else if architectures
            .iter()
            .any(|architecture| !ARCHITECTURES.contains(&architecture.as_str()))
        {
            violations.add(
                &listed,
                "compatibleArchitectures",
                format!(
                    "Member must satisfy constraint: [{}, Member must not be null]",
                    validate::enum_set(ARCHITECTURES)
                ),
            );
        }
    }
    violations.finish()?;
    let layer_name = own_layer_name(raw_name, account).ok_or_else(|| {
        config::refuse("Kiln publishes layers only in its own account and region.")
    })?;
    let zip = layer_zip(
        request
            .content
            .as_ref()
            .unwrap_or(&LayerContentIn::default()),
    )?;
    let published = engine
        .publish_layer_version(NewLayerVersion {
            layer_name,
            description: request.description.clone().unwrap_or_default(),
            compatible_runtimes: request.compatible_runtimes.clone(),
            compatible_architectures: request
                .compatible_architectures
                .as_ref()
                .map(|list| list.iter().map(|a| architecture_of(a)).collect()),
            license_info: request.license_info.clone(),
            zip,
        })
        .await
        .map_err(|error| engine_error(account, error))?;
    Ok(json(
        StatusCode::CREATED,
        &render_layer_version(account, &published, &context.host),
    ))
}

/// `GET /2018-10-31/layers/{LayerName}/versions/{VersionNumber}`.
pub(crate) fn get(state: &ApiState, context: &RequestContext) -> Result<Response, ApiError> {
    let account = state.engine().account();
    let (layer_name, version) = layer_version_from_path(context, account)?;
    let layer = layer_name
        .and_then(|name| state.engine().layer_version(&name, version))
        .ok_or_else(|| ApiError::not_found(NOT_FOUND))?;
    Ok(json(
        StatusCode::OK,
        &render_layer_version(account, &layer, &context.host),
    ))
}

/// `GET /2018-10-31/layers?find=LayerVersion&Arn=...`.
pub(crate) fn get_by_arn(state: &ApiState, context: &RequestContext) -> Result<Response, ApiError> {
    let account = state.engine().account();
    let arn = context.query_param("Arn");
    let mut violations = Violations::default();
    match arn {
        None => violations.add_null("arn"),
        Some(arn) => {
            violations.length(arn, "arn", 1, 140);
            violations.pattern(arn, "arn", &validate::LAYER_VERSION_ARN);
        }
    }
    violations.finish()?;
    let (layer_name, version) = match parse_layer_version_arn(arn.unwrap_or_default(), account) {
        LayerArn::Own {
            layer_name,
            version,
        } => (Some(layer_name), version),
        LayerArn::OtherRegion | LayerArn::Foreign => (None, 1),
    };
    check_version_number(version)?;
    let layer = layer_name
        .and_then(|name| {
            let version = u64::try_from(version).ok()?;
            state.engine().layer_version(&name, version)
        })
        .ok_or_else(|| ApiError::not_found(NOT_FOUND))?;
    Ok(json(
        StatusCode::OK,
        &render_layer_version(account, &layer, &context.host),
    ))
}

/// `GET /2018-10-31/layers`.
pub(crate) fn list_layers(
    state: &ApiState,
    context: &RequestContext,
) -> Result<Response, ApiError> {
    let filter = ListFilter::from_request(context)?;
    let account = state.engine().account();
    let start = match context.query_param("Marker") {
        None => None,
        Some(marker) => Some(decode_marker(marker)?),
    };
    let mut entries = Vec::new();
    let mut next_marker = None;
    for (name, versions) in state.engine().layers() {
        if start
            .as_ref()
            .is_some_and(|start| name.as_str() < start.as_str())
        {
            continue;
        }
        let Some(latest) = versions.iter().find(|version| filter.matches(version)) else {
            continue;
        };
        if entries.len() == filter.max_items {
            next_marker = Some(encode_marker(&name));
            break;
        }
        entries.push(json!({
            "LayerName": name,
            "LayerArn": account.layer_arn(&name),
            "LatestMatchingVersion": render_listed_version(account, latest),
        }));
    }
    let mut body = json!({ "Layers": entries });
    if let Some(marker) = next_marker {
        body["NextMarker"] = json!(marker);
    }
    Ok(json(StatusCode::OK, &body))
}

/// `GET /2018-10-31/layers/{LayerName}/versions`.
pub(crate) fn list_versions(
    state: &ApiState,
    context: &RequestContext,
) -> Result<Response, ApiError> {
    let mut violations = Violations::default();
    let raw_name = context.param("LayerName");
    check_layer_name(raw_name, &mut violations);
    violations.finish()?;
    let filter = ListFilter::from_request(context)?;
    let account = state.engine().account();
    let start: Option<u64> = match context.query_param("Marker") {
        None => None,
        Some(marker) => Some(
            decode_marker(marker)?
                .parse()
                .map_err(|_| config::refuse("The marker provided is not valid."))?,
        ),
    };
    let versions = own_layer_name(raw_name, account)
        .map(|name| state.engine().layer_versions(&name))
        .unwrap_or_default();
    let mut entries = Vec::new();
    let mut next_marker = None;
    // Newest first: a page starts at the marker's version and goes down.
    for version in versions
        .iter()
        .filter(|version| start.is_none_or(|start| version.version <= start))
        .filter(|version| filter.matches(version))
    {
        if entries.len() == filter.max_items {
            next_marker = Some(encode_marker(&version.version.to_string()));
            break;
        }
        entries.push(render_listed_version(account, version));
    }
    let mut body = json!({ "LayerVersions": entries });
    if let Some(marker) = next_marker {
        body["NextMarker"] = json!(marker);
    }
    Ok(json(StatusCode::OK, &body))
}

/// `DELETE /2018-10-31/layers/{LayerName}/versions/{VersionNumber}`: succeeds whether or not
/// the version exists, as on Lambda.
pub(crate) async fn delete(
    state: &ApiState,
    context: &RequestContext,
) -> Result<Response, ApiError> {
    let engine = state.engine();
    let (layer_name, version) = layer_version_from_path(context, engine.account())?;
    if let Some(layer_name) = layer_name {
        engine
            .delete_layer_version(&layer_name, version)
            .await
            .map_err(|error| engine_error(engine.account(), error))?;
    }
    Ok(no_content())
}

/// `POST /2018-10-31/layers/{LayerName}/versions/{VersionNumber}/policy`.
pub(crate) async fn add_permission(
    state: &ApiState,
    context: &RequestContext,
) -> Result<Response, ApiError> {
    let request: AddLayerVersionPermissionRequest = context.json()?;
    let engine = state.engine();
    let account = engine.account();
    let mut violations = Violations::default();
    check_layer_name(context.param("LayerName"), &mut violations);
    match &request.statement_id {
        None => violations.add_null("statementId"),
        Some(id) => {
            violations.length(id, "statementId", 1, 100);
            violations.pattern(id, "statementId", &validate::STATEMENT_ID);
        }
    }
    match &request.action {
        None => violations.add_null("action"),
        Some(action) => {
            violations.length(action, "action", 0, 22);
            violations.pattern(action, "action", &validate::LAYER_PERMISSION_ACTION);
        }
    }
    match &request.principal {
        None => violations.add_null("principal"),
        Some(principal) => violations.pattern(principal, "principal", &validate::LAYER_PRINCIPAL),
    }
    if let Some(organization) = &request.organization_id {
        violations.length(organization, "organizationId", 0, 34);
        violations.pattern(organization, "organizationId", &validate::ORGANIZATION_ID);
    }
    violations.finish()?;
    let (layer_name, version) = existing_layer_version(state, context)?;
    let statement = LayerStatement {
        statement_id: request.statement_id.clone().unwrap_or_default(),
        principal: request.principal.clone().unwrap_or_default(),
        action: request.action.clone().unwrap_or_default(),
        organization_id: request.organization_id.clone(),
    };
    let (statement, revision) = engine
        .add_layer_permission(
            &layer_name,
            version,
            NewLayerStatement {
                statement,
                expected_revision: context.query_param("RevisionId").map(str::to_owned),
            },
        )
        .await
        .map_err(|error| engine_error(account, error))?;
    let resource = account.layer_version_arn(&layer_name, version);
    Ok(json(
        StatusCode::CREATED,
        &json!({
            "Statement": render_statement(&statement, &resource).to_string(),
            "RevisionId": revision,
        }),
    ))
}

/// `GET /2018-10-31/layers/{LayerName}/versions/{VersionNumber}/policy`.
pub(crate) fn get_policy(state: &ApiState, context: &RequestContext) -> Result<Response, ApiError> {
    let (layer_name, version) = existing_layer_version(state, context)?;
    let account = state.engine().account();
    let layer = state
        .engine()
        .layer_version(&layer_name, version)
        .ok_or_else(|| layer_version_not_found(account, &layer_name, version))?;
    let policy = layer
        .policy
        .as_ref()
        .ok_or_else(|| engine_error(account, EngineError::NoLayerPolicy))?;
    let resource = account.layer_version_arn(&layer_name, version);
    let statements: Vec<Value> = policy
        .statements
        .iter()
        .map(|statement| render_statement(statement, &resource))
        .collect();
    let document = json!({
        "Version": "2012-10-17",
        "Id": "default",
        "Statement": statements,
    });
    Ok(json(
        StatusCode::OK,
        &json!({
            "Policy": document.to_string(),
            "RevisionId": policy.revision_id,
        }),
    ))
}

/// `DELETE /2018-10-31/layers/{LayerName}/versions/{VersionNumber}/policy/{StatementId}`.
pub(crate) async fn remove_permission(
    state: &ApiState,
    context: &RequestContext,
) -> Result<Response, ApiError> {
    let mut violations = Violations::default();
    let statement_id = context.param("StatementId");
    violations.length(statement_id, "statementId", 1, 100);
    violations.pattern(statement_id, "statementId", &validate::STATEMENT_ID);
    violations.finish()?;
    let (layer_name, version) = existing_layer_version(state, context)?;
    state
        .engine()
        .remove_layer_permission(
            &layer_name,
            version,
            statement_id,
            context.query_param("RevisionId"),
        )
        .await
        .map_err(|error| engine_error(state.engine().account(), error))?;
    Ok(no_content())
}

/// The layer version a permission request names, which must exist (404 naming its ARN).
fn existing_layer_version(
    state: &ApiState,
    context: &RequestContext,
) -> Result<(String, u64), ApiError> {
    let account = state.engine().account();
    let (layer_name, version) = layer_version_from_path(context, account)?;
    let shown_name = layer_name.clone().unwrap_or_else(|| {
        // Another account's or region's layer: name it as the caller did.
        context
            .param("LayerName")
            .rsplit(':')
            .next()
            .unwrap_or_default()
            .to_owned()
    });
    match layer_name {
        Some(name) if state.engine().layer_version(&name, version).is_some() => Ok((name, version)),
        _ => Err(layer_version_not_found(account, &shown_name, version)),
    }
}

/// `Layer version ARN does not exist.` (404), as the permission operations answer.
pub(crate) fn layer_version_not_found(
    account: &AccountContext,
    layer_name: &str,
    version: u64,
) -> ApiError {
    ApiError::not_found(format!(
        "Layer version {} does not exist.",
        account.layer_version_arn(layer_name, version)
    ))
}

/// The layer name (when it is one of Kiln's) and version number of a request's path.
fn layer_version_from_path(
    context: &RequestContext,
    account: &AccountContext,
) -> Result<(Option<String>, u64), ApiError> {
    let raw_name = context.param("LayerName");
    let mut violations = Violations::default();
    check_layer_name(raw_name, &mut violations);
    violations.finish()?;
    let text = context.param("VersionNumber");
    let version: i64 = text.parse().map_err(|_| {
        ApiError::invalid_content(format!(
            "Could not parse request: VersionNumber '{text}' is not an integer"
        ))
    })?;
    check_version_number(version)?;
    let version = u64::try_from(version).unwrap_or(1);
    Ok((own_layer_name(raw_name, account), version))
}

fn check_version_number(version: i64) -> Result<(), ApiError> {
    if version < 1 {
        return Err(ApiError::invalid_parameter(
            "Layer Version Cannot be less than 1",
        ));
    }
    Ok(())
}

/// `LayerName` in a path: a name or a layer ARN.
fn check_layer_name(raw_name: &str, violations: &mut Violations) {
    violations.length(raw_name, "layerName", 1, 140);
    violations.pattern(raw_name, "layerName", &validate::LAYER_NAME);
}

/// The bare name of a `LayerName` that passed [`check_layer_name`], if it is a layer of this
/// account and region (an ARN may name another's).
fn own_layer_name(raw_name: &str, account: &AccountContext) -> Option<String> {
    if !raw_name.starts_with("arn:") {
        return Some(raw_name.to_owned());
    }
    let parts: Vec<&str> = raw_name.split(':').collect();
    match parts.as_slice() {
        ["arn", _, "lambda", region, account_id, "layer", name]
            if *region == account.region && *account_id == account.account_id =>
        {
            Some((*name).to_owned())
        }
        _ => None,
    }
}

/// What a layer version ARN that passed the model pattern names.
#[derive(Debug, PartialEq, Eq)]
enum LayerArn {
    Own {
        layer_name: String,
        version: i64,
    },
    OtherRegion,
    /// Another account's layer, or one of AWS's own (`awslayer`): Kiln has none of those.
    Foreign,
}

fn parse_layer_version_arn(arn: &str, account: &AccountContext) -> LayerArn {
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.as_slice() {
        [
            "arn",
            _,
            "lambda",
            region,
            account_id,
            "layer",
            name,
            version,
        ] => {
            if *account_id != account.account_id {
                LayerArn::Foreign
            } else if *region != account.region {
                LayerArn::OtherRegion
            } else {
                LayerArn::Own {
                    layer_name: (*name).to_owned(),
                    // Digits only, by the pattern; absurdly long ones name nothing.
                    version: version.parse().unwrap_or(i64::MAX),
                }
            }
        }
        _ => LayerArn::Foreign,
    }
}

/// The model constraint on a function's `Layers` (`ValidationException`).
pub(crate) fn check_function_layers(layers: &[String], violations: &mut Violations) {
    let valid = |arn: &String| {
        !arn.is_empty() && arn.len() <= 2048 && validate::LAYER_VERSION_ARN.matches(arn)
    };
    if !layers.iter().all(valid) {
        violations.add(
            format!("[{}]", layers.join(", ")),
            "layers",
            format!(
                "Member must satisfy constraint: [{}, {}, {}, Member must not be null]",
                validate::max_length(2048),
                validate::min_length(1),
                validate::LAYER_VERSION_ARN.constraint()
            ),
        );
    }
}

/// Resolves a function's `Layers` (already past [`check_function_layers`]) to the packages
/// its version will keep, with Lambda's checks and messages, in Lambda's order: the count,
/// then for each layer its region, its existence and whether another version of the same
/// layer came before it.
pub(crate) fn function_layers(
    engine: &Engine,
    arns: &[String],
) -> Result<(Vec<FunctionLayer>, LayerPins), ApiError> {
    let account = engine.account();
    if arns.len() > MAX_FUNCTION_LAYERS {
        return Err(ApiError::invalid_parameter(format!(
            "Cannot reference more than {MAX_FUNCTION_LAYERS} layers."
        )));
    }
    let does_not_exist =
        |arn: &str| ApiError::invalid_parameter(format!("Layer version {arn} does not exist."));
    let mut references: Vec<(String, u64)> = Vec::with_capacity(arns.len());
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for arn in arns {
        let (layer_name, version) = match parse_layer_version_arn(arn, account) {
            LayerArn::OtherRegion => {
                return Err(ApiError::invalid_parameter(format!(
                    "Layers are not in the same region as the function. Layers are expected to \
                     be in region {}.",
                    account.region
                )));
            }
            LayerArn::Foreign => return Err(does_not_exist(arn)),
            LayerArn::Own {
                layer_name,
                version,
            } => match u64::try_from(version) {
                Ok(version) if engine.layer_version(&layer_name, version).is_some() => {
                    (layer_name, version)
                }
                _ => return Err(does_not_exist(arn)),
            },
        };
        let layer_arn = arn
            .rsplit_once(':')
            .map_or(arn.as_str(), |(layer, _)| layer);
        if let Some((_, earlier)) = seen.iter().find(|(layer, _)| *layer == layer_arn) {
            return Err(ApiError::invalid_parameter(format!(
                "Two different versions of the same layer are not allowed to be referenced in \
                 the same function. {earlier} and {arn} are versions of the same layer."
            )));
        }
        seen.push((layer_arn, arn));
        references.push((layer_name, version));
    }
    engine
        .resolve_layers(&references)
        .map_err(|error| match error {
            // Deleted between the check and the resolution.
            EngineError::LayerVersionNotFound {
                layer_name,
                version,
            } => does_not_exist(&account.layer_version_arn(&layer_name, version)),
            other => engine_error(account, other),
        })
}

/// A function's `Layers` as `FunctionConfiguration` shows them.
pub(crate) fn render_function_layers(account: &AccountContext, layers: &[FunctionLayer]) -> Value {
    Value::Array(
        layers
            .iter()
            .map(|layer| {
                json!({
                    "Arn": account.layer_version_arn(&layer.layer_name, layer.version),
                    "CodeSize": layer.code.size_bytes,
                })
            })
            .collect(),
    )
}

/// `ListLayers`/`ListLayerVersions` query parameters.
struct ListFilter {
    runtime: Option<String>,
    architecture: Option<Architecture>,
    max_items: usize,
}

impl ListFilter {
    fn from_request(context: &RequestContext) -> Result<Self, ApiError> {
        let mut violations = Violations::default();
        let runtime = context.query_param("CompatibleRuntime");
        if let Some(runtime) = runtime {
            violations.one_of(runtime, "compatibleRuntime", MODEL_RUNTIMES);
        }
        let architecture = context.query_param("CompatibleArchitecture");
        if let Some(architecture) = architecture {
            violations.one_of(architecture, "compatibleArchitecture", ARCHITECTURES);
        }
        let max_items = paging::max_items(context, &mut violations, 50, LIST_PAGE_LIMIT)?;
        violations.finish()?;
        Ok(Self {
            runtime: runtime.map(str::to_owned),
            architecture: architecture.map(architecture_of),
            max_items,
        })
    }

    fn matches(&self, version: &LayerVersion) -> bool {
        self.runtime
            .as_deref()
            .is_none_or(|runtime| version.supports_runtime(runtime))
            && self
                .architecture
                .is_none_or(|architecture| version.supports_architecture(architecture))
    }
}

fn architecture_of(text: &str) -> Architecture {
    if text == "arm64" {
        Architecture::Arm64
    } else {
        Architecture::X86_64
    }
}

/// The zip of a layer's `Content`; only `ZipFile` is available until Kiln serves S3.
fn layer_zip(content: &LayerContentIn) -> Result<Vec<u8>, ApiError> {
    let s3 = content
        .s3_bucket
        .as_ref()
        .or(content.s3_key.as_ref())
        .or(content.s3_object_version.as_ref());
    match (&content.zip_file, s3) {
        (Some(_), Some(_)) => Err(config::refuse(
            "Please provide either ZipFile or S3Bucket and S3Key, not both.",
        )),
        (Some(encoded), None) => config::decode_zip_file(encoded),
        (None, Some(_)) => Err(config::refuse(
            "Error occurred while GetObject. S3 Error Code: NoSuchBucket. S3 Error Message: The \
             specified bucket does not exist (Kiln does not serve S3 yet: upload the layer with \
             Content.ZipFile, for example `aws lambda publish-layer-version --zip-file \
             fileb://layer.zip`).",
        )),
        (None, None) => Err(config::refuse("Please provide a source for layer content.")),
    }
}

/// `PublishLayerVersion`'s and `GetLayerVersion`'s response.
fn render_layer_version(account: &AccountContext, layer: &LayerVersion, host: &str) -> Value {
    let mut out = Map::new();
    out.insert(
        "Content".into(),
        json!({
            "Location": code_location(host, &layer.code.sha256_hex),
            "CodeSha256": layer.code.sha256_base64,
            "CodeSize": layer.code.size_bytes,
        }),
    );
    out.insert(
        "LayerArn".into(),
        json!(account.layer_arn(&layer.layer_name)),
    );
    insert_version_fields(&mut out, account, layer);
    Value::Object(out)
}

/// A version as `ListLayerVersions` and `ListLayers` list it (no content, no layer ARN).
fn render_listed_version(account: &AccountContext, layer: &LayerVersion) -> Value {
    let mut out = Map::new();
    insert_version_fields(&mut out, account, layer);
    Value::Object(out)
}

fn insert_version_fields(
    out: &mut Map<String, Value>,
    account: &AccountContext,
    layer: &LayerVersion,
) {
    out.insert(
        "LayerVersionArn".into(),
        json!(account.layer_version_arn(&layer.layer_name, layer.version)),
    );
    out.insert("Description".into(), json!(layer.description));
    out.insert(
        "CreatedDate".into(),
        json!(crate::wire::lambda_timestamp(layer.created)),
    );
    out.insert("Version".into(), json!(layer.version));
    if let Some(runtimes) = &layer.compatible_runtimes {
        out.insert("CompatibleRuntimes".into(), json!(runtimes));
    }
    if let Some(license) = &layer.license_info {
        out.insert("LicenseInfo".into(), json!(license));
    }
    if let Some(architectures) = &layer.compatible_architectures {
        let names: Vec<&str> = architectures.iter().map(Architecture::as_str).collect();
        out.insert("CompatibleArchitectures".into(), json!(names));
    }
}

/// One statement of a layer version policy, as Lambda writes it.
fn render_statement(statement: &LayerStatement, resource: &str) -> Value {
    let principal = if statement.principal == "*" {
        json!("*")
    } else {
        let account_id = statement
            .principal
            .strip_prefix("arn:")
            .and_then(|arn| arn.split(':').nth(3))
            .unwrap_or(&statement.principal);
        json!({"AWS": format!("arn:aws:iam::{account_id}:root")})
    };
    let mut out = Map::new();
    out.insert("Sid".into(), json!(statement.statement_id));
    out.insert("Effect".into(), json!("Allow"));
    out.insert("Principal".into(), principal);
    out.insert("Action".into(), json!(statement.action));
    out.insert("Resource".into(), json!(resource));
    if let Some(organization) = &statement.organization_id {
        out.insert(
            "Condition".into(),
            json!({"StringEquals": {"aws:PrincipalOrgID": organization}}),
        );
    }
    Value::Object(out)
}

/// The errors of layer commands, as Lambda words them.
pub(crate) fn layer_error(account: &AccountContext, error: EngineError) -> ApiError {
    match error {
        EngineError::LayerVersionNotFound {
            layer_name,
            version,
        } => layer_version_not_found(account, &layer_name, version),
        EngineError::CodeWithLayersTooLarge { limit, actual } => {
            ApiError::invalid_parameter(format!(
                "Function code combined with layers exceeds the maximum allowed size of {limit} \
                 bytes. The actual size is {actual} bytes."
            ))
        }
        EngineError::NoLayerPolicy => {
            ApiError::not_found("No policy is associated with the given resource.")
        }
        EngineError::PolicyRevisionMismatch => ApiError::new(
            ErrorCode::PreconditionFailed,
            "The Revision Id provided does not match the latest Revision Id. Call the \
             GetLayerPolicy API to retrieve the latest Revision Id",
        ),
        EngineError::StatementExists { statement_id } => ApiError::conflict(format!(
            "The statement id ({statement_id}) provided already exists. Please provide a new \
             statement id, or remove the existing statement."
        )),
        EngineError::StatementNotFound { statement_id } => ApiError::not_found(format!(
            "Statement {statement_id} is not found in resource policy."
        )),
        other => engine_error(account, other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> AccountContext {
        AccountContext {
            partition: "aws".into(),
            account_id: "000000000000".into(),
            region: "us-east-1".into(),
        }
    }

    #[test]
    fn layer_arns_are_sorted_into_own_and_others() {
        assert_eq!(
            parse_layer_version_arn(
                "arn:aws:lambda:us-east-1:000000000000:layer:deps:3",
                &account()
            ),
            LayerArn::Own {
                layer_name: "deps".into(),
                version: 3
            }
        );
        assert_eq!(
            parse_layer_version_arn(
                "arn:aws:lambda:eu-west-1:000000000000:layer:deps:3",
                &account()
            ),
            LayerArn::OtherRegion
        );
        assert_eq!(
            parse_layer_version_arn(
                "arn:aws:lambda:us-east-1:123456789012:layer:deps:3",
                &account()
            ),
            LayerArn::Foreign
        );
        assert_eq!(
            own_layer_name(
                "arn:aws:lambda:us-east-1:000000000000:layer:deps",
                &account()
            ),
            Some("deps".into())
        );
        assert_eq!(own_layer_name("deps", &account()), Some("deps".into()));
        assert_eq!(
            own_layer_name(
                "arn:aws:lambda:us-east-1:123456789012:layer:deps",
                &account()
            ),
            None
        );
    }

    #[test]
    fn a_layers_arn_without_version_is_a_model_violation() {
        let mut violations = Violations::default();
        check_function_layers(
            &["arn:aws:lambda:us-east-1:000000000000:layer:deps".to_owned()],
            &mut violations,
        );
        let message = violations.finish().unwrap_err().message;
        assert!(
            message.starts_with(
                "1 validation error detected: Value '[arn:aws:lambda:us-east-1:000000000000:layer:deps]' at 'layers' failed to satisfy constraint: Member must satisfy constraint: [Member must have length less than or equal to 2048, Member must have length greater than or equal to 1, Member must satisfy regular expression pattern: (arn:"
            ),
            "{message}"
        );
        assert!(message.ends_with(", Member must not be null]"), "{message}");
    }

    #[test]
    fn statements_read_like_lambdas() {
        let statement = LayerStatement {
            statement_id: "s1".into(),
            principal: "123456789012".into(),
            action: "lambda:GetLayerVersion".into(),
            organization_id: None,
        };
        assert_eq!(
            render_statement(
                &statement,
                "arn:aws:lambda:us-east-1:000000000000:layer:l:1"
            )
            .to_string(),
            r#"{"Sid":"s1","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"lambda:GetLayerVersion","Resource":"arn:aws:lambda:us-east-1:000000000000:layer:l:1"}"#
        );
    }
}
