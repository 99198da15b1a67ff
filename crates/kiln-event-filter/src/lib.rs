//! Lambda event filtering: the `FilterCriteria` of an event source mapping.
//!
//! An event source mapping (SQS, Kinesis, DynamoDB Streams, ...) may carry up to five filters
//! (ten after a quota increase), each a JSON pattern of at most 4096 characters. A record goes
//! to the function when it matches **any** filter; the others are dropped (an SQS message is
//! deleted, a stream record skipped). [`FilterCriteria::parse`] checks and compiles the patterns
//! once, when the mapping is created or updated; [`FilterCriteria::matches`] and
//! [`FilterCriteria::matches_sqs_record`] then run per record without allocating (except to
//! parse an SQS body that looks like JSON).
//!
//! ```
//! use kiln_event_filter::FilterCriteria;
//! use serde_json::json;
//!
//! let criteria = FilterCriteria::parse(&[r#"{ "body": { "RequestCode": [ "BBBB" ] } }"#])?;
//! let record = json!({ "messageId": "1", "body": "{\"RequestCode\": \"BBBB\"}" });
//! assert!(criteria.matches_sqs_record(&record));
//! # Ok::<(), kiln_event_filter::FilterError>(())
//! ```
//!
//! # Syntax
//!
//! Lambda's guide says filter rules use "the same set of syntax and rules as Amazon EventBridge";
//! this crate implements EventBridge's content filtering:
//!
//! - A pattern is a non-empty JSON object. Each key names a field of the event and holds either
//!   a nested object (matched against the event's object there) or a non-empty array of rules.
//!   All fields must match (AND); the rules of one array are alternatives (OR). Fields the
//!   pattern doesn't name are ignored. Of duplicate keys the last one counts, as Lambda documents.
//! - Rules: exact strings, numbers, `true`, `false` and `null` (`""` is the empty string);
//!   `{"prefix": s}` and `{"suffix": s}`, also as `{"prefix": {"equals-ignore-case": s}}`;
//!   `{"equals-ignore-case": s}`; `{"wildcard": "a*b"}` (`\*` and `\\` escape, `**` is refused);
//!   `{"anything-but": v}` where `v` is a string, a number, a list of only strings or only numbers,
//!   or `{"prefix": s}`, `{"suffix": s}`, `{"equals-ignore-case": s | [s]}`,
//!   `{"wildcard": s | [s]}`; `{"numeric": [op, n]}` with `=`, `<`, `<=`, `>`, `>=`, or a range
//!   `[">" | ">=", low, "<" | "<=", high]`, operands within ±5.0e9; `{"exists": true | false}`;
//!   `{"cidr": "10.0.0.0/24"}` (IPv4 or IPv6).
//! - `"$or": [pattern, ...]` at any level: the object matches when one alternative does (on top
//!   of its other fields).
//! - Arrays in the event: a rule matches if it matches any element; a nested pattern must match
//!   within one element. Only scalars are leaves: a field holding an object, an empty array or
//!   nothing has no value, so only `{"exists": false}` matches it (`null` is a value).
//! - Types never mix: a string rule doesn't match a number, a numeric rule doesn't match the
//!   string `"5"`. Exact numbers compare as parsed: `300` and `300.0` differ (Lambda: "300,
//!   300.0, and 3.0e2 are not considered equal"), while `numeric` compares values.
//!
//! Lambda's own operator table lists only part of this (null, empty, equals, and, or, not,
//! numeric, exists, prefix; newer versions add suffix, equals-ignore-case and `$or`). The rest
//! (`wildcard`, `cidr`, `anything-but` with an operator) comes from EventBridge's table, which
//! marks the `anything-but` forms as unsupported by EventBridge Pipes; real Lambda may refuse
//! patterns Kiln accepts there.
//!
//! # SQS bodies
//!
//! [`FilterCriteria::matches_sqs_record`] applies Lambda's table for SQS ("Properly filtering
//! Amazon SQS messages"): a body that parses as a JSON object or array is filtered as JSON, so
//! `"body": { ... }` patterns match into it and `"body": [rules]` never match; any other body
//! is a plain string, so `"body": [rules]` apply to the text and `"body": { ... }` never
//! matches. A pattern that doesn't mention `body` filters on the other fields only.
//!
//! # Not supported
//!
//! Exact-number matching can't tell `300.0` from `3.0e2` (Lambda says they differ): the event
//! reaches us as a parsed `serde_json::Value`, which no longer has the text. Decoding Kinesis
//! `data` (base64) and MQ payloads before filtering is the poller's job, not this crate's.

