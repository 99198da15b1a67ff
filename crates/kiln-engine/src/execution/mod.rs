//! Running functions: execution environments, their pools, and the invoke path.
//!
//! An invocation takes an idle environment of the function version's pool (a warm start) or
//! starts a new one (a cold start: sandbox, runtime, init), runs in it, and returns it to the
//! pool. Pools are keyed by function, version and the version's `last_modified`, which changes
//! with every code or configuration update: an update's environments never serve the old
//! configuration, and old ones are retired when the update is deployed. Idle environments are
//! frozen after a short while (where cgroups allow) and reaped after the keep-alive.
//!
//! Functions with provisioned concurrency also have provisioned environments per version
//! (`provisioned.rs`), which invocations of that version take first. Every other invocation
//! takes a concurrency permit (`crate::concurrency`) before it takes or starts an environment,
//! and holds it until the environment is returned: over a limit, it is throttled instead.
//!
//! The warm path takes two short locks (registry, pool), one compare-and-swap for the permit
//! and one channel hand-off to the runtime's pending `/next`; it never touches the database
//! or the filesystem.

mod capture;
mod environment;
pub mod logs;
mod provisioned;
mod runtime_api;
pub mod runtimes;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kiln_core::{
    AccountContext, Function, FunctionLayer, FunctionName, FunctionVersion, LogFormat, VersionId,
};
use kiln_sandbox::{ExitStatus, Limits, Mount, SandboxSpec, Sandboxer, SandboxerConfig, TmpVolume};
use kiln_store::{MergedLayers, Store};
use sha2::{Digest, Sha256};

use crate::concurrency::{self, FunctionConcurrency, ThrottleReason};
use crate::metrics::{ProvisionedSeries, ProvisionedUse};
use crate::registry::Registry;
use capture::Capture;
use environment::{Dispatch, Environment, Readiness, RunOutcome, RuntimeReply};
pub use logs::{LogEvent, LogStore};
pub(crate) use provisioned::ProvisionedTarget;
use runtimes::{EnvironmentInputs, Launch, LaunchError, Layout};
pub use runtimes::{Interpreter, InterpreterOverrides, RuntimeCatalog, RuntimeStatus};

/// How long a function's init may take before Lambda gives up on it (on-demand).
const INIT_LIMIT: Duration = Duration::from_secs(10);
/// Lambda's CPU share: 1,769 MB of memory buys one vCPU.
const MEMORY_PER_VCPU_MB: f64 = 1769.0;
/// Processes and threads per environment, and open files (Lambda's quotas).
const PIDS_LIMIT: u32 = 1024;
const OPEN_FILES_LIMIT: u32 = 1024;

/// Settings of function execution.
#[derive(Debug, Clone)]
pub struct ExecutionConfig {
    /// Idle environments older than this are shut down.
    pub keep_alive: Duration,
    /// Idle environments are frozen after this long (`None`: never).
    pub freeze_after: Option<Duration>,
    /// `AWS_ENDPOINT_URL` for functions, so that SDKs inside them reach Kiln.
    pub endpoint_url: String,
    /// `AWS_ENDPOINT_URL_SQS` for functions, when Kiln serves SQS.
    pub sqs_endpoint_url: Option<String>,
    /// Run functions as plain processes even where isolation is available.
    pub force_plain: bool,
    pub interpreters: InterpreterOverrides,
}

/// An invocation, as the API hands it over.
#[derive(Debug)]
pub struct InvokeRequest {
    /// The invocation's request id: the API request's, as on Lambda, so that a caller can
    /// find the invocation's logs by the `x-amzn-RequestId` it got back.
    pub request_id: String,
    pub payload: Bytes,
    /// The decoded `X-Amz-Client-Context` JSON.
    pub client_context: Option<String>,
    /// Return the last 4 KB of the invocation's log.
    pub log_tail: bool,
    /// The X-Ray trace header the invocation came with (`X-Amzn-Trace-Id`, a message's
    /// `AWSTraceHeader`); [`crate::Engine::invoke`] adds the function to its lineage.
    pub trace_header: Option<String>,
}

/// What an invocation produced.
#[derive(Debug)]
pub struct InvokeResponse {
    /// `$LATEST` or the version number that ran.
    pub executed_version: String,
    /// The function's result, or its error payload.
    pub payload: Bytes,
    /// Whether `payload` is an error (`X-Amz-Function-Error: Unhandled`).
    pub function_error: bool,
    /// The invocation's log tail, when asked for.
    pub log_tail: Option<String>,
    /// REPORT's `Duration`: the handler's time (or the failed init's), without a cold start.
    pub duration: Duration,
    /// For a version with provisioned concurrency: whether it ran on a provisioned environment
    /// or spilled over to an on-demand one (with the configuration's counters).
    pub provisioned: Option<ProvisionedUse>,
}

/// Which pool an environment belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PoolKey {
    function: FunctionName,
    version: VersionId,
    /// Changes with every code or configuration update.
    last_modified: i64,
}

impl PoolKey {
    pub(crate) fn of(function: &Function, version: &FunctionVersion) -> Self {
        Self {
            function: function.name.clone(),
            version: version.version_id(),
            last_modified: version.last_modified,
        }
    }
}

struct Idle {
    environment: Arc<Environment>,
    since: Instant,
}

/// The provisioned environments of one version: initialised ahead of invocations, never
/// reaped for idleness, replaced when one dies.
#[derive(Debug)]
struct ProvisionedPool {
    /// Tells this pool from an earlier one of the same version (a configuration deleted and
    /// put again while one of the old pool's environments was invoking): an environment goes
    /// back only to the pool it came from.
    generation: u64,
    requested: u32,
    /// When the configuration was last put; a new put clears a failure and tries again.
    config_modified: i64,
    /// Environments initialised for this pool and not discarded since (idle or invoking).
    live: u32,
    /// Environments being initialised.
    starting: u32,
    idle: Vec<Arc<Environment>>,
    /// Why initialisation failed (Lambda's `StatusReason`); nothing more is started then.
    failure: Option<String>,
    /// The configuration's qualifier (version number or alias name), for the metrics.
    resource: String,
    /// The configuration's invocation counters, handed to each invocation of the version.
    series: Arc<ProvisionedSeries>,
}

