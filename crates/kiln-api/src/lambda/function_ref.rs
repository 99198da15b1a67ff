//! Parsing the `FunctionName` parameter: a name, `name:qualifier`, a partial ARN
//! (`ACCOUNT:function:name`) or a full ARN, each optionally qualified, plus `?Qualifier=`.

use kiln_core::{AccountContext, FunctionName, Qualifier};

use crate::error::{ApiError, ErrorCode};
use crate::request::RequestContext;
use crate::validate::{self, Pattern, Violations};

/// Which model shape the parameter has: they differ in length and allowed characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameShape {
    /// `FunctionName` of CreateFunction: up to 140 characters, and a bare name over 64
    /// characters is reported as a constraint violation.
    Create,
    /// `FunctionName` of other operations (Update*): up to 140 characters.
    Function,
    /// `NamespacedFunctionName`: up to 256 characters, dots allowed (Get*, Delete, Invoke).
    Namespaced,
}

impl NameShape {
    fn max_length(self) -> usize {
        match self {
            NameShape::Create | NameShape::Function => 140,
            NameShape::Namespaced => 256,
        }
    }

    fn pattern(self) -> &'static Pattern {
        match self {
            NameShape::Create | NameShape::Function => &validate::FUNCTION_NAME,
            NameShape::Namespaced => &validate::NAMESPACED_FUNCTION_NAME,
        }
    }
}

/// A resolved function reference. The qualifier is kept as given: operations differ in how
/// they treat a qualifier that names no version or alias Kiln can have (`$latest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FunctionRef {
    pub name: FunctionName,
    pub qualifier: Option<String>,
}

impl FunctionRef {
    /// The qualifier classified; `Some(Err(text))` when it is no valid version or alias.
    pub(crate) fn parsed_qualifier(&self) -> Option<Result<Qualifier, &str>> {
        self.qualifier
            .as_deref()
            .map(|text| Qualifier::parse(text).map_err(|_| text))
    }
}

/// Where a name that passed the pattern points, before the name itself is checked.
#[derive(Debug, PartialEq, Eq)]
struct Parts<'a> {
    region: Option<&'a str>,
    account: Option<&'a str>,
    name: &'a str,
    qualifier: Option<&'a str>,
}

/// Parses the `FunctionName` path parameter and the optional `?Qualifier=`.
pub(crate) fn from_request(
    context: &RequestContext,
    account: &AccountContext,
    shape: NameShape,
) -> Result<FunctionRef, ApiError> {
    let query_qualifier = context.query_param("Qualifier");
    parse(
        context.param("FunctionName"),
        query_qualifier,
        account,
        shape,
    )
}

/// Parses a function name in any of its forms, checking it against this account and region.
pub(crate) fn parse(
    raw: &str,
    query_qualifier: Option<&str>,
    account: &AccountContext,
    shape: NameShape,
) -> Result<FunctionRef, ApiError> {
    // AWS lists qualifier violations before name violations, and a name's length and pattern
    // violations together.
    let mut violations = Violations::default();
    if let Some(qualifier) = query_qualifier {
        violations.length(qualifier, "qualifier", 1, 128);
        violations.pattern(qualifier, "qualifier", &validate::QUALIFIER);
    }
    if raw.chars().count() > shape.max_length() {
        violations.add(
            raw,
            "functionName",
            validate::max_length(shape.max_length()),
        );
    }
    violations.pattern(raw, "functionName", shape.pattern());
    violations.finish()?;

    let parts = split(raw);
    if let Some(region) = parts.region
        && region != account.region
    {
        return Err(ApiError::not_found(format!(
            "Functions from '{region}' are not reachable in this region ('{}')",
            account.region
        )));
    }
    if let Some(owner) = parts.account
        && owner != account.account_id
    {
        return Err(ApiError::new(
            ErrorCode::AccessDenied,
            format!(
                "Functions of account {owner} are not accessible from account {}",
                account.account_id
            ),
        ));
    }
    let name = match FunctionName::parse(parts.name) {
        Ok(name) => name,
        Err(_) if shape == NameShape::Create && parts.name.len() > FunctionName::MAX_LEN => {
            return Err(ApiError::invalid_parameter(format!(
                "1 validation error detected: Value '{}' at 'functionName' failed to satisfy \
                 constraint: Member must have length less than or equal to {}",
                parts.name,
                FunctionName::MAX_LEN
            )));
        }
        // Elsewhere a name no function can have (too long, or with dots, which the namespaced
        // pattern allows) simply names no function.
        Err(_) => {
            return Err(super::function_not_found(
                account,
                parts.name,
                parts.qualifier.or(query_qualifier),
            ));
        }
    };

    let qualifier = match (parts.qualifier, query_qualifier) {
        (Some(derived), Some(given)) if derived != given => {
            return Err(ApiError::invalid_parameter(
                "The derived qualifier from the function name does not match the specified qualifier.",
            ));
        }
        (Some(qualifier), _) | (None, Some(qualifier)) => Some(qualifier),
        (None, None) => None,
    };
    Ok(FunctionRef {
        name,
        qualifier: qualifier.map(str::to_owned),
    })
}

/// Splits a name that matched the model pattern into its parts. The pattern is
/// `(arn:PARTITION:lambda:)?(REGION:)?(ACCOUNT:)?(function:)?NAME(:QUALIFIER)?`.
fn split(raw: &str) -> Parts<'_> {
    let mut pieces: Vec<&str> = raw.split(':').collect();
    let mut region = None;
    let mut account = None;
    if pieces.first() == Some(&"arn") && pieces.len() >= 3 {
        pieces.drain(..3);
    }
    if pieces.len() >= 2 && looks_like_region(pieces[0]) {
        region = Some(pieces.remove(0));
    }
    if pieces.len() >= 2 && pieces[0].len() == 12 && pieces[0].bytes().all(|b| b.is_ascii_digit()) {
        account = Some(pieces.remove(0));
    }
    if pieces.len() >= 2 && pieces[0] == "function" {
        pieces.remove(0);
    }
    Parts {
        region,
        account,
        name: pieces.first().copied().unwrap_or_default(),
        qualifier: pieces.get(1).copied(),
    }
}

