//! Why a `FilterCriteria` was refused, in our words and in Lambda's.

/// The message Lambda answers, inside an `InvalidParameterValueException`, to
/// `CreateEventSourceMapping` or `UpdateEventSourceMapping` with a pattern it cannot use.
///
/// Lambda gives no detail beyond this sentence. The text is the one AWS users report
/// ("Invalid filter pattern definition. (Service: AWSLambda; Status Code: 400; Error Code:
/// InvalidParameterValueException ...)", as CloudFormation and the AWS CLI print it) and the one
/// LocalStack's AWS-validated tests pin.
pub const INVALID_PATTERN_MESSAGE: &str = "Invalid filter pattern definition.";

/// Why a set of filter patterns was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// More filters than the quota allows (5 by default, 10 at most after a quota increase).
    #[error("at most {max} filters are allowed, got {count}")]
    TooManyFilters {
        /// How many filters were given.
        count: usize,
        /// The limit in force.
        max: usize,
    },
    /// A pattern longer than the 4096 characters the Lambda API model allows.
    #[error("filter {index}: pattern is {len} characters long, more than {max}", max = crate::MAX_PATTERN_CHARS)]
    PatternTooLong {
        /// Zero-based position of the filter.
        index: usize,
        /// Length of the pattern, in characters.
        len: usize,
    },
    /// A pattern that is not valid filter rule syntax.
    #[error("filter {index}: invalid filter pattern: {reason}")]
    InvalidPattern {
        /// Zero-based position of the filter.
        index: usize,
        /// What is wrong with it.
        reason: PatternError,
    },
}

impl FilterError {
    /// The message to put in the `InvalidParameterValueException` answered to the client.
    ///
    /// For an invalid pattern this is Lambda's exact text, [`INVALID_PATTERN_MESSAGE`]; the
    /// detail stays in [`Display`](std::fmt::Display) for our logs. For the two limits the text
    /// is ours: we found no record of Lambda's wording for them.
    pub fn aws_message(&self) -> String {
        match self {
            Self::InvalidPattern { .. } => INVALID_PATTERN_MESSAGE.to_owned(),
            Self::TooManyFilters { count, max } => {
                format!("The number of filters ({count}) exceeds the limit of {max}.")
            }
            Self::PatternTooLong { len, .. } => format!(
                "Filter pattern length {len} exceeds the limit of {} characters.",
                crate::MAX_PATTERN_CHARS
            ),
        }
    }
}

/// What is wrong with one pattern. `path` is the dotted field path where the problem is
/// (empty for the pattern itself).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// The text does not parse as JSON.
    #[error("not JSON: {0}")]
    NotJson(String),
    /// The JSON is not an object.
    #[error("the pattern must be a JSON object")]
    NotAnObject,
    /// An object with no fields, which would constrain nothing.
    #[error("empty object at `{path}`")]
    EmptyObject { path: String },
    /// A bare value where a rule array or a nested object belongs.
    #[error("`{path}` must be an array of rules or an object of fields")]
    NotArrayOrObject { path: String },
    /// A rule array with no rules.
    #[error("empty array of rules at `{path}`")]
    EmptyArray { path: String },
    /// An array inside a rule array.
    #[error("nested array in the rules at `{path}`")]
    NestedArray { path: String },
    /// A rule object with zero or several operators.
    #[error("a rule object at `{path}` must have exactly one operator")]
    OperatorCount { path: String },
    /// An operator that filter rules do not have.
    #[error("unknown operator `{operator}` at `{path}`")]
    UnknownOperator { path: String, operator: String },
    /// An operator given an operand of the wrong shape.
    #[error("`{operator}` at `{path}` takes {expected}")]
    BadOperand {
        path: String,
        operator: &'static str,
        expected: &'static str,
    },
    /// A malformed `numeric` comparison or range.
    #[error("`numeric` at `{path}`: {detail}")]
    BadNumeric { path: String, detail: &'static str },
    /// A malformed `wildcard` (`**`, or an escape other than `\*` and `\\`).
    #[error("`wildcard` at `{path}`: {detail}")]
    BadWildcard { path: String, detail: &'static str },
    /// A `$or` that is not a non-empty array of patterns.
    #[error("`$or` at `{path}` takes a non-empty array of non-empty objects")]
    BadOr { path: String },
}
