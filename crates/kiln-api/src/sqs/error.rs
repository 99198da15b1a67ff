//! SQS errors and their two wire forms: the JSON protocol (`__type` plus the
//! `x-amzn-query-error` header that SDKs read the classic code from) and the query protocol
//! (an XML `ErrorResponse`).

use axum::http::StatusCode;
use kiln_queues::QueueError;

/// An SQS error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqsErrorCode {
    QueueDoesNotExist,
    QueueNameExists,
    InvalidParameterValue,
    MissingParameter,
    InvalidAttributeName,
    InvalidAttributeValue,
    InvalidMessageContents,
    ReceiptHandleIsInvalid,
    MessageNotInflight,
    PurgeQueueInProgress,
    BatchEntryIdsNotDistinct,
    TooManyEntriesInBatchRequest,
    EmptyBatchRequest,
    InvalidBatchEntryId,
    BatchRequestTooLong,
    UnsupportedOperation,
    InvalidAction,
    MalformedRequest,
    InternalError,
}

impl SqsErrorCode {
    /// The shape name (JSON `__type` after `#`), which SDKs map to exception classes.
    pub fn shape(self) -> &'static str {
        match self {
            SqsErrorCode::QueueDoesNotExist => "com.amazonaws.sqs#QueueDoesNotExist",
            SqsErrorCode::QueueNameExists => "com.amazonaws.sqs#QueueNameExists",
            // Not modelled shapes (SDKs read the header's code); named as ElasticMQ names them.
            SqsErrorCode::InvalidParameterValue => "com.amazonaws.sqs#InvalidParameterValue",
            SqsErrorCode::MissingParameter => "com.amazonaws.sqs#MissingParameter",
            SqsErrorCode::InvalidAttributeName => "com.amazonaws.sqs#InvalidAttributeName",
            SqsErrorCode::InvalidAttributeValue => "com.amazonaws.sqs#InvalidAttributeValue",
            SqsErrorCode::InvalidMessageContents => "com.amazonaws.sqs#InvalidMessageContents",
            SqsErrorCode::ReceiptHandleIsInvalid => "com.amazonaws.sqs#ReceiptHandleIsInvalid",
            SqsErrorCode::MessageNotInflight => "com.amazonaws.sqs#MessageNotInflight",
            SqsErrorCode::PurgeQueueInProgress => "com.amazonaws.sqs#PurgeQueueInProgress",
            SqsErrorCode::BatchEntryIdsNotDistinct => "com.amazonaws.sqs#BatchEntryIdsNotDistinct",
            SqsErrorCode::TooManyEntriesInBatchRequest => {
                "com.amazonaws.sqs#TooManyEntriesInBatchRequest"
            }
            SqsErrorCode::EmptyBatchRequest => "com.amazonaws.sqs#EmptyBatchRequest",
            SqsErrorCode::InvalidBatchEntryId => "com.amazonaws.sqs#InvalidBatchEntryId",
            SqsErrorCode::BatchRequestTooLong => "com.amazonaws.sqs#BatchRequestTooLong",
            SqsErrorCode::UnsupportedOperation => "com.amazonaws.sqs#UnsupportedOperation",
            SqsErrorCode::InvalidAction => "com.amazon.coral.service#UnknownOperationException",
            SqsErrorCode::MalformedRequest => "com.amazon.coral.service#SerializationException",
            SqsErrorCode::InternalError => "com.amazonaws.sqs#InternalError",
        }
    }

    /// The query-protocol code (what `x-amzn-query-error` carries and SDKs show as the code).
    pub fn query_code(self) -> &'static str {
        match self {
            SqsErrorCode::QueueDoesNotExist => "AWS.SimpleQueueService.NonExistentQueue",
            SqsErrorCode::QueueNameExists => "QueueAlreadyExists",
            SqsErrorCode::InvalidParameterValue => "InvalidParameterValue",
            SqsErrorCode::MissingParameter => "MissingParameter",
            SqsErrorCode::InvalidAttributeName => "InvalidAttributeName",
            SqsErrorCode::InvalidAttributeValue => "InvalidAttributeValue",
            SqsErrorCode::InvalidMessageContents => "InvalidMessageContents",
            SqsErrorCode::ReceiptHandleIsInvalid => "ReceiptHandleIsInvalid",
            SqsErrorCode::MessageNotInflight => "AWS.SimpleQueueService.MessageNotInflight",
            SqsErrorCode::PurgeQueueInProgress => "AWS.SimpleQueueService.PurgeQueueInProgress",
            SqsErrorCode::BatchEntryIdsNotDistinct => {
                "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"
            }
            SqsErrorCode::TooManyEntriesInBatchRequest => {
                "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"
            }
            SqsErrorCode::EmptyBatchRequest => "AWS.SimpleQueueService.EmptyBatchRequest",
            SqsErrorCode::InvalidBatchEntryId => "AWS.SimpleQueueService.InvalidBatchEntryId",
            SqsErrorCode::BatchRequestTooLong => "AWS.SimpleQueueService.BatchRequestTooLong",
            SqsErrorCode::UnsupportedOperation => "AWS.SimpleQueueService.UnsupportedOperation",
            SqsErrorCode::InvalidAction => "InvalidAction",
            SqsErrorCode::MalformedRequest => "MalformedQueryString",
            SqsErrorCode::InternalError => "InternalError",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            SqsErrorCode::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            SqsErrorCode::PurgeQueueInProgress => StatusCode::FORBIDDEN,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    pub fn is_sender_fault(self) -> bool {
        self != SqsErrorCode::InternalError
    }
}