mod error;
mod matcher;
mod pattern;

#[cfg(test)]
mod doc_examples;

use serde_json::Value;

pub use error::{FilterError, INVALID_PATTERN_MESSAGE, PatternError};

use matcher::{Scope, SqsBody};
use pattern::Pattern;

/// The longest pattern the Lambda API accepts, in characters.
pub const MAX_PATTERN_CHARS: usize = 4096;

/// How many filters a mapping may have without a quota increase.
pub const DEFAULT_MAX_FILTERS: usize = 5;

/// A mapping's filters, parsed. A record passes when any filter matches it; with no filters
/// every record passes.
#[derive(Debug, Clone)]
pub struct FilterCriteria {
    filters: Vec<Filter>,
    /// Whether any filter looks at the top-level `body` field (SQS bodies are parsed only then).
    mentions_body: bool,
}

#[derive(Debug, Clone)]
struct Filter {
    source: String,
    pattern: Pattern,
}

impl FilterCriteria {
    /// Parses the `Pattern` strings of `FilterCriteria.Filters`, allowing
    /// [`DEFAULT_MAX_FILTERS`] of them.
    ///
    /// An error's [`FilterError::aws_message`] is the text for the
    /// `InvalidParameterValueException` (for a bad pattern: "Invalid filter pattern definition.").
    pub fn parse<S: AsRef<str>>(patterns: &[S]) -> Result<Self, FilterError> {
        Self::parse_with_max_filters(patterns, DEFAULT_MAX_FILTERS)
    }

