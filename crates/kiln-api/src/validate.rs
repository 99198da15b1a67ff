//! Constraint checks reported the way AWS reports them.
//!
//! AWS checks a request against the service model's `min`, `max`, `pattern` and `enum`
//! constraints and answers with every violation at once:
//! `2 validation errors detected: Value '0' at 'timeout' failed to satisfy constraint: Member
//! must have value greater than or equal to 1; Value ...`. botocore only checks `required`,
//! `min` and types client-side, so the rest is ours to enforce. [`Violations`] collects them and
//! [`Violations::finish`] turns them into one error.

use std::fmt::Display;
use std::sync::LazyLock;

use regex::Regex;

use crate::error::{ApiError, ErrorCode};

/// Violations found so far in one request.
#[derive(Debug, Default)]
pub(crate) struct Violations {
    items: Vec<String>,
}

impl Violations {
    /// `Value '<value>' at '<field>' failed to satisfy constraint: <constraint>`.
    pub(crate) fn add(&mut self, value: impl Display, field: &str, constraint: impl Display) {
        self.items.push(format!(
            "Value '{value}' at '{field}' failed to satisfy constraint: {constraint}"
        ));
    }

    /// `Value null at '<field>' failed to satisfy constraint: Member must not be null`.
    pub(crate) fn add_null(&mut self, field: &str) {
        self.items.push(format!(
            "Value null at '{field}' failed to satisfy constraint: Member must not be null"
        ));
    }

    /// A violation whose value AWS does not echo (secrets such as environment variables).
    pub(crate) fn add_redacted(&mut self, field: &str, constraint: impl Display) {
        self.items.push(format!(
            "Value at '{field}' failed to satisfy constraint: {constraint}"
        ));
    }

    /// Checks `min <= value <= max` for an integer field.
    pub(crate) fn range(&mut self, value: i64, field: &str, min: i64, max: i64) {
        if value < min {
            self.add(value, field, min_value(min));
        } else if value > max {
            self.add(value, field, max_value(max));
        }
    }

    /// Checks the length of a string field, in characters.
    pub(crate) fn length(&mut self, value: &str, field: &str, min: usize, max: usize) {
        let length = value.chars().count();
        if length < min {
            self.add(value, field, min_length(min));
        } else if length > max {
            self.add(value, field, max_length(max));
        }
    }

    /// Checks a string field against a model pattern.
    pub(crate) fn pattern(&mut self, value: &str, field: &str, pattern: &Pattern) {
        if !pattern.matches(value) {
            self.add(value, field, pattern.constraint());
        }
    }

    /// Checks a string field against an enum.
    pub(crate) fn one_of(&mut self, value: &str, field: &str, allowed: &[&str]) {
        if !allowed.contains(&value) {
            self.add(value, field, enum_set(allowed));
        }
    }

    /// `Ok` if nothing was found, otherwise one `ValidationException` listing everything.
    pub(crate) fn finish(self) -> Result<(), ApiError> {
        self.finish_as(ErrorCode::Validation)
    }

    /// As [`Violations::finish`], with another error code (AWS uses
    /// `InvalidParameterValueException` for a few fields).
    pub(crate) fn finish_as(self, code: ErrorCode) -> Result<(), ApiError> {
        match self.items.len() {
            0 => Ok(()),
            1 => Err(ApiError::new(
                code,
                format!("1 validation error detected: {}", self.items[0]),
            )),
            n => Err(ApiError::new(
                code,
                format!("{n} validation errors detected: {}", self.items.join("; ")),
            )),
        }
    }
}

pub(crate) fn min_value(min: impl Display) -> String {
    format!("Member must have value greater than or equal to {min}")
}

pub(crate) fn max_value(max: impl Display) -> String {
    format!("Member must have value less than or equal to {max}")
}

pub(crate) fn min_length(min: usize) -> String {
    format!("Member must have length greater than or equal to {min}")
}

pub(crate) fn max_length(max: usize) -> String {
    format!("Member must have length less than or equal to {max}")
}

pub(crate) fn enum_set(values: &[&str]) -> String {
    format!(
        "Member must satisfy enum value set: [{}]",
        values.join(", ")
    )
}

/// A pattern from the service model: the text AWS prints, and a compiled full-match regex.
#[derive(Debug)]
pub(crate) struct Pattern {
    text: &'static str,
    regex: LazyLock<Regex>,
}

impl Pattern {
    pub(crate) fn matches(&self, value: &str) -> bool {
        self.regex.is_match(value)
    }

    pub(crate) fn constraint(&self) -> String {
        format!(
            "Member must satisfy regular expression pattern: {}",
            self.text
        )
    }
}

macro_rules! model_pattern {
    ($name:ident, $text:expr) => {
        pub(crate) static $name: Pattern = Pattern {
            text: $text,
            regex: LazyLock::new(|| {
                Regex::new(concat!("^(?:", $text, ")$")).expect("model patterns are valid regexes")
            }),
        };
    };
}