/// What a provisioned concurrency configuration's environments look like now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionedState {
    /// Environments ready for invocations (Lambda's allocated and available counts).
    pub allocated: u32,
    /// Set when initialising an environment failed.
    pub failure: Option<String>,
}

/// Lambda's `StatusReason` when a provisioned environment's init fails.
const PROVISIONED_INIT_FAILURE: &str = "FUNCTION_ERROR_INIT_FAILURE";

/// Runs invocations in execution environments.
#[derive(Debug)]
pub(crate) struct Executor {
    sandboxer: Sandboxer,
    catalog: RuntimeCatalog,
    logs: LogStore,
    config: ExecutionConfig,
    account: AccountContext,
    registry: Arc<Registry>,
    store: Arc<Store>,
    idle: Mutex<HashMap<PoolKey, Vec<Idle>>>,
    /// Provisioned environments, by version; only invocations of functions with provisioned
    /// concurrency configurations look here.
    provisioned: Mutex<HashMap<PoolKey, ProvisionedPool>>,
    /// The next [`ProvisionedPool::generation`].
    provisioned_generations: std::sync::atomic::AtomicU64,
    /// `/tmp` volumes of environments whose runtime died, kept for their replacements.
    spare_tmp: Mutex<HashMap<PoolKey, Vec<(TmpVolume, Instant)>>>,
    tmp_root: PathBuf,
    /// `/usr`, `/etc` essentials and devices, for every isolated environment.
    system_mounts: Vec<Mount>,
    /// Mounted at `/opt` for functions without layers.
    empty_dir: PathBuf,
    /// The merged `/opt` trees of functions with layers, shared by every environment.
    merged_layers: MergedLayers,
    notes: Mutex<std::collections::HashSet<String>>,
}

impl std::fmt::Debug for Idle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Idle")
            .field("environment", &self.environment.id)
            .finish()
    }
}