    /// Like [`parse`](Self::parse), with the account's filter quota.
    pub fn parse_with_max_filters<S: AsRef<str>>(
        patterns: &[S],
        max_filters: usize,
    ) -> Result<Self, FilterError> {
        if patterns.len() > max_filters {
            return Err(FilterError::TooManyFilters {
                count: patterns.len(),
                max: max_filters,
            });
        }
        let filters = patterns
            .iter()
            .enumerate()
            .map(|(index, source)| {
                let source = source.as_ref();
                let len = source.chars().count();
                if len > MAX_PATTERN_CHARS {
                    return Err(FilterError::PatternTooLong { index, len });
                }
                let pattern = pattern::parse(source)
                    .map_err(|reason| FilterError::InvalidPattern { index, reason })?;
                Ok(Filter {
                    source: source.to_owned(),
                    pattern,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mentions_body = filters
            .iter()
            .any(|filter| mentions_field(&filter.pattern, "body"));
        Ok(Self {
            filters,
            mentions_body,
        })
    }

    /// The patterns as given, in order (for `GetEventSourceMapping`).
    pub fn patterns(&self) -> impl ExactSizeIterator<Item = &str> {
        self.filters.iter().map(|filter| filter.source.as_str())
    }

    /// Whether there are no filters (every record passes).
    pub fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }

    /// Whether `event` (one record, as Lambda would hand it to the function) passes.
    pub fn matches(&self, event: &Value) -> bool {
        self.matches_in(match event {
            Value::Object(object) => Scope::Object(object),
            _ => Scope::Absent,
        })
    }

    /// Whether an SQS record passes, its `body` string filtered as JSON when it is a JSON
    /// object or array and as plain text otherwise (see the [crate docs](crate#sqs-bodies)).
    ///
    /// `record` is the record as Lambda builds it (`messageId`, `body`, `attributes`, ...),
    /// with `body` a string.
    pub fn matches_sqs_record(&self, record: &Value) -> bool {
        let Value::Object(fields) = record else {
            return self.matches(record);
        };
        let Some(Value::String(body)) = fields.get("body").filter(|_| self.mentions_body) else {
            return self.matches(record);
        };
        let parsed = looks_like_json(body)
            .then(|| serde_json::from_str::<Value>(body).ok())
            .flatten();
        let body = match &parsed {
            Some(json) => SqsBody::Json(json),
            None => SqsBody::Plain(body),
        };
        self.matches_in(Scope::SqsRecord(fields, body))
    }

    fn matches_in(&self, scope: Scope<'_>) -> bool {
        self.filters.is_empty()
            || self
                .filters
                .iter()
                .any(|filter| matcher::matches(&filter.pattern, scope))
    }
}

/// Only an object or an array counts as a JSON body; checking the first character spares
/// plain-text bodies a parse attempt.
fn looks_like_json(body: &str) -> bool {
    matches!(body.trim_start().as_bytes().first(), Some(b'{' | b'['))
}

/// Whether `pattern` names `key` at its own level, directly or in an `$or` alternative.
fn mentions_field(pattern: &Pattern, key: &str) -> bool {
    pattern.fields.iter().any(|(name, _)| name == key)
        || pattern
            .any_of
            .iter()
            .flatten()
            .any(|alternative| mentions_field(alternative, key))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn any_filter_admits_a_record() {
        let criteria = FilterCriteria::parse(&[r#"{"a": ["1"]}"#, r#"{"b": ["2"]}"#]).unwrap();
        assert!(criteria.matches(&json!({"a": "1"})));
        assert!(criteria.matches(&json!({"b": "2"})));
        assert!(!criteria.matches(&json!({"a": "2", "b": "1"})));
        assert_eq!(
            criteria.patterns().collect::<Vec<_>>(),
            [r#"{"a": ["1"]}"#, r#"{"b": ["2"]}"#]
        );
    }

    #[test]
    fn no_filters_admit_everything() {
        let criteria = FilterCriteria::parse::<&str>(&[]).unwrap();
        assert!(criteria.is_empty());
        assert!(criteria.matches(&json!({"a": 1})));
        assert!(criteria.matches_sqs_record(&json!({"body": "x"})));
    }

    #[test]
    fn limits() {
        let five = [r#"{"a": [1]}"#; 5];
        assert!(FilterCriteria::parse(&five).is_ok());
        let six = [r#"{"a": [1]}"#; 6];
        assert_eq!(
            FilterCriteria::parse(&six).unwrap_err(),
            FilterError::TooManyFilters { count: 6, max: 5 }
        );
        assert!(FilterCriteria::parse_with_max_filters(&six, 10).is_ok());

        let filler = "x".repeat(MAX_PATTERN_CHARS - r#"{"a": [""]}"#.len());
        let longest = format!(r#"{{"a": ["{filler}"]}}"#);
        assert_eq!(longest.chars().count(), MAX_PATTERN_CHARS);
        assert!(FilterCriteria::parse(&[longest.as_str()]).is_ok());
        let too_long = format!(r#"{{"a": ["{filler}x"]}}"#);
        assert_eq!(
            FilterCriteria::parse(&[too_long]).unwrap_err(),
            FilterError::PatternTooLong {
                index: 0,
                len: MAX_PATTERN_CHARS + 1
            }
        );
        // Characters, not bytes.
        let wide = format!(r#"{{"a": ["{}"]}}"#, "é".repeat(2000));
        assert!(FilterCriteria::parse(&[wide]).is_ok());
    }

    #[test]
    fn errors_name_the_filter_and_answer_lambdas_message() {
        let err = FilterCriteria::parse(&[r#"{"a": ["x"]}"#, r#"{"a": []}"#]).unwrap_err();
        assert!(matches!(err, FilterError::InvalidPattern { index: 1, .. }));
        assert_eq!(
            err.to_string(),
            "filter 1: invalid filter pattern: empty array of rules at `a`"
        );
        assert_eq!(err.aws_message(), "Invalid filter pattern definition.");
        assert_eq!(
            INVALID_PATTERN_MESSAGE,
            "Invalid filter pattern definition."
        );
    }

    #[test]
    fn rejects_invalid_patterns() {
        for text in [
            "",
            "not json",
            "null",
            "[]",
            "{}",
            r#"{"a": "x"}"#,
            r#"{"a": []}"#,
            r#"{"a": [{"nope": 1}]}"#,
            r#"{"a": [{"numeric": [">", "1"]}]}"#,
            r#"{"$or": []}"#,
        ] {
            let err = FilterCriteria::parse(&[text]).unwrap_err();
            assert!(matches!(err, FilterError::InvalidPattern { .. }), "{text}");
            assert_eq!(err.aws_message(), INVALID_PATTERN_MESSAGE);
        }
    }

    fn sqs(body: &str) -> Value {
        json!({
            "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
            "body": body,
            "attributes": {"ApproximateReceiveCount": "1"},
            "eventSource": "aws:sqs",
        })
    }

    #[test]
    fn sqs_json_body_is_filtered_as_json() {
        let criteria = FilterCriteria::parse(&[r#"{"body": {"kind": ["order"]}}"#]).unwrap();
        assert!(criteria.matches_sqs_record(&sqs(r#"{"kind": "order"}"#)));
        assert!(criteria.matches_sqs_record(&sqs(r#"  [{"kind": "x"}, {"kind": "order"}]"#)));
        assert!(!criteria.matches_sqs_record(&sqs(r#"{"kind": "refund"}"#)));
        // The generic matcher sees a string there, so the nested pattern can't match.
        assert!(!criteria.matches(&sqs(r#"{"kind": "order"}"#)));
    }

    #[test]
    fn sqs_plain_body_is_filtered_as_text() {
        let criteria = FilterCriteria::parse(&[r#"{"body": [{"prefix": "Hello"}]}"#]).unwrap();
        assert!(criteria.matches_sqs_record(&sqs("Hello, world")));
        assert!(!criteria.matches_sqs_record(&sqs("Goodbye")));
        // Text that only starts like JSON is still text.
        let brace = FilterCriteria::parse(&[r#"{"body": [{"prefix": "{"}]}"#]).unwrap();
        assert!(brace.matches_sqs_record(&sqs("{not json")));
        // JSON scalars are not JSON bodies: "123" is the text 123.
        let digits = FilterCriteria::parse(&[r#"{"body": ["123"]}"#]).unwrap();
        assert!(digits.matches_sqs_record(&sqs("123")));
    }

    #[test]
    fn sqs_body_format_mismatch_drops_the_record() {
        // Plain string body, JSON pattern: dropped, even when the pattern asks for absence.
        let json_pattern =
            FilterCriteria::parse(&[r#"{"body": {"kind": [{"exists": false}]}}"#]).unwrap();
        assert!(!json_pattern.matches_sqs_record(&sqs("plain text")));
        assert!(json_pattern.matches_sqs_record(&sqs(r#"{"other": 1}"#)));
        // JSON body, plain-string pattern: dropped, even for exists or anything-but.
        for text in [
            r#"{"body": [{"exists": true}]}"#,
            r#"{"body": [{"exists": false}]}"#,
            r#"{"body": [{"anything-but": "x"}]}"#,
            r#"{"body": [{"prefix": "{"}]}"#,
        ] {
            let plain_pattern = FilterCriteria::parse(&[text]).unwrap();
            assert!(
                !plain_pattern.matches_sqs_record(&sqs(r#"{"kind": "order"}"#)),
                "{text}"
            );
        }
        let exists = FilterCriteria::parse(&[r#"{"body": [{"exists": true}]}"#]).unwrap();
        assert!(exists.matches_sqs_record(&sqs("plain")));
    }

    #[test]
    fn sqs_patterns_without_body_filter_on_metadata() {
        let criteria = FilterCriteria::parse(&[r#"{"eventSource": ["aws:sqs"]}"#]).unwrap();
        assert!(criteria.matches_sqs_record(&sqs("plain")));
        assert!(criteria.matches_sqs_record(&sqs(r#"{"a": 1}"#)));
        let attributes =
            FilterCriteria::parse(&[r#"{"attributes": {"ApproximateReceiveCount": ["2"]}}"#])
                .unwrap();
        assert!(!attributes.matches_sqs_record(&sqs("plain")));
    }

    #[test]
    fn sqs_body_inside_or() {
        let criteria = FilterCriteria::parse(&[
            r#"{"$or": [{"body": {"kind": ["order"]}}, {"body": [{"prefix": "urgent"}]}]}"#,
        ])
        .unwrap();
        assert!(criteria.matches_sqs_record(&sqs(r#"{"kind": "order"}"#)));
        assert!(criteria.matches_sqs_record(&sqs("urgent: call home")));
        assert!(!criteria.matches_sqs_record(&sqs(r#"{"kind": "refund"}"#)));
        assert!(!criteria.matches_sqs_record(&sqs("later")));
    }

    #[test]
    fn sqs_record_without_string_body() {
        let criteria = FilterCriteria::parse(&[r#"{"body": [{"exists": false}]}"#]).unwrap();
        assert!(criteria.matches_sqs_record(&json!({"messageId": "1"})));
        // Not a record at all: nothing is there, so only absence matches.
        assert!(criteria.matches_sqs_record(&json!("not a record")));
    }
}
