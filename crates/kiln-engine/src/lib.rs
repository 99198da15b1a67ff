//! Kiln's engine: the owner of all function state.
//!
//! The engine keeps an in-memory snapshot of every function (the *registry*), loaded from the
//! store at start-up and written through on every change. Reads never touch the database, so
//! the invoke path (and every Get/List) is a lock and a map lookup. Changes are serialised by
//! one writer lock: a change computes the new record from the snapshot, persists it, and only
//! then publishes it to the registry, so the snapshot never shows what the store does not hold.
//!
//! The public surface is [`Engine`]'s methods, one per command; the API layer translates wire
//! requests into these calls and [`EngineError`]s back into AWS errors.

mod async_invoke;
mod concurrency;
mod concurrency_settings;
mod error;
mod event_sources;
pub mod execution;
pub mod ids;
mod layers;
pub mod metrics;
pub mod recursion;
mod registry;
mod versions;

use std::collections::BTreeMap;
use std::sync::Arc;

use kiln_core::{
    AccountContext, CodeArtifact, Function, FunctionConfig, FunctionName, FunctionState,
    FunctionVersion, LastUpdate, LastUpdateStatus, Qualifier, StateInfo, VersionId,
};
use kiln_store::{BlobStore, Store, UnzipLimits};
use tokio::sync::Mutex;

pub use async_invoke::{
    AsyncConfig, AsyncCounters, AsyncMetrics, EventInvokeConfigChange, RetryPolicy,
};
pub use concurrency::{DEFAULT_CONCURRENCY_LIMIT, ThrottleReason, UNRESERVED_MINIMUM};
pub use concurrency_settings::{
    ConcurrencySettings, ProvisionedConcurrencyStatus, ProvisionedStatus,
};
pub use error::{
    AliasRule, BusyActivity, ConcurrencyRule, DestinationRule, EngineError, EventSourceRule,
};
pub use event_sources::{EventSourceMappingUpdate, NewEventSourceMapping, QueueFacts};
pub use kiln_store::UnzipError;
pub use layers::{LayerPins, MAX_FUNCTION_LAYERS, NewLayerStatement, NewLayerVersion};
use registry::Registry;
pub use versions::{AliasChange, InvocationTarget, NewAlias, PublishRequest};

/// Limits the engine enforces on code.
#[derive(Debug, Clone, Copy)]
pub struct CodeLimits {
    /// Zips must be smaller than this many bytes (Lambda: 50 MB).
    pub max_zipped_bytes: u64,
    /// Extracted code must total less than this many bytes (Lambda: 250 MB).
    pub max_unzipped_bytes: u64,
    /// Most entries accepted in one archive.
    pub max_zip_entries: usize,
}

impl Default for CodeLimits {
    fn default() -> Self {
        Self {
            max_zipped_bytes: 52_428_800,
            max_unzipped_bytes: UnzipLimits::LAMBDA_UNZIPPED_BYTES,
            max_zip_entries: 100_000,
        }
    }
}

/// Settings of the engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub code_limits: CodeLimits,
    pub execution: execution::ExecutionConfig,
    /// How long a create or update stays `Pending`/`InProgress` before its deployment
    /// completes. Zero (the default) completes it as soon as possible; a delay reproduces
    /// Lambda's timing, so that scripts which forget to wait for `Active` or `Successful`
    /// fail locally as they would on AWS.
    pub deployment_delay: std::time::Duration,
    /// Asynchronous invocation: retry schedule and concurrency.
    pub async_invocation: AsyncConfig,
    /// The account's concurrency limit (Lambda's `ConcurrentExecutions`).
    pub concurrency_limit: u32,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            code_limits: CodeLimits::default(),
            execution: execution::ExecutionConfig {
                keep_alive: std::time::Duration::from_secs(600),
                freeze_after: Some(std::time::Duration::from_secs(1)),
                endpoint_url: "http://127.0.0.1:9700".to_owned(),
                sqs_endpoint_url: None,
                force_plain: false,
                interpreters: execution::InterpreterOverrides::default(),
            },
            deployment_delay: std::time::Duration::ZERO,
            async_invocation: AsyncConfig::default(),
            concurrency_limit: concurrency::DEFAULT_CONCURRENCY_LIMIT,
        }
    }
}

