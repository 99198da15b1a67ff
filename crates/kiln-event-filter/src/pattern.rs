//! A filter pattern compiled from its JSON text: the shape the matcher walks.
//!
//! Parsing checks everything once, so matching never meets a malformed rule; case-insensitive
//! operands are lower-cased, wildcards split and CIDR blocks masked here, not per event.

use std::net::IpAddr;

use serde_json::{Map, Number, Value};

use crate::error::PatternError;

/// Numeric operands must lie within this magnitude (EventBridge's documented limit,
/// "-5.0e9 and +5.0e9 inclusive").
const NUMERIC_LIMIT: f64 = 5.0e9;

/// The fields one pattern object constrains, all of which must match (AND), plus an optional
/// `$or` whose alternatives are tried against the same object.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    pub(crate) fields: Vec<(String, FieldPattern)>,
    pub(crate) any_of: Option<Vec<Pattern>>,
}

/// What a pattern says about one field.
#[derive(Debug, Clone)]
pub(crate) enum FieldPattern {
    /// `"field": { ... }`: the event's field is an object matched by a nested pattern.
    Nested(Pattern),
    /// `"field": [ rule, ... ]`: any rule matching any leaf value of the field (OR).
    Rules(Vec<Rule>),
}

/// One entry of a rule array.
#[derive(Debug, Clone)]
pub(crate) enum Rule {
    Exact(Exact),
    Prefix(String),
    PrefixIgnoreCase(String),
    Suffix(String),
    SuffixIgnoreCase(String),
    EqualsIgnoreCase(String),
    Wildcard(Wildcard),
    AnythingBut(AnythingBut),
    Numeric(Numeric),
    Exists(bool),
    Cidr(Cidr),
}

/// An exact JSON value: a string, number, boolean or null.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Exact {
    Str(String),
    Num(Number),
    Bool(bool),
    Null,
}

/// The operand of `anything-but`.
#[derive(Debug, Clone)]
pub(crate) enum AnythingBut {
    /// A string, a number, or a list of only strings or only numbers.
    Values(Vec<Exact>),
    Prefix(String),
    Suffix(String),
    /// Lower-cased operands.
    EqualsIgnoreCase(Vec<String>),
    Wildcard(Vec<Wildcard>),
}

/// A `numeric` rule: `=` alone, or an optional lower and an optional upper bound.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Numeric {
    Equals(f64),
    Range {
        lower: Option<Bound>,
        upper: Option<Bound>,
    },
}

/// One side of a numeric range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bound {
    pub(crate) value: f64,
    pub(crate) inclusive: bool,
}

/// A `wildcard` operand split at its unescaped `*`s: `parts.len()` is the number of stars
/// plus one, and a leading or trailing star shows as an empty first or last part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Wildcard {
    pub(crate) parts: Vec<String>,
}

/// A `cidr` operand with the host bits cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cidr {
    V4 { network: u32, mask: u32 },
    V6 { network: u128, mask: u128 },
}

/// Lower-cases the way the matcher does, one `char` at a time (`str::to_lowercase` treats a
/// final sigma specially, which the per-character comparison could never reproduce).
pub(crate) fn fold_case(text: &str) -> String {
    text.chars().flat_map(char::to_lowercase).collect()
}

