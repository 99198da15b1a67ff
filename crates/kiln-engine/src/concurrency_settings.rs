//! The concurrency commands: reserved concurrency (function-wide) and provisioned
//! concurrency configurations (per published version or alias), with Lambda's rules.
//!
//! Settings are persisted and published to the registry like every change (which keeps the
//! account's unreserved capacity and each function's on-demand limit up to date); provisioned
//! configurations are then handed to the executor, which initialises their environments in
//! the background ([`Engine::sync_provisioned`]).

use std::sync::Arc;

use kiln_core::{Function, FunctionName, ProvisionedConcurrency, Qualifier, VersionId};

use crate::concurrency::{leaves_unreserved_minimum, unreserved_minimum};
use crate::execution::{PoolKey, ProvisionedTarget};
use crate::{ConcurrencyRule, Engine, EngineError, blocking};

/// The account's concurrency figures (`GetAccountSettings`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConcurrencySettings {
    /// `ConcurrentExecutions`.
    pub limit: u32,
    /// `UnreservedConcurrentExecutions`: the limit minus what functions keep for themselves.
    pub unreserved: u32,
}

/// Lambda's `ProvisionedConcurrencyStatusEnum`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProvisionedStatus {
    InProgress,
    Ready,
    Failed,
}

impl ProvisionedStatus {
    /// Lambda's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ProvisionedStatus::InProgress => "IN_PROGRESS",
            ProvisionedStatus::Ready => "READY",
            ProvisionedStatus::Failed => "FAILED",
        }
    }
}

/// A provisioned concurrency configuration with the state of its environments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionedConcurrencyStatus {
    /// The version number or alias name it was put on.
    pub qualifier: String,
    pub requested: u32,
    /// Environments initialised and ready.
    pub allocated: u32,
    pub status: ProvisionedStatus,
    /// Why it failed (`FUNCTION_ERROR_INIT_FAILURE`).
    pub status_reason: Option<String>,
    pub last_modified: kiln_core::EpochMillis,
}

impl Engine {
    /// The account's concurrency limit and what is left unreserved.
    pub fn concurrency_settings(&self) -> ConcurrencySettings {
        let account = self.inner.registry.account_concurrency();
        ConcurrencySettings {
            limit: account.limit(),
            unreserved: account.unreserved(),
        }
    }

    /// Sets a function's reserved concurrency (`PutFunctionConcurrency`).
    pub async fn put_function_concurrency(
        &self,
        name: &FunctionName,
        reserved: u32,
    ) -> Result<u32, EngineError> {
        let _writer = self.inner.writer.lock().await;
        let function = self.function_for_concurrency(name)?;
        let provisioned = function.provisioned_total();
        if reserved < provisioned {
            return Err(EngineError::Concurrency(
                ConcurrencyRule::ReservedBelowProvisioned {
                    reserved,
                    provisioned,
                },
            ));
        }
        let limit = self.inner.registry.account_concurrency().limit();
        let allocated = self.inner.registry.allocated_concurrency();
        if !leaves_unreserved_minimum(
            limit,
            allocated,
            function.concurrency_allocation(),
            reserved,
        ) {
            return Err(EngineError::Concurrency(
                ConcurrencyRule::ReservedBelowUnreservedMinimum {
                    minimum: unreserved_minimum(limit),
                },
            ));
        }
        self.commit_reserved(&function, Some(reserved)).await?;
        Ok(reserved)
    }

    /// Removes a function's reserved concurrency (`DeleteFunctionConcurrency`).
    pub async fn delete_function_concurrency(
        &self,
        name: &FunctionName,
    ) -> Result<(), EngineError> {
        let _writer = self.inner.writer.lock().await;
        let function = self.function_for_concurrency(name)?;
        self.commit_reserved(&function, None).await
    }

    async fn commit_reserved(
        &self,
        function: &Function,
        reserved: Option<u32>,
    ) -> Result<(), EngineError> {
        let store = Arc::clone(&self.inner.store);
        let owner = function.name.clone();
        blocking(move || store.put_reserved_concurrency(&owner, reserved)).await??;
        let mut updated = function.clone();
        updated.reserved_concurrency = reserved;
        self.inner.registry.put(updated);
        Ok(())
    }