impl Executor {
    /// Probes isolation, finds interpreters, and starts the background reaper.
    pub(crate) fn start(
        data_dir: &Path,
        config: ExecutionConfig,
        account: AccountContext,
        registry: Arc<Registry>,
        store: Arc<Store>,
    ) -> std::io::Result<Arc<Self>> {
        let sandbox_dir = data_dir.join("sandbox");
        let etc = sandbox_dir.join("etc");
        std::fs::create_dir_all(&etc)?;
        std::fs::write(
            etc.join("passwd"),
            "root:x:0:0:root:/root:/sbin/nologin\n\
             sbx_user1051:x:993:990::/home/sbx_user1051:/sbin/nologin\n\
             nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n",
        )?;
        std::fs::write(
            etc.join("group"),
            "root:x:0:\nsbx_user1051:x:990:\nnogroup:x:65534:\n",
        )?;
        let empty_dir = sandbox_dir.join("empty");
        std::fs::create_dir_all(&empty_dir)?;
        let tmp_root = sandbox_dir.join("tmp");
        TmpVolume::remove_leftovers(&tmp_root);
        std::fs::create_dir_all(&tmp_root)?;
        let sandboxer = Sandboxer::start(SandboxerConfig {
            root_mount_point: sandbox_dir.join("root"),
            uid: 993,
            gid: 990,
            force_plain: config.force_plain,
        });
        let capabilities = sandboxer.capabilities();
        if capabilities.tier.isolates() {
            tracing::info!(tier = capabilities.tier.name(), "function sandboxes");
        } else {
            tracing::warn!(
                tier = capabilities.tier.name(),
                limitations = ?capabilities.limitations,
                "FUNCTIONS RUN AS PLAIN PROCESSES: no isolation, no memory or CPU limits; for \
                 development only"
            );
        }
        if capabilities.tier.isolates() && !capabilities.tier.limits() {
            tracing::warn!(limitations = ?capabilities.limitations, "memory and CPU limits are not enforced");
        }
        let catalog = RuntimeCatalog::detect(data_dir, &config.interpreters)?;
        for status in catalog.status() {
            match status.interpreters.first() {
                Some(interpreter) => tracing::info!(
                    runtime = status.family,
                    interpreter = %interpreter.executable.display(),
                    version = %interpreter.version,
                    "runtime available"
                ),
                None if status.family.starts_with("provided") => {}
                None => tracing::warn!(
                    runtime = status.family,
                    hint = status.install_hint,
                    "runtime unavailable"
                ),
            }
        }
        let executor = Arc::new(Self {
            sandboxer,
            catalog,
            logs: LogStore::open(data_dir.join("logs"))?,
            system_mounts: system_mounts(&etc),
            empty_dir,
            merged_layers: MergedLayers::open(data_dir).map_err(std::io::Error::other)?,
            config,
            account,
            registry,
            store,
            idle: Mutex::new(HashMap::new()),
            provisioned: Mutex::new(HashMap::new()),
            provisioned_generations: std::sync::atomic::AtomicU64::new(0),
            spare_tmp: Mutex::new(HashMap::new()),
            tmp_root,
            notes: Mutex::new(std::collections::HashSet::new()),
        });
        let reaper = Arc::downgrade(&executor);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                tick.tick().await;
                match reaper.upgrade() {
                    Some(executor) => {
                        executor.reap();
                        executor.maintain_provisioned();
                    }
                    None => return,
                }
            }
        });
        Ok(executor)
    }

    pub(crate) fn sandboxer(&self) -> &Sandboxer {
        &self.sandboxer
    }

    pub(crate) fn catalog(&self) -> &RuntimeCatalog {
        &self.catalog
    }

    pub(crate) fn logs(&self) -> &LogStore {
        &self.logs
    }

    pub(crate) fn merged_layers(&self) -> &MergedLayers {
        &self.merged_layers
    }

    /// The directory mounted at `/opt`: the merged tree of the layers (built once per ordered
    /// list of packages and shared), or an empty directory without layers.
    pub(crate) fn opt_dir(&self, layers: &[FunctionLayer]) -> Result<PathBuf, String> {
        if layers.is_empty() {
            return Ok(self.empty_dir.clone());
        }
        let key = MergedLayers::key(layers.iter().map(|layer| layer.code.sha256_hex.as_str()));
        if let Some(merged) = self.merged_layers.get(&key) {
            return Ok(merged);
        }
        let trees = layers
            .iter()
            .map(|layer| self.code_dir(&layer.code.sha256_hex))
            .collect::<Result<Vec<_>, _>>()?;
        self.merged_layers
            .get_or_build(&key, &trees)
            .map_err(|error| error.to_string())
    }

    fn lock_idle(&self) -> std::sync::MutexGuard<'_, HashMap<PoolKey, Vec<Idle>>> {
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs one invocation of `version` of `function`: in one of the version's provisioned
    /// environments if one is idle, else (within `counters`' and the account's limits, or
    /// throttled) in an on-demand one, warm or cold.
    pub(crate) async fn invoke(
        self: &Arc<Self>,
        function: &Arc<Function>,
        version: VersionId,
        invoked_function_arn: String,
        request: InvokeRequest,
        counters: &Arc<FunctionConcurrency>,
    ) -> Result<InvokeResponse, ThrottleReason> {
        let version = function
            .version(version)
            .expect("the engine resolved this version in this function snapshot");
        let key = PoolKey::of(function, version);
        let request_id = request.request_id.clone();
        let executed_version = version.version_id().as_lambda_string();
        let timeout = Duration::from_secs(u64::from(version.config.timeout_seconds));
        let memory_mb = version.config.memory_size_mb;
        // The snapshot says whether any provisioned pool can exist: functions without
        // provisioned concurrency never take its lock.
        let offer = if function.provisioned_concurrency.is_empty() {
            None
        } else {
            self.take_provisioned(&key)
        };
        let (provisioned, provisioned_use) = match offer {
            Some(offer) => {
                let provisioned_use = ProvisionedUse {
                    spillover: offer.environment.is_none(),
                    series: offer.series,
                };
                (offer.environment, Some(provisioned_use))
            }
            None => (None, None),
        };
        let reply = |payload: Bytes,
                     function_error: bool,
                     log_tail: Option<String>,
                     duration: Duration| InvokeResponse {
            executed_version: executed_version.clone(),
            payload,
            function_error,
            log_tail,
            duration,
            provisioned: provisioned_use.clone(),
        };
        let provisioned_generation = provisioned.as_ref().map(|(_, generation)| *generation);
        let provisioned = provisioned.map(|(environment, _)| environment);
        // Held until the invocation is over (the end of this function): the count of running
        // invocations is exactly the count of live permits.
        let _permit = match provisioned {
            Some(_) => None,
            None => Some(concurrency::acquire(
                self.registry.account_concurrency(),
                counters,
            )?),
        };
        let warm = provisioned.or_else(|| self.take_idle(&key));
        let (environment, init_duration, remaining) = match warm {
            Some(environment) => (environment, None, timeout),
            None => match self
                .cold_start(&key, function, version, &request_id, timeout)
                .await
            {
                ColdStart::Ready {
                    environment,
                    init,
                    remaining,
                } => (environment, Some(init), remaining),
                ColdStart::Failed {
                    error_type,
                    payload,
                    capture,
                    duration,
                } => {
                    capture.platform(format!(
                        "START RequestId: {request_id} Version: {executed_version}"
                    ));
                    let lines = vec![format!("END RequestId: {request_id}")];
                    let report = report_line(
                        &request_id,
                        duration,
                        memory_mb,
                        None,
                        None,
                        Some(("error", &error_type)),
                    );
                    let tail = capture.finish(lines, Box::new(move || report), request.log_tail);
                    return Ok(reply(payload, true, tail, duration));
                }
            },
        };

        environment.capture.begin(format!(
            "START RequestId: {request_id} Version: {executed_version}"
        ));
        let deadline =
            kiln_core::now_millis() + i64::try_from(remaining.as_millis()).unwrap_or(i64::MAX);
        let dispatch = Dispatch {
            request_id: request_id.clone(),
            payload: request.payload,
            deadline_millis: deadline,
            invoked_function_arn,
            trace_id: request
                .trace_header
                .unwrap_or_else(|| crate::recursion::TraceHeader::fresh().to_string()),
            client_context: request.client_context,
        };
        let started = Instant::now();
        let outcome = environment.run(dispatch, remaining).await;
        let duration = started.elapsed();

        let mut lines = Vec::new();
        let (payload, function_error, status) = match outcome {
            RunOutcome::Replied(RuntimeReply::Response(body)) => (body, false, None),
            RunOutcome::Replied(RuntimeReply::Error { error_type, body }) => {
                tracing::debug!(function = %function.name, %request_id, %error_type, "function error");
                (body, true, None)
            }
            RunOutcome::Replied(RuntimeReply::TooLarge(size)) => (
                // AWS's wording, without the size that the local emulator (RIE) adds.
                {
                    tracing::debug!(function = %function.name, size, "response too large");
                    platform_error(
                        "Function.ResponseSizeTooLarge",
                        &format!(
                            "Response payload size exceeded maximum allowed payload size ({} bytes).",
                            runtime_api::MAX_RESPONSE_BYTES
                        ),
                    )
                },
                true,
                Some(("error", "Function.ResponseSizeTooLarge".to_owned())),
            ),
            RunOutcome::TimedOut => {
                // Lambda words it with the configured timeout ("after 3.00 seconds").
                let seconds = format!("{:.2}", timeout.as_secs_f64());
                lines.push(format!(
                    "{} {request_id} Task timed out after {seconds} seconds",
                    iso_now()
                ));
                (
                    platform_error(
                        "Sandbox.Timedout",
                        &format!(
                            "RequestId: {request_id} Error: Task timed out after {seconds} seconds"
                        ),
                    ),
                    true,
                    Some(("timeout", String::new())),
                )
            }
            RunOutcome::Exited(status) => {
                let (error_type, reason) = exit_error(status, environment.oom_killed());
                let message = format!("RequestId: {request_id} Error: {reason}");
                lines.push(message.clone());
                lines.push(error_type.to_owned());
                (
                    platform_error(error_type, &message),
                    true,
                    Some(("error", error_type.to_owned())),
                )
            }
        };
        lines.push(format!("END RequestId: {request_id}"));
        let report = {
            let environment = Arc::clone(&environment);
            let request_id = request_id.clone();
            move || {
                report_line(
                    &request_id,
                    duration,
                    memory_mb,
                    environment.memory_peak(),
                    init_duration,
                    status.as_ref().map(|(kind, error)| (*kind, error.as_str())),
                )
            }
        };
        let log_tail = environment
            .capture
            .finish(lines, Box::new(report), request.log_tail);
        if let Some(generation) = provisioned_generation {
            self.release_provisioned(&key, generation, environment);
        } else {
            self.release(key, environment);
        }
        Ok(reply(payload, function_error, log_tail, duration))
    }

    /// Starts an environment and waits for its init, as Lambda does: up to 10 seconds, then
    /// once more with the function's timeout (counted against the invocation).
    async fn cold_start(
        &self,
        key: &PoolKey,
        function: &Arc<Function>,
        version: &FunctionVersion,
        request_id: &str,
        timeout: Duration,
    ) -> ColdStart {
        let mut limit = INIT_LIMIT;
        let mut retrying = false;
        loop {
            let environment = match self
                .start_environment(key, function, version, "on-demand")
                .await
            {
                Ok(environment) => environment,
                Err(failure) => return failure.into_cold_start(request_id),
            };
            match environment.wait_ready(limit).await {
                Readiness::Ready(init) => {
                    // A retried init counts against the invocation's timeout.
                    let remaining = if retrying {
                        timeout.saturating_sub(init)
                    } else {
                        timeout
                    };
                    return ColdStart::Ready {
                        environment,
                        init,
                        remaining,
                    };
                }
                Readiness::Failed {
                    error_type,
                    body,
                    duration,
                } => {
                    environment
                        .capture
                        .platform(init_report(duration, "error", Some(&error_type)));
                    environment.kill();
                    return ColdStart::Failed {
                        error_type,
                        payload: body,
                        capture: environment.capture.clone(),
                        duration,
                    };
                }
                Readiness::Exited(status, duration) => {
                    let (error_type, reason) = exit_error(status, environment.oom_killed());
                    let message = format!("RequestId: {request_id} Error: {reason}");
                    environment.capture.platform(message.clone());
                    environment
                        .capture
                        .platform(init_report(duration, "error", Some(error_type)));
                    environment.kill();
                    return ColdStart::Failed {
                        error_type: error_type.to_owned(),
                        payload: platform_error(error_type, &message),
                        capture: environment.capture.clone(),
                        duration,
                    };
                }
                Readiness::TimedOut(duration) => {
                    environment
                        .capture
                        .platform(init_report(duration, "timeout", None));
                    environment.kill();
                    if !retrying {
                        // Lambda retries init inside the invocation, bounded by its timeout.
                        retrying = true;
                        limit = timeout;
                        continue;
                    }
                    let seconds = format!("{:.2}", timeout.as_secs_f64());
                    let message = format!(
                        "RequestId: {request_id} Error: Task timed out after {seconds} seconds"
                    );
                    environment.capture.platform(format!(
                        "{} {request_id} Task timed out after {seconds} seconds",
                        iso_now()
                    ));
                    return ColdStart::Failed {
                        error_type: "Sandbox.Timedout".to_owned(),
                        payload: platform_error("Sandbox.Timedout", &message),
                        capture: environment.capture.clone(),
                        duration,
                    };
                }
            }
        }
    }

    /// Starts the sandbox and Runtime API of a new environment; `initialization_type` is
    /// Lambda's `AWS_LAMBDA_INITIALIZATION_TYPE` (`on-demand` or `provisioned-concurrency`).
    async fn start_environment(
        &self,
        key: &PoolKey,
        function: &Function,
        version: &FunctionVersion,
        initialization_type: &'static str,
    ) -> Result<Arc<Environment>, StartFailure> {
        let config = &version.config;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let version_label = version.version_id().as_lambda_string();
        let log_group: Arc<str> = Arc::from(config.logging.log_group.as_str());
        let log_stream = format!("{}/[{version_label}]{id}", utc_date_path());
        let stream: Arc<str> = Arc::from(log_stream.as_str());
        let fail = |error_type: &str, message: String| StartFailure {
            error_type: error_type.to_owned(),
            message,
            logs: self.logs.clone(),
            group: Arc::clone(&log_group),
            stream: Arc::clone(&stream),
        };

        let code_dir = self.code_dir(&version.code.sha256_hex).map_err(|error| {
            fail(
                "Runtime.InvalidEntrypoint",
                format!("Error: the function's code is unavailable: {error}"),
            )
        })?;
        let opt_dir = self.opt_dir(&config.layers).map_err(|error| {
            fail(
                "Runtime.InvalidEntrypoint",
                format!("Error: the function's layers are unavailable: {error}"),
            )
        })?;
        let isolated = self.sandboxer.capabilities().tier.isolates();
        let family = if config.runtime.starts_with("python") {
            "python"
        } else if config.runtime.starts_with("nodejs") {
            "nodejs"
        } else {
            "provided"
        };
        let layout = if isolated {
            Layout {
                task_root: "/var/task".into(),
                runtime_dir: "/var/runtime".into(),
                opt: "/opt".into(),
            }
        } else {
            Layout {
                task_root: code_dir.clone(),
                runtime_dir: self.catalog.files(family),
                opt: opt_dir.clone(),
            }
        };
        let launch: Launch = self
            .catalog
            .launch(&config.runtime, &code_dir, &opt_dir, &layout)
            .map_err(|error| match error {
                LaunchError::MissingBootstrap(_) => {
                    fail("Runtime.InvalidEntrypoint", format!("Error: {error}"))
                }
                LaunchError::MissingInterpreter(_) | LaunchError::Unsupported(_) => {
                    fail("Runtime.InvalidEntrypoint", format!("Error: {error}"))
                }
            })?;
        if let Some(note) = &launch.note {
            let first_time = self
                .notes
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(note.clone());
            if first_time {
                tracing::warn!("{note}");
            }
        }

        let (listener, address) = runtime_api::bind().await.map_err(|error| {
            fail(
                "Sandbox.Failure",
                format!("Error: cannot listen for the runtime API: {error}"),
            )
        })?;
        let json_logs = (config.logging.log_format == LogFormat::Json).then(|| {
            (
                config
                    .logging
                    .application_log_level
                    .as_deref()
                    .unwrap_or("INFO"),
                config.logging.system_log_level.as_deref().unwrap_or("INFO"),
            )
        });
        let mut env = runtimes::lambda_environment(&EnvironmentInputs {
            function_name: function.name.as_str(),
            version: &version_label,
            memory_mb: config.memory_size_mb,
            region: &self.account.region,
            handler: &config.handler,
            log_group: &log_group,
            log_stream: &log_stream,
            runtime_api: &address.to_string(),
            layout: &layout,
            initialization_type,
            endpoint_url: &self.config.endpoint_url,
            sqs_endpoint_url: self.config.sqs_endpoint_url.as_deref(),
            json_logs,
            user: config.environment.as_deref().unwrap_or_default(),
            runtime: &launch.env,
        });
        let mut mounts = self.system_mounts.clone();
        mounts.push(Mount::Bind {
            source: code_dir.clone(),
            target: "/var/task".into(),
            writable: false,
        });
        mounts.push(Mount::Bind {
            source: opt_dir,
            target: "/opt".into(),
            writable: false,
        });
        mounts.extend(launch.mounts.iter().cloned());
        let tmp = match self.take_spare_tmp(key) {
            Some(tmp) => tmp,
            None => TmpVolume::create(
                &self.sandboxer,
                self.tmp_root.join(&id),
                u64::from(config.ephemeral_storage_mb) << 20,
            )
            .map_err(|error| {
                fail(
                    "Sandbox.Failure",
                    format!("Error: cannot create /tmp: {error}"),
                )
            })?,
        };
        mounts.push(tmp.mount_at("/tmp"));

        let pipe = || {
            kiln_sandbox_pipe().map_err(|error| fail("Sandbox.Failure", format!("Error: {error}")))
        };
        let (stdout_read, stdout_write) = pipe()?;
        let (stderr_read, stderr_write) = pipe()?;
        let capture = Capture::start(
            (stdout_read, stderr_read),
            self.logs.clone(),
            Arc::clone(&log_group),
            Arc::clone(&stream),
        )
        .map_err(|error| fail("Sandbox.Failure", format!("Error: {error}")))?;
        // Collect from the start, so that init output is in a failed init's tail.
        capture.begin(format!(
            "INIT_START Runtime Version: {}:{}.kiln\tRuntime Version ARN: {}",
            config.runtime,
            env!("CARGO_PKG_VERSION"),
            runtime_version_arn(&self.account, &config.runtime)
        ));
        if !isolated && let Some(dir) = tmp.host_dir() {
            // Plain processes share the host's /tmp; point temporary files at the volume.
            env.push(("TMPDIR".into(), dir.display().to_string()));
        }
        let spawned = Instant::now();
        let spec = SandboxSpec {
            id: format!("env-{id}"),
            program: launch.program.clone(),
            args: launch.args.clone(),
            env,
            cwd: layout.task_root.clone(),
            mounts,
            limits: Limits {
                memory_bytes: u64::from(config.memory_size_mb) << 20,
                // Init runs unthrottled; the quota applies from the first /next on.
                cpu_cores: None,
                pids: PIDS_LIMIT,
                open_files: OPEN_FILES_LIMIT,
            },
            stdout: stdout_write,
            stderr: stderr_write,
        };
        let sandbox = match self.sandboxer.spawn(spec).await {
            Ok(sandbox) => sandbox,
            Err(kiln_sandbox::SandboxError::Setup {
                step: "executing the program",
                source,
            }) => {
                return Err(fail(
                    "Runtime.InvalidEntrypoint",
                    format!(
                        "Error: fork/exec {}: {}",
                        launch.program.display(),
                        os_error_text(&source)
                    ),
                ));
            }
            Err(error) => return Err(fail("Sandbox.Failure", format!("Error: {error}"))),
        };
        let environment = Arc::new(Environment::new(
            id,
            capture,
            sandbox,
            tmp,
            spawned,
            Some(f64::from(config.memory_size_mb) / MEMORY_PER_VCPU_MB),
        ));
        let server = tokio::spawn(runtime_api::serve(listener, Arc::downgrade(&environment)));
        environment.set_server(server);
        Ok(environment)
    }

    /// The extracted code for a package, re-extracted from its blob if the cache lost it.
    fn code_dir(&self, sha256_hex: &str) -> Result<PathBuf, String> {
        if let Ok(Some(extracted)) = self.store.code().get(sha256_hex) {
            return Ok(extracted.root);
        }
        let zip = self
            .store
            .blobs()
            .read(sha256_hex)
            .map_err(|e| e.to_string())?;
        self.store
            .code()
            .extract(
                sha256_hex,
                &zip,
                kiln_store::UnzipLimits {
                    max_unzipped_bytes: kiln_store::UnzipLimits::LAMBDA_UNZIPPED_BYTES,
                    max_entries: usize::MAX,
                },
            )
            .map(|extracted| extracted.root)
            .map_err(|e| e.to_string())
    }

    fn take_idle(&self, key: &PoolKey) -> Option<Arc<Environment>> {
        let mut pools = self.lock_idle();
        let pool = pools.get_mut(key)?;
        while let Some(idle) = pool.pop() {
            if idle.environment.is_idle() {
                return Some(idle.environment);
            }
            idle.environment.kill();
        }
        None
    }

    /// Returns an environment to its pool, if it is healthy and its configuration current.
    fn release(self: &Arc<Self>, key: PoolKey, environment: Arc<Environment>) {
        let current = self
            .registry
            .get(&key.function)
            .and_then(|function| {
                function
                    .version(key.version)
                    .map(|version| version.last_modified == key.last_modified)
            })
            .unwrap_or(false);
        if !current {
            environment.kill();
            return;
        }
        if !environment.is_idle() {
            // The runtime died (timeout, crash, OOM): Lambda restarts it with the same /tmp.
            environment.kill();
            if let Some(tmp) = environment.take_tmp() {
                self.spare_tmp
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .entry(key)
                    .or_default()
                    .push((tmp, Instant::now()));
            }
            return;
        }
        self.lock_idle().entry(key).or_default().push(Idle {
            environment,
            since: Instant::now(),
        });
    }

    /// Freezes idle environments that have waited long enough, off the async threads and
    /// outside the pool lock.
    fn freeze_idle(&self) {
        let Some(after) = self.config.freeze_after else {
            return;
        };
        let candidates: Vec<(Arc<Environment>, u64)> = self
            .lock_idle()
            .values()
            .flatten()
            .filter(|idle| idle.since.elapsed() >= after && !idle.environment.is_frozen())
            .map(|idle| (Arc::clone(&idle.environment), idle.environment.generation()))
            .collect();
        if candidates.is_empty() {
            return;
        }
        tokio::task::spawn_blocking(move || {
            for (environment, generation) in candidates {
                environment.freeze_if_unused(generation);
            }
        });
    }

    fn take_spare_tmp(&self, key: &PoolKey) -> Option<TmpVolume> {
        let mut spares = self
            .spare_tmp
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (tmp, _) = spares.get_mut(key)?.pop()?;
        Some(tmp)
    }

    /// Shuts down environments idle past the keep-alive, or dead, drops old spare volumes, and
    /// freezes environments idle past `freeze_after`.
    fn reap(&self) {
        self.freeze_idle();
        let keep_alive = self.config.keep_alive;
        self.spare_tmp
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|_, spares| {
                spares.retain(|(_, since)| since.elapsed() < keep_alive);
                !spares.is_empty()
            });
        let mut pools = self.lock_idle();
        for pool in pools.values_mut() {
            pool.retain(|idle| {
                let keep = idle.since.elapsed() < keep_alive && idle.environment.is_idle();
                if !keep {
                    idle.environment.kill();
                }
                keep
            });
        }
        pools.retain(|_, pool| !pool.is_empty());
    }

    /// Shuts down the idle environments of `function` that its current versions no longer
    /// use (all of them if the function is gone).
    pub(crate) fn retire(&self, function: &FunctionName) {
        let current = self.registry.get(function);
        let is_current = |key: &PoolKey| {
            current
                .as_ref()
                .and_then(|function| function.version(key.version))
                .is_some_and(|version| version.last_modified == key.last_modified)
        };
        self.spare_tmp
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|key, _| &key.function != function || is_current(key));
        let mut pools = self.lock_idle();
        pools.retain(|key, pool| {
            if &key.function != function {
                return true;
            }
            let still_current = current
                .as_ref()
                .and_then(|function| function.version(key.version))
                .is_some_and(|version| version.last_modified == key.last_modified);
            if !still_current {
                pool.iter().for_each(|idle| idle.environment.kill());
            }
            still_current
        });
    }

    /// Shuts down every idle environment (at server shutdown).
    pub(crate) fn shutdown(&self) {
        let mut pools = self.lock_idle();
        for pool in pools.values() {
            pool.iter().for_each(|idle| idle.environment.kill());
        }
        pools.clear();
        drop(pools);
        let mut provisioned = self.lock_provisioned();
        for pool in provisioned.values() {
            pool.idle.iter().for_each(|environment| environment.kill());
        }
        provisioned.clear();
        drop(provisioned);
        self.spare_tmp
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    /// How many environments are idle, per function name (for tests and metrics).
    pub(crate) fn idle_count(&self, function: &FunctionName) -> usize {
        self.lock_idle()
            .iter()
            .filter(|(key, _)| &key.function == function)
            .map(|(_, pool)| pool.len())
            .sum()
    }
}