model_pattern!(
    ROLE_ARN,
    r"arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+"
);
model_pattern!(
    FUNCTION_NAME,
    r"(arn:(aws[a-zA-Z-]*)?:lambda:)?((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?([a-zA-Z0-9-_]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?"
);
model_pattern!(
    NAMESPACED_FUNCTION_NAME,
    r"(arn:(aws[a-zA-Z-]*)?:lambda:)?((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?([a-zA-Z0-9-_\.]+)(:(\$LATEST(\.PUBLISHED)?|[a-zA-Z0-9-_]+))?"
);
model_pattern!(QUALIFIER, r"\$(LATEST(\.PUBLISHED)?)|[a-zA-Z0-9-_$]+");
model_pattern!(FUNCTION_VERSION, r"(\$LATEST|[0-9]+)");
model_pattern!(
    EVENT_SOURCE_ARN,
    r"arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\-])+:((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1})?:(\d{12})?:(.*)"
);
model_pattern!(HANDLER, r"[^\s]+");
model_pattern!(KMS_KEY_ARN, r"(arn:(aws[a-zA-Z-]*)?:[a-z0-9-.]+:.*)|()");
model_pattern!(LOG_GROUP, r"[\.\-_/#A-Za-z0-9]+");
model_pattern!(ENV_VAR_NAME, r"[a-zA-Z]([a-zA-Z0-9_])+");
model_pattern!(
    TAGGABLE_RESOURCE,
    r"arn:(aws[a-zA-Z-]*):lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:(function:[a-zA-Z0-9-_]+(:(\$LATEST|[a-zA-Z0-9-_]+))?|layer:([a-zA-Z0-9-_]+)|code-signing-config:csc-[a-z0-9]{17}|event-source-mapping:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|capacity-provider:[a-zA-Z0-9-_]+)"
);
model_pattern!(
    LAYER_NAME,
    r"(arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\d{12}:layer:[a-zA-Z0-9-_]+)|[a-zA-Z0-9-_]+"
);
model_pattern!(
    LAYER_VERSION_ARN,
    r"(arn:(aws[a-zA-Z-]*)?:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+)|(arn:[a-zA-Z0-9-]+:lambda:::awslayer:[a-zA-Z0-9-_]+)"
);
model_pattern!(STATEMENT_ID, r"([a-zA-Z0-9-_]+)");
model_pattern!(LAYER_PERMISSION_ACTION, r"lambda:GetLayerVersion");
model_pattern!(
    LAYER_PRINCIPAL,
    r"\d{12}|\*|arn:(aws[a-zA-Z-]*):iam::\d{12}:root"
);
model_pattern!(ORGANIZATION_ID, r"o-[a-z0-9]{10,32}");
model_pattern!(SUBNET_ID, r"subnet-[0-9a-z]*");
model_pattern!(SECURITY_GROUP_ID, r"sg-[0-9a-zA-Z]*");
model_pattern!(TAG_KEY_OR_VALUE, r"[\p{L}\p{Z}\p{N}_.:/=+\-@]*");
model_pattern!(
    DESTINATION_ARN,
    r"$|kafka://([^.]([a-zA-Z0-9\-_.]{0,248}))|arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\-])+:((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1})?:(\d{12})?:(.*)"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_violation_reads_like_aws() {
        let mut violations = Violations::default();
        violations.range(3000, "timeout", 1, 900);
        let error = violations.finish().unwrap_err();
        assert_eq!(error.code, ErrorCode::Validation);
        assert_eq!(
            error.message,
            "1 validation error detected: Value '3000' at 'timeout' failed to satisfy \
             constraint: Member must have value less than or equal to 900"
        );
    }

    #[test]
    fn several_violations_are_joined() {
        let mut violations = Violations::default();
        violations.range(0, "timeout", 1, 900);
        violations.pattern("r1", "role", &ROLE_ARN);
        let error = violations.finish().unwrap_err();
        assert!(
            error
                .message
                .starts_with("2 validation errors detected: Value '0' at 'timeout'"),
            "{}",
            error.message
        );
        assert!(error.message.contains("; Value 'r1' at 'role' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*)?:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+"));
    }

    #[test]
    fn patterns_match_whole_values() {
        assert!(ROLE_ARN.matches("arn:aws:iam::000000000000:role/lambda-role"));
        assert!(!ROLE_ARN.matches("r1"));
        assert!(!ROLE_ARN.matches("xarn:aws:iam::000000000000:role/r"));
        assert!(FUNCTION_NAME.matches("arn:aws:lambda:us-east-1:000000000000:function:f:1"));
        assert!(FUNCTION_NAME.matches("000000000000:function:f"));
        assert!(!FUNCTION_NAME.matches("invalid:function:name"));
        assert!(QUALIFIER.matches("$LATEST"));
        assert!(!QUALIFIER.matches("a?b"));
        assert!(ENV_VAR_NAME.matches("MY_VAR"));
        assert!(!ENV_VAR_NAME.matches("1VAR"));
        assert!(!ENV_VAR_NAME.matches("A"));
        assert!(TAG_KEY_OR_VALUE.matches("Team name: ü/x"));
        assert!(!TAG_KEY_OR_VALUE.matches("semi;colon"));
    }
}