/// Everything needed to create a function.
#[derive(Debug)]
pub struct NewFunction {
    pub name: FunctionName,
    pub config: FunctionConfig,
    pub zip: Vec<u8>,
    pub tags: BTreeMap<String, String>,
    /// Also publish the new function as version 1.
    pub publish: bool,
}

/// A change to `$LATEST`'s configuration; `None` fields are left as they are.
#[derive(Debug, Default)]
pub struct ConfigUpdate {
    pub description: Option<String>,
    pub runtime: Option<String>,
    pub handler: Option<String>,
    pub role: Option<String>,
    pub memory_size_mb: Option<u32>,
    pub timeout_seconds: Option<u32>,
    pub environment: Option<Option<Vec<(String, String)>>>,
    pub ephemeral_storage_mb: Option<u32>,
    pub tracing_mode: Option<kiln_core::TracingMode>,
    pub logging: Option<kiln_core::LoggingConfig>,
    pub kms_key_arn: Option<Option<String>>,
    pub vpc: Option<Option<kiln_core::VpcConfig>>,
    pub dead_letter: Option<Option<kiln_core::DeadLetterConfig>>,
    /// Resolved with [`Engine::resolve_layers`].
    pub layers: Option<Vec<kiln_core::FunctionLayer>>,
}

impl ConfigUpdate {
    fn apply(self, config: &mut FunctionConfig) {
        let ConfigUpdate {
            description,
            runtime,
            handler,
            role,
            memory_size_mb,
            timeout_seconds,
            environment,
            ephemeral_storage_mb,
            tracing_mode,
            logging,
            kms_key_arn,
            vpc,
            dead_letter,
            layers,
        } = self;
        set(&mut config.description, description);
        set(&mut config.runtime, runtime);
        set(&mut config.handler, handler);
        set(&mut config.role, role);
        set(&mut config.memory_size_mb, memory_size_mb);
        set(&mut config.timeout_seconds, timeout_seconds);
        set(&mut config.environment, environment);
        set(&mut config.ephemeral_storage_mb, ephemeral_storage_mb);
        set(&mut config.tracing_mode, tracing_mode);
        set(&mut config.logging, logging);
        set(&mut config.kms_key_arn, kms_key_arn);
        set(&mut config.vpc, vpc);
        set(&mut config.dead_letter, dead_letter);
        set(&mut config.layers, layers);
    }
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *field = value;
    }
}

/// A new code package for `$LATEST`.
#[derive(Debug)]
pub struct CodeUpdate {
    pub zip: Vec<u8>,
    pub architecture: Option<kiln_core::Architecture>,
    /// Only apply the change if `$LATEST`'s revision is this one.
    pub expected_revision: Option<String>,
    /// Validate everything, change nothing.
    pub dry_run: bool,
    /// Also publish the updated `$LATEST` as a new version.
    pub publish: bool,
}

/// Account-wide usage figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountUsage {
    pub function_count: u64,
    /// Bytes of code stored over every version of every function.
    pub total_code_size_bytes: u64,
}

/// The engine handle; cheap to clone.
#[derive(Debug, Clone)]
pub struct Engine {
    inner: Arc<EngineInner>,
}

#[derive(Debug)]
struct EngineInner {
    account: AccountContext,
    config: EngineConfig,
    store: Arc<Store>,
    registry: Arc<Registry>,
    /// Every layer version.
    layers: layers::LayerRegistry,
    executor: Arc<execution::Executor>,
    /// Serialises every change: read snapshot, persist, publish.
    writer: Mutex<()>,
    /// Code stored for a change that has not committed yet.
    pinned_code: Arc<PinnedCode>,
    event_sources: event_sources::EventSources,
    /// Lambda's per-function metrics, for `GET /metrics`.
    metrics: Arc<metrics::Metrics>,
    /// Kiln's SQS service, which event source mappings poll (`None`: no queues).
    queues: Option<kiln_queues::QueueService>,
    /// Accepted asynchronous events, their dispatcher and the event invoke configs.
    async_invocations: async_invoke::AsyncInvocations,
}

/// Digests of packages stored but not yet referenced by a committed version. Garbage
/// collection skips them, so a collection running between "store the blob" and "commit the
/// version" cannot delete the blob from under the change.
#[derive(Debug, Default)]
struct PinnedCode {
    counts: std::sync::Mutex<std::collections::HashMap<String, usize>>,
}

impl PinnedCode {
    fn pin(self: &Arc<Self>, digest: &str) -> CodePin {
        *self.lock().entry(digest.to_owned()).or_default() += 1;
        CodePin {
            pins: Arc::clone(self),
            digest: digest.to_owned(),
        }
    }

