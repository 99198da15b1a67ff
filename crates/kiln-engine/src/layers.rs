//! Layers: the commands that publish, read, delete and share layer versions, the resolution
//! of a function's `Layers`, and the garbage collection of merged `/opt` trees.
//!
//! Layer versions live in their own in-memory snapshot ([`LayerRegistry`]), loaded at start-up
//! and changed under the engine's writer lock like functions: persist first, then publish.
//! A layer's package is a blob in the same content-addressed store as function code; it is
//! collected only when no layer version and no function version references it, so deleting a
//! layer version never breaks a function that uses it (the function version keeps the
//! package's digest, see [`FunctionLayer`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use kiln_core::{
    Architecture, CodeArtifact, FunctionLayer, LayerPolicy, LayerStatement, LayerVersion,
};
use kiln_store::LoadedLayers;

use crate::{CodeLimits, CodePin, Engine, EngineError, blocking, new_revision};

/// The most layers a function may use, as on Lambda.
pub const MAX_FUNCTION_LAYERS: usize = 5;

/// Everything needed to publish a layer version.
#[derive(Debug)]
pub struct NewLayerVersion {
    pub layer_name: String,
    pub description: String,
    pub compatible_runtimes: Option<Vec<String>>,
    pub compatible_architectures: Option<Vec<Architecture>>,
    pub license_info: Option<String>,
    pub zip: Vec<u8>,
}

/// A new statement for a layer version's policy.
#[derive(Debug, Clone)]
pub struct NewLayerStatement {
    pub statement: LayerStatement,
    /// Only add it if the policy's revision is this one.
    pub expected_revision: Option<String>,
}

/// Keeps the packages of resolved layers safe from garbage collection until the function
/// change that uses them has committed (or failed).
#[derive(Debug)]
pub struct LayerPins {
    _pins: Vec<CodePin>,
}

/// Every layer version, by layer name and version.
#[derive(Debug, Default)]
pub(crate) struct LayerRegistry {
    state: RwLock<LayerState>,
}

#[derive(Debug, Default)]
struct LayerState {
    versions: BTreeMap<String, BTreeMap<u64, Arc<LayerVersion>>>,
    /// The highest version each name ever had: numbers are never reused.
    latest_versions: BTreeMap<String, u64>,
    /// How many layer versions use each package.
    code_references: HashMap<String, usize>,
    /// Zipped bytes over every layer version (Lambda counts them in `TotalCodeSize`).
    total_code_bytes: u64,
}

impl LayerState {
    fn insert(&mut self, layer: LayerVersion) {
        *self
            .code_references
            .entry(layer.code.sha256_hex.clone())
            .or_default() += 1;
        self.total_code_bytes += layer.code.size_bytes;
        let latest = self
            .latest_versions
            .entry(layer.layer_name.clone())
            .or_default();
        *latest = (*latest).max(layer.version);
        let previous = self
            .versions
            .entry(layer.layer_name.clone())
            .or_default()
            .insert(layer.version, Arc::new(layer));
        if let Some(previous) = previous {
            self.forget(&previous);
        }
    }

    fn remove(&mut self, layer_name: &str, version: u64) -> Option<Arc<LayerVersion>> {
        let versions = self.versions.get_mut(layer_name)?;
        let removed = versions.remove(&version)?;
        if versions.is_empty() {
            self.versions.remove(layer_name);
        }
        self.forget(&removed);
        Some(removed)
    }

    fn forget(&mut self, layer: &LayerVersion) {
        if let Some(count) = self.code_references.get_mut(&layer.code.sha256_hex) {
            *count -= 1;
            if *count == 0 {
                self.code_references.remove(&layer.code.sha256_hex);
            }
        }
        self.total_code_bytes -= layer.code.size_bytes;
    }
}

