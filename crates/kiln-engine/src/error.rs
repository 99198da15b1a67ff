//! Errors the engine's commands return.

use kiln_core::FunctionName;
use kiln_store::{StoreError, UnzipError};

/// Why a command was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("function {name} not found")]
    FunctionNotFound {
        name: FunctionName,
        /// The qualifier that was asked for, when the function exists but that version doesn't.
        qualifier: Option<String>,
    },
    #[error("function {name} already exists")]
    FunctionExists { name: FunctionName },
    #[error("function {name} is busy: {activity:?}")]
    Busy {
        name: FunctionName,
        activity: BusyActivity,
    },
    #[error("the revision id does not match the latest revision")]
    RevisionMismatch,
    #[error("$LATEST cannot be deleted without deleting the function")]
    CannotDeleteLatest,
    #[error("too many tags")]
    TooManyTags,
    #[error("zipped code exceeds {limit} bytes")]
    ZippedTooLarge { limit: u64 },
    #[error("unzipped code exceeds {limit} bytes")]
    UnzippedTooLarge { limit: u64 },
    #[error("layer version {layer_name}:{version} not found")]
    LayerVersionNotFound { layer_name: String, version: u64 },
    #[error("function code with its layers is {actual} bytes, over {limit}")]
    CodeWithLayersTooLarge { limit: u64, actual: u64 },
    #[error("the layer version has no policy")]
    NoLayerPolicy,
    #[error("the policy's revision id does not match")]
    PolicyRevisionMismatch,
    #[error("statement {statement_id} already exists")]
    StatementExists { statement_id: String },
    #[error("statement {statement_id} not found")]
    StatementNotFound { statement_id: String },
    #[error("invalid code package: {0}")]
    InvalidZip(UnzipError),
    #[error("CodeSha256 {given} does not match $LATEST's {current}")]
    CodeShaMismatch { given: String, current: String },
    #[error("alias {alias} of {name} already exists")]
    AliasExists { name: FunctionName, alias: String },
    #[error("alias {alias} of {name} not found")]
    AliasNotFound { name: FunctionName, alias: String },
    #[error("the version is referenced by aliases {aliases:?}")]
    VersionInUse { aliases: Vec<String> },
    #[error("invalid alias: {0}")]
    InvalidAlias(AliasRule),
    #[error("event source mapping not found")]
    EventSourceMappingNotFound,
    #[error("the event source mapping's function does not exist")]
    EventSourceFunctionMissing,
    #[error("unrecognized event source")]
    UnrecognizedEventSource,
    #[error("event sources of {service} are not supported")]
    UnsupportedEventSource { service: String },
    #[error("the event source queue does not exist")]
    EventSourceQueueMissing,
    #[error("a mapping of {event_source_arn} to {function} exists: {uuid}")]
    DuplicateEventSourceMapping {
        uuid: String,
        event_source_arn: String,
        function: FunctionName,
    },
    #[error("the event source mapping is {state:?}")]
    EventSourceMappingBusy { state: kiln_core::EventSourceState },
    #[error("invalid event source mapping: {0}")]
    EventSourceRule(EventSourceRule),
    #[error("{name}:{qualifier} has no event invoke config")]
    EventInvokeConfigNotFound {
        name: FunctionName,
        qualifier: String,
    },
    #[error("invalid destination: {0}")]
    InvalidDestination(DestinationRule),
    #[error("throttled: {}", reason.as_str())]
    Throttled {
        reason: crate::concurrency::ThrottleReason,
    },
    /// Recursive loop detection stopped the invocation.
    #[error("{name} was stopped in a recursive loop")]
    RecursiveInvocation { name: FunctionName },
    #[error("invalid concurrency setting: {0}")]
    Concurrency(ConcurrencyRule),
    #[error("no provisioned concurrency configuration for this qualifier")]
    ProvisionedConfigNotFound,
    #[error("store failure: {0}")]
    Store(StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

/// An alias rule that a create or update broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AliasRule {
    #[error("version {0} is both the alias's version and its additional version")]
    AdditionalIsPrimary(u64),
    #[error("routing between $LATEST and another version")]
    RoutingFromLatest,
    #[error("the two versions have different execution roles")]
    DifferentRoles,
    #[error("the two versions have different dead-letter queues")]
    DifferentDeadLetterQueues,
}

/// A concurrency rule a reserved or provisioned concurrency setting broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConcurrencyRule {
    #[error("reserved concurrency would leave less than {minimum} unreserved")]
    ReservedBelowUnreservedMinimum { minimum: u32 },
    #[error("reserved concurrency {reserved} is lower than the provisioned total {provisioned}")]
    ReservedBelowProvisioned { reserved: u32, provisioned: u32 },
    #[error("provisioned concurrency exceeds the unreserved concurrency {unreserved}")]
    ProvisionedOverUnreserved { unreserved: u32 },
    #[error("provisioned concurrency would leave less than {minimum} unreserved")]
    ProvisionedBelowUnreservedMinimum { minimum: u32 },
    #[error("provisioned concurrency exceeds the function's reserved concurrency")]
    ProvisionedOverReserved,
    #[error("provisioned concurrency on $LATEST")]
    ProvisionedOnUnpublished,
    #[error("the version already has provisioned concurrency")]
    VersionAlreadyProvisioned,
    #[error("an alias of the version already has provisioned concurrency")]
    VersionProvisionedThroughAlias,
}

/// A rule an event source mapping's settings broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventSourceRule {
    #[error("a batch size over 10 needs a batching window")]
    BatchWindowRequired,
    #[error("FIFO queues take batches of at most 10")]
    FifoBatchSize,
    #[error(
        "the queue's visibility timeout ({queue_seconds} s) is shorter than the function's timeout ({function_seconds} s)"
    )]
    VisibilityTimeoutTooShort {
        queue_seconds: u64,
        function_seconds: u32,
    },
    #[error("invalid filter pattern")]
    InvalidFilter,
}

/// Why an asynchronous invocation destination was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DestinationRule {
    #[error("the destination function {arn} does not exist")]
    FunctionMissing { arn: String },
    #[error("a function cannot be its own destination")]
    ItselfAsDestination,
    #[error("Kiln has no {service} to deliver to ({arn})")]
    UnsupportedService { arn: String, service: String },
    #[error("the ARN names no kind of destination")]
    NotADestination,
}

/// What a busy function is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusyActivity {
    /// Still `Pending` after its creation.
    Creating,
    /// Its last update is still `InProgress`.
    Updating,
}

impl From<StoreError> for EngineError {
    fn from(error: StoreError) -> Self {
        EngineError::Store(error)
    }
}

impl EngineError {
    /// Separates the user's fault (a bad archive) from the store's (a full disk).
    pub(crate) fn from_code_error(error: StoreError) -> Self {
        match error {
            StoreError::Unzip(UnzipError::TooLarge { limit }) => {
                EngineError::UnzippedTooLarge { limit }
            }
            StoreError::Unzip(UnzipError::Io { path, source }) => {
                EngineError::Store(StoreError::Io { path, source })
            }
            StoreError::Unzip(other) => EngineError::InvalidZip(other),
            other => EngineError::Store(other),
        }
    }
}
