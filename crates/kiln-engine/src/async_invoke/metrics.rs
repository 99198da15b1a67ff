//! Per-function counters of asynchronous invocation, for a metrics endpoint to render
//! (Lambda's `AsyncEventsReceived`, `AsyncEventAge`, `AsyncEventsDropped`, `DeadLetterErrors`,
//! `DestinationDeliveryFailures`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use kiln_core::FunctionName;

/// The counters of one function. Monotonic; read them with `Ordering::Relaxed`.
#[derive(Debug, Default)]
pub struct AsyncCounters {
    /// Events accepted (durably queued).
    pub events_received: AtomicU64,
    /// Events discarded without a destination or dead-letter queue taking them (or whose
    /// function was deleted).
    pub events_dropped: AtomicU64,
    /// Failed sends to the dead-letter queue.
    pub dead_letter_errors: AtomicU64,
    /// Failed deliveries to an on-success or on-failure destination.
    pub destination_delivery_failures: AtomicU64,
    /// `AsyncEventAge`: how many invocations were measured...
    pub event_age_samples: AtomicU64,
    /// ...the sum of their ages at invocation (ms)...
    pub event_age_ms_sum: AtomicU64,
    /// ...the largest...
    pub event_age_ms_max: AtomicU64,
    /// ...and the latest.
    pub event_age_ms_last: AtomicU64,
}

impl AsyncCounters {
    pub(crate) fn record_age(&self, age_ms: u64) {
        self.event_age_samples.fetch_add(1, Ordering::Relaxed);
        self.event_age_ms_sum.fetch_add(age_ms, Ordering::Relaxed);
        self.event_age_ms_max.fetch_max(age_ms, Ordering::Relaxed);
        self.event_age_ms_last.store(age_ms, Ordering::Relaxed);
    }
}

/// Counters by function; a function gets its counters when its first event arrives.
#[derive(Debug, Default)]
pub struct AsyncMetrics {
    by_function: RwLock<HashMap<FunctionName, Arc<AsyncCounters>>>,
}

impl AsyncMetrics {
    /// The counters of `name`, if it has had asynchronous events.
    pub fn counters(&self, name: &FunctionName) -> Option<Arc<AsyncCounters>> {
        self.read().get(name).cloned()
    }

    /// Every function's counters.
    pub fn all(&self) -> Vec<(FunctionName, Arc<AsyncCounters>)> {
        self.read()
            .iter()
            .map(|(name, counters)| (name.clone(), Arc::clone(counters)))
            .collect()
    }

    /// The counters of `name`, created on first use.
    pub(crate) fn of(&self, name: &FunctionName) -> Arc<AsyncCounters> {
        if let Some(counters) = self.read().get(name) {
            return Arc::clone(counters);
        }
        let mut by_function = self
            .by_function
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(by_function.entry(name.clone()).or_default())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<FunctionName, Arc<AsyncCounters>>> {
        self.by_function
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