/// How a cold start ended.
enum ColdStart {
    Ready {
        environment: Arc<Environment>,
        init: Duration,
        remaining: Duration,
    },
    Failed {
        error_type: String,
        payload: Bytes,
        capture: Capture,
        duration: Duration,
    },
}

/// An environment that could not even be started.
struct StartFailure {
    error_type: String,
    message: String,
    logs: LogStore,
    group: Arc<str>,
    stream: Arc<str>,
}

impl StartFailure {
    /// The invocation's error, logged to the stream the environment would have had.
    fn into_cold_start(self, request_id: &str) -> ColdStart {
        let message = format!("RequestId: {request_id} {}", self.message);
        let capture = Capture::without_output(self.logs, self.group, self.stream);
        capture.begin(message.clone());
        capture.platform(init_report(Duration::ZERO, "error", Some(&self.error_type)));
        ColdStart::Failed {
            payload: platform_error(&self.error_type, &message),
            error_type: self.error_type,
            capture,
            duration: Duration::ZERO,
        }
    }
}

/// A pipe for a sandbox's output: the read end non-blocking (for the capture task), the write
/// end blocking (for the program).
fn kiln_sandbox_pipe() -> std::io::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    let (read, write) = std::io::pipe()?;
    let read = std::os::fd::OwnedFd::from(read);
    kiln_sandbox::set_nonblocking(&read)?;
    Ok((read, std::os::fd::OwnedFd::from(write)))
}