/// Parses one pattern's JSON text.
pub(crate) fn parse(text: &str) -> Result<Pattern, PatternError> {
    // serde_json keeps the last of duplicate keys, which is what Lambda documents.
    let value: Value =
        serde_json::from_str(text).map_err(|err| PatternError::NotJson(err.to_string()))?;
    let Value::Object(object) = value else {
        return Err(PatternError::NotAnObject);
    };
    parse_object(&object, "")
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn parse_object(object: &Map<String, Value>, path: &str) -> Result<Pattern, PatternError> {
    if object.is_empty() {
        return Err(PatternError::EmptyObject {
            path: path.to_owned(),
        });
    }
    let mut fields = Vec::with_capacity(object.len());
    let mut any_of = None;
    for (key, value) in object {
        let field_path = join(path, key);
        if key == "$or" {
            any_of = Some(parse_or(value, &field_path)?);
            continue;
        }
        let field = match value {
            Value::Object(nested) => FieldPattern::Nested(parse_object(nested, &field_path)?),
            Value::Array(rules) => FieldPattern::Rules(parse_rules(rules, &field_path)?),
            _ => return Err(PatternError::NotArrayOrObject { path: field_path }),
        };
        fields.push((key.clone(), field));
    }
    Ok(Pattern { fields, any_of })
}

fn parse_or(value: &Value, path: &str) -> Result<Vec<Pattern>, PatternError> {
    let bad = || PatternError::BadOr {
        path: path.to_owned(),
    };
    let Value::Array(alternatives) = value else {
        return Err(bad());
    };
    if alternatives.is_empty() {
        return Err(bad());
    }
    alternatives
        .iter()
        .map(|alternative| match alternative {
            Value::Object(object) if !object.is_empty() => parse_object(object, path),
            _ => Err(bad()),
        })
        .collect()
}

fn parse_rules(rules: &[Value], path: &str) -> Result<Vec<Rule>, PatternError> {
    if rules.is_empty() {
        return Err(PatternError::EmptyArray {
            path: path.to_owned(),
        });
    }
    rules.iter().map(|rule| parse_rule(rule, path)).collect()
}

fn parse_rule(rule: &Value, path: &str) -> Result<Rule, PatternError> {
    match rule {
        Value::Array(_) => Err(PatternError::NestedArray {
            path: path.to_owned(),
        }),
        Value::Object(operator) => parse_operator(operator, path),
        scalar => Ok(Rule::Exact(exact(scalar).ok_or_else(|| {
            PatternError::NestedArray {
                path: path.to_owned(),
            }
        })?)),
    }
}

fn exact(value: &Value) -> Option<Exact> {
    match value {
        Value::String(text) => Some(Exact::Str(text.clone())),
        Value::Number(number) => Some(Exact::Num(number.clone())),
        Value::Bool(flag) => Some(Exact::Bool(*flag)),
        Value::Null => Some(Exact::Null),
        Value::Array(_) | Value::Object(_) => None,
    }
}

fn bad_operand(path: &str, operator: &'static str, expected: &'static str) -> PatternError {
    PatternError::BadOperand {
        path: path.to_owned(),
        operator,
        expected,
    }
}

fn parse_operator(object: &Map<String, Value>, path: &str) -> Result<Rule, PatternError> {
    let mut entries = object.iter();
    let (Some((operator, operand)), None) = (entries.next(), entries.next()) else {
        return Err(PatternError::OperatorCount {
            path: path.to_owned(),
        });
    };
    match operator.as_str() {
        "prefix" => match operand {
            Value::String(text) => Ok(Rule::Prefix(text.clone())),
            Value::Object(_) => Ok(Rule::PrefixIgnoreCase(ignore_case_operand(
                operand, path, "prefix",
            )?)),
            _ => Err(bad_operand(
                path,
                "prefix",
                "a string or {\"equals-ignore-case\": string}",
            )),
        },
        "suffix" => match operand {
            Value::String(text) => Ok(Rule::Suffix(text.clone())),
            Value::Object(_) => Ok(Rule::SuffixIgnoreCase(ignore_case_operand(
                operand, path, "suffix",
            )?)),
            _ => Err(bad_operand(
                path,
                "suffix",
                "a string or {\"equals-ignore-case\": string}",
            )),
        },
        "equals-ignore-case" => match operand {
            Value::String(text) => Ok(Rule::EqualsIgnoreCase(fold_case(text))),
            _ => Err(bad_operand(path, "equals-ignore-case", "a string")),
        },
        "wildcard" => match operand {
            Value::String(text) => Ok(Rule::Wildcard(parse_wildcard(text, path)?)),
            _ => Err(bad_operand(path, "wildcard", "a string")),
        },
        "anything-but" => Ok(Rule::AnythingBut(parse_anything_but(operand, path)?)),
        "numeric" => Ok(Rule::Numeric(parse_numeric(operand, path)?)),
        "exists" => match operand {
            Value::Bool(flag) => Ok(Rule::Exists(*flag)),
            _ => Err(bad_operand(path, "exists", "true or false")),
        },
        "cidr" => match operand {
            Value::String(text) => parse_cidr(text).map(Rule::Cidr).ok_or_else(|| {
                bad_operand(
                    path,
                    "cidr",
                    "an IPv4 or IPv6 block such as \"10.0.0.0/24\"",
                )
            }),
            _ => Err(bad_operand(path, "cidr", "a string")),
        },
        other => Err(PatternError::UnknownOperator {
            path: path.to_owned(),
            operator: other.to_owned(),
        }),
    }
}

/// The `{"equals-ignore-case": "text"}` operand of `prefix` and `suffix`, lower-cased.
fn ignore_case_operand(
    operand: &Value,
    path: &str,
    operator: &'static str,
) -> Result<String, PatternError> {
    match operand.get("equals-ignore-case") {
        Some(Value::String(text)) if operand.as_object().is_some_and(|o| o.len() == 1) => {
            Ok(fold_case(text))
        }
        _ => Err(bad_operand(
            path,
            operator,
            "a string or {\"equals-ignore-case\": string}",
        )),
    }
}

fn parse_anything_but(operand: &Value, path: &str) -> Result<AnythingBut, PatternError> {
    const EXPECTED: &str = "a string, a number, a non-empty list of only strings or only numbers, \
                            or one of prefix, suffix, equals-ignore-case, wildcard";
    let bad = || bad_operand(path, "anything-but", EXPECTED);
    match operand {
        Value::String(_) | Value::Number(_) => {
            Ok(AnythingBut::Values(vec![exact(operand).ok_or_else(bad)?]))
        }
        Value::Array(values) => {
            let all_strings = values.iter().all(Value::is_string);
            let all_numbers = values.iter().all(Value::is_number);
            if values.is_empty() || !(all_strings || all_numbers) {
                return Err(bad());
            }
            values
                .iter()
                .map(|value| exact(value).ok_or_else(bad))
                .collect::<Result<_, _>>()
                .map(AnythingBut::Values)
        }
        Value::Object(object) if object.len() == 1 => {
            let Some((operator, inner)) = object.iter().next() else {
                return Err(bad());
            };
            match (operator.as_str(), inner) {
                ("prefix", Value::String(text)) => Ok(AnythingBut::Prefix(text.clone())),
                ("suffix", Value::String(text)) => Ok(AnythingBut::Suffix(text.clone())),
                ("equals-ignore-case", inner) => string_or_list(inner, bad).map(|texts| {
                    AnythingBut::EqualsIgnoreCase(texts.iter().map(|t| fold_case(t)).collect())
                }),
                ("wildcard", inner) => string_or_list(inner, bad)?
                    .iter()
                    .map(|text| parse_wildcard(text, path))
                    .collect::<Result<_, _>>()
                    .map(AnythingBut::Wildcard),
                _ => Err(bad()),
            }
        }
        _ => Err(bad()),
    }
}

/// A string, or a non-empty array of strings.
fn string_or_list(
    value: &Value,
    bad: impl Fn() -> PatternError,
) -> Result<Vec<&str>, PatternError> {
    match value {
        Value::String(text) => Ok(vec![text.as_str()]),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|item| item.as_str().ok_or_else(&bad))
            .collect(),
        _ => Err(bad()),
    }
}

