//! The in-memory snapshot of every function.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use kiln_core::{Function, FunctionName};

/// Functions by name. Readers take a short read lock and clone an `Arc`; only the engine's
/// writer (which already holds the writer lock) takes the write lock.
#[derive(Debug)]
pub(crate) struct Registry {
    functions: RwLock<BTreeMap<FunctionName, Arc<Function>>>,
}

impl Registry {
    pub(crate) fn new(functions: Vec<Function>) -> Self {
        let map = functions
            .into_iter()
            .map(|function| (function.name.clone(), Arc::new(function)))
            .collect();
        Self {
            functions: RwLock::new(map),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, BTreeMap<FunctionName, Arc<Function>>> {
        // Writers only swap whole entries, so a panic mid-write leaves a consistent map.
        self.functions
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, BTreeMap<FunctionName, Arc<Function>>> {
        self.functions
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn get(&self, name: &FunctionName) -> Option<Arc<Function>> {
        self.read().get(name).cloned()
    }

    pub(crate) fn all(&self) -> Vec<Arc<Function>> {
        self.read().values().cloned().collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.read().len()
    }

    pub(crate) fn put(&self, function: Function) {
        self.write()
            .insert(function.name.clone(), Arc::new(function));
    }

    pub(crate) fn remove(&self, name: &FunctionName) {
        self.write().remove(name);
    }
}