/// Lambda's error payload for a platform error.
fn platform_error(error_type: &str, message: &str) -> Bytes {
    Bytes::from(serde_json::json!({"errorType": error_type, "errorMessage": message}).to_string())
}

/// How Lambda reports a runtime that exited.
fn exit_error(status: ExitStatus, oom_killed: bool) -> (&'static str, String) {
    match status {
        ExitStatus::Signaled(signal) if oom_killed && signal == libc_sigkill() => (
            "Runtime.OutOfMemory",
            "Runtime exited with error: signal: killed".to_owned(),
        ),
        ExitStatus::Signaled(signal) => (
            "Runtime.ExitError",
            format!("Runtime exited with error: signal: {}", signal_name(signal)),
        ),
        ExitStatus::Exited(0) => (
            "Runtime.ExitError",
            "Runtime exited without providing a reason".to_owned(),
        ),
        ExitStatus::Exited(code) => (
            "Runtime.ExitError",
            format!("Runtime exited with error: exit status {code}"),
        ),
    }
}

fn libc_sigkill() -> i32 {
    9
}

/// Go's spelling of signals, which Lambda's messages use.
fn signal_name(signal: i32) -> String {
    match signal {
        1 => "hangup".into(),
        2 => "interrupt".into(),
        3 => "quit".into(),
        4 => "illegal instruction".into(),
        6 => "aborted".into(),
        7 => "bus error".into(),
        8 => "floating point exception".into(),
        9 => "killed".into(),
        11 => "segmentation fault".into(),
        13 => "broken pipe".into(),
        15 => "terminated".into(),
        other => format!("signal {other}"),
    }
}

