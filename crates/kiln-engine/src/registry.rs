//! The in-memory snapshot of every function, with the indexes the engine needs in O(1).

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use kiln_core::{Function, FunctionName, FunctionVersion};
use kiln_store::MergedLayers;

use crate::concurrency::{AccountConcurrency, FunctionConcurrency};

/// Functions by name. Readers take a short read lock and clone an `Arc`; only the engine's
/// writer (which already holds the writer lock) takes the write lock.
#[derive(Debug)]
pub(crate) struct Registry {
    state: RwLock<State>,
    /// The account's concurrency counters; the registry keeps their capacity up to date.
    account_concurrency: Arc<AccountConcurrency>,
}

#[derive(Debug, Default)]
struct State {
    functions: BTreeMap<FunctionName, Arc<Function>>,
    /// How many versions reference each code package (by digest), their own code and their
    /// layers', so that deciding whether a package is still used does not scan every function.
    code_references: HashMap<String, usize>,
    /// How many versions use each ordered list of layers (by merged `/opt` key), so that
    /// deciding whether a merged tree is still used does not either.
    layer_set_references: HashMap<String, usize>,
    /// Bytes of code of every version of every function.
    total_code_bytes: u64,
    /// The concurrency every function keeps for itself (reserved, or else provisioned).
    allocated_concurrency: u64,
    /// Each function's invocation counters, kept across its changes; looked up with the
    /// function in one read.
    concurrency: HashMap<FunctionName, Arc<FunctionConcurrency>>,
}

impl State {
    fn insert(&mut self, function: Arc<Function>) -> Option<Arc<Function>> {
        for digest in function.versions().flat_map(packages) {
            *self.code_references.entry(digest.clone()).or_default() += 1;
        }
        for key in function.versions().filter_map(layer_set_key) {
            *self.layer_set_references.entry(key).or_default() += 1;
        }
        self.total_code_bytes += code_bytes(&function);
        self.allocated_concurrency += u64::from(function.concurrency_allocation());
        self.concurrency
            .entry(function.name.clone())
            .or_insert_with(|| Arc::new(FunctionConcurrency::new()))
            .configure(function.reserved_concurrency, function.provisioned_total());
        let previous = self.functions.insert(function.name.clone(), function);
        if let Some(previous) = &previous {
            self.forget(previous);
        }
        previous
    }

    fn remove(&mut self, name: &FunctionName) -> Option<Arc<Function>> {
        let previous = self.functions.remove(name);
        if let Some(previous) = &previous {
            self.forget(previous);
        }
        self.concurrency.remove(name);
        previous
    }

    fn forget(&mut self, function: &Function) {
        for digest in function.versions().flat_map(packages) {
            if let Some(count) = self.code_references.get_mut(digest) {
                *count -= 1;
                if *count == 0 {
                    self.code_references.remove(digest);
                }
            }
        }
        for key in function.versions().filter_map(layer_set_key) {
            if let Some(count) = self.layer_set_references.get_mut(&key) {
                *count -= 1;
                if *count == 0 {
                    self.layer_set_references.remove(&key);
                }
            }
        }
        self.total_code_bytes -= code_bytes(function);
        self.allocated_concurrency -= u64::from(function.concurrency_allocation());
    }
}

/// Every package a version needs: its code, then its layers' in order.
pub(crate) fn packages(version: &FunctionVersion) -> impl Iterator<Item = &String> {
    std::iter::once(&version.code.sha256_hex).chain(
        version
            .config
            .layers
            .iter()
            .map(|layer| &layer.code.sha256_hex),
    )
}

/// The merged `/opt` key of a version's layers; `None` without layers.
pub(crate) fn layer_set_key(version: &FunctionVersion) -> Option<String> {
    (!version.config.layers.is_empty()).then(|| {
        MergedLayers::key(
            version
                .config
                .layers
                .iter()
                .map(|layer| layer.code.sha256_hex.as_str()),
        )
    })
}

/// The size of a function's code as Lambda's `TotalCodeSize` counts it: every version's
/// package, even where versions share one (AWS's total grows when a version is published
/// after a configuration-only change, recorded in
/// TestLambdaAccountSettings::test_account_settings_total_code_size_config_update).
fn code_bytes(function: &Function) -> u64 {
    function
        .versions()
        .map(|version| version.code.size_bytes)
        .sum()
}

