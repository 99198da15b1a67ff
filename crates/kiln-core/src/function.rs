//! Functions, their versions and their configuration, as the engine holds them.
//!
//! These types derive serde because the store persists them as JSON documents; the field
//! names are the store's format (snake_case), not Lambda's wire format. Changing a field is a
//! store schema change: add a migration in `kiln-store` (the format is pinned by a test there).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::EpochMillis;
use crate::layer::FunctionLayer;
use crate::names::{FunctionName, VersionId};

/// The instruction set a function's code is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Architecture {
    X86_64,
    Arm64,
}

impl Architecture {
    /// Lambda's spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            Architecture::X86_64 => "x86_64",
            Architecture::Arm64 => "arm64",
        }
    }
}

/// X-Ray tracing mode. Kiln records it and passes the trace header through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TracingMode {
    PassThrough,
    Active,
}

/// How the function's code is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PackageType {
    Zip,
}

/// Text or JSON log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Text,
    Json,
}

/// Where and how the function's logs are written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggingConfig {
    pub log_format: LogFormat,
    /// `TRACE` ... `FATAL`; only meaningful with JSON logs.
    pub application_log_level: Option<String>,
    /// `DEBUG`, `INFO` or `WARN`; only meaningful with JSON logs.
    pub system_log_level: Option<String>,
    /// Defaults to `/aws/lambda/NAME`.
    pub log_group: String,
}

impl LoggingConfig {
    /// Lambda's defaults for a function: text logs in `/aws/lambda/NAME`.
    pub fn default_for(name: &FunctionName) -> Self {
        Self {
            log_format: LogFormat::Text,
            application_log_level: None,
            system_log_level: None,
            log_group: format!("/aws/lambda/{name}"),
        }
    }
}

/// Subnets and security groups. Kiln keeps them so that tools round-trip them; they do not
/// change how a function reaches the network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VpcConfig {
    pub subnet_ids: Vec<String>,
    pub security_group_ids: Vec<String>,
    pub ipv6_allowed_for_dual_stack: bool,
}

/// Where failed asynchronous events go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetterConfig {
    pub target_arn: String,
}

/// Everything about a version that `UpdateFunctionConfiguration` can change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionConfig {
    pub description: String,
    pub runtime: String,
    pub handler: String,
    pub role: String,
    pub memory_size_mb: u32,
    pub timeout_seconds: u32,
    /// Environment variables, in the order the caller gave them; `None` when never set
    /// (Lambda then omits `Environment` from responses, while an empty set is echoed).
    pub environment: Option<Vec<(String, String)>>,
    pub ephemeral_storage_mb: u32,
    pub architecture: Architecture,
    pub package_type: PackageType,
    pub tracing_mode: TracingMode,
    pub logging: LoggingConfig,
    pub kms_key_arn: Option<String>,
    pub vpc: Option<VpcConfig>,
    pub dead_letter: Option<DeadLetterConfig>,
    /// Layer versions extracted into `/opt`, in order (a later one overrides an earlier one's
    /// files). Absent in records written before layers existed, and left out when empty so
    /// that records without layers keep their format.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<FunctionLayer>,
}

/// A stored, validated code package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeArtifact {
    /// Lowercase hex SHA-256 of the zip: the blob's key in the store.
    pub sha256_hex: String,
    /// Base64 SHA-256 of the zip, as Lambda reports it in `CodeSha256`.
    pub sha256_base64: String,
    /// Size of the zip in bytes (`CodeSize`).
    pub size_bytes: u64,
    /// Sum of the extracted file sizes.
    pub unzipped_size_bytes: u64,
}

/// Lambda's function lifecycle `State`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FunctionState {
    Pending,
    Active,
    Inactive,
    Failed,
}

impl FunctionState {
    /// Lambda's spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            FunctionState::Pending => "Pending",
            FunctionState::Active => "Active",
            FunctionState::Inactive => "Inactive",
            FunctionState::Failed => "Failed",
        }
    }
}

/// The state with the reason Lambda gives for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateInfo {
    pub state: FunctionState,
    pub reason: Option<String>,
    pub reason_code: Option<String>,
}

/// Lambda's `LastUpdateStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LastUpdateStatus {
    InProgress,
    Successful,
    Failed,
}

impl LastUpdateStatus {
    /// Lambda's spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            LastUpdateStatus::InProgress => "InProgress",
            LastUpdateStatus::Successful => "Successful",
            LastUpdateStatus::Failed => "Failed",
        }
    }
}

/// The outcome of the most recent update, with its reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastUpdate {
    pub status: LastUpdateStatus,
    pub reason: Option<String>,
    pub reason_code: Option<String>,
}

/// One version of a function: configuration plus code, with its lifecycle fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionVersion {
    pub version: VersionIdRecord,
    pub config: FunctionConfig,
    pub code: CodeArtifact,
    /// Changes on every mutation; callers pass it back as an optimistic-lock precondition.
    pub revision_id: String,
    pub last_modified: EpochMillis,
    pub state: StateInfo,
    /// `None` until the first deployment completes, as on Lambda.
    pub last_update: Option<LastUpdate>,
}

/// How a [`VersionId`] is written in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionIdRecord {
    Latest,
    Published(u64),
}

impl From<VersionId> for VersionIdRecord {
    fn from(value: VersionId) -> Self {
        match value {
            VersionId::Latest => VersionIdRecord::Latest,
            VersionId::Published(n) => VersionIdRecord::Published(n),
        }
    }
}