fn os_error_text(error: &std::io::Error) -> String {
    match error.raw_os_error() {
        Some(2) => "no such file or directory".into(),
        Some(13) => "permission denied".into(),
        Some(8) => "exec format error".into(),
        _ => error.to_string(),
    }
}

/// `REPORT RequestId: ...` with Lambda's fields and tabs.
fn report_line(
    request_id: &str,
    duration: Duration,
    memory_mb: u32,
    peak_bytes: Option<u64>,
    init: Option<Duration>,
    status: Option<(&str, &str)>,
) -> String {
    // Billed from the duration as printed, so the two never disagree (881.004 ms is printed
    // as 881.00 and billed as 881).
    let millis = (duration.as_secs_f64() * 100_000.0).round() / 100.0;
    let billed = millis.ceil().max(1.0) as u64;
    let used_mb = peak_bytes.map_or(0, |bytes| bytes.div_ceil(1 << 20));
    let mut line = format!(
        "REPORT RequestId: {request_id}\tDuration: {millis:.2} ms\tBilled Duration: {billed} ms\t\
         Memory Size: {memory_mb} MB\tMax Memory Used: {used_mb} MB\t"
    );
    if let Some(init) = init {
        line.push_str(&format!(
            "Init Duration: {:.2} ms\t",
            init.as_secs_f64() * 1000.0
        ));
    }
    match status {
        Some(("timeout", _)) => line.push_str("Status: timeout"),
        Some((kind, error_type)) => {
            line.push_str(&format!("Status: {kind}\tError Type: {error_type}"));
        }
        None => {}
    }
    line
}

