//! Pagination parameters shared by Lambda's List operations: `MaxItems` (checked against the
//! operation's model range, capped at the server's page size) and opaque `Marker`s.

use base64::Engine as _;

use super::config;
use crate::error::ApiError;
use crate::request::RequestContext;
use crate::validate::Violations;

/// `MaxItems`: a violation of `1..=model_max` goes into `violations` (reported with the
/// request's others); absent, the page holds `page_limit` items, and never more.
pub(crate) fn max_items(
    context: &RequestContext,
    violations: &mut Violations,
    model_max: i64,
    page_limit: usize,
) -> Result<usize, ApiError> {
    let Some(text) = context.query_param("MaxItems") else {
        return Ok(page_limit);
    };
    let value = text.parse::<i64>().map_err(|_| {
        ApiError::invalid_content(format!(
            "Could not parse request: MaxItems '{text}' is not an integer"
        ))
    })?;
    violations.range(value, "maxItems", 1, model_max);
    Ok(usize::try_from(value).unwrap_or(1).min(page_limit))
}

/// A position, as the opaque marker clients pass back.
pub(crate) fn encode_marker(position: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(position)
}

/// The position a marker encodes.
pub(crate) fn decode_marker(marker: &str) -> Result<String, ApiError> {
    let invalid = || config::refuse("The marker provided is not valid.");
    let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(marker)
        .map_err(|_| invalid())?;
    String::from_utf8(decoded).map_err(|_| invalid())
}

/// The request's `Marker`, decoded.
pub(crate) fn marker(context: &RequestContext) -> Result<Option<String>, ApiError> {
    context.query_param("Marker").map(decode_marker).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip_and_garbage_is_refused() {
        assert_eq!(
            decode_marker(&encode_marker("f:$LATEST")).unwrap(),
            "f:$LATEST"
        );
        assert_eq!(
            decode_marker("***").unwrap_err().message,
            "The marker provided is not valid."
        );
    }
}