    fn is_pinned(&self, digest: &str) -> bool {
        self.lock().contains_key(digest)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, usize>> {
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Keeps a stored package safe from garbage collection until dropped.
#[derive(Debug)]
struct CodePin {
    pins: Arc<PinnedCode>,
    digest: String,
}

impl Drop for CodePin {
    fn drop(&mut self) {
        let mut counts = self.pins.lock();
        if let Some(count) = counts.get_mut(&self.digest) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.digest);
            }
        }
    }
}

impl Engine {
    /// Loads every function and event source mapping from `store`, resumes deployments that
    /// were interrupted and starts the pollers of enabled mappings (on `queues`).
    pub async fn start(
        store: Store,
        account: AccountContext,
        config: EngineConfig,
        queues: Option<kiln_queues::QueueService>,
    ) -> Result<Self, EngineError> {
        let store = Arc::new(store);
        let loaded = {
            let store = Arc::clone(&store);
            blocking(move || store.load_functions()).await??
        };
        let mappings = {
            let store = Arc::clone(&store);
            blocking(move || store.load_event_source_mappings()).await??
        };
        let event_invoke_configs = {
            let store = Arc::clone(&store);
            blocking(move || store.load_event_invoke_configs()).await??
        };
        let async_invocations = async_invoke::AsyncInvocations::open(
            store.data_dir(),
            config.async_invocation,
            event_invoke_configs,
        )?;
        let unfinished: Vec<(FunctionName, String)> = loaded
            .iter()
            .filter(|function| needs_deployment(&function.latest))
            .map(|function| (function.name.clone(), function.latest.revision_id.clone()))
            .collect();
        let loaded_layers = {
            let store = Arc::clone(&store);
            blocking(move || store.load_layers()).await??
        };
        let registry = Arc::new(Registry::new(loaded, config.concurrency_limit));
        let executor = execution::Executor::start(
            store.data_dir(),
            config.execution.clone(),
            account.clone(),
            Arc::clone(&registry),
            Arc::clone(&store),
        )
        .map_err(|error| {
            EngineError::Internal(format!("cannot start function execution: {error}"))
        })?;
        let engine = Self {
            inner: Arc::new(EngineInner {
                account,
                config,
                store,
                executor,
                registry,
                layers: layers::LayerRegistry::new(loaded_layers),
                writer: Mutex::new(()),
                pinned_code: Arc::default(),
                event_sources: event_sources::EventSources::new(mappings),
                metrics: Arc::default(),
                queues,
                async_invocations,
            }),
        };
        engine.sweep_unreferenced_code().await?;
        for (name, revision) in unfinished {
            tracing::info!(function = %name, "resuming interrupted deployment");
            engine.spawn_deployment(name, revision);
        }
        engine.resume_event_sources();
        engine.start_async_dispatcher();
        // Provisioned environments do not survive a restart: initialise them again.
        for function in engine.inner.registry.all() {
            if !function.provisioned_concurrency.is_empty() {
                engine.sync_provisioned(&function.name);
            }
        }
        tracing::info!(functions = engine.inner.registry.len(), "engine started");
        Ok(engine)
    }

    /// The account and region ARNs are built from.
    pub fn account(&self) -> &AccountContext {
        &self.inner.account
    }

    /// The code limits in force.
    pub fn code_limits(&self) -> CodeLimits {
        self.inner.config.code_limits
    }