/// `INIT_REPORT Init Duration: ... Phase: init Status: ...`.
fn init_report(duration: Duration, status: &str, error_type: Option<&str>) -> String {
    let mut line = format!(
        "INIT_REPORT Init Duration: {:.2} ms\tPhase: init\tStatus: {status}",
        duration.as_secs_f64() * 1000.0
    );
    if let Some(error_type) = error_type {
        line.push_str(&format!("\tError Type: {error_type}"));
    }
    line
}

/// `YYYY/MM/DD` in UTC, the start of Lambda's log stream names.
fn utc_date_path() -> String {
    let days = kiln_core::now_millis().div_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}/{month:02}/{day:02}")
}

/// An ISO 8601 UTC timestamp with milliseconds, as Lambda's platform lines use.
fn iso_now() -> String {
    let millis = kiln_core::now_millis();
    let (year, month, day) = civil_from_days(millis.div_euclid(86_400_000));
    let in_day = millis.rem_euclid(86_400_000);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000
    )
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's algorithm.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A stable identifier of the runtime build Kiln runs for `runtime`, shaped like Lambda's
/// `arn:aws:lambda:REGION::runtime:HEX`; it changes with Kiln's version, as Lambda's changes
/// when AWS patches a runtime.
pub fn runtime_version_arn(account: &AccountContext, runtime: &str) -> String {
    let digest = Sha256::digest(format!("kiln/{}/{runtime}", env!("CARGO_PKG_VERSION")));
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    format!(
        "arn:{}:lambda:{}::runtime:{hex}",
        account.partition, account.region
    )
}

