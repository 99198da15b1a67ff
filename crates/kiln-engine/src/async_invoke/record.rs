//! What Lambda delivers about an asynchronous event: the invocation record (to destinations)
//! and the dead-letter message attributes.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::format_description;

/// Lambda's `ErrorMessage` attribute carries at most the first kilobyte.
const MAX_ERROR_MESSAGE_BYTES: usize = 1024;

/// Why an event reached its final outcome (`requestContext.condition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    Success,
    RetriesExhausted,
    EventAgeExceeded,
}

impl Condition {
    fn as_str(self) -> &'static str {
        match self {
            Condition::Success => "Success",
            Condition::RetriesExhausted => "RetriesExhausted",
            Condition::EventAgeExceeded => "EventAgeExceeded",
        }
    }
}

/// The outcome of an event's last attempt, persisted with the event so that a record built
/// after a restart still carries the last response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LastResult {
    /// The function ran.
    Invoked {
        executed_version: String,
        function_error: bool,
        /// The response (or error) payload, as text.
        payload: String,
    },
    /// The invocation could not run: throttled (429) or a system error (500).
    NotRun { status: u16, message: String },
}

/// Everything an invocation record says.
#[derive(Debug)]
pub struct RecordFacts<'a> {
    pub request_id: &'a str,
    /// The function's ARN qualified with what was invoked (`$LATEST` when nothing was).
    pub function_arn: &'a str,
    pub condition: Condition,
    pub approximate_invoke_count: u32,
    pub request_payload: &'a [u8],
    pub last: Option<&'a LastResult>,
    pub timestamp_ms: i64,
}

/// Lambda's invocation record, with its fields in Lambda's order.
pub fn invocation_record(facts: &RecordFacts<'_>) -> Value {
    let mut record = json!({
        "version": "1.0",
        "timestamp": record_timestamp(facts.timestamp_ms),
        "requestContext": {
            "requestId": facts.request_id,
            "functionArn": facts.function_arn,
            "condition": facts.condition.as_str(),
            "approximateInvokeCount": facts.approximate_invoke_count,
        },
        "requestPayload": json_or_text(facts.request_payload),
    });
    match facts.last {
        Some(LastResult::Invoked {
            executed_version,
            function_error,
            payload,
        }) => {
            let mut response_context = json!({
                "statusCode": 200,
                "executedVersion": executed_version,
            });
            if *function_error {
                response_context["functionError"] = json!("Unhandled");
            }
            record["responseContext"] = response_context;
            record["responsePayload"] = json_or_text(payload.as_bytes());
        }
        Some(LastResult::NotRun { status, message }) => {
            record["responseContext"] = json!({ "statusCode": status });
            record["responsePayload"] = json!({ "errorMessage": message });
        }
        None => {}
    }
    record
}

/// A payload as JSON, or as a string when it is not JSON (or `null` when empty).
fn json_or_text(bytes: &[u8]) -> Value {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Value::Null;
    }
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

/// `2019-11-24T23:08:25.651Z`, the record's timestamp format.
pub fn record_timestamp(epoch_ms: i64) -> String {
    let instant = OffsetDateTime::from_unix_timestamp_nanos(i128::from(epoch_ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    instant
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        ))
        .unwrap_or_default()
}

/// The `ErrorCode` and `ErrorMessage` attributes of a dead-letter message: the HTTP status of
/// the last attempt (200 for a function error) and the error's message.
pub fn dead_letter_error(last: Option<&LastResult>) -> (u16, String) {
    match last {
        Some(LastResult::Invoked { payload, .. }) => {
            let message = serde_json::from_str::<Value>(payload)
                .ok()
                .and_then(|value| {
                    value
                        .get("errorMessage")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
                .unwrap_or_else(|| payload.clone());
            (200, truncate(message, MAX_ERROR_MESSAGE_BYTES))
        }
        Some(LastResult::NotRun { status, message }) => {
            (*status, truncate(message.clone(), MAX_ERROR_MESSAGE_BYTES))
        }
        None => (
            429,
            "The event expired before it could be invoked.".to_owned(),
        ),
    }
}

fn truncate(mut text: String, max_bytes: usize) -> String {
    if text.len() > max_bytes {
        let mut end = max_bytes;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_record_matches_lambdas_shape_and_order() {
        let last = LastResult::Invoked {
            executed_version: "$LATEST".into(),
            function_error: true,
            payload: r#"{"errorMessage":"intentional failure","errorType":"Exception"}"#.into(),
        };
        let record = invocation_record(&RecordFacts {
            request_id: "r-1",
            function_arn: "arn:aws:lambda:us-east-1:000000000000:function:f:$LATEST",
            condition: Condition::RetriesExhausted,
            approximate_invoke_count: 3,
            request_payload: br#"{"message":"m"}"#,
            last: Some(&last),
            timestamp_ms: 1_574_637_105_651,
        });
        assert_eq!(
            record.to_string(),
            r#"{"version":"1.0","timestamp":"2019-11-24T23:11:45.651Z","requestContext":{"requestId":"r-1","functionArn":"arn:aws:lambda:us-east-1:000000000000:function:f:$LATEST","condition":"RetriesExhausted","approximateInvokeCount":3},"requestPayload":{"message":"m"},"responseContext":{"statusCode":200,"executedVersion":"$LATEST","functionError":"Unhandled"},"responsePayload":{"errorMessage":"intentional failure","errorType":"Exception"}}"#
        );
    }

    #[test]
    fn a_success_record_has_no_function_error() {
        let last = LastResult::Invoked {
            executed_version: "3".into(),
            function_error: false,
            payload: String::new(),
        };
        let record = invocation_record(&RecordFacts {
            request_id: "r",
            function_arn: "arn:f:live",
            condition: Condition::Success,
            approximate_invoke_count: 1,
            request_payload: b"{}",
            last: Some(&last),
            timestamp_ms: 0,
        });
        assert_eq!(
            record["responseContext"],
            json!({"statusCode": 200, "executedVersion": "3"})
        );
        assert_eq!(record["responsePayload"], Value::Null);
        assert_eq!(record["requestPayload"], json!({}));
        assert_eq!(record["timestamp"], "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn dead_letter_attributes_carry_the_error_message() {
        let last = LastResult::Invoked {
            executed_version: "$LATEST".into(),
            function_error: true,
            payload: r#"{"errorMessage":"Test exception (this is intentional)"}"#.into(),
        };
        assert_eq!(
            dead_letter_error(Some(&last)),
            (200, "Test exception (this is intentional)".to_owned())
        );
        let long = LastResult::NotRun {
            status: 429,
            message: "é".repeat(600),
        };
        let (status, message) = dead_letter_error(Some(&long));
        assert_eq!(status, 429);
        assert_eq!(message.len(), 1024);
    }
}