    /// Runs `request` on the version `qualifier` names (`$LATEST` when `None`).
    pub async fn invoke(
        &self,
        name: &FunctionName,
        qualifier: Option<&Qualifier>,
        mut request: execution::InvokeRequest,
    ) -> Result<execution::InvokeResponse, EngineError> {
        let InvocationTarget {
            function,
            version,
            invoked_function_arn,
            concurrency,
        } = self.resolve_invocation(name, qualifier)?;
        let pending = function
            .version(version)
            .is_some_and(|version| version.state.state == FunctionState::Pending);
        if pending {
            return Err(EngineError::Busy {
                name: name.clone(),
                activity: BusyActivity::Creating,
            });
        }
        request.trace_header = Some(
            self.trace_invocation(&function, request.trace_header.as_deref())?
                .to_string(),
        );
        // Its own task: an invocation runs to its end even if the caller goes away (as on
        // Lambda), so its concurrency permit is held exactly as long as the function runs, and
        // its metrics are recorded either way.
        let executor = Arc::clone(&self.inner.executor);
        let recorder = Arc::clone(&self.inner.metrics);
        let owner = name.clone();
        tokio::spawn(async move {
            let running = recorder.start(&owner);
            let outcome = executor
                .invoke(
                    &function,
                    version,
                    invoked_function_arn,
                    request,
                    &concurrency,
                )
                .await;
            drop(running);
            match &outcome {
                Ok(response) => recorder.record_invocation(
                    &owner,
                    &response.executed_version,
                    if response.function_error {
                        metrics::InvocationOutcome::Error
                    } else {
                        metrics::InvocationOutcome::Success
                    },
                    response.duration,
                    response.provisioned.as_ref(),
                ),
                Err(_) => recorder.record_throttle(&owner),
            }
            outcome
        })
        .await
        .map_err(|error| EngineError::Internal(format!("invocation task failed: {error}")))?
        .map_err(|reason| EngineError::Throttled { reason })
    }

    /// Lambda's per-function metrics in Prometheus' text format (`GET /metrics`).
    pub fn metrics_text(&self) -> String {
        self.inner.metrics.render(
            &self.async_metrics().all(),
            &self.inner.executor.provisioned_usage(),
        )
    }

    /// Function logs.
    pub fn logs(&self) -> &execution::LogStore {
        self.inner.executor.logs()
    }

    /// What isolation this machine gives functions.
    pub fn sandbox_capabilities(&self) -> &kiln_sandbox::Capabilities {
        self.inner.executor.sandboxer().capabilities()
    }

    /// Which interpreters run which runtimes.
    pub fn runtime_status(&self) -> Vec<execution::RuntimeStatus> {
        self.inner.executor.catalog().status()
    }

    /// How many idle execution environments `name` has.
    pub fn idle_environments(&self, name: &FunctionName) -> usize {
        self.inner.executor.idle_count(name)
    }

    /// Shuts down every idle execution environment (at server shutdown).
    pub fn shutdown(&self) {
        self.stop_event_sources();
        self.stop_async_invocations();
        self.inner.executor.shutdown();
    }

    /// The store, for serving code downloads.
    pub fn blobs(&self) -> &BlobStore {
        self.inner.store.blobs()
    }

    /// A function, from the in-memory snapshot.
    pub fn function(&self, name: &FunctionName) -> Result<Arc<Function>, EngineError> {
        self.inner
            .registry
            .get(name)
            .ok_or_else(|| EngineError::FunctionNotFound {
                name: name.clone(),
                qualifier: None,
            })
    }

    /// Every function, ordered by name.
    pub fn functions(&self) -> Vec<Arc<Function>> {
        self.inner.registry.all()
    }

    /// Up to `limit` functions in name order, starting at the name `from` (inclusive).
    pub fn functions_from(&self, from: Option<&str>, limit: usize) -> Vec<Arc<Function>> {
        self.inner.registry.page(from, limit)
    }

    /// Account-wide usage; constant time.
    pub fn usage(&self) -> AccountUsage {
        AccountUsage {
            function_count: self.inner.registry.len() as u64,
            // Lambda counts layer versions' packages in TotalCodeSize too.
            total_code_size_bytes: self.inner.registry.total_code_bytes()
                + self.inner.layers.total_code_bytes(),
        }
    }

    /// Creates a function; its `$LATEST` starts `Pending` and becomes `Active` once deployed.
    pub async fn create_function(&self, new: NewFunction) -> Result<FunctionVersion, EngineError> {
        let NewFunction {
            name,
            config,
            zip,
            tags,
            publish,
        } = new;
        if self.inner.registry.get(&name).is_some() {
            return Err(EngineError::FunctionExists { name });
        }
        let (code, pin) = self.store_code(zip).await?;
        let outcome = self
            .insert_function(name, config, tags, code, publish)
            .await;
        self.release_code(pin, outcome.is_err()).await;
        outcome
    }

