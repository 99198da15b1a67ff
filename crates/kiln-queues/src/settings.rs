//! A queue's settable attributes: defaults, validation of SQS's string form, rendering back.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::QueueError;
use crate::model::RedrivePolicy;

/// The settable attributes of a queue. Serialised (snake_case JSON) as the store's format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueSettings {
    pub visibility_timeout: u32,
    pub message_retention_period: u32,
    pub delay_seconds: u32,
    pub receive_message_wait_time_seconds: u32,
    pub maximum_message_size: u32,
    pub fifo_queue: bool,
    pub content_based_deduplication: bool,
    /// `{"deadLetterTargetArn": ..., "maxReceiveCount": N}` parsed.
    pub redrive_policy: Option<StoredRedrivePolicy>,
    /// Kept as the JSON text given (validated to be a JSON object with `redrivePermission`).
    pub redrive_allow_policy: Option<String>,
    /// Accepted and returned, not enforced: `Policy`, KMS and SSE settings, FIFO throughput
    /// settings.
    pub passthrough: BTreeMap<String, String>,
}

/// [`RedrivePolicy`] in the store's format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredRedrivePolicy {
    pub dead_letter_target_arn: String,
    pub max_receive_count: u32,
}

impl From<&StoredRedrivePolicy> for RedrivePolicy {
    fn from(stored: &StoredRedrivePolicy) -> Self {
        RedrivePolicy {
            dead_letter_target_arn: stored.dead_letter_target_arn.clone(),
            max_receive_count: stored.max_receive_count,
        }
    }
}

/// Attributes SQS lets a caller set (besides `FifoQueue`, which only CreateQueue takes).
pub const SETTABLE_ATTRIBUTES: &[&str] = &[
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "Policy",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "RedrivePolicy",
    "RedriveAllowPolicy",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "SqsManagedSseEnabled",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
];

/// Read-only attributes that GetQueueAttributes knows.
pub const COMPUTED_ATTRIBUTES: &[&str] = &[
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
    "QueueArn",
];

const FIFO_ONLY: &[&str] = &[
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
];

impl QueueSettings {
    /// SQS's defaults for a new queue.
    pub fn defaults(fifo: bool) -> Self {
        let mut passthrough = BTreeMap::new();
        passthrough.insert("SqsManagedSseEnabled".to_owned(), "true".to_owned());
        if fifo {
            passthrough.insert("DeduplicationScope".to_owned(), "queue".to_owned());
            passthrough.insert("FifoThroughputLimit".to_owned(), "perQueue".to_owned());
        }
        QueueSettings {
            visibility_timeout: 30,
            message_retention_period: 345_600,
            delay_seconds: 0,
            receive_message_wait_time_seconds: 0,
            maximum_message_size: 1_048_576,
            fifo_queue: fifo,
            content_based_deduplication: false,
            redrive_policy: None,
            redrive_allow_policy: None,
            passthrough,
        }
    }