/// The host's `/etc` files a runtime needs (name resolution, time zone, MIME types, the loader's
/// cache), copied into the generated `/etc` at start.
const ETC_FILES: [&str; 11] = [
    "resolv.conf",
    "hosts",
    "nsswitch.conf",
    "host.conf",
    "gai.conf",
    "services",
    "protocols",
    "mime.types",
    "ld.so.cache",
    "localtime",
    "ca-certificates.conf",
];

/// The host's `/etc` directories a runtime needs (certificates), bound read-only on top.
const ETC_DIRECTORIES: [&str; 4] = ["ssl", "ca-certificates", "alternatives", "pki"];

/// `/usr`, the root's links into it, the `/etc` essentials and the device nodes a runtime
/// needs, read-only except the devices.
///
/// `/etc` is one bind of `generated_etc` (Kiln's `passwd` and `group` plus copies of
/// [`ETC_FILES`], refreshed at every start) with the [`ETC_DIRECTORIES`] bound on top: a mount
/// and a file per entry in every sandbox cost about 20 kB of kernel memory each time and a few
/// system calls per cold start.
fn system_mounts(generated_etc: &Path) -> Vec<Mount> {
    let mut mounts = vec![Mount::Bind {
        source: "/usr".into(),
        target: "/usr".into(),
        writable: false,
    }];
    for dir in ["bin", "sbin", "lib", "lib32", "lib64", "libx32"] {
        let host = Path::new("/").join(dir);
        match std::fs::read_link(&host) {
            Ok(target) => mounts.push(Mount::Symlink { target, link: host }),
            Err(_) if host.is_dir() => mounts.push(Mount::Bind {
                source: host.clone(),
                target: host,
                writable: false,
            }),
            Err(_) => {}
        }
    }
    for name in ETC_FILES {
        copy_etc_file(&Path::new("/etc").join(name), &generated_etc.join(name));
    }
    mounts.push(Mount::Bind {
        source: generated_etc.to_owned(),
        target: "/etc".into(),
        writable: false,
    });
    for name in ETC_DIRECTORIES {
        let host = Path::new("/etc").join(name);
        // Bind the resolved target: a symlink's own target may not exist in the sandbox.
        let Ok(resolved) = host.canonicalize() else {
            continue;
        };
        let mount_point = generated_etc.join(name);
        if !resolved.is_dir() || std::fs::create_dir_all(&mount_point).is_err() {
            continue;
        }
        mounts.push(Mount::Bind {
            source: resolved,
            target: host,
            writable: false,
        });
    }
    for device in ["null", "zero", "full", "random", "urandom"] {
        let host = Path::new("/dev").join(device);
        if host.exists() {
            mounts.push(Mount::Bind {
                source: host.clone(),
                target: host,
                writable: true,
            });
        }
    }
    for (link, target) in [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ] {
        mounts.push(Mount::Symlink {
            target: target.into(),
            link: link.into(),
        });
    }
    mounts
}

/// Copies the host's `/etc` file `host` (following links) to `copy`, or removes a stale copy
/// when the host has none. Best effort: a runtime without, say, `mime.types` still runs.
fn copy_etc_file(host: &Path, copy: &Path) {
    match std::fs::read(host) {
        Ok(contents) => {
            if std::fs::read(copy).ok().as_deref() != Some(contents.as_slice())
                && let Err(error) = std::fs::write(copy, &contents)
            {
                tracing::warn!(%error, file = %host.display(), "copying into the sandboxes' /etc failed");
            }
        }
        Err(_) => {
            let _ = std::fs::remove_file(copy);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_lines_have_lambdas_fields_and_tabs() {
        let line = report_line(
            "id",
            Duration::from_micros(3_301),
            128,
            Some(37 << 20),
            Some(Duration::from_micros(116_990)),
            None,
        );
        assert_eq!(
            line,
            "REPORT RequestId: id\tDuration: 3.30 ms\tBilled Duration: 4 ms\tMemory Size: 128 MB\t\
             Max Memory Used: 37 MB\tInit Duration: 116.99 ms\t"
        );
        let line = report_line("id", Duration::from_micros(881_004), 128, None, None, None);
        assert!(
            line.contains("\tDuration: 881.00 ms\tBilled Duration: 881 ms\t"),
            "{line}"
        );
        let line = report_line(
            "id",
            Duration::from_secs(3),
            128,
            None,
            None,
            Some(("timeout", "")),
        );
        assert!(line.ends_with("\tStatus: timeout"));
        let line = report_line(
            "id",
            Duration::from_millis(5),
            128,
            None,
            None,
            Some(("error", "Runtime.ExitError")),
        );
        assert!(line.ends_with("\tStatus: error\tError Type: Runtime.ExitError"));
    }

    #[test]
    fn exits_are_worded_as_lambda_words_them() {
        assert_eq!(
            exit_error(ExitStatus::Exited(1), false),
            (
                "Runtime.ExitError",
                "Runtime exited with error: exit status 1".to_owned()
            )
        );
        assert_eq!(
            exit_error(ExitStatus::Signaled(9), true),
            (
                "Runtime.OutOfMemory",
                "Runtime exited with error: signal: killed".to_owned()
            )
        );
        assert_eq!(
            exit_error(ExitStatus::Signaled(11), false).1,
            "Runtime exited with error: signal: segmentation fault"
        );
        assert_eq!(
            exit_error(ExitStatus::Exited(0), false).1,
            "Runtime exited without providing a reason"
        );
    }

    #[test]
    fn dates_are_civil_utc() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_737), (2024, 1, 15));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
