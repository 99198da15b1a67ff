//! Provisioned concurrency: environments initialised ahead of invocations.
//!
//! The engine tells the executor, per function, which versions to keep how many environments
//! of ([`Executor::set_provisioned`]); the executor starts them in the background (with
//! `AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency`), keeps them apart from the
//! on-demand pools so that the keep-alive never reaps them, hands them to invocations of
//! their version first, and replaces any that dies (checked on every reaper tick). A failed
//! init stops the pool at `FAILED` until its configuration is put again.

use std::collections::HashMap;
use std::sync::Arc;

use kiln_core::FunctionName;

use super::environment::{Environment, Readiness};
use super::{
    Executor, INIT_LIMIT, PROVISIONED_INIT_FAILURE, PoolKey, ProvisionedPool, ProvisionedState,
    init_report,
};
use crate::metrics::{ProvisionedSeries, ProvisionedUsage};

/// One provisioned configuration as the engine resolved it: the version's pool, how many
/// environments, and when the configuration was put.
#[derive(Debug, Clone)]
pub(crate) struct ProvisionedTarget {
    pub(crate) key: PoolKey,
    pub(crate) requested: u32,
    pub(crate) config_modified: i64,
    /// The configuration's qualifier (version number or alias name).
    pub(crate) resource: String,
    /// The configuration's invocation counters.
    pub(crate) series: Arc<ProvisionedSeries>,
}

/// What a version's provisioned pool offers an invocation.
pub(super) struct ProvisionedOffer {
    /// An idle environment with its pool's generation (to give it back with), if one is ready.
    pub(super) environment: Option<(Arc<Environment>, u64)>,
    /// The configuration's counters, which count the invocation either way.
    pub(super) series: Arc<ProvisionedSeries>,
}