    /// Returns `$LATEST`, or version 1 if `publish`.
    async fn insert_function(
        &self,
        name: FunctionName,
        config: FunctionConfig,
        tags: BTreeMap<String, String>,
        code: CodeArtifact,
        publish: bool,
    ) -> Result<FunctionVersion, EngineError> {
        let _writer = self.inner.writer.lock().await;
        if self.inner.registry.get(&name).is_some() {
            return Err(EngineError::FunctionExists { name });
        }
        layers::check_combined_size(self.code_limits(), &code, &config.layers)?;
        let now = kiln_core::now_millis();
        let latest = FunctionVersion {
            version: VersionId::Latest.into(),
            config,
            code,
            revision_id: new_revision(),
            last_modified: now,
            state: StateInfo {
                state: FunctionState::Pending,
                reason: Some("The function is being created.".to_owned()),
                reason_code: Some("Creating".to_owned()),
            },
            last_update: None,
        };
        let mut function = Function {
            name: name.clone(),
            created: now,
            tags,
            latest: latest.clone(),
            published: BTreeMap::new(),
            last_published: 0,
            aliases: BTreeMap::new(),
            reserved_concurrency: None,
            provisioned_concurrency: BTreeMap::new(),
            recursive_loop: kiln_core::RecursiveLoop::default(),
        };
        let created = if publish {
            versions::publish_into(&mut function, None)
        } else {
            latest.clone()
        };
        let store = Arc::clone(&self.inner.store);
        let record = function.clone();
        blocking(move || store.insert_function(&record)).await??;
        self.inner.registry.put(function);
        self.spawn_deployment(name, latest.revision_id.clone());
        Ok(created)
    }

    /// Unpins a stored package; if the change that stored it failed, the package may now be
    /// referenced by nothing, so collect it.
    async fn release_code(&self, pin: CodePin, change_failed: bool) {
        let digest = pin.digest.clone();
        drop(pin);
        if change_failed {
            self.collect_code(vec![digest]).await;
        }
    }

    /// Changes `$LATEST`'s configuration.
    pub async fn update_function_configuration(
        &self,
        name: &FunctionName,
        update: ConfigUpdate,
        expected_revision: Option<&str>,
    ) -> Result<FunctionVersion, EngineError> {
        let _writer = self.inner.writer.lock().await;
        let function = self.function(name)?;
        check_revision(&function.latest, expected_revision)?;
        check_not_busy(&function)?;
        let mut latest = function.latest.clone();
        update.apply(&mut latest.config);
        layers::check_combined_size(self.code_limits(), &latest.code, &latest.config.layers)?;
        self.commit_update(&function, latest, false).await
    }

    /// Replaces `$LATEST`'s code. A dry run validates the package and stores nothing.
    pub async fn update_function_code(
        &self,
        name: &FunctionName,
        update: CodeUpdate,
    ) -> Result<FunctionVersion, EngineError> {
        let CodeUpdate {
            zip,
            architecture,
            expected_revision,
            dry_run,
            publish,
        } = update;
        let function = self.function(name)?;
        check_revision(&function.latest, expected_revision.as_deref())?;
        check_not_busy(&function)?;
        if dry_run {
            let mut preview = function.latest.clone();
            preview.code = self.inspect_code(zip).await?;
            layers::check_combined_size(self.code_limits(), &preview.code, &preview.config.layers)?;
            if let Some(architecture) = architecture {
                preview.config.architecture = architecture;
            }
            return Ok(preview);
        }
        let (code, pin) = self.store_code(zip).await?;
        let outcome = async {
            let _writer = self.inner.writer.lock().await;
            let function = self.function(name)?;
            check_revision(&function.latest, expected_revision.as_deref())?;
            check_not_busy(&function)?;
            let mut latest = function.latest.clone();
            latest.code = code;
            layers::check_combined_size(self.code_limits(), &latest.code, &latest.config.layers)?;
            if let Some(architecture) = architecture {
                latest.config.architecture = architecture;
            }
            self.commit_update(&function, latest, publish).await
        }
        .await;
        self.release_code(pin, outcome.is_err()).await;
        outcome
    }