fn parse_numeric(operand: &Value, path: &str) -> Result<Numeric, PatternError> {
    let bad = |detail| PatternError::BadNumeric {
        path: path.to_owned(),
        detail,
    };
    let Value::Array(items) = operand else {
        return Err(bad("takes an array such as [\">\", 0, \"<=\", 5]"));
    };
    let mut pairs = Vec::with_capacity(2);
    for pair in items.chunks(2) {
        let [Value::String(operator), Value::Number(number)] = pair else {
            return Err(bad("expects operator and number pairs"));
        };
        let value = number
            .as_f64()
            .filter(|value| value.abs() <= NUMERIC_LIMIT)
            .ok_or_else(|| bad("numbers must be between -5.0e9 and 5.0e9"))?;
        pairs.push((operator.as_str(), value));
    }
    let lower = |operator: &str, value| match operator {
        ">" => Some(Bound {
            value,
            inclusive: false,
        }),
        ">=" => Some(Bound {
            value,
            inclusive: true,
        }),
        _ => None,
    };
    let upper = |operator: &str, value| match operator {
        "<" => Some(Bound {
            value,
            inclusive: false,
        }),
        "<=" => Some(Bound {
            value,
            inclusive: true,
        }),
        _ => None,
    };
    match pairs.as_slice() {
        [("=", value)] => Ok(Numeric::Equals(*value)),
        [(operator, value)] => {
            if let Some(bound) = lower(operator, *value) {
                Ok(Numeric::Range {
                    lower: Some(bound),
                    upper: None,
                })
            } else if let Some(bound) = upper(operator, *value) {
                Ok(Numeric::Range {
                    lower: None,
                    upper: Some(bound),
                })
            } else {
                Err(bad("unknown operator; use =, <, <=, > or >="))
            }
        }
        [(low_op, low), (high_op, high)] => {
            let (Some(lower), Some(upper)) = (lower(low_op, *low), upper(high_op, *high)) else {
                return Err(bad(
                    "a range is a lower bound (> or >=) then an upper bound (< or <=)",
                ));
            };
            if lower.value >= upper.value {
                return Err(bad("the lower bound must be below the upper bound"));
            }
            Ok(Numeric::Range {
                lower: Some(lower),
                upper: Some(upper),
            })
        }
        _ => Err(bad("takes one comparison or one range")),
    }
}

