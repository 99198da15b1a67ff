//! Tags: TagResource, UntagResource, ListTags.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::Response;
use kiln_core::{AccountContext, FunctionName};
use serde::Deserialize;
use serde_json::json;

use super::{engine_error, function_not_found, json, lookup, no_content};
use crate::ApiState;
use crate::error::{ApiError, ErrorCode};
use crate::request::RequestContext;
use crate::validate::{self, Violations};

/// Lambda's limit on tags per resource.
pub(crate) const MAX_TAGS: usize = 50;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TagResourceRequest {
    tags: Option<BTreeMap<String, String>>,
}

/// Model constraints on a tag map: keys 1-128 characters, values up to 256, both from a
/// restricted character set.
pub(crate) fn check_tag_constraints(tags: &BTreeMap<String, String>, violations: &mut Violations) {
    let shown = || {
        let pairs: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{{{}}}", pairs.join(", "))
    };
    let bad_key = tags.keys().any(|key| {
        key.is_empty() || key.chars().count() > 128 || !validate::TAG_KEY_OR_VALUE.matches(key)
    });
    if bad_key {
        violations.add(
            shown(),
            "tags",
            format!(
                "Map keys must satisfy constraint: [{}, {}, {}]",
                validate::max_length(128),
                validate::min_length(1),
                validate::TAG_KEY_OR_VALUE.constraint()
            ),
        );
    }
    let bad_value = tags
        .values()
        .any(|value| value.chars().count() > 256 || !validate::TAG_KEY_OR_VALUE.matches(value));
    if bad_value {
        violations.add(
            shown(),
            "tags",
            format!(
                "Map value must satisfy constraint: [{}, {}]",
                validate::max_length(256),
                validate::TAG_KEY_OR_VALUE.constraint()
            ),
        );
    }
}

/// Resolves the `{Resource}` ARN of a tag operation to a function.
fn target(context: &RequestContext, account: &AccountContext) -> Result<FunctionName, ApiError> {
    let arn = context.param("Resource");
    let mut violations = Violations::default();
    violations.pattern(arn, "resource", &validate::TAGGABLE_RESOURCE);
    violations.finish()?;
    // The pattern guarantees arn:PARTITION:lambda:REGION:ACCOUNT:TYPE:REST.
    let pieces: Vec<&str> = arn.splitn(7, ':').collect();
    let (region, owner, kind, rest) = (pieces[3], pieces[4], pieces[5], pieces[6]);
    if region != account.region {
        return Err(ApiError::not_found(format!(
            "Functions from '{region}' are not reachable in this region ('{}')",
            account.region
        )));
    }
    if owner != account.account_id {
        return Err(ApiError::new(
            ErrorCode::AccessDenied,
            format!(
                "Resources of account {owner} are not accessible from account {}",
                account.account_id
            ),
        ));
    }
    match kind {
        "function" => {
            if rest.contains(':') {
                return Err(ApiError::invalid_parameter(
                    "Tags on function aliases and versions are not supported. Please specify a \
                     function ARN.",
                ));
            }
            FunctionName::parse(rest).map_err(|_| function_not_found(account, rest, None))
        }
        // Kiln has none of these resources yet.
        "event-source-mapping" => Err(ApiError::not_found(format!(
            "Event source mapping not found: {arn}"
        ))),
        "code-signing-config" => Err(ApiError::not_found(format!(
            "The Lambda code signing configuration {arn} can not be found."
        ))),
        "capacity-provider" => Err(ApiError::not_found(format!(
            "Capacity provider not found: {arn}"
        ))),
        _ => Err(ApiError::not_found(format!("Resource not found: {arn}"))),
    }
}

/// `POST /2017-03-31/tags/{Resource}`.
pub(crate) async fn tag(state: &ApiState, context: &RequestContext) -> Result<Response, ApiError> {
    let request: TagResourceRequest = context.json()?;
    let account = state.engine().account();
    let mut violations = Violations::default();
    match &request.tags {
        None => violations.add_null("tags"),
        Some(tags) => check_tag_constraints(tags, &mut violations),
    }
    violations.finish()?;
    let name = target(context, account)?;
    lookup(state, &name)?;
    let tags = request.tags.unwrap_or_default();
    if tags.is_empty() {
        return Err(ApiError::invalid_parameter(
            "An error occurred and the request cannot be processed.",
        ));
    }
    state
        .engine()
        .tag_function(&name, tags, MAX_TAGS)
        .await
        .map_err(|error| engine_error(account, error))?;
    Ok(no_content())
}

/// `DELETE /2017-03-31/tags/{Resource}?tagKeys=...`.
pub(crate) async fn untag(
    state: &ApiState,
    context: &RequestContext,
) -> Result<Response, ApiError> {
    let account = state.engine().account();
    let keys: Vec<String> = context
        .query_values("tagKeys")
        .into_iter()
        .map(str::to_owned)
        .collect();
    if keys.is_empty() {
        let mut violations = Violations::default();
        violations.add_null("tagKeys");
        violations.finish()?;
    }
    let name = target(context, account)?;
    lookup(state, &name)?;
    state
        .engine()
        .untag_function(&name, &keys)
        .await
        .map_err(|error| engine_error(account, error))?;
    Ok(no_content())
}

/// `GET /2017-03-31/tags/{Resource}`.
pub(crate) fn list(state: &ApiState, context: &RequestContext) -> Result<Response, ApiError> {
    let account = state.engine().account();
    let name = target(context, account)?;
    let function = lookup(state, &name)?;
    Ok(json(StatusCode::OK, &json!({ "Tags": function.tags })))
}
