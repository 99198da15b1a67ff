//! Versions and aliases: PublishVersion, ListVersionsByFunction, CreateAlias, GetAlias,
//! ListAliases, UpdateAlias, DeleteAlias.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::Response;
use kiln_core::{AdditionalVersion, FunctionName, Qualifier, VersionId};
use kiln_engine::{AliasChange, EngineError, NewAlias, PublishRequest};
use serde::Deserialize;
use serde_json::{Value, json};

use super::function_ref::{self, NameShape};
use super::render::{self, View};
use super::{config, paging};
use super::{engine_error, json, lookup, no_content};
use crate::ApiState;
use crate::error::ApiError;
use crate::request::RequestContext;
use crate::validate::{self, Violations};

/// Server-side cap on list page sizes, as Lambda's.
const LIST_PAGE_LIMIT: usize = 50;

/// The model's pattern for alias names; the lookahead (not all digits) is checked by hand
/// because the `regex` crate has no lookaround.
const ALIAS_NAME_PATTERN: &str = "(?!^[0-9]+$)([a-zA-Z0-9-_]+)";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PublishVersionRequest {
    code_sha256: Option<String>,
    description: Option<String>,
    revision_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RoutingConfigIn {
    additional_version_weights: Option<BTreeMap<String, Option<f64>>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateAliasRequest {
    name: Option<String>,
    function_version: Option<String>,
    description: Option<String>,
    #[serde(default, deserialize_with = "crate::wire::optional_object")]
    routing_config: Option<RoutingConfigIn>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateAliasRequest {
    function_version: Option<String>,
    description: Option<String>,
    #[serde(default, deserialize_with = "crate::wire::optional_object")]
    routing_config: Option<RoutingConfigIn>,
    revision_id: Option<String>,
}

/// `POST /2015-03-31/functions/{FunctionName}/versions`.
pub(crate) async fn publish(
    state: &ApiState,
    context: &RequestContext,
) -> Result<Response, ApiError> {
    let request: PublishVersionRequest = context.json()?;
    let account = state.engine().account();
    let mut violations = Violations::default();
    if let Some(description) = &request.description {
        violations.length(description, "description", 0, 256);
    }
    violations.finish()?;
    let name = unqualified(context, state)?;
    let published = state
        .engine()
        .publish_version(
            &name,
            PublishRequest {
                code_sha256: request.code_sha256,
                description: request.description,
                expected_revision: request.revision_id,
            },
        )
        .await
        .map_err(|error| engine_error(account, error))?;
    let function = lookup(state, &name)?;
    Ok(json(
        StatusCode::CREATED,
        &render::configuration(account, &function, &published, true, View::Full),
    ))
}

/// `GET /2015-03-31/functions/{FunctionName}/versions`.
pub(crate) fn list_versions(
    state: &ApiState,
    context: &RequestContext,
) -> Result<Response, ApiError> {
    let mut violations = Violations::default();
    let max_items = paging::max_items(context, &mut violations, 10_000, LIST_PAGE_LIMIT)?;
    violations.finish()?;
    let name = unqualified(context, state)?;
    let account = state.engine().account();
    let function = lookup(state, &name)?;
    let after = paging::marker(context)?;
    let mut entries = function.versions().filter(|version| {
        after
            .as_deref()
            .is_none_or(|marker| version_after(version.version_id(), marker))
    });
    let page: Vec<Value> = entries
        .by_ref()
        .take(max_items)
        .map(|version| render::configuration(account, &function, version, true, View::Listing))
        .collect();
    let mut body = json!({ "Versions": page });
    if entries.next().is_some()
        && let Some(last) = body["Versions"]
            .as_array()
            .and_then(|page| page.last())
            .and_then(|last| last["Version"].as_str())
    {
        body["NextMarker"] = json!(paging::encode_marker(last));
    }
    Ok(json(StatusCode::OK, &body))
}

/// `POST /2015-03-31/functions/{FunctionName}/aliases`.
pub(crate) async fn create_alias(
    state: &ApiState,
    context: &RequestContext,
) -> Result<Response, ApiError> {
    let request: CreateAliasRequest = context.json()?;
    let account = state.engine().account();
    let mut violations = Violations::default();
    match &request.name {
        None => violations.add_null("name"),
        Some(name) => check_alias_name(name, "name", &mut violations),
    }
    match &request.function_version {
        None => violations.add_null("functionVersion"),
        Some(version) => check_function_version(version, &mut violations),
    }
    if let Some(description) = &request.description {
        violations.length(description, "description", 0, 256);
    }
    check_routing_constraints(request.routing_config.as_ref(), &mut violations);
    violations.finish()?;
    let name = unqualified(context, state)?;
    let routing = routing(request.routing_config.as_ref())?;
    let function_version = parse_version(request.function_version.as_deref().unwrap_or_default())?;
    let alias = state
        .engine()
        .create_alias(
            &name,
            NewAlias {
                name: request.name.unwrap_or_default(),
                function_version,
                description: request.description.unwrap_or_default(),
                routing,
            },
        )
        .await
        .map_err(|error| engine_error(account, error))?;
    let function = lookup(state, &name)?;
    Ok(json(
        StatusCode::CREATED,
        &render::alias(account, &function, &alias),
    ))
}

/// `GET /2015-03-31/functions/{FunctionName}/aliases/{Name}`.
pub(crate) fn get_alias(state: &ApiState, context: &RequestContext) -> Result<Response, ApiError> {
    let alias_name = alias_param(context)?;
    let name = unqualified(context, state)?;
    let account = state.engine().account();
    let function = lookup(state, &name)?;
    let alias = state
        .engine()
        .alias(&name, &alias_name)
        .map_err(|error| engine_error(account, error))?;
    Ok(json(
        StatusCode::OK,
        &render::alias(account, &function, &alias),
    ))
}

/// `GET /2015-03-31/functions/{FunctionName}/aliases`.
pub(crate) fn list_aliases(
    state: &ApiState,
    context: &RequestContext,
) -> Result<Response, ApiError> {
    let mut violations = Violations::default();
    let filter = context.query_param("FunctionVersion");
    if let Some(version) = filter {
        check_function_version(version, &mut violations);
    }
    let max_items = paging::max_items(context, &mut violations, 10_000, LIST_PAGE_LIMIT)?;
    violations.finish()?;
    let name = unqualified(context, state)?;
    let account = state.engine().account();
    let function = lookup(state, &name)?;
    let filter = filter.and_then(VersionId::parse);
    let after = paging::marker(context)?;
    let mut entries = function
        .aliases
        .values()
        .filter(|alias| filter.is_none_or(|version| alias.version_id() == version))
        .filter(|alias| {
            after
                .as_deref()
                .is_none_or(|marker| alias.name.as_str() > marker)
        });
    let page: Vec<_> = entries.by_ref().take(max_items).collect();
    let mut body = json!({
        "Aliases": page.iter().map(|alias| render::alias(account, &function, alias)).collect::<Vec<_>>(),
    });
    if entries.next().is_some()
        && let Some(last) = page.last()
    {
        body["NextMarker"] = json!(paging::encode_marker(&last.name));
    }
    Ok(json(StatusCode::OK, &body))
}

/// `PUT /2015-03-31/functions/{FunctionName}/aliases/{Name}`.
pub(crate) async fn update_alias(
    state: &ApiState,
    context: &RequestContext,
) -> Result<Response, ApiError> {
    let request: UpdateAliasRequest = context.json()?;
    let account = state.engine().account();
    let mut violations = Violations::default();
    check_alias_name(context.param("Name"), "name", &mut violations);
    if let Some(version) = &request.function_version {
        check_function_version(version, &mut violations);
    }
    if let Some(description) = &request.description {
        violations.length(description, "description", 0, 256);
    }
    check_routing_constraints(request.routing_config.as_ref(), &mut violations);
    violations.finish()?;
    let alias_name = context.param("Name").to_owned();
    let name = unqualified(context, state)?;
    let change = AliasChange {
        function_version: request
            .function_version
            .as_deref()
            .map(parse_version)
            .transpose()?,
        description: request.description,
        routing: match &request.routing_config {
            None => None,
            Some(routing_config) => Some(routing(Some(routing_config))?),
        },
        expected_revision: request.revision_id,
    };
    let alias = state
        .engine()
        .update_alias(&name, &alias_name, change)
        .await
        .map_err(|error| match error {
            // UpdateAlias words its 404 differently from GetAlias.
            EngineError::AliasNotFound { name, alias } => ApiError::not_found(format!(
                "Alias not found: {}:{alias}",
                account.function_arn(&name)
            )),
            other => engine_error(account, other),
        })?;
    let function = lookup(state, &name)?;
    Ok(json(
        StatusCode::OK,
        &render::alias(account, &function, &alias),
    ))
}

/// `DELETE /2015-03-31/functions/{FunctionName}/aliases/{Name}`.
pub(crate) async fn delete_alias(
    state: &ApiState,
    context: &RequestContext,
) -> Result<Response, ApiError> {
    let alias_name = alias_param(context)?;
    let name = unqualified(context, state)?;
    let account = state.engine().account();
    state
        .engine()
        .delete_alias(&name, &alias_name)
        .await
        .map_err(|error| engine_error(account, error))?;
    Ok(no_content())
}

/// The function named by the path, which these operations take unqualified.
pub(super) fn unqualified(
    context: &RequestContext,
    state: &ApiState,
) -> Result<FunctionName, ApiError> {
    let account = state.engine().account();
    let reference = function_ref::from_request(context, account, NameShape::Function)?;
    match reference.parsed_qualifier() {
        None => Ok(reference.name),
        Some(_) => Err(config::refuse(
            "This operation is permitted on Lambda functions only. Aliases and versions do not \
             support this operation. Please specify either a function name or an unqualified \
             function ARN.",
        )),
    }
}

/// The `{Name}` path parameter, checked as the model checks it.
fn alias_param(context: &RequestContext) -> Result<String, ApiError> {
    let name = context.param("Name");
    let mut violations = Violations::default();
    check_alias_name(name, "name", &mut violations);
    violations.finish()?;
    Ok(name.to_owned())
}

fn check_alias_name(name: &str, field: &str, violations: &mut Violations) {
    violations.length(name, field, 1, 128);
    let characters_ok = !name.is_empty()
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_');
    let all_digits = !name.is_empty() && name.bytes().all(|byte| byte.is_ascii_digit());
    if !characters_ok || all_digits {
        violations.add(
            name,
            field,
            format!("Member must satisfy regular expression pattern: {ALIAS_NAME_PATTERN}"),
        );
    }
}

fn check_function_version(version: &str, violations: &mut Violations) {
    violations.length(version, "functionVersion", 1, 1024);
    violations.pattern(version, "functionVersion", &validate::FUNCTION_VERSION);
}

/// `{2=0.5}`, as the Java service prints a map in its validation messages.
fn java_map(weights: &BTreeMap<String, Option<f64>>) -> String {
    let entries: Vec<String> = weights
        .iter()
        .map(|(key, weight)| match weight {
            Some(weight) => format!("{key}={weight:?}"),
            None => format!("{key}=null"),
        })
        .collect();
    format!("{{{}}}", entries.join(", "))
}

fn check_routing_constraints(routing: Option<&RoutingConfigIn>, violations: &mut Violations) {
    let Some(weights) = routing.and_then(|routing| routing.additional_version_weights.as_ref())
    else {
        return;
    };
    let field = "routingConfig.additionalVersionWeights";
    let key_ok = |key: &String| {
        !key.is_empty() && key.len() <= 1024 && key.bytes().all(|byte| byte.is_ascii_digit())
    };
    if !weights.keys().all(key_ok) {
        violations.add(
            java_map(weights),
            field,
            "Map keys must satisfy constraint: [Member must have length less than or equal to \
             1024, Member must have length greater than or equal to 1, Member must satisfy \
             regular expression pattern: [0-9]+]",
        );
    }
    let value_ok =
        |weight: &Option<f64>| weight.is_some_and(|weight| (0.0..=1.0).contains(&weight));
    if !weights.values().all(value_ok) {
        violations.add(
            java_map(weights),
            field,
            "Map value must satisfy constraint: [Member must have value less than or equal to \
             1.0, Member must have value greater than or equal to 0.0, Member must not be null]",
        );
    }
}

/// The additional version of a validated routing configuration.
fn routing(routing: Option<&RoutingConfigIn>) -> Result<Option<AdditionalVersion>, ApiError> {
    let Some(weights) = routing.and_then(|routing| routing.additional_version_weights.as_ref())
    else {
        return Ok(None);
    };
    if weights.len() > 1 {
        return Err(config::refuse(
            "Number of items in AdditionalVersionWeights cannot be greater than 1",
        ));
    }
    let Some((version, weight)) = weights.iter().next() else {
        return Ok(None);
    };
    let version = version
        .parse::<u64>()
        .map_err(|_| config::refuse(&format!("Invalid function version {version}.")))?;
    Ok(Some(AdditionalVersion {
        version,
        weight: weight.unwrap_or_default(),
    }))
}

fn parse_version(text: &str) -> Result<VersionId, ApiError> {
    match Qualifier::parse(text) {
        Ok(Qualifier::Version(version)) => Ok(version),
        _ => Err(config::refuse(&format!("Invalid function version {text}."))),
    }
}

/// Whether `version` comes after the marker's version (`$LATEST` first, then by number).
fn version_after(version: VersionId, marker: &str) -> bool {
    let rank = |version: VersionId| match version {
        VersionId::Latest => 0,
        VersionId::Published(number) => number.saturating_add(1),
    };
    VersionId::parse(marker).is_some_and(|marker| rank(version) > rank(marker))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_names_follow_the_model() {
        let check = |name: &str| {
            let mut violations = Violations::default();
            check_alias_name(name, "name", &mut violations);
            violations.finish().err().map(|error| error.message)
        };
        assert_eq!(check("live"), None);
        assert_eq!(check("blue-green_2"), None);
        assert_eq!(
            check("2024").as_deref(),
            Some(
                "1 validation error detected: Value '2024' at 'name' failed to satisfy \
                 constraint: Member must satisfy regular expression pattern: \
                 (?!^[0-9]+$)([a-zA-Z0-9-_]+)"
            )
        );
        assert!(check("a.b").is_some());
        assert!(check(&"a".repeat(129)).is_some());
    }

    #[test]
    fn routing_weights_are_reported_as_aws_does() {
        let routing = |json: &str| -> RoutingConfigIn { serde_json::from_str(json).unwrap() };
        let mut violations = Violations::default();
        check_routing_constraints(
            Some(&routing(r#"{"AdditionalVersionWeights": {"2": 2.0}}"#)),
            &mut violations,
        );
        assert_eq!(
            violations.finish().unwrap_err().message,
            "1 validation error detected: Value '{2=2.0}' at \
             'routingConfig.additionalVersionWeights' failed to satisfy constraint: Map value \
             must satisfy constraint: [Member must have value less than or equal to 1.0, Member \
             must have value greater than or equal to 0.0, Member must not be null]"
        );
        let mut violations = Violations::default();
        check_routing_constraints(
            Some(&routing(
                r#"{"AdditionalVersionWeights": {"$LATEST": 0.5}}"#,
            )),
            &mut violations,
        );
        assert!(
            violations
                .finish()
                .unwrap_err()
                .message
                .contains("Value '{$LATEST=0.5}' at 'routingConfig.additionalVersionWeights' failed to satisfy constraint: Map keys must satisfy")
        );
        let two = routing(r#"{"AdditionalVersionWeights": {"2": 0.5, "3": 0.1}}"#);
        assert_eq!(
            routing_of(&two),
            "Number of items in AdditionalVersionWeights cannot be greater than 1"
        );
    }

    fn routing_of(config: &RoutingConfigIn) -> String {
        routing(Some(config)).unwrap_err().message
    }

    #[test]
    fn version_markers_order_latest_first() {
        assert!(version_after(VersionId::Published(1), "$LATEST"));
        assert!(!version_after(VersionId::Latest, "$LATEST"));
        assert!(version_after(VersionId::Published(10), "9"));
        assert!(!version_after(VersionId::Published(2), "9"));
    }
}
