//! Concurrency accounting: how many invocations run at once, per function and account-wide.
//!
//! Lambda's model: the account has a concurrency limit. A function with *reserved*
//! concurrency `r` may run at most `r` invocations at once and keeps those `r` out of
//! everybody else's reach; its provisioned environments are part of `r`, so on-demand
//! invocations get `r - provisioned`. Functions without reserved concurrency share the
//! *unreserved pool*: the limit minus every reserved concurrency and minus the provisioned
//! concurrency of functions without one. At least [`UNRESERVED_MINIMUM`] always stays
//! unreserved, so a run never exceeds the account limit.
//!
//! Invocations served by a provisioned environment need no permit: the environments exist
//! only up to the provisioned count, which is capacity set aside when it was configured.
//!
//! The counters are atomics read and updated with compare-and-swap loops: admitting an
//! invocation takes no lock, and releasing it is one `fetch_sub`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// Lambda keeps at least this much of the account's concurrency unreserved (accounts with a
/// smaller limit keep all of it: new AWS accounts with a limit of 10 report a minimum of 10).
pub const UNRESERVED_MINIMUM: u32 = 100;

/// The unreserved minimum of an account with `limit`.
pub fn unreserved_minimum(limit: u32) -> u32 {
    UNRESERVED_MINIMUM.min(limit)
}

/// Lambda's default account concurrency limit.
pub const DEFAULT_CONCURRENCY_LIMIT: u32 = 1000;

/// `FunctionConcurrency::on_demand_limit` of a function without reserved concurrency: it
/// draws on the account's unreserved pool instead.
const UNRESERVED: u32 = u32::MAX;

/// Which limit an invocation ran into (Lambda's `Reason` of the 429).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleReason {
    /// The function's reserved concurrency is in use.
    ReservedFunctionConcurrentInvocationLimitExceeded,
    /// The account's unreserved pool is in use.
    ConcurrentInvocationLimitExceeded,
}

impl ThrottleReason {
    /// Lambda's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ThrottleReason::ReservedFunctionConcurrentInvocationLimitExceeded => {
                "ReservedFunctionConcurrentInvocationLimitExceeded"
            }
            ThrottleReason::ConcurrentInvocationLimitExceeded => {
                "ConcurrentInvocationLimitExceeded"
            }
        }
    }
}

/// The account-wide counters.
#[derive(Debug)]
pub(crate) struct AccountConcurrency {
    limit: u32,
    /// The limit minus what functions keep for themselves: what unreserved functions share.
    unreserved_capacity: AtomicU32,
    /// On-demand invocations of unreserved functions running now.
    unreserved_in_flight: AtomicU32,
}

impl AccountConcurrency {
    pub(crate) fn new(limit: u32) -> Self {
        Self {
            limit,
            unreserved_capacity: AtomicU32::new(limit),
            unreserved_in_flight: AtomicU32::new(0),
        }
    }

    pub(crate) fn limit(&self) -> u32 {
        self.limit
    }

    /// Called whenever the total of the functions' allocations changes.
    pub(crate) fn set_allocated(&self, allocated: u64) {
        let capacity = u64::from(self.limit).saturating_sub(allocated);
        self.unreserved_capacity.store(
            u32::try_from(capacity).unwrap_or(u32::MAX),
            Ordering::Release,
        );
    }

    /// `UnreservedConcurrentExecutions`.
    pub(crate) fn unreserved(&self) -> u32 {
        self.unreserved_capacity.load(Ordering::Acquire)
    }
}

/// One function's counters. They live as long as the function (across its changes), so
/// that a change of its limits keeps counting the invocations already running.
#[derive(Debug)]
pub(crate) struct FunctionConcurrency {
    /// How many on-demand invocations may run at once: reserved minus provisioned, or
    /// [`UNRESERVED`].
    on_demand_limit: AtomicU32,
    /// On-demand invocations running now.
    in_flight: AtomicU32,
}

