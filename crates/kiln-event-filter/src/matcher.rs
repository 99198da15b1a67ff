//! Matching an event against compiled patterns. Nothing here allocates.
//!
//! The semantics are EventBridge's: every field a pattern names must match (AND); a rule array
//! matches when any rule matches any leaf value of the field (OR); an array in the event
//! contributes each of its elements (a nested pattern must match within one element); a field
//! whose value is an object, an empty array or nothing at all has no leaf value, so only
//! `{"exists": false}` matches it.

use std::net::IpAddr;

use serde_json::{Map, Number, Value};

use crate::pattern::{AnythingBut, Cidr, Exact, FieldPattern, Numeric, Pattern, Rule, Wildcard};

/// The object a pattern is matched against.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scope<'a> {
    /// No object here: every field is missing.
    Absent,
    Object(&'a Map<String, Value>),
    /// An SQS record whose `body` string has been classified (see [`SqsBody`]).
    SqsRecord(&'a Map<String, Value>, SqsBody<'a>),
}

/// An SQS message body as Lambda filters it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SqsBody<'a> {
    /// The body parsed as a JSON object or array: only nested patterns match it.
    Json(&'a Value),
    /// Any other body: only rule arrays match it, as a string.
    Plain(&'a str),
}

/// What a scope holds under one key.
#[derive(Debug, Clone, Copy)]
enum Field<'a> {
    Missing,
    Value(&'a Value),
    Body(SqsBody<'a>),
}

impl<'a> Scope<'a> {
    fn field(self, key: &str) -> Field<'a> {
        let object = match self {
            Self::Absent => return Field::Missing,
            Self::Object(object) => object,
            Self::SqsRecord(_, body) if key == "body" => return Field::Body(body),
            Self::SqsRecord(record, _) => record,
        };
        object.get(key).map_or(Field::Missing, Field::Value)
    }
}

/// A scalar value of the event, the only thing rules look at.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Leaf<'a> {
    Str(&'a str),
    Num(&'a Number),
    Bool(bool),
    Null,
}

/// Whether `pattern` matches the object in `scope`.
pub(crate) fn matches(pattern: &Pattern, scope: Scope<'_>) -> bool {
    pattern
        .fields
        .iter()
        .all(|(key, field)| field_matches(field, scope.field(key)))
        && pattern.any_of.as_ref().is_none_or(|alternatives| {
            alternatives
                .iter()
                .any(|alternative| matches(alternative, scope))
        })
}

fn field_matches(pattern: &FieldPattern, field: Field<'_>) -> bool {
    match (pattern, field) {
        (FieldPattern::Nested(nested), Field::Missing) => matches(nested, Scope::Absent),
        (FieldPattern::Nested(nested), Field::Value(value) | Field::Body(SqsBody::Json(value))) => {
            nested_matches(nested, value)
        }
        // Lambda drops a plain-string body filtered with a JSON pattern, and a JSON body
        // filtered with a plain-string pattern, whatever the rules say.
        (FieldPattern::Nested(_), Field::Body(SqsBody::Plain(_)))
        | (FieldPattern::Rules(_), Field::Body(SqsBody::Json(_))) => false,
        (FieldPattern::Rules(rules), Field::Missing) => rules_match(rules, |_| false),
        (FieldPattern::Rules(rules), Field::Value(value)) => {
            rules_match(rules, |check| any_leaf(value, check))
        }
        (FieldPattern::Rules(rules), Field::Body(SqsBody::Plain(text))) => {
            rules_match(rules, |check| check(Leaf::Str(text)))
        }
    }
}

/// A nested pattern against an event value: an object is matched directly, an array by any
/// one of its objects; anything else has none of the pattern's fields.
fn nested_matches(pattern: &Pattern, value: &Value) -> bool {
    match value {
        Value::Object(object) => matches(pattern, Scope::Object(object)),
        Value::Array(_) if has_object(value) => any_object(value, pattern),
        _ => matches(pattern, Scope::Absent),
    }
}

fn has_object(value: &Value) -> bool {
    match value {
        Value::Object(_) => true,
        Value::Array(items) => items.iter().any(has_object),
        _ => false,
    }
}

fn any_object(value: &Value, pattern: &Pattern) -> bool {
    match value {
        Value::Object(object) => matches(pattern, Scope::Object(object)),
        Value::Array(items) => items.iter().any(|item| any_object(item, pattern)),
        _ => false,
    }
}

/// Calls `check` on each leaf of `value` (arrays flattened, objects skipped) until it says yes.
fn any_leaf(value: &Value, check: &mut dyn FnMut(Leaf<'_>) -> bool) -> bool {
    match value {
        Value::String(text) => check(Leaf::Str(text)),
        Value::Number(number) => check(Leaf::Num(number)),
        Value::Bool(flag) => check(Leaf::Bool(*flag)),
        Value::Null => check(Leaf::Null),
        Value::Array(items) => items.iter().any(|item| any_leaf(item, check)),
        Value::Object(_) => false,
    }
}

/// Any rule against the leaves `each_leaf` visits (it calls its argument on each leaf until
/// one says yes). `exists` asks whether there is a leaf at all.
fn rules_match(
    rules: &[Rule],
    mut each_leaf: impl FnMut(&mut dyn FnMut(Leaf<'_>) -> bool) -> bool,
) -> bool {
    rules.iter().any(|rule| match rule {
        Rule::Exists(wanted) => each_leaf(&mut |_| true) == *wanted,
        rule => each_leaf(&mut |leaf| rule_matches(rule, leaf)),
    })
}

fn rule_matches(rule: &Rule, leaf: Leaf<'_>) -> bool {
    match rule {
        Rule::Exact(exact) => exact_matches(exact, leaf),
        Rule::Prefix(prefix) => as_str(leaf).is_some_and(|text| text.starts_with(prefix.as_str())),
        Rule::Suffix(suffix) => as_str(leaf).is_some_and(|text| text.ends_with(suffix.as_str())),
        Rule::PrefixIgnoreCase(prefix) => as_str(leaf).is_some_and(|text| {
            starts_with_folded(text.chars().flat_map(char::to_lowercase), prefix.chars())
        }),
        Rule::SuffixIgnoreCase(suffix) => as_str(leaf).is_some_and(|text| {
            starts_with_folded(
                text.chars().rev().flat_map(|c| c.to_lowercase().rev()),
                suffix.chars().rev(),
            )
        }),
        Rule::EqualsIgnoreCase(folded) => {
            as_str(leaf).is_some_and(|text| equals_folded(text, folded))
        }
        Rule::Wildcard(wildcard) => {
            as_str(leaf).is_some_and(|text| wildcard_matches(wildcard, text))
        }
        Rule::AnythingBut(but) => !anything_but_excludes(but, leaf),
        Rule::Numeric(numeric) => match leaf {
            Leaf::Num(number) => number
                .as_f64()
                .is_some_and(|x| numeric_matches(*numeric, x)),
            _ => false,
        },
        Rule::Cidr(cidr) => as_str(leaf).is_some_and(|text| cidr_matches(*cidr, text)),
        Rule::Exists(_) => false,
    }
}

fn as_str(leaf: Leaf<'_>) -> Option<&str> {
    match leaf {
        Leaf::Str(text) => Some(text),
        _ => None,
    }
}

fn exact_matches(exact: &Exact, leaf: Leaf<'_>) -> bool {
    match (exact, leaf) {
        (Exact::Str(wanted), Leaf::Str(text)) => wanted == text,
        // serde_json compares the parsed representation: 300 and 300.0 differ, as Lambda
        // documents ("300, 300.0, and 3.0e2 are not considered equal").
        (Exact::Num(wanted), Leaf::Num(number)) => wanted == number,
        (Exact::Bool(wanted), Leaf::Bool(flag)) => *wanted == flag,
        (Exact::Null, Leaf::Null) => true,
        _ => false,
    }
}

/// Whether `leaf` is one of the values `anything-but` excludes.
fn anything_but_excludes(but: &AnythingBut, leaf: Leaf<'_>) -> bool {
    match but {
        AnythingBut::Values(values) => values.iter().any(|value| exact_matches(value, leaf)),
        AnythingBut::Prefix(prefix) => {
            as_str(leaf).is_some_and(|text| text.starts_with(prefix.as_str()))
        }
        AnythingBut::Suffix(suffix) => {
            as_str(leaf).is_some_and(|text| text.ends_with(suffix.as_str()))
        }
        AnythingBut::EqualsIgnoreCase(folded) => {
            as_str(leaf).is_some_and(|text| folded.iter().any(|folded| equals_folded(text, folded)))
        }
        AnythingBut::Wildcard(wildcards) => as_str(leaf).is_some_and(|text| {
            wildcards
                .iter()
                .any(|wildcard| wildcard_matches(wildcard, text))
        }),
    }
}

fn equals_folded(text: &str, folded: &str) -> bool {
    text.chars().flat_map(char::to_lowercase).eq(folded.chars())
}

/// Whether the lower-cased `text` stream begins with the (already lower-case) `wanted` stream.
fn starts_with_folded(
    mut text: impl Iterator<Item = char>,
    mut wanted: impl Iterator<Item = char>,
) -> bool {
    wanted.all(|expected| text.next() == Some(expected))
}

fn numeric_matches(numeric: Numeric, x: f64) -> bool {
    match numeric {
        Numeric::Equals(value) => x == value,
        Numeric::Range { lower, upper } => {
            lower.is_none_or(|bound| {
                if bound.inclusive {
                    x >= bound.value
                } else {
                    x > bound.value
                }
            }) && upper.is_none_or(|bound| {
                if bound.inclusive {
                    x <= bound.value
                } else {
                    x < bound.value
                }
            })
        }
    }
}

/// Glob matching with `*` only: the first part anchors the start, the last the end, and the
/// middle parts are found left to right (leftmost is always safe when `*` is the only
/// metacharacter).
fn wildcard_matches(wildcard: &Wildcard, text: &str) -> bool {
    let Some((first, rest)) = wildcard.parts.split_first() else {
        return false;
    };
    let Some((last, middle)) = rest.split_last() else {
        return text == first;
    };
    let Some(mut remaining) = text.strip_prefix(first.as_str()) else {
        return false;
    };
    for part in middle {
        let Some(at) = remaining.find(part.as_str()) else {
            return false;
        };
        remaining = &remaining[at + part.len()..];
    }
    remaining.ends_with(last.as_str())
}

fn cidr_matches(cidr: Cidr, text: &str) -> bool {
    match (cidr, text.parse::<IpAddr>()) {
        (Cidr::V4 { network, mask }, Ok(IpAddr::V4(address))) => {
            u32::from(address) & mask == network
        }
        (Cidr::V6 { network, mask }, Ok(IpAddr::V6(address))) => {
            u128::from(address) & mask == network
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::pattern::parse;

    fn check(pattern: &str, event: &Value) -> bool {
        let pattern = parse(pattern).unwrap();
        match event {
            Value::Object(object) => matches(&pattern, Scope::Object(object)),
            _ => matches(&pattern, Scope::Absent),
        }
    }

    #[test]
    fn exact_values_of_every_type() {
        let event = json!({"s": "x", "n": 5, "f": 1.5, "t": true, "z": null, "e": ""});
        assert!(check(r#"{"s": ["y", "x"]}"#, &event));
        assert!(!check(r#"{"s": ["X"]}"#, &event));
        assert!(check(r#"{"n": [5]}"#, &event));
        assert!(
            !check(r#"{"n": ["5"]}"#, &event),
            "a string never equals a number"
        );
        assert!(
            !check(r#"{"n": [5.0]}"#, &event),
            "5 and 5.0 are different numbers"
        );
        assert!(check(r#"{"f": [1.5]}"#, &event));
        assert!(check(r#"{"t": [true]}"#, &event));
        assert!(!check(r#"{"t": [false]}"#, &event));
        assert!(!check(r#"{"t": ["true"]}"#, &event));
        assert!(check(r#"{"z": [null]}"#, &event));
        assert!(!check(r#"{"s": [null]}"#, &event));
        assert!(check(r#"{"e": [""]}"#, &event));
        assert!(!check(r#"{"z": [""]}"#, &event), "null is not empty");
        assert!(
            !check(r#"{"missing": [null]}"#, &event),
            "null is not missing"
        );
    }

    #[test]
    fn all_fields_must_match() {
        let event = json!({"a": "1", "b": "2"});
        assert!(check(r#"{"a": ["1"], "b": ["2"]}"#, &event));
        assert!(!check(r#"{"a": ["1"], "b": ["3"]}"#, &event));
        assert!(!check(r#"{"a": ["1"], "c": ["2"]}"#, &event));
    }

    #[test]
    fn string_operators() {
        let event = json!({"file": "Photo.PNG", "n": 5});
        assert!(check(r#"{"file": [{"prefix": "Pho"}]}"#, &event));
        assert!(!check(r#"{"file": [{"prefix": "pho"}]}"#, &event));
        assert!(check(
            r#"{"file": [{"prefix": {"equals-ignore-case": "pHO"}}]}"#,
            &event
        ));
        assert!(check(r#"{"file": [{"suffix": ".PNG"}]}"#, &event));
        assert!(!check(r#"{"file": [{"suffix": ".png"}]}"#, &event));
        assert!(check(
            r#"{"file": [{"suffix": {"equals-ignore-case": ".png"}}]}"#,
            &event
        ));
        assert!(!check(
            r#"{"file": [{"suffix": {"equals-ignore-case": "x.png"}}]}"#,
            &event
        ));
        assert!(check(
            r#"{"file": [{"equals-ignore-case": "photo.png"}]}"#,
            &event
        ));
        assert!(!check(
            r#"{"file": [{"equals-ignore-case": "photo.pn"}]}"#,
            &event
        ));
        assert!(check(r#"{"file": [{"prefix": ""}]}"#, &event));
        // String operators never match other types.
        assert!(!check(r#"{"n": [{"prefix": "5"}]}"#, &event));
        assert!(!check(r#"{"n": [{"equals-ignore-case": "5"}]}"#, &event));
    }

    #[test]
    fn ignore_case_is_unicode_aware() {
        let event = json!({"city": "ÅLESUND", "word": "STRASSE"});
        assert!(check(
            r#"{"city": [{"equals-ignore-case": "ålesund"}]}"#,
            &event
        ));
        assert!(check(
            r#"{"city": [{"prefix": {"equals-ignore-case": "åle"}}]}"#,
            &event
        ));
        assert!(check(
            r#"{"city": [{"suffix": {"equals-ignore-case": "SUND"}}]}"#,
            &event
        ));
        assert!(!check(
            r#"{"word": [{"equals-ignore-case": "straße"}]}"#,
            &event
        ));
    }

    #[test]
    fn wildcards() {
        let cases = [
            ("*", "", true),
            ("*", "anything", true),
            ("a*", "abc", true),
            ("*c", "abc", true),
            ("a*c", "ac", true),
            ("a*c", "abbbc", true),
            ("a*c", "abcd", false),
            ("*/lib/*", "/usr/lib/x.so", true),
            ("*/lib/*", "/usr/lib64/x.so", false),
            ("a*b*a", "aba", true),
            ("a*b*a", "ab", false),
            ("a*a", "a", false),
            ("abc", "abc", true),
            ("abc", "abcd", false),
            ("a\\*c", "a*c", true),
            ("a\\*c", "abc", false),
        ];
        for (wildcard, text, expected) in cases {
            let pattern = format!(r#"{{"v": [{{"wildcard": {}}}]}}"#, json!(wildcard));
            assert_eq!(
                check(&pattern, &json!({ "v": text })),
                expected,
                "{wildcard} ~ {text}"
            );
        }
        assert!(!check(r#"{"v": [{"wildcard": "*"}]}"#, &json!({"v": 1})));
    }

    #[test]
    fn anything_but() {
        let event = json!({"s": "running", "n": 150, "f": "a.png"});
        assert!(check(r#"{"s": [{"anything-but": "stopped"}]}"#, &event));
        assert!(!check(r#"{"s": [{"anything-but": "running"}]}"#, &event));
        assert!(!check(
            r#"{"s": [{"anything-but": ["stopped", "running"]}]}"#,
            &event
        ));
        assert!(check(r#"{"n": [{"anything-but": [100, 200]}]}"#, &event));
        assert!(!check(r#"{"n": [{"anything-but": 150}]}"#, &event));
        assert!(!check(
            r#"{"s": [{"anything-but": {"prefix": "run"}}]}"#,
            &event
        ));
        assert!(check(
            r#"{"s": [{"anything-but": {"prefix": "stop"}}]}"#,
            &event
        ));
        assert!(!check(
            r#"{"f": [{"anything-but": {"suffix": ".png"}}]}"#,
            &event
        ));
        assert!(!check(
            r#"{"s": [{"anything-but": {"equals-ignore-case": "RUNNING"}}]}"#,
            &event
        ));
        assert!(!check(
            r#"{"s": [{"anything-but": {"equals-ignore-case": ["x", "Running"]}}]}"#,
            &event
        ));
        assert!(!check(
            r#"{"f": [{"anything-but": {"wildcard": "*.png"}}]}"#,
            &event
        ));
        assert!(check(
            r#"{"f": [{"anything-but": {"wildcard": ["*.jpg", "b*"]}}]}"#,
            &event
        ));
        // A value of another type is not among the excluded ones.
        assert!(check(r#"{"n": [{"anything-but": "150"}]}"#, &event));
        // anything-but needs the field to be there.
        assert!(!check(r#"{"missing": [{"anything-but": "x"}]}"#, &event));
    }

    #[test]
    fn numeric() {
        let event = json!({"i": 5, "f": 2.5, "neg": -3, "s": "5", "big": 300});
        assert!(check(r#"{"i": [{"numeric": [">", 0, "<=", 5]}]}"#, &event));
        assert!(!check(r#"{"i": [{"numeric": [">", 0, "<", 5]}]}"#, &event));
        assert!(check(r#"{"i": [{"numeric": [">=", 5]}]}"#, &event));
        assert!(!check(r#"{"i": [{"numeric": [">", 5]}]}"#, &event));
        assert!(check(r#"{"i": [{"numeric": ["=", 5]}]}"#, &event));
        assert!(
            check(r#"{"i": [{"numeric": ["=", 5.0]}]}"#, &event),
            "numeric compares values"
        );
        assert!(check(r#"{"big": [{"numeric": ["=", 3.0e2]}]}"#, &event));
        assert!(check(r#"{"f": [{"numeric": ["<", 3]}]}"#, &event));
        assert!(check(
            r#"{"neg": [{"numeric": [">", -5, "<", 0]}]}"#,
            &event
        ));
        assert!(
            !check(r#"{"s": [{"numeric": ["=", 5]}]}"#, &event),
            "a string is never numeric"
        );
        assert!(!check(r#"{"missing": [{"numeric": [">", 0]}]}"#, &event));
    }

    #[test]
    fn exists() {
        let event = json!({"s": "x", "z": null, "o": {"inner": 1}, "empty": [], "list": [1]});
        assert!(check(r#"{"s": [{"exists": true}]}"#, &event));
        assert!(!check(r#"{"s": [{"exists": false}]}"#, &event));
        assert!(
            check(r#"{"z": [{"exists": true}]}"#, &event),
            "null is a value"
        );
        assert!(check(r#"{"missing": [{"exists": false}]}"#, &event));
        assert!(!check(r#"{"missing": [{"exists": true}]}"#, &event));
        // Only leaves exist: an object or an empty array is not one.
        assert!(check(r#"{"o": [{"exists": false}]}"#, &event));
        assert!(check(r#"{"empty": [{"exists": false}]}"#, &event));
        assert!(check(r#"{"list": [{"exists": true}]}"#, &event));
        // Under a missing parent, the child is missing too.
        assert!(check(r#"{"nope": {"child": [{"exists": false}]}}"#, &event));
        assert!(!check(r#"{"nope": {"child": [{"exists": true}]}}"#, &event));
        // Alongside other rules in the same array (OR).
        assert!(check(r#"{"missing": ["x", {"exists": false}]}"#, &event));
    }

    #[test]
    fn cidr() {
        let event = json!({"v4": "10.0.0.17", "v6": "2001:db8::1", "bad": "10.0.0", "n": 10});
        assert!(check(r#"{"v4": [{"cidr": "10.0.0.0/24"}]}"#, &event));
        assert!(!check(r#"{"v4": [{"cidr": "10.0.1.0/24"}]}"#, &event));
        assert!(check(r#"{"v4": [{"cidr": "10.0.0.17/32"}]}"#, &event));
        assert!(check(r#"{"v4": [{"cidr": "0.0.0.0/0"}]}"#, &event));
        assert!(
            !check(r#"{"v4": [{"cidr": "::/0"}]}"#, &event),
            "no family crossing"
        );
        assert!(check(r#"{"v6": [{"cidr": "2001:db8::/32"}]}"#, &event));
        assert!(!check(r#"{"v6": [{"cidr": "2001:db9::/32"}]}"#, &event));
        assert!(!check(r#"{"bad": [{"cidr": "10.0.0.0/8"}]}"#, &event));
        assert!(!check(r#"{"n": [{"cidr": "10.0.0.0/8"}]}"#, &event));
    }

    #[test]
    fn nested_objects() {
        let event = json!({"a": {"b": {"c": "deep"}}, "flat": "x"});
        assert!(check(r#"{"a": {"b": {"c": ["deep"]}}}"#, &event));
        assert!(!check(r#"{"a": {"b": {"c": ["shallow"]}}}"#, &event));
        assert!(!check(r#"{"a": {"c": ["deep"]}}"#, &event));
        // A nested pattern never matches a scalar.
        assert!(!check(r#"{"flat": {"x": ["x"]}}"#, &event));
        // A rule array never matches an object.
        assert!(!check(r#"{"a": ["deep"]}"#, &event));
    }

    #[test]
    fn arrays_in_events() {
        let event = json!({
            "tags": ["red", "green"],
            "matrix": [[1, 2], [3]],
            "items": [{"id": 1, "kind": "book"}, {"id": 2, "kind": "pen"}],
        });
        assert!(check(r#"{"tags": ["green"]}"#, &event));
        assert!(!check(r#"{"tags": ["blue"]}"#, &event));
        assert!(check(r#"{"tags": [{"prefix": "gr"}]}"#, &event));
        assert!(
            check(r#"{"tags": [{"anything-but": "red"}]}"#, &event),
            "green is not red"
        );
        assert!(!check(
            r#"{"tags": [{"anything-but": ["red", "green"]}]}"#,
            &event
        ));
        assert!(check(r#"{"matrix": [3]}"#, &event));
        assert!(check(r#"{"items": {"kind": ["pen"]}}"#, &event));
        // Fields of one nested pattern must match within the same element.
        assert!(check(r#"{"items": {"id": [2], "kind": ["pen"]}}"#, &event));
        assert!(!check(r#"{"items": {"id": [1], "kind": ["pen"]}}"#, &event));
    }

    #[test]
    fn or_across_fields() {
        let event = json!({"Location": "Paris", "Day": "Monday", "x": {"y": 1}});
        let pattern = r#"{"$or": [{"Location": ["New York"]}, {"Day": ["Monday"]}]}"#;
        assert!(check(pattern, &event));
        assert!(!check(
            pattern,
            &json!({"Location": "Paris", "Day": "Friday"})
        ));
        // $or combines with the other fields of its object (AND).
        assert!(!check(
            r#"{"x": {"y": [2]}, "$or": [{"Location": ["Paris"]}, {"Day": ["Friday"]}]}"#,
            &event
        ));
        // $or nested inside an object, and $or inside $or.
        assert!(check(r#"{"x": {"$or": [{"y": [2]}, {"y": [1]}]}}"#, &event));
        assert!(check(
            r#"{"$or": [{"Day": ["Friday"]}, {"$or": [{"Location": ["Rome"]}, {"x": {"y": [1]}}]}]}"#,
            &event
        ));
    }

    #[test]
    fn non_object_event_has_no_fields() {
        assert!(!check(r#"{"a": ["x"]}"#, &json!("x")));
        assert!(check(r#"{"a": [{"exists": false}]}"#, &json!([1, 2])));
    }
}
