//! Asynchronous invocation settings of one function, version or alias (Lambda's
//! `EventInvokeConfig`).

use serde::{Deserialize, Serialize};

use crate::EpochMillis;

/// Retry and destination settings for asynchronous invocations of one qualifier.
///
/// Unset limits mean Lambda's defaults (2 retries, 6 hours); they are kept unset rather than
/// filled in because Lambda returns only the fields that were set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventInvokeConfig {
    /// `$LATEST`, a version number or an alias name.
    pub qualifier: String,
    pub maximum_retry_attempts: Option<u32>,
    pub maximum_event_age_seconds: Option<u32>,
    /// Where a successful invocation's record goes.
    pub on_success: Option<String>,
    /// Where a failed event's record goes.
    pub on_failure: Option<String>,
    pub last_modified: EpochMillis,
}

impl EventInvokeConfig {
    /// Lambda's default number of retries after a function error.
    pub const DEFAULT_RETRY_ATTEMPTS: u32 = 2;
    /// Lambda's default (and largest) age of an event, six hours.
    pub const DEFAULT_EVENT_AGE_SECONDS: u32 = 21_600;

    /// Retries after function errors, defaulted.
    pub fn retry_attempts(&self) -> u32 {
        self.maximum_retry_attempts
            .unwrap_or(Self::DEFAULT_RETRY_ATTEMPTS)
    }

    /// The oldest an event may get, defaulted.
    pub fn event_age_seconds(&self) -> u32 {
        self.maximum_event_age_seconds
            .unwrap_or(Self::DEFAULT_EVENT_AGE_SECONDS)
    }
}