    /// A function for a reserved concurrency command; Lambda's 404 names `$LATEST`.
    fn function_for_concurrency(&self, name: &FunctionName) -> Result<Arc<Function>, EngineError> {
        self.inner
            .registry
            .get(name)
            .ok_or_else(|| EngineError::FunctionNotFound {
                name: name.clone(),
                qualifier: Some(Qualifier::LATEST.to_owned()),
            })
    }

    /// Puts a provisioned concurrency configuration on a published version or an alias; its
    /// environments are initialised in the background.
    pub async fn put_provisioned_concurrency(
        &self,
        name: &FunctionName,
        qualifier: &Qualifier,
        requested: u32,
    ) -> Result<ProvisionedConcurrencyStatus, EngineError> {
        let _writer = self.inner.writer.lock().await;
        let (function, key, version) = self.provisioned_subject(name, qualifier)?;
        // One configuration per version: through the version itself or through one alias.
        for (other, _) in function.provisioned_concurrency.iter() {
            if other == &key || function.provisioned_version(other) != Some(version) {
                continue;
            }
            let rule = match qualifier {
                Qualifier::Version(_) if function.aliases.contains_key(other) => {
                    ConcurrencyRule::VersionProvisionedThroughAlias
                }
                _ => ConcurrencyRule::VersionAlreadyProvisioned,
            };
            return Err(EngineError::Concurrency(rule));
        }
        let current_total = function.provisioned_total();
        let replaced = function
            .provisioned_concurrency
            .get(&key)
            .map_or(0, |config| config.requested);
        let new_total = current_total - replaced + requested;
        match function.reserved_concurrency {
            Some(reserved) if new_total > reserved => {
                return Err(EngineError::Concurrency(
                    ConcurrencyRule::ProvisionedOverReserved,
                ));
            }
            Some(_) => {}
            None => {
                // Without reserved concurrency, provisioned concurrency comes out of the
                // account's unreserved pool.
                let limit = self.inner.registry.account_concurrency().limit();
                let allocated = self.inner.registry.allocated_concurrency();
                let others = allocated.saturating_sub(u64::from(current_total));
                let available = u64::from(limit).saturating_sub(others);
                if u64::from(new_total) > available {
                    return Err(EngineError::Concurrency(
                        ConcurrencyRule::ProvisionedOverUnreserved {
                            unreserved: u32::try_from(available).unwrap_or(u32::MAX),
                        },
                    ));
                }
                if !leaves_unreserved_minimum(limit, allocated, current_total, new_total) {
                    return Err(EngineError::Concurrency(
                        ConcurrencyRule::ProvisionedBelowUnreservedMinimum {
                            minimum: unreserved_minimum(limit),
                        },
                    ));
                }
            }
        }
        let config = ProvisionedConcurrency {
            requested,
            last_modified: kiln_core::now_millis(),
        };
        let store = Arc::clone(&self.inner.store);
        let (owner, stored_key) = (name.clone(), key.clone());
        blocking(move || store.put_provisioned_concurrency(&owner, &stored_key, &config)).await??;
        let mut updated = (*function).clone();
        updated.provisioned_concurrency.insert(key.clone(), config);
        self.inner.registry.put(updated.clone());
        self.sync_provisioned(name);
        Ok(self.provisioned_status(&updated, &key, config))
    }

    /// A provisioned concurrency configuration with its state.
    pub fn provisioned_concurrency(
        &self,
        name: &FunctionName,
        qualifier: &Qualifier,
    ) -> Result<ProvisionedConcurrencyStatus, EngineError> {
        let (function, key, _) = self.provisioned_subject(name, qualifier)?;
        let config = function
            .provisioned_concurrency
            .get(&key)
            .copied()
            .ok_or(EngineError::ProvisionedConfigNotFound)?;
        Ok(self.provisioned_status(&function, &key, config))
    }