/// Splits a wildcard at its unescaped `*`s. `\*` is a literal star and `\\` a literal
/// backslash; any other escape, and two consecutive stars, are refused (as EventBridge does).
fn parse_wildcard(text: &str, path: &str) -> Result<Wildcard, PatternError> {
    let bad = |detail| PatternError::BadWildcard {
        path: path.to_owned(),
        detail,
    };
    let mut parts = vec![String::new()];
    let mut chars = text.chars();
    let mut previous_was_star = false;
    while let Some(character) = chars.next() {
        let literal = match character {
            '*' => {
                if previous_was_star {
                    return Err(bad("consecutive `*` are not allowed"));
                }
                previous_was_star = true;
                parts.push(String::new());
                continue;
            }
            '\\' => match chars.next() {
                Some(escaped @ ('*' | '\\')) => escaped,
                _ => return Err(bad("only `\\*` and `\\\\` may be escaped")),
            },
            other => other,
        };
        previous_was_star = false;
        if let Some(last) = parts.last_mut() {
            last.push(literal);
        }
    }
    Ok(Wildcard { parts })
}

fn parse_cidr(text: &str) -> Option<Cidr> {
    let (address, length) = text.split_once('/')?;
    let length: u32 = length.parse().ok()?;
    match address.parse::<IpAddr>().ok()? {
        IpAddr::V4(address) if length <= 32 => {
            let mask = u32::MAX.checked_shl(32 - length).unwrap_or(0);
            Some(Cidr::V4 {
                network: u32::from(address) & mask,
                mask,
            })
        }
        IpAddr::V6(address) if length <= 128 => {
            let mask = u128::MAX.checked_shl(128 - length).unwrap_or(0);
            Some(Cidr::V6 {
                network: u128::from(address) & mask,
                mask,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(text: &str) -> PatternError {
        parse(text).expect_err(text)
    }

    #[test]
    fn refuses_malformed_patterns() {
        assert!(matches!(reason("{"), PatternError::NotJson(_)));
        assert_eq!(reason("[]"), PatternError::NotAnObject);
        assert_eq!(reason("\"a\""), PatternError::NotAnObject);
        assert!(matches!(reason("{}"), PatternError::EmptyObject { .. }));
        assert!(
            matches!(reason(r#"{"a": {}}"#), PatternError::EmptyObject { path } if path == "a")
        );
        assert!(matches!(
            reason(r#"{"a": "x"}"#),
            PatternError::NotArrayOrObject { .. }
        ));
        assert!(matches!(
            reason(r#"{"a": 1}"#),
            PatternError::NotArrayOrObject { .. }
        ));
        assert!(matches!(
            reason(r#"{"a": null}"#),
            PatternError::NotArrayOrObject { .. }
        ));
        assert!(
            matches!(reason(r#"{"a": {"b": []}}"#), PatternError::EmptyArray { path } if path == "a.b")
        );
        assert!(matches!(
            reason(r#"{"a": [["x"]]}"#),
            PatternError::NestedArray { .. }
        ));
    }

    #[test]
    fn refuses_bad_operators() {
        assert!(
            matches!(reason(r#"{"a": [{"regex": "x"}]}"#), PatternError::UnknownOperator { operator, .. } if operator == "regex")
        );
        assert!(matches!(
            reason(r#"{"a": [{}]}"#),
            PatternError::OperatorCount { .. }
        ));
        assert!(matches!(
            reason(r#"{"a": [{"prefix": "x", "suffix": "y"}]}"#),
            PatternError::OperatorCount { .. }
        ));
        for text in [
            r#"{"a": [{"prefix": 1}]}"#,
            r#"{"a": [{"prefix": {"equals-ignore-case": 1}}]}"#,
            r#"{"a": [{"prefix": {"other": "x"}}]}"#,
            r#"{"a": [{"suffix": null}]}"#,
            r#"{"a": [{"equals-ignore-case": ["x"]}]}"#,
            r#"{"a": [{"wildcard": 1}]}"#,
            r#"{"a": [{"exists": "true"}]}"#,
            r#"{"a": [{"cidr": "10.0.0.0"}]}"#,
            r#"{"a": [{"cidr": "10.0.0.0/33"}]}"#,
            r#"{"a": [{"cidr": "::1/129"}]}"#,
            r#"{"a": [{"cidr": "banana/8"}]}"#,
            r#"{"a": [{"anything-but": []}]}"#,
            r#"{"a": [{"anything-but": ["x", 1]}]}"#,
            r#"{"a": [{"anything-but": [true]}]}"#,
            r#"{"a": [{"anything-but": null}]}"#,
            r#"{"a": [{"anything-but": {"prefix": 1}}]}"#,
            r#"{"a": [{"anything-but": {"numeric": [">", 1]}}]}"#,
            r#"{"a": [{"anything-but": {"prefix": "x", "suffix": "y"}}]}"#,
        ] {
            assert!(
                matches!(reason(text), PatternError::BadOperand { .. }),
                "{text}"
            );
        }
    }

    #[test]
    fn refuses_bad_numeric_rules() {
        for text in [
            r#"{"a": [{"numeric": 5}]}"#,
            r#"{"a": [{"numeric": []}]}"#,
            r#"{"a": [{"numeric": [">"]}]}"#,
            r#"{"a": [{"numeric": [">", "5"]}]}"#,
            r#"{"a": [{"numeric": ["!=", 5]}]}"#,
            r#"{"a": [{"numeric": ["<", 5, ">", 1]}]}"#,
            r#"{"a": [{"numeric": ["=", 5, "<", 10]}]}"#,
            r#"{"a": [{"numeric": [">", 5, "<", 5]}]}"#,
            r#"{"a": [{"numeric": [">", 0, "<", 5, "<", 6]}]}"#,
            r#"{"a": [{"numeric": [">", 6e9]}]}"#,
        ] {
            assert!(
                matches!(reason(text), PatternError::BadNumeric { .. }),
                "{text}"
            );
        }
    }

    #[test]
    fn refuses_bad_or() {
        for text in [
            r#"{"$or": []}"#,
            r#"{"$or": {"a": ["x"]}}"#,
            r#"{"$or": [["x"]]}"#,
            r#"{"$or": [{}]}"#,
            r#"{"$or": ["x"]}"#,
        ] {
            assert!(matches!(reason(text), PatternError::BadOr { .. }), "{text}");
        }
        // An invalid alternative is reported where it is.
        assert!(matches!(
            reason(r#"{"$or": [{"a": []}]}"#),
            PatternError::EmptyArray { .. }
        ));
    }

    #[test]
    fn splits_wildcards_and_handles_escapes() {
        let parts = |text: &str| parse_wildcard(text, "").map(|w| w.parts);
        assert_eq!(parts("a*b").ok(), Some(vec!["a".into(), "b".into()]));
        assert_eq!(parts("*").ok(), Some(vec![String::new(), String::new()]));
        assert_eq!(parts("a\\*b").ok(), Some(vec!["a*b".into()]));
        assert_eq!(
            parts("a\\\\*").ok(),
            Some(vec!["a\\".into(), String::new()])
        );
        assert!(parts("a**b").is_err());
        assert!(parts("a\\b").is_err());
        assert!(parts("a\\").is_err());
    }

    #[test]
    fn masks_cidr_blocks() {
        assert_eq!(
            parse_cidr("10.0.0.7/24"),
            Some(Cidr::V4 {
                network: 0x0A00_0000,
                mask: 0xFFFF_FF00
            })
        );
        assert_eq!(
            parse_cidr("0.0.0.0/0"),
            Some(Cidr::V4 {
                network: 0,
                mask: 0
            })
        );
        assert!(matches!(parse_cidr("2001:db8::/32"), Some(Cidr::V6 { .. })));
    }

    #[test]
    fn duplicate_keys_keep_the_last_value() {
        let pattern = parse(r#"{"a": ["x"], "a": ["y"]}"#).unwrap();
        assert_eq!(pattern.fields.len(), 1);
        let FieldPattern::Rules(rules) = &pattern.fields[0].1 else {
            panic!("rules expected");
        };
        assert!(matches!(&rules[..], [Rule::Exact(Exact::Str(text))] if text == "y"));
    }
}