/// `us-east-1`, `eu-central-2`, `us-gov-west-1`, `eusc-de-east-1`: letters and hyphens ending in
/// `-DIGIT`.
fn looks_like_region(piece: &str) -> bool {
    let bytes = piece.as_bytes();
    bytes.len() >= 6
        && bytes[bytes.len() - 1].is_ascii_digit()
        && bytes[bytes.len() - 2] == b'-'
        && bytes[..bytes.len() - 2]
            .iter()
            .all(|b| b.is_ascii_lowercase() || *b == b'-')
        && bytes[..bytes.len() - 2].contains(&b'-')
}

#[cfg(test)]
mod tests {
    use kiln_core::VersionId;

    use super::*;

    fn account() -> AccountContext {
        AccountContext {
            partition: "aws".into(),
            account_id: "000000000000".into(),
            region: "us-east-1".into(),
        }
    }

    fn parse_ok(raw: &str, query: Option<&str>) -> FunctionRef {
        parse(raw, query, &account(), NameShape::Namespaced).unwrap()
    }

    fn parse_err(raw: &str, query: Option<&str>) -> ApiError {
        parse(raw, query, &account(), NameShape::Namespaced).unwrap_err()
    }

    #[test]
    fn every_form_names_the_same_function() {
        for raw in [
            "f",
            "000000000000:function:f",
            "arn:aws:lambda:us-east-1:000000000000:function:f",
            "us-east-1:000000000000:function:f",
        ] {
            let parsed = parse_ok(raw, None);
            assert_eq!(parsed.name.as_str(), "f", "{raw}");
            assert_eq!(parsed.qualifier, None, "{raw}");
        }
        assert_eq!(
            parse_ok("arn:aws:lambda:us-east-1:000000000000:function:f:7", None).parsed_qualifier(),
            Some(Ok(Qualifier::Version(VersionId::Published(7))))
        );
        assert_eq!(
            parse_ok("f:live", None).parsed_qualifier(),
            Some(Ok(Qualifier::Alias("live".into())))
        );
        assert_eq!(
            parse_ok("f", Some("$LATEST")).parsed_qualifier(),
            Some(Ok(Qualifier::Version(VersionId::Latest)))
        );
        assert_eq!(
            parse_ok("f", Some("$latest")).parsed_qualifier(),
            Some(Err("$latest"))
        );
    }

    #[test]
    fn mismatched_qualifiers_are_refused() {
        let error = parse_err("f:1", Some("2"));
        assert_eq!(error.code, ErrorCode::InvalidParameterValue);
        assert_eq!(
            error.message,
            "The derived qualifier from the function name does not match the specified qualifier."
        );
        assert_eq!(parse_ok("f:1", Some("1")).name.as_str(), "f");
    }

    #[test]
    fn other_regions_and_accounts_are_out_of_reach() {
        let error = parse_err(
            "arn:aws:lambda:ap-southeast-1:000000000000:function:f",
            None,
        );
        assert_eq!(error.code, ErrorCode::ResourceNotFound);
        assert_eq!(
            error.message,
            "Functions from 'ap-southeast-1' are not reachable in this region ('us-east-1')"
        );
        let error = parse_err("arn:aws:lambda:us-east-1:123456789012:function:f", None);
        assert_eq!(error.code, ErrorCode::AccessDenied);
    }

    #[test]
    fn malformed_names_fail_the_model_pattern() {
        let error = parse_err("invalid:function:name", None);
        assert_eq!(error.code, ErrorCode::Validation);
        assert!(error.message.starts_with(
            "1 validation error detected: Value 'invalid:function:name' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern: (arn:"
        ));
        let error = parse_err("f", Some("bad?qualifier"));
        assert_eq!(error.code, ErrorCode::Validation);
        assert!(error.message.contains("at 'qualifier'"));
        let error = parse_err("bad?name", Some(&"q".repeat(129)));
        assert!(
            error
                .message
                .starts_with("2 validation errors detected: Value '"),
            "{}",
            error.message
        );
        assert!(error.message.find("'qualifier'") < error.message.find("'functionName'"));
    }

    #[test]
    fn long_names_are_refused_as_aws_does() {
        let long = "a".repeat(65);
        let error = parse(&long, None, &account(), NameShape::Create).unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidParameterValue);
        assert!(
            error
                .message
                .ends_with("Member must have length less than or equal to 64")
        );
        let error = parse(&long, None, &account(), NameShape::Namespaced).unwrap_err();
        assert_eq!(
            error.code,
            ErrorCode::ResourceNotFound,
            "elsewhere it names no function"
        );
        let arn = format!(
            "arn:aws:lambda:bad-region:000000000000:function:{}",
            "a".repeat(100)
        );
        let error = parse(&arn, None, &account(), NameShape::Create).unwrap_err();
        assert_eq!(error.code, ErrorCode::Validation);
        assert!(
            error.message.starts_with("2 validation errors detected: ")
                && error
                    .message
                    .contains("Member must have length less than or equal to 140; "),
            "{}",
            error.message
        );
    }

    #[test]
    fn dotted_names_do_not_exist() {
        let error = parse_err("my.function", None);
        assert_eq!(error.code, ErrorCode::ResourceNotFound);
        assert_eq!(
            error.message,
            "Function not found: arn:aws:lambda:us-east-1:000000000000:function:my.function"
        );
    }
}