impl Registry {
    /// The snapshot of `functions`, in an account allowing `concurrency_limit` concurrent
    /// invocations.
    pub(crate) fn new(functions: Vec<Function>, concurrency_limit: u32) -> Self {
        let mut state = State::default();
        for function in functions {
            state.insert(Arc::new(function));
        }
        let account_concurrency = Arc::new(AccountConcurrency::new(concurrency_limit));
        account_concurrency.set_allocated(state.allocated_concurrency);
        Self {
            state: RwLock::new(state),
            account_concurrency,
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        // Writers update the map and its indexes without calling out, so a panic cannot
        // leave them half-updated.
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn get(&self, name: &FunctionName) -> Option<Arc<Function>> {
        self.read().functions.get(name).cloned()
    }

    /// A function with its invocation counters, in one read (the invoke path).
    pub(crate) fn get_with_concurrency(
        &self,
        name: &FunctionName,
    ) -> Option<(Arc<Function>, Arc<FunctionConcurrency>)> {
        let state = self.read();
        let function = state.functions.get(name)?;
        let counters = state.concurrency.get(name)?;
        Some((Arc::clone(function), Arc::clone(counters)))
    }

    /// The account's concurrency counters.
    pub(crate) fn account_concurrency(&self) -> &Arc<AccountConcurrency> {
        &self.account_concurrency
    }

    /// The concurrency all functions keep for themselves (reserved, or else provisioned).
    pub(crate) fn allocated_concurrency(&self) -> u64 {
        self.read().allocated_concurrency
    }

    pub(crate) fn all(&self) -> Vec<Arc<Function>> {
        self.read().functions.values().cloned().collect()
    }

    /// Up to `limit` functions, in name order, starting at `from` (inclusive) or the first.
    pub(crate) fn page(&self, from: Option<&str>, limit: usize) -> Vec<Arc<Function>> {
        let state = self.read();
        let start = from.map_or(Bound::Unbounded, Bound::Included);
        state
            .functions
            .range::<str, _>((start, Bound::Unbounded))
            .take(limit)
            .map(|(_, function)| Arc::clone(function))
            .collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.read().functions.len()
    }

    /// Whether any version of any function uses the package with this digest.
    pub(crate) fn references_code(&self, digest: &str) -> bool {
        self.read().code_references.contains_key(digest)
    }

    /// Whether any version of any function uses this ordered list of layers.
    pub(crate) fn references_layer_set(&self, key: &str) -> bool {
        self.read().layer_set_references.contains_key(key)
    }

    /// Bytes of code stored, as Lambda's `TotalCodeSize` counts it.
    pub(crate) fn total_code_bytes(&self) -> u64 {
        self.read().total_code_bytes
    }

    /// Publishes a new or changed function; returns what it replaced.
    pub(crate) fn put(&self, function: Function) -> Option<Arc<Function>> {
        let mut state = self.write();
        let previous = state.insert(Arc::new(function));
        self.account_concurrency
            .set_allocated(state.allocated_concurrency);
        previous
    }

    /// Removes a function; returns what was removed.
    pub(crate) fn remove(&self, name: &FunctionName) -> Option<Arc<Function>> {
        let mut state = self.write();
        let previous = state.remove(name);
        self.account_concurrency
            .set_allocated(state.allocated_concurrency);
        previous
    }
}

#[cfg(test)]
mod tests {
    use kiln_core::{
        Architecture, CodeArtifact, FunctionConfig, FunctionState, FunctionVersion, LoggingConfig,
        PackageType, StateInfo, TracingMode, VersionId,
    };

    use super::*;

    fn function(name: &str, digests: &[(&str, u64)]) -> Function {
        let name = FunctionName::parse(name).unwrap();
        let version = |id: VersionId, (digest, size): (&str, u64)| FunctionVersion {
            version: id.into(),
            config: FunctionConfig {
                description: String::new(),
                runtime: "python3.12".into(),
                handler: "h.h".into(),
                role: "r".into(),
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
            },
            code: CodeArtifact {
                sha256_hex: digest.into(),
                sha256_base64: String::new(),
                size_bytes: size,
                unzipped_size_bytes: size,
            },
            revision_id: String::new(),
            last_modified: 0,
            state: StateInfo {
                state: FunctionState::Active,
                reason: None,
                reason_code: None,
            },
            last_update: None,
        };
        let latest = version(VersionId::Latest, digests[0]);
        let published = digests[1..]
            .iter()
            .enumerate()
            .map(|(i, code)| {
                let number = i as u64 + 1;
                (number, version(VersionId::Published(number), *code))
            })
            .collect();
        Function {
            name,
            created: 0,
            tags: BTreeMap::new(),
            latest,
            last_published: digests.len() as u64 - 1,
            published,
            aliases: BTreeMap::new(),
            reserved_concurrency: None,
            provisioned_concurrency: BTreeMap::new(),
            recursive_loop: kiln_core::RecursiveLoop::default(),
        }
    }

    #[test]
    fn code_references_and_sizes_follow_changes() {
        let registry = Registry::new(
            vec![
                function("a", &[("x", 10), ("x", 10), ("y", 5)]),
                function("b", &[("x", 10)]),
            ],
            1000,
        );
        assert!(registry.references_code("x"));
        assert!(registry.references_code("y"));
        assert_eq!(registry.total_code_bytes(), 35, "a: x twice + y; b: x");

        registry.put(function("a", &[("z", 7)]));
        assert!(registry.references_code("x"), "b still uses x");
        assert!(!registry.references_code("y"));
        assert_eq!(registry.total_code_bytes(), 17);

        registry.remove(&FunctionName::parse("b").unwrap());
        assert!(!registry.references_code("x"));
        assert_eq!(registry.total_code_bytes(), 7);
        assert_eq!(registry.len(), 1);
    }

    #[test]
    fn layer_packages_and_layer_sets_count_as_references() {
        let mut with_layers = function("l", &[("code", 1)]);
        with_layers.latest.config.layers = vec![kiln_core::FunctionLayer {
            layer_name: "deps".into(),
            version: 1,
            code: CodeArtifact {
                sha256_hex: "layer".into(),
                sha256_base64: String::new(),
                size_bytes: 3,
                unzipped_size_bytes: 3,
            },
        }];
        let key = layer_set_key(&with_layers.latest).unwrap();
        let registry = Registry::new(vec![with_layers], 1000);
        assert!(registry.references_code("layer"));
        assert!(registry.references_layer_set(&key));
        assert_eq!(
            registry.total_code_bytes(),
            1,
            "layers are not function code"
        );
        registry.put(function("l", &[("code", 1)]));
        assert!(!registry.references_code("layer"));
        assert!(!registry.references_layer_set(&key));
        assert!(registry.references_code("code"));
    }

    #[test]
    fn concurrency_allocations_follow_changes_and_counters_outlive_them() {
        let mut reserved = function("r", &[("x", 1)]);
        reserved.reserved_concurrency = Some(10);
        let mut provisioned = function("p", &[("x", 1), ("x", 1)]);
        provisioned.provisioned_concurrency.insert(
            "1".into(),
            kiln_core::ProvisionedConcurrency {
                requested: 5,
                last_modified: 0,
            },
        );
        let registry = Registry::new(vec![reserved.clone(), provisioned], 100);
        assert_eq!(registry.allocated_concurrency(), 15);
        assert_eq!(registry.account_concurrency().unreserved(), 85);

        let name = FunctionName::parse("r").unwrap();
        let (_, before) = registry.get_with_concurrency(&name).unwrap();
        reserved.reserved_concurrency = Some(20);
        registry.put(reserved);
        let (_, after) = registry.get_with_concurrency(&name).unwrap();
        assert!(Arc::ptr_eq(&before, &after), "counters survive a change");
        assert_eq!(registry.account_concurrency().unreserved(), 75);

        registry.remove(&name);
        assert!(registry.get_with_concurrency(&name).is_none());
        assert_eq!(registry.account_concurrency().unreserved(), 95);
    }

    #[test]
    fn pages_start_at_a_name() {
        let registry = Registry::new(
            ["c", "a", "b", "d"]
                .iter()
                .map(|name| function(name, &[("x", 1)]))
                .collect(),
            1000,
        );
        let names = |page: Vec<Arc<Function>>| -> Vec<String> {
            page.iter().map(|f| f.name.to_string()).collect()
        };
        assert_eq!(names(registry.page(None, 2)), ["a", "b"]);
        assert_eq!(names(registry.page(Some("b"), 2)), ["b", "c"]);
        assert_eq!(names(registry.page(Some("bb"), 10)), ["c", "d"]);
    }
}
