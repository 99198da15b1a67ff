//! Event source mappings: which queue Lambda polls into which function, and how.
//!
//! Serde derives are the store's format (snake_case), as for functions.

use serde::{Deserialize, Serialize};

use crate::EpochMillis;
use crate::names::FunctionName;

/// Lambda's `State` of an event source mapping. Changes go through a transitional state
/// (`Creating`, `Enabling`, `Disabling`, `Updating`, `Deleting`) before settling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventSourceState {
    Creating,
    Enabling,
    Enabled,
    Disabling,
    Disabled,
    Updating,
    Deleting,
}

impl EventSourceState {
    /// Lambda's spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            EventSourceState::Creating => "Creating",
            EventSourceState::Enabling => "Enabling",
            EventSourceState::Enabled => "Enabled",
            EventSourceState::Disabling => "Disabling",
            EventSourceState::Disabled => "Disabled",
            EventSourceState::Updating => "Updating",
            EventSourceState::Deleting => "Deleting",
        }
    }

    /// Whether a change is still being applied.
    pub fn is_transitional(&self) -> bool {
        !matches!(self, EventSourceState::Enabled | EventSourceState::Disabled)
    }
}

/// One event source mapping (an SQS queue polled into a function).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventSourceMapping {
    pub uuid: String,
    pub event_source_arn: String,
    pub function_name: FunctionName,
    /// The version or alias the mapping invokes, as given (`None`: unqualified, `$LATEST`).
    pub qualifier: Option<String>,
    pub batch_size: u32,
    pub maximum_batching_window_seconds: u32,
    /// What the user asked for; `state` says how far the mapping got.
    pub enabled: bool,
    pub state: EventSourceState,
    /// `FilterCriteria.Filters[].Pattern`, as given; `None` when no criteria were set.
    pub filter_patterns: Option<Vec<String>>,
    /// `FunctionResponseTypes: [ReportBatchItemFailures]`.
    pub report_batch_item_failures: bool,
    /// `ScalingConfig.MaximumConcurrency`: at most this many batches in flight at once.
    pub maximum_concurrency: Option<u32>,
    pub last_modified: EpochMillis,
}