impl FunctionConcurrency {
    pub(crate) fn new() -> Self {
        Self {
            on_demand_limit: AtomicU32::new(UNRESERVED),
            in_flight: AtomicU32::new(0),
        }
    }

    /// Applies a function's settings: `reserved` (if any) and its provisioned total.
    pub(crate) fn configure(&self, reserved: Option<u32>, provisioned: u32) {
        let limit = reserved.map_or(UNRESERVED, |reserved| reserved.saturating_sub(provisioned));
        self.on_demand_limit.store(limit, Ordering::Release);
    }

    /// On-demand invocations of this function running now.
    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Acquire)
    }
}

/// The right to run one on-demand invocation; dropping it gives the slot back. Hold it for
/// exactly as long as the invocation runs.
#[derive(Debug)]
pub(crate) struct Permit {
    function: Arc<FunctionConcurrency>,
    /// Set when the permit took a slot of the unreserved pool.
    pool: Option<Arc<AccountConcurrency>>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.function.in_flight.fetch_sub(1, Ordering::AcqRel);
        if let Some(pool) = &self.pool {
            pool.unreserved_in_flight.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Admits one on-demand invocation of `function`, or says which limit it ran into.
pub(crate) fn acquire(
    account: &Arc<AccountConcurrency>,
    function: &Arc<FunctionConcurrency>,
) -> Result<Permit, ThrottleReason> {
    let limit = function.on_demand_limit.load(Ordering::Acquire);
    if limit != UNRESERVED {
        if !try_increment(&function.in_flight, limit) {
            return Err(ThrottleReason::ReservedFunctionConcurrentInvocationLimitExceeded);
        }
        return Ok(Permit {
            function: Arc::clone(function),
            pool: None,
        });
    }
    let capacity = account.unreserved_capacity.load(Ordering::Acquire);
    if !try_increment(&account.unreserved_in_flight, capacity) {
        return Err(ThrottleReason::ConcurrentInvocationLimitExceeded);
    }
    // Counted here too, so that reserving concurrency while invocations run counts them.
    function.in_flight.fetch_add(1, Ordering::AcqRel);
    Ok(Permit {
        function: Arc::clone(function),
        pool: Some(Arc::clone(account)),
    })
}

/// Adds one to `counter` if it is below `limit`.
fn try_increment(counter: &AtomicU32, limit: u32) -> bool {
    counter
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |current| {
            (current < limit).then_some(current + 1)
        })
        .is_ok()
}

/// Whether giving a function `allocation` (instead of what it has now, `current`) keeps
/// the account's unreserved concurrency at or above its minimum; `allocated` is every
/// function's allocation now, `current`'s included.
pub(crate) fn leaves_unreserved_minimum(
    limit: u32,
    allocated: u64,
    current: u32,
    allocation: u32,
) -> bool {
    let others = allocated.saturating_sub(u64::from(current));
    others + u64::from(allocation) + u64::from(unreserved_minimum(limit)) <= u64::from(limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(limit: u32) -> (Arc<AccountConcurrency>, Arc<FunctionConcurrency>) {
        (
            Arc::new(AccountConcurrency::new(limit)),
            Arc::new(FunctionConcurrency::new()),
        )
    }

    #[test]
    fn reserved_concurrency_caps_a_function_and_permits_give_slots_back() {
        let (account, function) = setup(1000);
        function.configure(Some(2), 0);
        let first = acquire(&account, &function).unwrap();
        let second = acquire(&account, &function).unwrap();
        assert_eq!(
            acquire(&account, &function).unwrap_err(),
            ThrottleReason::ReservedFunctionConcurrentInvocationLimitExceeded
        );
        assert_eq!(function.in_flight(), 2);
        drop(first);
        let third = acquire(&account, &function).unwrap();
        drop((second, third));
        assert_eq!(function.in_flight(), 0);
        assert_eq!(
            account.unreserved_in_flight.load(Ordering::Acquire),
            0,
            "reserved functions do not use the pool"
        );
    }

    #[test]
    fn reserved_zero_throttles_everything() {
        let (account, function) = setup(1000);
        function.configure(Some(0), 0);
        assert_eq!(
            acquire(&account, &function).unwrap_err(),
            ThrottleReason::ReservedFunctionConcurrentInvocationLimitExceeded
        );
    }

    #[test]
    fn provisioned_environments_take_their_share_of_reserved_concurrency() {
        let (account, function) = setup(1000);
        function.configure(Some(1), 1);
        assert_eq!(
            acquire(&account, &function).unwrap_err(),
            ThrottleReason::ReservedFunctionConcurrentInvocationLimitExceeded,
            "on demand gets reserved minus provisioned"
        );
        function.configure(Some(3), 1);
        let _a = acquire(&account, &function).unwrap();
        let _b = acquire(&account, &function).unwrap();
        assert!(acquire(&account, &function).is_err());
    }

    #[test]
    fn unreserved_functions_share_the_pool() {
        let account = Arc::new(AccountConcurrency::new(3));
        let a = Arc::new(FunctionConcurrency::new());
        let b = Arc::new(FunctionConcurrency::new());
        account.set_allocated(1);
        assert_eq!(account.unreserved(), 2);
        let held_a = acquire(&account, &a).unwrap();
        let held_b = acquire(&account, &b).unwrap();
        assert_eq!(
            acquire(&account, &a).unwrap_err(),
            ThrottleReason::ConcurrentInvocationLimitExceeded
        );
        drop(held_b);
        let again_a = acquire(&account, &a).unwrap();
        assert_eq!(a.in_flight(), 2);
        drop((held_a, again_a));
        assert_eq!(account.unreserved_in_flight.load(Ordering::Acquire), 0);
        assert_eq!(a.in_flight(), 0);
    }

    #[test]
    fn a_permit_releases_what_it_took_even_if_the_limits_changed_meanwhile() {
        let (account, function) = setup(1000);
        let pooled = acquire(&account, &function).unwrap();
        function.configure(Some(1), 0);
        assert!(
            acquire(&account, &function).is_err(),
            "the running invocation counts against the new reservation"
        );
        drop(pooled);
        assert_eq!(account.unreserved_in_flight.load(Ordering::Acquire), 0);
        let reserved = acquire(&account, &function).unwrap();
        drop(reserved);
        assert_eq!(function.in_flight(), 0);
    }

    #[test]
    fn never_more_than_the_limit_under_contention() {
        let (account, function) = setup(1000);
        function.configure(Some(4), 0);
        let peak = Arc::new(AtomicU32::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (account, function, peak) = (
                    Arc::clone(&account),
                    Arc::clone(&function),
                    Arc::clone(&peak),
                );
                std::thread::spawn(move || {
                    for _ in 0..2000 {
                        if let Ok(permit) = acquire(&account, &function) {
                            peak.fetch_max(function.in_flight(), Ordering::AcqRel);
                            drop(permit);
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert!(peak.load(Ordering::Acquire) <= 4);
        assert_eq!(function.in_flight(), 0);
    }

    #[test]
    fn the_unreserved_minimum_is_kept() {
        assert!(leaves_unreserved_minimum(1000, 0, 0, 900));
        assert!(!leaves_unreserved_minimum(1000, 0, 0, 901));
        assert!(
            leaves_unreserved_minimum(1000, 900, 900, 900),
            "a function's own allocation is replaced, not added"
        );
        assert!(!leaves_unreserved_minimum(1000, 500, 0, 401));
        assert!(!leaves_unreserved_minimum(150, 0, 0, 51));
        assert!(
            !leaves_unreserved_minimum(10, 0, 0, 1),
            "a limit under 100 keeps all of it unreserved"
        );
    }

    #[test]
    fn reasons_are_spelled_as_lambda_spells_them() {
        assert_eq!(
            ThrottleReason::ConcurrentInvocationLimitExceeded.as_str(),
            "ConcurrentInvocationLimitExceeded"
        );
    }
}