    /// Every provisioned concurrency configuration of a function, by qualifier.
    pub fn list_provisioned_concurrency(
        &self,
        name: &FunctionName,
    ) -> Result<Vec<ProvisionedConcurrencyStatus>, EngineError> {
        let function = self.function(name)?;
        Ok(function
            .provisioned_concurrency
            .iter()
            .map(|(key, config)| self.provisioned_status(&function, key, *config))
            .collect())
    }

    /// Deletes a provisioned concurrency configuration; deleting one that does not exist
    /// succeeds, as on Lambda.
    pub async fn delete_provisioned_concurrency(
        &self,
        name: &FunctionName,
        qualifier: &Qualifier,
    ) -> Result<(), EngineError> {
        let _writer = self.inner.writer.lock().await;
        let (function, key, _) = self.provisioned_subject(name, qualifier)?;
        if !function.provisioned_concurrency.contains_key(&key) {
            return Ok(());
        }
        let store = Arc::clone(&self.inner.store);
        let (owner, deleted) = (name.clone(), key.clone());
        blocking(move || store.delete_provisioned_concurrency(&owner, &deleted)).await??;
        let mut updated = (*function).clone();
        updated.provisioned_concurrency.remove(&key);
        self.inner.registry.put(updated);
        self.sync_provisioned(name);
        Ok(())
    }

    /// The function, the configuration key (version number or alias name) and the version a
    /// provisioned concurrency command is about, with Lambda's errors for what is missing.
    fn provisioned_subject(
        &self,
        name: &FunctionName,
        qualifier: &Qualifier,
    ) -> Result<(Arc<Function>, String, VersionId), EngineError> {
        let missing = || match qualifier {
            Qualifier::Alias(alias) => EngineError::AliasNotFound {
                name: name.clone(),
                alias: alias.clone(),
            },
            Qualifier::Version(version) => EngineError::FunctionNotFound {
                name: name.clone(),
                qualifier: Some(version.as_lambda_string()),
            },
        };
        let function = self.inner.registry.get(name).ok_or_else(missing)?;
        let version = match qualifier {
            Qualifier::Version(VersionId::Latest) => {
                return Err(EngineError::Concurrency(
                    ConcurrencyRule::ProvisionedOnUnpublished,
                ));
            }
            Qualifier::Version(version) => {
                function.version(*version).ok_or_else(missing)?;
                *version
            }
            Qualifier::Alias(alias) => function
                .aliases
                .get(alias)
                .ok_or_else(missing)?
                .version_id(),
        };
        if version == VersionId::Latest {
            return Err(EngineError::Concurrency(
                ConcurrencyRule::ProvisionedOnUnpublished,
            ));
        }
        Ok((function, qualifier.as_lambda_string(), version))
    }

    fn provisioned_status(
        &self,
        function: &Function,
        key: &str,
        config: ProvisionedConcurrency,
    ) -> ProvisionedConcurrencyStatus {
        let state = function
            .provisioned_version(key)
            .and_then(|version| function.version(version))
            .and_then(|version| {
                self.inner
                    .executor
                    .provisioned_state(&PoolKey::of(function, version))
            });
        let allocated = state
            .as_ref()
            .map_or(0, |state| state.allocated.min(config.requested));
        let failure = state.and_then(|state| state.failure);
        let status = match (&failure, allocated >= config.requested) {
            (Some(_), _) => ProvisionedStatus::Failed,
            (None, true) => ProvisionedStatus::Ready,
            (None, false) => ProvisionedStatus::InProgress,
        };
        ProvisionedConcurrencyStatus {
            qualifier: key.to_owned(),
            requested: config.requested,
            allocated,
            status,
            status_reason: failure,
            last_modified: config.last_modified,
        }
    }