    /// Deletes a whole function, or one published version of it.
    pub async fn delete_function(
        &self,
        name: &FunctionName,
        version: Option<VersionId>,
    ) -> Result<(), EngineError> {
        let mut released_layer_sets = Vec::new();
        let released: Vec<String> = {
            let _writer = self.inner.writer.lock().await;
            let function = self.function(name)?;
            let store = Arc::clone(&self.inner.store);
            match version {
                None => {
                    let deleted = name.clone();
                    blocking(move || store.delete_function(&deleted)).await??;
                    self.inner.registry.remove(name);
                    self.forget_event_invoke_configs(name, None).await?;
                    released_layer_sets
                        .extend(function.versions().filter_map(registry::layer_set_key));
                    function
                        .versions()
                        .flat_map(registry::packages)
                        .cloned()
                        .collect()
                }
                Some(VersionId::Latest) => return Err(EngineError::CannotDeleteLatest),
                // Deleting a version that does not exist succeeds, as on Lambda.
                Some(VersionId::Published(number)) if !function.published.contains_key(&number) => {
                    return Ok(());
                }
                Some(version @ VersionId::Published(_))
                    if !function.aliases_of(version).is_empty() =>
                {
                    return Err(EngineError::VersionInUse {
                        aliases: function
                            .aliases_of(version)
                            .into_iter()
                            .map(str::to_owned)
                            .collect(),
                    });
                }
                Some(VersionId::Published(number)) => {
                    let deleted = name.clone();
                    blocking(move || store.delete_version(&deleted, VersionId::Published(number)))
                        .await??;
                    let mut updated = (*function).clone();
                    let removed = updated.published.remove(&number);
                    // The store deleted the version's provisioned concurrency with it.
                    updated
                        .provisioned_concurrency
                        .remove(&VersionId::Published(number).as_lambda_string());
                    self.inner.registry.put(updated);
                    self.forget_event_invoke_configs(name, Some(&number.to_string()))
                        .await?;
                    released_layer_sets.extend(removed.iter().filter_map(registry::layer_set_key));
                    removed
                        .iter()
                        .flat_map(registry::packages)
                        .cloned()
                        .collect()
                }
            }
        };
        self.inner.executor.retire(name);
        self.sync_provisioned(name);
        self.collect_code(released).await;
        self.collect_layer_sets(released_layer_sets).await;
        Ok(())
    }

    /// Adds or overwrites tags on a function.
    pub async fn tag_function(
        &self,
        name: &FunctionName,
        tags: BTreeMap<String, String>,
        max_tags: usize,
    ) -> Result<(), EngineError> {
        self.change_tags(name, |current| {
            let mut merged = current.clone();
            merged.extend(tags);
            if merged.len() > max_tags {
                return Err(EngineError::TooManyTags);
            }
            Ok(merged)
        })
        .await
    }

    /// Removes tags from a function; keys that are not present are ignored.
    pub async fn untag_function(
        &self,
        name: &FunctionName,
        keys: &[String],
    ) -> Result<(), EngineError> {
        self.change_tags(name, |current| {
            let mut remaining = current.clone();
            for key in keys {
                remaining.remove(key);
            }
            Ok(remaining)
        })
        .await
    }

    async fn change_tags(
        &self,
        name: &FunctionName,
        change: impl FnOnce(&BTreeMap<String, String>) -> Result<BTreeMap<String, String>, EngineError>,
    ) -> Result<(), EngineError> {
        let _writer = self.inner.writer.lock().await;
        let function = self.function(name)?;
        let tags = change(&function.tags)?;
        let mut updated = (*function).clone();
        updated.tags = tags;
        // Lambda gives the function a new revision whenever its tags change.
        updated.latest.revision_id = new_revision();
        let store = Arc::clone(&self.inner.store);
        let record = updated.clone();
        blocking(move || store.put_tags(&record.name, &record.tags, &record.latest)).await??;
        self.inner.registry.put(updated);
        Ok(())
    }

    /// Persists a changed `$LATEST` as an in-progress update (and, if `publish`, as a new
    /// version too), publishes it to the registry, and starts its deployment. Returns
    /// `$LATEST`, or the new version if `publish`.
    async fn commit_update(
        &self,
        function: &Function,
        mut latest: FunctionVersion,
        publish: bool,
    ) -> Result<FunctionVersion, EngineError> {
        latest.revision_id = new_revision();
        // Strictly increasing: it keys the execution environment pools, so two updates in one
        // millisecond must still differ.
        latest.last_modified = kiln_core::now_millis().max(function.latest.last_modified + 1);
        latest.last_update = Some(LastUpdate {
            status: LastUpdateStatus::InProgress,
            reason: Some("The function is being created.".to_owned()),
            reason_code: Some("Creating".to_owned()),
        });
        let mut updated = function.clone();
        let previous = std::mem::replace(&mut updated.latest, latest.clone());
        let published = publish.then(|| versions::publish_into(&mut updated, None));
        let store = Arc::clone(&self.inner.store);
        let record = updated.clone();
        let new_version = published.clone();
        blocking(move || {
            let mut changed = vec![&record.latest];
            changed.extend(new_version.as_ref());
            store.put_versions(&record.name, &changed, record.last_published)
        })
        .await??;
        self.inner.registry.put(updated);
        self.spawn_deployment(function.name.clone(), latest.revision_id.clone());
        // Packages (code and layers) and the merged /opt the previous $LATEST used and the new
        // one does not.
        let still_used: Vec<&String> = registry::packages(&latest).collect();
        let released: Vec<String> = registry::packages(&previous)
            .filter(|digest| !still_used.contains(digest))
            .cloned()
            .collect();
        let released_layer_set = registry::layer_set_key(&previous)
            .filter(|key| registry::layer_set_key(&latest).as_ref() != Some(key));
        if !released.is_empty() || released_layer_set.is_some() {
            // The writer lock is held here; collect once it is released.
            let engine = self.clone();
            tokio::spawn(async move {
                engine.collect_code(released).await;
                engine
                    .collect_layer_sets(released_layer_set.into_iter().collect())
                    .await;
            });
        }
        Ok(published.unwrap_or(latest))
    }

