//! Errors of the queue service: what SQS would answer, plus storage failures.

/// Why a queue operation was refused or failed.
///
/// Every variant but [`QueueError::Store`] and [`QueueError::ShuttingDown`] is an SQS error
/// that the caller caused; [`QueueError::code`] names it as SQS does, and the `Display` text is
/// SQS's message.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("The specified queue does not exist.")]
    QueueDoesNotExist,
    #[error("A queue already exists with the same name and a different value for attribute {0}")]
    QueueNameExists(String),
    #[error("{0}")]
    InvalidParameterValue(String),
    #[error("The request must contain the parameter {0}.")]
    MissingParameter(&'static str),
    #[error("{0}")]
    InvalidAttributeName(String),
    #[error("{0}")]
    InvalidAttributeValue(String),
    #[error(
        "Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF"
    )]
    InvalidMessageContents,
    #[error("The input receipt handle \"{0}\" is not a valid receipt handle.")]
    ReceiptHandleIsInvalid(String),
    #[error("Message does not exist or is not available for visibility timeout change.")]
    MessageNotInflight,
    /// The queue's name.
    #[error("Only one PurgeQueue operation on {0} is allowed every 60 seconds.")]
    PurgeQueueInProgress(String),
    #[error("queue store failed: {0}")]
    Store(#[from] StoreError),
    #[error("the queue service is shutting down")]
    ShuttingDown,
}

impl QueueError {
    /// SQS's name for this error (the error shape of the service model), e.g.
    /// `QueueDoesNotExist`; `InternalError` for failures that are not the caller's.
    pub fn code(&self) -> &'static str {
        match self {
            QueueError::QueueDoesNotExist => "QueueDoesNotExist",
            QueueError::QueueNameExists(_) => "QueueNameExists",
            QueueError::InvalidParameterValue(_) => "InvalidParameterValue",
            QueueError::MissingParameter(_) => "MissingParameter",
            QueueError::InvalidAttributeName(_) => "InvalidAttributeName",
            QueueError::InvalidAttributeValue(_) => "InvalidAttributeValue",
            QueueError::InvalidMessageContents => "InvalidMessageContents",
            QueueError::ReceiptHandleIsInvalid(_) => "ReceiptHandleIsInvalid",
            QueueError::MessageNotInflight => "MessageNotInflight",
            QueueError::PurgeQueueInProgress(_) => "PurgeQueueInProgress",
            QueueError::Store(_) | QueueError::ShuttingDown => "InternalError",
        }
    }

    /// Whether the caller caused the error (SQS's `SenderFault`).
    pub fn is_sender_fault(&self) -> bool {
        !matches!(self, QueueError::Store(_) | QueueError::ShuttingDown)
    }

    pub(crate) fn invalid_value(
        parameter: &str,
        value: impl std::fmt::Display,
        reason: &str,
    ) -> Self {
        QueueError::InvalidParameterValue(format!(
            "Value {value} for parameter {parameter} is invalid. Reason: {reason}"
        ))
    }
}

/// A failure of the queue database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("i/o error on {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("stored record is corrupt: {0}")]
    CorruptRecord(String),
    #[error(
        "queue database schema version {found} is newer than this kiln understands ({supported})"
    )]
    SchemaTooNew { found: i64, supported: i64 },
    #[error("the queue writer has stopped")]
    WriterStopped,
    #[error("the commit failed: {0}")]
    CommitFailed(String),
}
