//! Validated identifiers: function names, versions and qualifiers.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("function name must be 1 to 64 characters long, was {0}")]
    FunctionNameLength(usize),
    #[error("function name may contain only letters, digits, hyphens and underscores")]
    FunctionNameCharacters,
    #[error("qualifier must be 1 to 128 characters long")]
    QualifierLength,
    #[error("qualifier may contain only letters, digits, hyphens and underscores, or be $LATEST")]
    QualifierCharacters,
}

/// A bare Lambda function name: 1 to 64 characters of `[a-zA-Z0-9-_]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FunctionName(String);

impl FunctionName {
    /// The longest bare function name Lambda accepts.
    pub const MAX_LEN: usize = 64;

    /// Checks `name` and wraps it.
    pub fn parse(name: &str) -> Result<Self, NameError> {
        if name.is_empty() || name.len() > Self::MAX_LEN {
            return Err(NameError::FunctionNameLength(name.len()));
        }
        if !name.bytes().all(is_name_byte) {
            return Err(NameError::FunctionNameCharacters);
        }
        Ok(Self(name.to_owned()))
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for FunctionName {
    type Error = NameError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<FunctionName> for String {
    fn from(value: FunctionName) -> Self {
        value.0
    }
}

/// Lets maps keyed by name be searched with `&str`; the ordering is `String`'s either way.
impl std::borrow::Borrow<str> for FunctionName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FunctionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The characters allowed in function and alias names.
pub(crate) fn is_name_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_'
}

/// One version of a function: the mutable `$LATEST` or an immutable published number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VersionId {
    /// `$LATEST`, the only version that updates change.
    Latest,
    /// A published version, numbered from 1.
    Published(u64),
}

impl VersionId {
    /// The spelling Lambda uses: `$LATEST` or the decimal number.
    pub fn as_lambda_string(&self) -> String {
        match self {
            VersionId::Latest => Qualifier::LATEST.to_owned(),
            VersionId::Published(number) => number.to_string(),
        }
    }

    /// Parses `$LATEST` or a decimal version number.
    pub fn parse(text: &str) -> Option<Self> {
        if text == Qualifier::LATEST {
            return Some(VersionId::Latest);
        }
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse().ok().map(VersionId::Published)
    }
}

impl fmt::Display for VersionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionId::Latest => f.write_str(Qualifier::LATEST),
            VersionId::Published(number) => write!(f, "{number}"),
        }
    }
}

/// What follows the function name in a qualified name or ARN, or `?Qualifier=`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Qualifier {
    /// A version: `$LATEST` or a number.
    Version(VersionId),
    /// An alias name: not all digits, `[a-zA-Z0-9-_]`.
    Alias(String),
}

impl Qualifier {
    /// The name of the unpublished version.
    pub const LATEST: &'static str = "$LATEST";

    /// Classifies a qualifier string. Digits are a version, `$LATEST` is the latest version,
    /// anything else made of name characters is an alias.
    pub fn parse(text: &str) -> Result<Self, NameError> {
        if text.is_empty() || text.len() > 128 {
            return Err(NameError::QualifierLength);
        }
        if let Some(version) = VersionId::parse(text) {
            return Ok(Qualifier::Version(version));
        }
        if text.bytes().all(is_name_byte) {
            return Ok(Qualifier::Alias(text.to_owned()));
        }
        Err(NameError::QualifierCharacters)
    }

    /// The qualifier as Lambda spells it.
    pub fn as_lambda_string(&self) -> String {
        match self {
            Qualifier::Version(version) => version.as_lambda_string(),
            Qualifier::Alias(alias) => alias.clone(),
        }
    }
}

impl fmt::Display for Qualifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_lambda_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_follow_lambda_rules() {
        assert!(FunctionName::parse("my-function_1").is_ok());
        assert!(FunctionName::parse(&"a".repeat(64)).is_ok());
        assert_eq!(
            FunctionName::parse(&"a".repeat(65)),
            Err(NameError::FunctionNameLength(65))
        );
        assert_eq!(
            FunctionName::parse(""),
            Err(NameError::FunctionNameLength(0))
        );
        assert_eq!(
            FunctionName::parse("has.dot"),
            Err(NameError::FunctionNameCharacters)
        );
        assert_eq!(
            FunctionName::parse("ünïcode"),
            Err(NameError::FunctionNameCharacters)
        );
    }

    #[test]
    fn qualifiers_are_classified() {
        assert_eq!(
            Qualifier::parse("$LATEST"),
            Ok(Qualifier::Version(VersionId::Latest))
        );
        assert_eq!(
            Qualifier::parse("12"),
            Ok(Qualifier::Version(VersionId::Published(12)))
        );
        assert_eq!(
            Qualifier::parse("live"),
            Ok(Qualifier::Alias("live".into()))
        );
        assert_eq!(
            Qualifier::parse("bad?char"),
            Err(NameError::QualifierCharacters)
        );
        assert_eq!(Qualifier::parse(""), Err(NameError::QualifierLength));
    }

    #[test]
    fn version_ids_round_trip() {
        for text in ["$LATEST", "1", "42"] {
            let parsed = VersionId::parse(text).expect("valid version");
            assert_eq!(parsed.as_lambda_string(), text);
        }
        assert_eq!(VersionId::parse("1a"), None);
        assert_eq!(VersionId::parse("$LATEST.PUBLISHED"), None);
    }
}