    /// Hands `name`'s provisioned concurrency configurations, resolved to versions, to the
    /// executor; called after every change that can move them.
    pub(crate) fn sync_provisioned(&self, name: &FunctionName) {
        let targets = self
            .inner
            .registry
            .get(name)
            .map(|function| {
                function
                    .provisioned_concurrency
                    .iter()
                    .filter_map(|(key, config)| {
                        let version = function.provisioned_version(key)?;
                        if version == VersionId::Latest {
                            return None;
                        }
                        let version = function.version(version)?;
                        Some(ProvisionedTarget {
                            key: PoolKey::of(&function, version),
                            requested: config.requested,
                            config_modified: config.last_modified,
                            resource: key.clone(),
                            series: self.inner.metrics.provisioned(name, key),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        self.inner.executor.set_provisioned(name, targets);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io::Write;
    use std::time::Duration;

    use kiln_core::{
        AccountContext, Architecture, FunctionConfig, FunctionState, LoggingConfig, PackageType,
        TracingMode,
    };
    use kiln_store::Store;

    use super::*;
    use crate::execution::InvokeRequest;
    use crate::{EngineConfig, NewFunction, ThrottleReason};

    async fn start(dir: &std::path::Path, concurrency_limit: u32) -> Engine {
        let account = AccountContext {
            partition: "aws".into(),
            account_id: "000000000000".into(),
            region: "us-east-1".into(),
        };
        let config = EngineConfig {
            concurrency_limit,
            ..EngineConfig::default()
        };
        Engine::start(Store::open(dir).unwrap(), account, config, None)
            .await
            .unwrap()
    }

    async fn create(engine: &Engine, name: &str) -> FunctionName {
        let name = FunctionName::parse(name).unwrap();
        let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        writer
            .start_file("app.py", zip::write::SimpleFileOptions::default())
            .unwrap();
        writer
            .write_all(
                b"import os\n\ndef handler(event, context):\n    \
                  return os.environ['AWS_LAMBDA_INITIALIZATION_TYPE']\n",
            )
            .unwrap();
        let config = FunctionConfig {
            description: String::new(),
            runtime: "python3.12".into(),
            handler: "app.handler".into(),
            role: "arn:aws:iam::000000000000:role/r".into(),
            memory_size_mb: 128,
            timeout_seconds: 3,
            environment: None,
            ephemeral_storage_mb: 512,
            architecture: Architecture::X86_64,
            package_type: PackageType::Zip,
            tracing_mode: TracingMode::PassThrough,
            logging: LoggingConfig::default_for(&name),
            kms_key_arn: None,
            vpc: None,
            dead_letter: None,
            layers: Vec::new(),
        };
        engine
            .create_function(NewFunction {
                name: name.clone(),
                config,
                zip: writer.finish().unwrap().into_inner(),
                tags: BTreeMap::new(),
                publish: true,
            })
            .await
            .unwrap();
        for _ in 0..500 {
            if engine.function(&name).unwrap().latest.state.state == FunctionState::Active {
                return name;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("{name} never became active");
    }

    async fn invoke(
        engine: &Engine,
        name: &FunctionName,
        qualifier: Option<&Qualifier>,
    ) -> Result<String, EngineError> {
        let response = engine
            .invoke(
                name,
                qualifier,
                InvokeRequest {
                    request_id: uuid::Uuid::new_v4().to_string(),
                    payload: bytes::Bytes::from_static(b"{}"),
                    client_context: None,
                    log_tail: false,
                    trace_header: None,
                },
            )
            .await?;
        assert!(!response.function_error, "{:?}", response.payload);
        Ok(String::from_utf8(response.payload.to_vec()).unwrap())
    }

    async fn wait_ready(engine: &Engine, name: &FunctionName, qualifier: &Qualifier) {
        for _ in 0..1000 {
            let status = engine.provisioned_concurrency(name, qualifier).unwrap();
            if status.status != ProvisionedStatus::InProgress {
                assert_eq!(status.status, ProvisionedStatus::Ready, "{status:?}");
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("provisioned concurrency never became ready");
    }

    #[tokio::test]
    async fn reserved_concurrency_follows_lambdas_rules_and_throttles() {
        let dir = tempfile::tempdir().unwrap();
        let engine = start(dir.path(), 1000).await;
        let name = create(&engine, "f").await;
        assert_eq!(engine.concurrency_settings().unreserved, 1000);
        assert!(matches!(
            engine.put_function_concurrency(&name, 901).await,
            Err(EngineError::Concurrency(
                ConcurrencyRule::ReservedBelowUnreservedMinimum { minimum: 100 }
            ))
        ));
        engine.put_function_concurrency(&name, 900).await.unwrap();
        assert_eq!(engine.concurrency_settings().unreserved, 100);
        engine.put_function_concurrency(&name, 0).await.unwrap();
        assert!(matches!(
            invoke(&engine, &name, None).await,
            Err(EngineError::Throttled {
                reason: ThrottleReason::ReservedFunctionConcurrentInvocationLimitExceeded
            })
        ));
        engine.delete_function_concurrency(&name).await.unwrap();
        assert_eq!(invoke(&engine, &name, None).await.unwrap(), "\"on-demand\"");
        assert_eq!(engine.concurrency_settings().unreserved, 1000);
    }

    #[tokio::test]
    async fn provisioned_environments_serve_first_and_come_back_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let version = Qualifier::Version(VersionId::Published(1));
        {
            let engine = start(dir.path(), 1000).await;
            let name = create(&engine, "p").await;
            assert!(matches!(
                engine
                    .put_provisioned_concurrency(&name, &Qualifier::Version(VersionId::Latest), 1)
                    .await,
                Err(EngineError::Concurrency(
                    ConcurrencyRule::ProvisionedOnUnpublished
                ))
            ));
            let put = engine
                .put_provisioned_concurrency(&name, &version, 1)
                .await
                .unwrap();
            assert_eq!((put.requested, put.allocated), (1, 0));
            wait_ready(&engine, &name, &version).await;
            assert_eq!(engine.concurrency_settings().unreserved, 999);
            assert_eq!(
                invoke(&engine, &name, Some(&version)).await.unwrap(),
                "\"provisioned-concurrency\""
            );
            let metrics = engine.metrics_text();
            for expected in [
                "kiln_lambda_provisioned_concurrency_invocations_total{function_name=\"p\",resource=\"1\"} 1\n",
                "kiln_lambda_provisioned_concurrency_spillover_invocations_total{function_name=\"p\",resource=\"1\"} 0\n",
                "kiln_lambda_provisioned_concurrent_executions{function_name=\"p\",resource=\"1\"} 0\n",
                "kiln_lambda_provisioned_concurrency_utilization{function_name=\"p\",resource=\"1\"} 0\n",
            ] {
                assert!(
                    metrics.contains(expected),
                    "{expected} missing from\n{metrics}"
                );
            }
            engine.put_function_concurrency(&name, 1).await.unwrap();
            assert!(
                matches!(
                    invoke(&engine, &name, None).await,
                    Err(EngineError::Throttled { .. })
                ),
                "reserved 1 with 1 provisioned leaves nothing on demand"
            );
            assert!(matches!(
                engine.put_function_concurrency(&name, 0).await,
                Err(EngineError::Concurrency(
                    ConcurrencyRule::ReservedBelowProvisioned {
                        reserved: 0,
                        provisioned: 1
                    }
                ))
            ));
            engine.shutdown();
        }
        let engine = start(dir.path(), 1000).await;
        let name = FunctionName::parse("p").unwrap();
        assert_eq!(
            engine.function(&name).unwrap().reserved_concurrency,
            Some(1)
        );
        wait_ready(&engine, &name, &version).await;
        assert_eq!(
            invoke(&engine, &name, Some(&version)).await.unwrap(),
            "\"provisioned-concurrency\""
        );
        engine
            .delete_provisioned_concurrency(&name, &version)
            .await
            .unwrap();
        assert!(matches!(
            engine.provisioned_concurrency(&name, &version),
            Err(EngineError::ProvisionedConfigNotFound)
        ));
        assert_eq!(invoke(&engine, &name, None).await.unwrap(), "\"on-demand\"");
    }
}