impl LayerRegistry {
    pub(crate) fn new(loaded: LoadedLayers) -> Self {
        let mut state = LayerState {
            latest_versions: loaded.latest_versions,
            ..LayerState::default()
        };
        for version in loaded.versions {
            state.insert(version);
        }
        Self {
            state: RwLock::new(state),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, LayerState> {
        // Writers update the maps without calling out, so a panic cannot leave them torn.
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, LayerState> {
        self.state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether any layer version uses the package with this digest.
    pub(crate) fn references_code(&self, digest: &str) -> bool {
        self.read().code_references.contains_key(digest)
    }

    pub(crate) fn total_code_bytes(&self) -> u64 {
        self.read().total_code_bytes
    }
}

/// Refuses a function whose code and layers together exceed Lambda's unzipped limit.
pub(crate) fn check_combined_size(
    limits: CodeLimits,
    code: &CodeArtifact,
    layers: &[FunctionLayer],
) -> Result<(), EngineError> {
    if layers.is_empty() {
        return Ok(());
    }
    let actual = layers
        .iter()
        .map(|layer| layer.code.unzipped_size_bytes)
        .fold(code.unzipped_size_bytes, u64::saturating_add);
    if actual > limits.max_unzipped_bytes {
        return Err(EngineError::CodeWithLayersTooLarge {
            limit: limits.max_unzipped_bytes,
            actual,
        });
    }
    Ok(())
}

impl Engine {
    /// Publishes the next version of a layer (1 for a new name, never a number used before).
    pub async fn publish_layer_version(
        &self,
        new: NewLayerVersion,
    ) -> Result<Arc<LayerVersion>, EngineError> {
        let NewLayerVersion {
            layer_name,
            description,
            compatible_runtimes,
            compatible_architectures,
            license_info,
            zip,
        } = new;
        let (code, pin) = self.store_code(zip).await?;
        let outcome = async {
            let _writer = self.inner.writer.lock().await;
            let version = self
                .inner
                .layers
                .read()
                .latest_versions
                .get(&layer_name)
                .map_or(1, |latest| latest + 1);
            let layer = LayerVersion {
                layer_name,
                version,
                description,
                created: kiln_core::now_millis(),
                compatible_runtimes,
                compatible_architectures,
                license_info,
                code,
                policy: None,
            };
            let store = Arc::clone(&self.inner.store);
            let record = layer.clone();
            blocking(move || store.insert_layer_version(&record)).await??;
            self.inner.layers.write().insert(layer.clone());
            Ok(Arc::new(layer))
        }
        .await;
        self.release_code(pin, outcome.is_err()).await;
        outcome
    }

    /// One layer version, from the snapshot.
    pub fn layer_version(&self, layer_name: &str, version: u64) -> Option<Arc<LayerVersion>> {
        self.inner
            .layers
            .read()
            .versions
            .get(layer_name)?
            .get(&version)
            .cloned()
    }

    /// A layer's versions, newest first (as `ListLayerVersions` lists them).
    pub fn layer_versions(&self, layer_name: &str) -> Vec<Arc<LayerVersion>> {
        self.inner
            .layers
            .read()
            .versions
            .get(layer_name)
            .map(|versions| versions.values().rev().cloned().collect())
            .unwrap_or_default()
    }

    /// Every layer that has versions, in name order, each with its versions newest first.
    pub fn layers(&self) -> Vec<(String, Vec<Arc<LayerVersion>>)> {
        self.inner
            .layers
            .read()
            .versions
            .iter()
            .map(|(name, versions)| (name.clone(), versions.values().rev().cloned().collect()))
            .collect()
    }

    /// Deletes one layer version; deleting one that does not exist succeeds, as on Lambda.
    /// Functions using it keep working: their versions still reference its package.
    pub async fn delete_layer_version(
        &self,
        layer_name: &str,
        version: u64,
    ) -> Result<(), EngineError> {
        let released = {
            let _writer = self.inner.writer.lock().await;
            if self.layer_version(layer_name, version).is_none() {
                return Ok(());
            }
            let store = Arc::clone(&self.inner.store);
            let name = layer_name.to_owned();
            blocking(move || store.delete_layer_version(&name, version)).await??;
            self.inner.layers.write().remove(layer_name, version)
        };
        if let Some(removed) = released {
            self.collect_code(vec![removed.code.sha256_hex.clone()])
                .await;
        }
        Ok(())
    }

    /// Adds a statement to a layer version's policy; returns it with the policy's new revision.
    pub async fn add_layer_permission(
        &self,
        layer_name: &str,
        version: u64,
        new: NewLayerStatement,
    ) -> Result<(LayerStatement, String), EngineError> {
        self.change_layer_policy(layer_name, version, |policy| {
            check_policy_revision(policy, new.expected_revision.as_deref())?;
            let mut statements = policy.map(|p| p.statements.clone()).unwrap_or_default();
            if statements
                .iter()
                .any(|s| s.statement_id == new.statement.statement_id)
            {
                return Err(EngineError::StatementExists {
                    statement_id: new.statement.statement_id.clone(),
                });
            }
            statements.push(new.statement.clone());
            Ok(statements)
        })
        .await
        .map(|revision| (new.statement, revision))
    }

    /// Removes a statement from a layer version's policy.
    pub async fn remove_layer_permission(
        &self,
        layer_name: &str,
        version: u64,
        statement_id: &str,
        expected_revision: Option<&str>,
    ) -> Result<(), EngineError> {
        self.change_layer_policy(layer_name, version, |policy| {
            let Some(current) = policy else {
                return Err(EngineError::StatementNotFound {
                    statement_id: statement_id.to_owned(),
                });
            };
            check_policy_revision(Some(current), expected_revision)?;
            let mut statements = current.statements.clone();
            let before = statements.len();
            statements.retain(|s| s.statement_id != statement_id);
            if statements.len() == before {
                return Err(EngineError::StatementNotFound {
                    statement_id: statement_id.to_owned(),
                });
            }
            Ok(statements)
        })
        .await
        .map(|_| ())
    }

    async fn change_layer_policy(
        &self,
        layer_name: &str,
        version: u64,
        change: impl FnOnce(Option<&LayerPolicy>) -> Result<Vec<LayerStatement>, EngineError>,
    ) -> Result<String, EngineError> {
        let _writer = self.inner.writer.lock().await;
        let current = self.layer_version(layer_name, version).ok_or_else(|| {
            EngineError::LayerVersionNotFound {
                layer_name: layer_name.to_owned(),
                version,
            }
        })?;
        let statements = change(current.policy.as_ref())?;
        let revision = new_revision();
        let mut updated = (*current).clone();
        updated.policy = (!statements.is_empty()).then(|| LayerPolicy {
            revision_id: revision.clone(),
            statements,
        });
        let store = Arc::clone(&self.inner.store);
        let record = updated.clone();
        blocking(move || store.put_layer_version(&record)).await??;
        self.inner.layers.write().insert(updated);
        Ok(revision)
    }

    /// Resolves a function's `Layers` (name and version of each, in order) to the packages
    /// the function version will keep, pinned until the caller's change has committed.
    pub fn resolve_layers(
        &self,
        references: &[(String, u64)],
    ) -> Result<(Vec<FunctionLayer>, LayerPins), EngineError> {
        let mut layers = Vec::with_capacity(references.len());
        let mut pins = Vec::with_capacity(references.len());
        for (layer_name, version) in references {
            let layer = self.layer_version(layer_name, *version).ok_or_else(|| {
                EngineError::LayerVersionNotFound {
                    layer_name: layer_name.clone(),
                    version: *version,
                }
            })?;
            pins.push(self.inner.pinned_code.pin(&layer.code.sha256_hex));
            layers.push(FunctionLayer {
                layer_name: layer.layer_name.clone(),
                version: layer.version,
                code: layer.code.clone(),
            });
        }
        Ok((layers, LayerPins { _pins: pins }))
    }

    /// Whether a package is still needed: by a function version, a layer version, or a
    /// change in flight.
    pub(crate) fn code_in_use(&self, digest: &str) -> bool {
        self.inner.registry.references_code(digest)
            || self.inner.layers.references_code(digest)
            || self.inner.pinned_code.is_pinned(digest)
    }

    /// Removes the merged `/opt` trees among `keys` that no function version uses any more.
    pub(crate) async fn collect_layer_sets(&self, keys: Vec<String>) {
        if keys.is_empty() {
            return;
        }
        let _writer = self.inner.writer.lock().await;
        let unused: Vec<String> = keys
            .into_iter()
            .filter(|key| !self.inner.registry.references_layer_set(key))
            .collect();
        let executor = Arc::clone(&self.inner.executor);
        let removed = blocking(move || -> Result<(), EngineError> {
            for key in &unused {
                executor.merged_layers().remove(key)?;
            }
            Ok(())
        })
        .await;
        if let Err(error) = removed.and_then(|removed| removed) {
            tracing::warn!(%error, "removing unused merged layers failed");
        }
    }

    /// Removes every merged `/opt` tree no function version uses (at start-up).
    pub(crate) fn sweep_unused_layer_sets(&self) -> Result<(), EngineError> {
        let merged = self.inner.executor.merged_layers();
        for key in merged.list()? {
            if !self.inner.registry.references_layer_set(&key) {
                merged.remove(&key)?;
            }
        }
        Ok(())
    }

    /// Builds the merged `/opt` of `$LATEST`'s layers ahead of its first cold start.
    pub(crate) async fn prepare_layers(&self, name: &kiln_core::FunctionName) {
        let Some(function) = self.inner.registry.get(name) else {
            return;
        };
        if function.latest.config.layers.is_empty() {
            return;
        }
        let executor = Arc::clone(&self.inner.executor);
        let layers = function.latest.config.layers.clone();
        let prepared = blocking(move || executor.opt_dir(&layers)).await;
        if let Ok(Err(error)) = prepared {
            // The first cold start tries again and reports the failure to the caller.
            tracing::warn!(function = %name, %error, "preparing the function's layers failed");
        }
    }
}

fn check_policy_revision(
    policy: Option<&LayerPolicy>,
    expected: Option<&str>,
) -> Result<(), EngineError> {
    match (expected, policy) {
        (None, _) => Ok(()),
        (Some(expected), Some(policy)) if policy.revision_id == expected => Ok(()),
        (Some(_), _) => Err(EngineError::PolicyRevisionMismatch),
    }
}

#[cfg(test)]
mod tests;