impl From<VersionIdRecord> for VersionId {
    fn from(value: VersionIdRecord) -> Self {
        match value {
            VersionIdRecord::Latest => VersionId::Latest,
            VersionIdRecord::Published(n) => VersionId::Published(n),
        }
    }
}

impl FunctionVersion {
    /// This version's identifier.
    pub fn version_id(&self) -> VersionId {
        self.version.into()
    }
}

/// A second version an alias sends part of its traffic to (`RoutingConfig`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdditionalVersion {
    /// A published version number (never `$LATEST`).
    pub version: u64,
    /// The share of invocations it receives, 0.0 to 1.0; the alias's own version gets the rest.
    pub weight: f64,
}

/// A named pointer to a version of a function, optionally splitting traffic with a second
/// published version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alias {
    pub name: String,
    pub function_version: VersionIdRecord,
    pub description: String,
    pub routing: Option<AdditionalVersion>,
    /// Changes on every update of the alias; `UpdateAlias` takes it as a precondition.
    pub revision_id: String,
}

impl Alias {
    /// The version the alias points to.
    pub fn version_id(&self) -> VersionId {
        self.function_version.into()
    }

    /// Whether invocations through this alias can run `version`.
    pub fn routes_to(&self, version: VersionId) -> bool {
        self.version_id() == version
            || self
                .routing
                .is_some_and(|routing| VersionId::Published(routing.version) == version)
    }

    /// The version one invocation runs: the additional version with probability `weight`,
    /// else the alias's own. `draw` is uniform in [0, 1).
    pub fn pick_version(&self, draw: f64) -> VersionId {
        match self.routing {
            Some(routing) if draw < routing.weight => VersionId::Published(routing.version),
            _ => self.version_id(),
        }
    }
}

/// A function: its `$LATEST`, its published versions, its aliases and its function-wide
/// settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Function {
    pub name: FunctionName,
    pub created: EpochMillis,
    pub tags: BTreeMap<String, String>,
    pub latest: FunctionVersion,
    pub published: BTreeMap<u64, FunctionVersion>,
    /// The highest version number ever published: numbers are never reused, even after the
    /// version is deleted.
    pub last_published: u64,
    pub aliases: BTreeMap<String, Alias>,
    /// Reserved concurrency (`PutFunctionConcurrency`), shared by every version: at most this
    /// many invocations at once, and this many kept out of the account's unreserved pool.
    pub reserved_concurrency: Option<u32>,
    /// Provisioned concurrency configurations by qualifier: a published version's number or
    /// an alias's name. At most one configuration covers any one version.
    pub provisioned_concurrency: BTreeMap<String, ProvisionedConcurrency>,
    /// What Lambda does when it finds the function in a recursive loop
    /// (`PutFunctionRecursionConfig`), function-wide.
    pub recursive_loop: RecursiveLoop,
}

/// A function's recursive loop detection setting (`RecursiveLoop`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecursiveLoop {
    /// Lambda's default: the invocation that makes a loop exceed its limit is stopped.
    #[default]
    Terminate,
    /// Loops run on.
    Allow,
}

impl RecursiveLoop {
    /// Lambda's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RecursiveLoop::Terminate => "Terminate",
            RecursiveLoop::Allow => "Allow",
        }
    }

    /// Parses Lambda's spelling.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "Terminate" => Some(RecursiveLoop::Terminate),
            "Allow" => Some(RecursiveLoop::Allow),
            _ => None,
        }
    }
}

/// A provisioned concurrency configuration: how many environments to keep initialised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvisionedConcurrency {
    pub requested: u32,
    pub last_modified: EpochMillis,
}

impl Function {
    /// A version of this function, if it exists.
    pub fn version(&self, id: VersionId) -> Option<&FunctionVersion> {
        match id {
            VersionId::Latest => Some(&self.latest),
            VersionId::Published(n) => self.published.get(&n),
        }
    }

    /// Every version, `$LATEST` first, then published versions in ascending order.
    pub fn versions(&self) -> impl Iterator<Item = &FunctionVersion> {
        std::iter::once(&self.latest).chain(self.published.values())
    }

    /// How many environments this function's provisioned concurrency configurations ask for.
    pub fn provisioned_total(&self) -> u32 {
        self.provisioned_concurrency
            .values()
            .map(|config| config.requested)
            .fold(0, u32::saturating_add)
    }

    /// How much of the account's concurrency this function keeps for itself: its reserved
    /// concurrency, or else what its provisioned concurrency takes from the unreserved pool.
    pub fn concurrency_allocation(&self) -> u32 {
        self.reserved_concurrency
            .unwrap_or_else(|| self.provisioned_total())
    }

    /// The version a provisioned concurrency qualifier (version number or alias name) covers;
    /// `None` if it names neither.
    pub fn provisioned_version(&self, qualifier: &str) -> Option<VersionId> {
        match qualifier.parse::<u64>() {
            Ok(number) => Some(VersionId::Published(number)),
            Err(_) => self.aliases.get(qualifier).map(Alias::version_id),
        }
    }

    /// The aliases that route invocations to `version`, by name.
    pub fn aliases_of(&self, version: VersionId) -> Vec<&str> {
        self.aliases
            .values()
            .filter(|alias| alias.routes_to(version))
            .map(|alias| alias.name.as_str())
            .collect()
    }
}