    /// Completes a create or update in the background: the version becomes `Active` and its
    /// last update `Successful`. This is where a deployment prepares what invocations need.
    fn spawn_deployment(&self, name: FunctionName, revision: String) {
        let engine = self.clone();
        let delay = self.inner.config.deployment_delay;
        tokio::spawn(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            // What invocations need: the merged /opt of the function's layers.
            engine.prepare_layers(&name).await;
            if let Err(error) = engine.finish_deployment(&name, &revision).await {
                tracing::error!(function = %name, %error, "deployment failed");
            }
        });
    }

    async fn finish_deployment(
        &self,
        name: &FunctionName,
        revision: &str,
    ) -> Result<(), EngineError> {
        let _writer = self.inner.writer.lock().await;
        let Some(function) = self.inner.registry.get(name) else {
            return Ok(()); // Deleted meanwhile.
        };
        if function.latest.revision_id != revision {
            return Ok(()); // Superseded; the newer change runs its own deployment.
        }
        let mut updated = (*function).clone();
        deploy(&mut updated.latest);
        // Versions published with this change (Publish=true) become Active with it.
        let mut published_now = Vec::new();
        for version in updated.published.values_mut() {
            if version.state.state == FunctionState::Pending {
                deploy(version);
                published_now.push(version.version_id());
            }
        }
        let store = Arc::clone(&self.inner.store);
        let record = updated.clone();
        blocking(move || {
            let mut changed = vec![&record.latest];
            changed.extend(
                published_now
                    .iter()
                    .filter_map(|version| record.version(*version)),
            );
            store.put_versions(&record.name, &changed, record.last_published)
        })
        .await??;
        self.inner.registry.put(updated);
        // Environments of the previous configuration serve no more invocations.
        self.inner.executor.retire(name);
        Ok(())
    }

    /// Validates, extracts and stores a code package. Extraction comes first so that a
    /// refused archive never becomes a blob.
    async fn store_code(&self, zip: Vec<u8>) -> Result<(CodeArtifact, CodePin), EngineError> {
        let limits = self.inner.config.code_limits;
        // Lambda's limits are exclusive: "must be smaller than".
        if zip.len() as u64 >= limits.max_zipped_bytes {
            return Err(EngineError::ZippedTooLarge {
                limit: limits.max_zipped_bytes,
            });
        }
        let store = Arc::clone(&self.inner.store);
        let pins = Arc::clone(&self.inner.pinned_code);
        blocking(move || -> Result<(CodeArtifact, CodePin), EngineError> {
            let described = BlobStore::describe(&zip);
            let pin = pins.pin(&described.sha256_hex);
            let extracted = store
                .code()
                .extract(&described.sha256_hex, &zip, unzip_limits(limits))
                .map_err(EngineError::from_code_error)?;
            let stored = store.blobs().put(&zip)?;
            let artifact = CodeArtifact {
                sha256_hex: stored.sha256_hex,
                sha256_base64: stored.sha256_base64,
                size_bytes: stored.size_bytes,
                unzipped_size_bytes: extracted.unzipped_size_bytes,
            };
            Ok((artifact, pin))
        })
        .await?
    }

    /// Validates a package as [`Engine::store_code`] does, keeping nothing.
    async fn inspect_code(&self, zip: Vec<u8>) -> Result<CodeArtifact, EngineError> {
        let limits = self.inner.config.code_limits;
        if zip.len() as u64 >= limits.max_zipped_bytes {
            return Err(EngineError::ZippedTooLarge {
                limit: limits.max_zipped_bytes,
            });
        }
        let store = Arc::clone(&self.inner.store);
        blocking(move || -> Result<CodeArtifact, EngineError> {
            let described = BlobStore::describe(&zip);
            let unzipped_size_bytes = store
                .code()
                .measure(&described.sha256_hex, &zip, unzip_limits(limits))
                .map_err(EngineError::from_code_error)?;
            Ok(CodeArtifact {
                sha256_hex: described.sha256_hex,
                sha256_base64: described.sha256_base64,
                size_bytes: described.size_bytes,
                unzipped_size_bytes,
            })
        })
        .await?
    }

    /// Removes the packages among `candidates` that no version references and no change in
    /// flight has pinned. Cost is proportional to the candidates, not to the functions.
    /// Failures are logged: a package left behind is swept at the next start.
    async fn collect_code(&self, candidates: Vec<String>) {
        let _writer = self.inner.writer.lock().await;
        let unused: Vec<String> = candidates
            .into_iter()
            .filter(|digest| !self.code_in_use(digest))
            .collect();
        if unused.is_empty() {
            return;
        }
        let store = Arc::clone(&self.inner.store);
        let removed = blocking(move || -> Result<(), EngineError> {
            for digest in &unused {
                store.blobs().remove(digest)?;
                store.code().remove(digest)?;
            }
            Ok(())
        })
        .await;
        if let Err(error) = removed.and_then(|removed| removed) {
            tracing::warn!(%error, "removing unused code failed");
        }
    }

    /// Removes every stored package no version references: leftovers of a crash between
    /// storing a package and committing the change that uses it. Run at start-up.
    async fn sweep_unreferenced_code(&self) -> Result<(), EngineError> {
        let _writer = self.inner.writer.lock().await;
        let store = Arc::clone(&self.inner.store);
        let engine = self.clone();
        blocking(move || -> Result<(), EngineError> {
            let unused = |digest: &String| !engine.code_in_use(digest);
            for digest in store.blobs().list()? {
                if unused(&digest) {
                    store.blobs().remove(&digest)?;
                }
            }
            for digest in store.code().list()? {
                if unused(&digest) {
                    store.code().remove(&digest)?;
                }
            }
            engine.sweep_unused_layer_sets()?;
            Ok(())
        })
        .await?
    }
}