impl Executor {
    pub(super) fn lock_provisioned(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<PoolKey, ProvisionedPool>> {
        self.provisioned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes `function`'s provisioned pools match `targets`: new pools start filling,
    /// removed ones are shut down, shrunk ones lose their surplus idle environments.
    pub(crate) fn set_provisioned(
        self: &Arc<Self>,
        function: &FunctionName,
        targets: Vec<ProvisionedTarget>,
    ) {
        {
            let mut pools = self.lock_provisioned();
            pools.retain(|key, pool| {
                let wanted =
                    &key.function != function || targets.iter().any(|target| &target.key == key);
                if !wanted {
                    // Busy ones are shut down when their invocation returns them.
                    pool.idle
                        .drain(..)
                        .for_each(|environment| environment.kill());
                }
                wanted
            });
            for target in targets {
                let pool = pools.entry(target.key).or_insert_with(|| ProvisionedPool {
                    generation: self
                        .provisioned_generations
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                    requested: target.requested,
                    config_modified: target.config_modified,
                    live: 0,
                    starting: 0,
                    idle: Vec::new(),
                    failure: None,
                    resource: target.resource.clone(),
                    series: Arc::clone(&target.series),
                });
                if pool.config_modified != target.config_modified {
                    pool.failure = None;
                    pool.config_modified = target.config_modified;
                }
                pool.requested = target.requested;
                // The version's configuration may have moved from the version to an alias.
                pool.resource = target.resource;
                pool.series = target.series;
                while pool.live > pool.requested {
                    let Some(surplus) = pool.idle.pop() else {
                        break; // The rest go when their invocations return them.
                    };
                    surplus.kill();
                    pool.live -= 1;
                }
            }
        }
        self.maintain_provisioned();
    }

    /// The state of the provisioned pool of `key`, if there is one.
    pub(crate) fn provisioned_state(&self, key: &PoolKey) -> Option<ProvisionedState> {
        self.lock_provisioned()
            .get(key)
            .map(|pool| ProvisionedState {
                allocated: pool.live,
                failure: pool.failure.clone(),
            })
    }

    /// What `key`'s version's provisioned pool offers, if it has one: an idle environment if
    /// one is ready, and the configuration's counters.
    pub(super) fn take_provisioned(&self, key: &PoolKey) -> Option<ProvisionedOffer> {
        let mut pools = self.lock_provisioned();
        let pool = pools.get_mut(key)?;
        let mut environment = None;
        while let Some(candidate) = pool.idle.pop() {
            if candidate.is_idle() {
                environment = Some((candidate, pool.generation));
                break;
            }
            // Died while idle: the next reaper tick starts a replacement.
            candidate.kill();
            pool.live -= 1;
        }
        Some(ProvisionedOffer {
            environment,
            series: Arc::clone(&pool.series),
        })
    }

    /// Every provisioned pool's busy and initialised environments, for the metrics.
    pub(crate) fn provisioned_usage(&self) -> Vec<ProvisionedUsage> {
        self.lock_provisioned()
            .iter()
            .map(|(key, pool)| {
                let idle = u32::try_from(pool.idle.len()).unwrap_or(u32::MAX);
                ProvisionedUsage {
                    function: key.function.clone(),
                    resource: pool.resource.clone(),
                    busy: pool.live.saturating_sub(idle),
                    allocated: pool.live,
                }
            })
            .collect()
    }

    /// Returns a provisioned environment after its invocation: back to its pool if it is
    /// healthy and still wanted, else shut down (and replaced by the reaper).
    pub(super) fn release_provisioned(
        &self,
        key: &PoolKey,
        generation: u64,
        environment: Arc<Environment>,
    ) {
        let mut pools = self.lock_provisioned();
        let Some(pool) = pools
            .get_mut(key)
            .filter(|pool| pool.generation == generation)
        else {
            // Its configuration was deleted (and maybe put again) meanwhile.
            environment.kill();
            return;
        };
        if environment.is_idle() && pool.live <= pool.requested {
            pool.idle.push(environment);
        } else {
            environment.kill();
            pool.live -= 1;
        }
    }

    /// Drops dead idle environments and starts what each pool lacks. Runs on every reaper
    /// tick and after every change of the targets.
    pub(crate) fn maintain_provisioned(self: &Arc<Self>) {
        let mut starts = Vec::new();
        {
            let mut pools = self.lock_provisioned();
            for (key, pool) in pools.iter_mut() {
                let before = pool.idle.len();
                pool.idle.retain(|environment| {
                    let alive = environment.is_idle();
                    if !alive {
                        environment.kill();
                    }
                    alive
                });
                pool.live -= u32::try_from(before - pool.idle.len()).unwrap_or(pool.live);
                if pool.failure.is_some() {
                    continue;
                }
                let missing = pool.requested.saturating_sub(pool.live + pool.starting);
                pool.starting += missing;
                starts.extend(std::iter::repeat_n(
                    (key.clone(), pool.generation),
                    missing as usize,
                ));
            }
        }
        for (key, generation) in starts {
            let executor = Arc::clone(self);
            tokio::spawn(async move { executor.start_provisioned(key, generation).await });
        }
    }

    /// Initialises one provisioned environment for `key` and adds it to its pool.
    async fn start_provisioned(self: Arc<Self>, key: PoolKey, generation: u64) {
        let outcome = self.initialise_provisioned(&key).await;
        let mut pools = self.lock_provisioned();
        let Some(pool) = pools
            .get_mut(&key)
            .filter(|pool| pool.generation == generation)
        else {
            // The configuration went away meanwhile.
            if let Ok(environment) = outcome {
                environment.kill();
            }
            return;
        };
        pool.starting -= 1;
        match outcome {
            Ok(environment) if pool.live < pool.requested && pool.failure.is_none() => {
                pool.live += 1;
                pool.idle.push(environment);
            }
            Ok(environment) => environment.kill(),
            Err(reason) => {
                tracing::warn!(function = %key.function, version = %key.version.as_lambda_string(), %reason, "provisioned environment failed to initialise");
                pool.failure = Some(PROVISIONED_INIT_FAILURE.to_owned());
            }
        }
    }

    /// Starts an environment of `key`'s version and waits for its init (Lambda's 10 s).
    async fn initialise_provisioned(&self, key: &PoolKey) -> Result<Arc<Environment>, String> {
        let function = self
            .registry
            .get(&key.function)
            .ok_or_else(|| "the function is gone".to_owned())?;
        let version = function
            .version(key.version)
            .filter(|version| version.last_modified == key.last_modified)
            .ok_or_else(|| "the version is gone".to_owned())?;
        let environment = self
            .start_environment(key, &function, version, "provisioned-concurrency")
            .await
            .map_err(|failure| failure.message)?;
        let reason = match environment.wait_ready(INIT_LIMIT).await {
            Readiness::Ready(_) => return Ok(environment),
            Readiness::Failed {
                error_type,
                duration,
                ..
            } => {
                environment
                    .capture
                    .platform(init_report(duration, "error", Some(&error_type)));
                error_type
            }
            Readiness::Exited(status, duration) => {
                let (error_type, _) = super::exit_error(status, environment.oom_killed());
                environment
                    .capture
                    .platform(init_report(duration, "error", Some(error_type)));
                error_type.to_owned()
            }
            Readiness::TimedOut(duration) => {
                environment
                    .capture
                    .platform(init_report(duration, "timeout", None));
                "init timed out".to_owned()
            }
        };
        environment.kill();
        Err(reason)
    }
}