/// An error answered to an SQS client.
#[derive(Debug, Clone)]
pub struct SqsError {
    pub code: SqsErrorCode,
    pub message: String,
}

impl SqsError {
    pub fn new(code: SqsErrorCode, message: impl Into<String>) -> Self {
        SqsError {
            code,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        SqsError::new(SqsErrorCode::InvalidParameterValue, message)
    }

    pub fn missing(parameter: &str) -> Self {
        SqsError::new(
            SqsErrorCode::MissingParameter,
            format!("The request must contain the parameter {parameter}."),
        )
    }

    /// `Value V for parameter P is invalid. Reason: R`, SQS's usual wording.
    pub fn invalid_value(parameter: &str, value: impl std::fmt::Display, reason: &str) -> Self {
        SqsError::invalid(format!(
            "Value {value} for parameter {parameter} is invalid. Reason: {reason}"
        ))
    }
}

impl std::fmt::Display for SqsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.query_code(), self.message)
    }
}

impl From<QueueError> for SqsError {
    fn from(error: QueueError) -> Self {
        let code = match &error {
            QueueError::QueueDoesNotExist => SqsErrorCode::QueueDoesNotExist,
            QueueError::QueueNameExists(_) => SqsErrorCode::QueueNameExists,
            QueueError::InvalidParameterValue(_) => SqsErrorCode::InvalidParameterValue,
            QueueError::MissingParameter(_) => SqsErrorCode::MissingParameter,
            QueueError::InvalidAttributeName(_) => SqsErrorCode::InvalidAttributeName,
            QueueError::InvalidAttributeValue(_) => SqsErrorCode::InvalidAttributeValue,
            QueueError::InvalidMessageContents => SqsErrorCode::InvalidMessageContents,
            QueueError::ReceiptHandleIsInvalid(_) => SqsErrorCode::ReceiptHandleIsInvalid,
            QueueError::MessageNotInflight => SqsErrorCode::MessageNotInflight,
            QueueError::PurgeQueueInProgress(_) => SqsErrorCode::PurgeQueueInProgress,
            QueueError::Store(_) | QueueError::ShuttingDown => {
                // The cause is logged, not sent.
                tracing::error!(%error, "queue operation failed");
                return SqsError::new(
                    SqsErrorCode::InternalError,
                    "We encountered an internal error. Please try again.",
                );
            }
        };
        SqsError::new(code, error.to_string())
    }
}