/// A deployed version: `Active`, its last update `Successful`, and a new revision.
fn deploy(version: &mut FunctionVersion) {
    version.state = StateInfo {
        state: FunctionState::Active,
        reason: None,
        reason_code: None,
    };
    version.last_update = Some(LastUpdate {
        status: LastUpdateStatus::Successful,
        reason: None,
        reason_code: None,
    });
    version.revision_id = new_revision();
}

fn unzip_limits(limits: CodeLimits) -> UnzipLimits {
    UnzipLimits {
        max_unzipped_bytes: limits.max_unzipped_bytes,
        max_entries: limits.max_zip_entries,
    }
}

fn needs_deployment(version: &FunctionVersion) -> bool {
    version.state.state == FunctionState::Pending
        || version
            .last_update
            .as_ref()
            .is_some_and(|update| update.status == LastUpdateStatus::InProgress)
}

/// Lambda refuses changes to a function that is still being created or updated.
fn check_not_busy(function: &Function) -> Result<(), EngineError> {
    if function.latest.state.state == FunctionState::Pending {
        return Err(EngineError::Busy {
            name: function.name.clone(),
            activity: error::BusyActivity::Creating,
        });
    }
    let updating = function
        .latest
        .last_update
        .as_ref()
        .is_some_and(|update| update.status == LastUpdateStatus::InProgress);
    if updating {
        return Err(EngineError::Busy {
            name: function.name.clone(),
            activity: error::BusyActivity::Updating,
        });
    }
    Ok(())
}

fn check_revision(latest: &FunctionVersion, expected: Option<&str>) -> Result<(), EngineError> {
    match expected {
        Some(expected) if expected != latest.revision_id => Err(EngineError::RevisionMismatch),
        _ => Ok(()),
    }
}

fn new_revision() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Runs blocking store work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, EngineError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| EngineError::Internal(format!("blocking task failed: {e}")))
}

#[cfg(test)]
mod tests;
