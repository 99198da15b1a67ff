//! Kiln's domain vocabulary, shared by the store, the engine and the API layer.
//!
//! Everything here is plain data plus the invariants that hold for it (a [`FunctionName`] is
//! always valid, a [`Qualifier`] is one of three forms). Nothing here does I/O or knows an AWS
//! wire shape: the API layer maps these types to and from Lambda's JSON, and the store
//! persists them in its own schema (see `kiln-store`).

mod account;
mod event_invoke;
mod event_source;
mod function;
mod layer;
mod names;

pub use account::AccountContext;
pub use event_invoke::EventInvokeConfig;
pub use event_source::{EventSourceMapping, EventSourceState};
pub use function::{
    AdditionalVersion, Alias, Architecture, CodeArtifact, DeadLetterConfig, Function,
    FunctionConfig, FunctionState, FunctionVersion, LastUpdate, LastUpdateStatus, LogFormat,
    LoggingConfig, PackageType, ProvisionedConcurrency, RecursiveLoop, StateInfo, TracingMode,
    VersionIdRecord, VpcConfig,
};
pub use layer::{FunctionLayer, LayerPolicy, LayerStatement, LayerVersion};
pub use names::{FunctionName, NameError, Qualifier, VersionId};

/// Milliseconds since the Unix epoch, the one timestamp unit used in the domain.
pub type EpochMillis = i64;

/// The current time as [`EpochMillis`].
pub fn now_millis() -> EpochMillis {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}