    /// Applies one attribute in SQS's string form. `creating` allows `FifoQueue`.
    pub fn apply(&mut self, name: &str, value: &str, creating: bool) -> Result<(), QueueError> {
        let invalid = || {
            QueueError::InvalidAttributeValue(format!("Invalid value for the parameter {name}."))
        };
        let number = |low: u32, high: u32| -> Result<u32, QueueError> {
            value
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|n| (low..=high).contains(n))
                .ok_or_else(invalid)
        };
        if FIFO_ONLY.contains(&name) && !self.fifo_queue {
            return Err(unknown_attribute(name));
        }
        match name {
            "VisibilityTimeout" => self.visibility_timeout = number(0, 43_200)?,
            "MessageRetentionPeriod" => self.message_retention_period = number(60, 1_209_600)?,
            "DelaySeconds" => self.delay_seconds = number(0, 900)?,
            "ReceiveMessageWaitTimeSeconds" => {
                self.receive_message_wait_time_seconds = number(0, 20)?;
            }
            "MaximumMessageSize" => self.maximum_message_size = number(1024, 1_048_576)?,
            "FifoQueue" => {
                let fifo = parse_bool(value).ok_or_else(invalid)?;
                if !creating {
                    if fifo != self.fifo_queue {
                        return Err(QueueError::InvalidAttributeValue(
                            "Invalid value for the parameter FifoQueue. Reason: Modifying queue type is not supported.".into(),
                        ));
                    }
                    return Ok(());
                }
                if fifo != self.fifo_queue {
                    return Err(invalid());
                }
            }
            "ContentBasedDeduplication" => {
                self.content_based_deduplication = parse_bool(value).ok_or_else(invalid)?;
            }
            "RedrivePolicy" => {
                self.redrive_policy = if value.is_empty() {
                    None
                } else {
                    Some(parse_redrive_policy(value)?)
                };
            }
            "RedriveAllowPolicy" => {
                self.redrive_allow_policy = if value.is_empty() {
                    None
                } else {
                    validate_redrive_allow_policy(value)?;
                    Some(value.to_owned())
                };
            }
            "DeduplicationScope" => {
                if !["queue", "messageGroup"].contains(&value) {
                    return Err(invalid());
                }
                self.passthrough.insert(name.to_owned(), value.to_owned());
            }
            "FifoThroughputLimit" => {
                if !["perQueue", "perMessageGroupId"].contains(&value) {
                    return Err(invalid());
                }
                self.passthrough.insert(name.to_owned(), value.to_owned());
            }
            "SqsManagedSseEnabled" => {
                let enabled = parse_bool(value).ok_or_else(invalid)?;
                self.passthrough
                    .insert(name.to_owned(), enabled.to_string());
            }
            "KmsDataKeyReusePeriodSeconds" => {
                number(60, 86_400)?;
                self.passthrough
                    .insert(name.to_owned(), value.trim().to_owned());
            }
            "Policy" | "KmsMasterKeyId" => {
                if value.is_empty() {
                    self.passthrough.remove(name);
                } else {
                    self.passthrough.insert(name.to_owned(), value.to_owned());
                }
            }
            _ => return Err(unknown_attribute(name)),
        }
        Ok(())
    }

    /// The value of a settable attribute in SQS's string form, `None` when unset.
    pub fn render(&self, name: &str) -> Option<String> {
        match name {
            "VisibilityTimeout" => Some(self.visibility_timeout.to_string()),
            "MessageRetentionPeriod" => Some(self.message_retention_period.to_string()),
            "DelaySeconds" => Some(self.delay_seconds.to_string()),
            "ReceiveMessageWaitTimeSeconds" => {
                Some(self.receive_message_wait_time_seconds.to_string())
            }
            "MaximumMessageSize" => Some(self.maximum_message_size.to_string()),
            "FifoQueue" => self.fifo_queue.then(|| "true".to_owned()),
            "ContentBasedDeduplication" => self
                .fifo_queue
                .then(|| self.content_based_deduplication.to_string()),
            "RedrivePolicy" => self.redrive_policy.as_ref().map(|policy| {
                serde_json::json!({
                    "deadLetterTargetArn": policy.dead_letter_target_arn,
                    "maxReceiveCount": policy.max_receive_count,
                })
                .to_string()
            }),
            "RedriveAllowPolicy" => self.redrive_allow_policy.clone(),
            other => self.passthrough.get(other).cloned(),
        }
    }

    /// Every attribute name that has a value, in the order GetQueueAttributes lists them.
    pub fn names(&self) -> Vec<&'static str> {
        ["FifoQueue"]
            .iter()
            .chain(SETTABLE_ATTRIBUTES)
            .copied()
            .filter(|name| self.render(name).is_some())
            .collect()
    }
}

fn unknown_attribute(name: &str) -> QueueError {
    QueueError::InvalidAttributeName(format!("Unknown Attribute {name}."))
}

fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

fn parse_redrive_policy(value: &str) -> Result<StoredRedrivePolicy, QueueError> {
    let invalid = |reason: &str| QueueError::invalid_value("RedrivePolicy", value, reason);
    let json: serde_json::Value = serde_json::from_str(value)
        .map_err(|_| invalid("Redrive policy is not a valid JSON map."))?;
    let object = json
        .as_object()
        .ok_or_else(|| invalid("Redrive policy is not a valid JSON map."))?;
    let arn = object
        .get("deadLetterTargetArn")
        .and_then(|v| v.as_str())
        .ok_or_else(|| {
            invalid("Redrive policy does not contain mandatory attribute: deadLetterTargetArn.")
        })?;
    let count = match object.get("maxReceiveCount") {
        Some(serde_json::Value::Number(n)) => n.as_i64(),
        Some(serde_json::Value::String(s)) => s.trim().parse::<i64>().ok(),
        None => {
            return Err(invalid(
                "Redrive policy does not contain mandatory attribute: maxReceiveCount.",
            ));
        }
        _ => None,
    };
    let count = count
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| (1..=1000).contains(n))
        .ok_or_else(|| {
            invalid(&format!(
                "Invalid value for maxReceiveCount: {}, valid values are from 1 to 1000 both inclusive.",
                object.get("maxReceiveCount").map(|v| v.to_string().trim_matches('"').to_owned()).unwrap_or_default()
            ))
        })?;
    if object
        .keys()
        .any(|k| k != "deadLetterTargetArn" && k != "maxReceiveCount")
    {
        return Err(invalid(
            "Only following attributes are supported: [deadLetterTargetArn, maxReceiveCount].",
        ));
    }
    Ok(StoredRedrivePolicy {
        dead_letter_target_arn: arn.to_owned(),
        max_receive_count: count,
    })
}

fn validate_redrive_allow_policy(value: &str) -> Result<(), QueueError> {
    let invalid = |reason: &str| QueueError::invalid_value("RedriveAllowPolicy", value, reason);
    let json: serde_json::Value =
        serde_json::from_str(value).map_err(|_| invalid("Invalid JSON."))?;
    let permission = json
        .get("redrivePermission")
        .and_then(|v| v.as_str())
        .ok_or_else(|| invalid("Amazon SQS can't create the redrive allow policy, as it’s in an unsupported format."))?;
    match permission {
        "allowAll" | "denyAll" => Ok(()),
        "byQueue" => {
            let sources = json.get("sourceQueueArns").and_then(|v| v.as_array());
            match sources {
                Some(list) if !list.is_empty() && list.len() <= 10 => Ok(()),
                _ => Err(invalid(
                    "Amazon SQS can't create the redrive allow policy, as it’s in an unsupported format.",
                )),
            }
        }
        _ => Err(invalid(
            "Amazon SQS can't create the redrive allow policy, as it’s in an unsupported format.",
        )),
    }
}

/// Whether `allow_policy` (a queue's RedriveAllowPolicy) lets `source_arn` use it as DLQ.
pub(crate) fn redrive_allowed(allow_policy: Option<&str>, source_arn: &str) -> bool {
    let Some(text) = allow_policy else {
        return true;
    };
    let Ok(json) = serde_json::from_str::<serde_json::Value>(text) else {
        return true;
    };
    match json.get("redrivePermission").and_then(|v| v.as_str()) {
        Some("denyAll") => false,
        Some("byQueue") => json
            .get("sourceQueueArns")
            .and_then(|v| v.as_array())
            .is_some_and(|list| list.iter().any(|arn| arn.as_str() == Some(source_arn))),
        _ => true,
    }
}

/// SQS's queue name rule: 1 to 80 characters of `[A-Za-z0-9_-]`, FIFO queues ending `.fifo`
/// (counted in the 80).
pub fn validate_queue_name(name: &str, fifo: bool) -> Result<(), QueueError> {
    let stem = if fifo {
        name.strip_suffix(".fifo").ok_or_else(|| {
            QueueError::InvalidParameterValue(
                "The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix and be 1 to 80 in length.".into(),
            )
        })?
    } else {
        name
    };
    let valid = !stem.is_empty()
        && name.len() <= 80
        && stem
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(())
    } else if fifo {
        Err(QueueError::InvalidParameterValue(
            "The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix and be 1 to 80 in length.".into(),
        ))
    } else {
        Err(QueueError::InvalidParameterValue(
            "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length"
                .into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_validate_and_render() {
        let mut settings = QueueSettings::defaults(false);
        settings.apply("VisibilityTimeout", "60", true).unwrap();
        assert_eq!(settings.render("VisibilityTimeout").unwrap(), "60");
        assert!(matches!(
            settings.apply("VisibilityTimeout", "43201", true),
            Err(QueueError::InvalidAttributeValue(_))
        ));
        assert!(matches!(
            settings.apply("ContentBasedDeduplication", "true", true),
            Err(QueueError::InvalidAttributeName(_))
        ));
        assert!(matches!(
            settings.apply("Bogus", "1", true),
            Err(QueueError::InvalidAttributeName(m)) if m == "Unknown Attribute Bogus."
        ));
        settings
            .apply(
                "RedrivePolicy",
                r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dlq","maxReceiveCount":"3"}"#,
                false,
            )
            .unwrap();
        assert_eq!(
            settings.render("RedrivePolicy").unwrap(),
            r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dlq","maxReceiveCount":3}"#
        );
        assert!(
            settings
                .apply(
                    "RedrivePolicy",
                    r#"{"deadLetterTargetArn":"x","maxReceiveCount":0}"#,
                    false
                )
                .is_err()
        );
        assert!(settings.apply("FifoQueue", "true", false).is_err());
    }

    #[test]
    fn queue_names() {
        assert!(validate_queue_name("orders-1_a", false).is_ok());
        assert!(validate_queue_name("orders.fifo", true).is_ok());
        assert!(validate_queue_name("orders.fifo", false).is_err());
        assert!(validate_queue_name("orders", true).is_err());
        assert!(validate_queue_name("", false).is_err());
        assert!(validate_queue_name(&"a".repeat(81), false).is_err());
        assert!(validate_queue_name(&format!("{}.fifo", "a".repeat(75)), true).is_ok());
        assert!(validate_queue_name(&format!("{}.fifo", "a".repeat(76)), true).is_err());
    }

    #[test]
    fn redrive_allow_policy() {
        assert!(redrive_allowed(None, "a"));
        assert!(!redrive_allowed(
            Some(r#"{"redrivePermission":"denyAll"}"#),
            "a"
        ));
        assert!(redrive_allowed(
            Some(r#"{"redrivePermission":"byQueue","sourceQueueArns":["a"]}"#),
            "a"
        ));
        assert!(!redrive_allowed(
            Some(r#"{"redrivePermission":"byQueue","sourceQueueArns":["b"]}"#),
            "a"
        ));
    }
}
