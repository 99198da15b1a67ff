//! One execution environment: a sandbox running a function's runtime, its Runtime API, and
//! the state both sides share.
//!
//! ```text
//!  Initializing --first /next--> Idle --run()--> Invoking --reply--> Idle ...
//!        |                                         |
//!        +--- /init/error, exit, init timeout --> Dead <-- exit, timeout, kill
//! ```
//!
//! One invocation at a time: `run` puts the environment in `Invoking` with a one-shot
//! responder, hands the invocation to the runtime's pending `/next`, and waits for whichever
//! comes first: the runtime's reply, the sandbox's exit, or the timeout.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kiln_sandbox::{ExitStatus, Sandbox, TmpVolume};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::capture::Capture;

/// An invocation as handed to the runtime by `/next`.
#[derive(Debug, Clone)]
pub(crate) struct Dispatch {
    pub request_id: String,
    pub payload: Bytes,
    pub deadline_millis: i64,
    pub invoked_function_arn: String,
    pub trace_id: String,
    pub client_context: Option<String>,
}

/// What the runtime posted for an invocation.
#[derive(Debug)]
pub(crate) enum RuntimeReply {
    Response(Bytes),
    Error {
        error_type: String,
        body: Bytes,
    },
    /// A response over the limit, with its size.
    TooLarge(usize),
}

/// How an environment's start-up ended.
#[derive(Debug, Clone)]
pub(crate) enum InitState {
    Initializing,
    Ready {
        duration: Duration,
    },
    Failed {
        error_type: String,
        body: Bytes,
        duration: Duration,
    },
}

/// What waiting for start-up observed.
#[derive(Debug)]
pub(crate) enum Readiness {
    Ready(Duration),
    Failed {
        error_type: String,
        body: Bytes,
        duration: Duration,
    },
    Exited(ExitStatus, Duration),
    TimedOut(Duration),
}

/// How one invocation ended.
#[derive(Debug)]
pub(crate) enum RunOutcome {
    Replied(RuntimeReply),
    Exited(ExitStatus),
    TimedOut,
}

#[derive(Debug)]
enum Phase {
    Initializing,
    Idle,
    Invoking {
        request_id: String,
        delivered: bool,
        responder: Option<oneshot::Sender<RuntimeReply>>,
    },
    Dead,
}

/// An execution environment.
#[derive(Debug)]
pub(crate) struct Environment {
    /// 32 hex digits; the end of the log stream name.
    pub id: String,
    pub capture: Capture,
    sandbox: Sandbox,
    spawned: Instant,
    phase: Mutex<Phase>,
    dispatch_sender: mpsc::Sender<Dispatch>,
    dispatch_receiver: tokio::sync::Mutex<mpsc::Receiver<Dispatch>>,
    init: watch::Sender<InitState>,
    /// Set when the environment is killed: ends a runtime's pending `/next`, whose request
    /// would otherwise keep the environment alive (hyper does not notice a dead peer while a
    /// long poll is in progress).
    shutdown: watch::Sender<bool>,
    /// CPU quota applied once start-up is over (start-up runs unthrottled).
    cpu_cores: Option<f64>,
    server: Mutex<Option<JoinHandle<()>>>,
    /// The `/tmp` volume; handed on to the next environment if this one's runtime dies.
    tmp: Mutex<Option<TmpVolume>>,
    /// Bumped on every invocation, so that a delayed freeze can tell it is stale.
    generation: AtomicU64,
    frozen: AtomicBool,
    /// Held while freezing and while an invocation starts: a freeze decided just before an
    /// invocation began must not land after it (the invocation would hang frozen).
    freeze_lock: Mutex<()>,
}

impl Environment {
    pub(crate) fn new(
        id: String,
        capture: Capture,
        sandbox: Sandbox,
        tmp: TmpVolume,
        spawned: Instant,
        cpu_cores: Option<f64>,
    ) -> Self {
        let (dispatch_sender, dispatch_receiver) = mpsc::channel(1);
        let (init, _) = watch::channel(InitState::Initializing);
        let (shutdown, _) = watch::channel(false);
        Self {
            id,
            capture,
            sandbox,
            spawned,
            phase: Mutex::new(Phase::Initializing),
            dispatch_sender,
            dispatch_receiver: tokio::sync::Mutex::new(dispatch_receiver),
            init,
            shutdown,
            cpu_cores,
            server: Mutex::new(None),
            tmp: Mutex::new(Some(tmp)),
            generation: AtomicU64::new(0),
            frozen: AtomicBool::new(false),
            freeze_lock: Mutex::new(()),
        }
    }

    /// Hands over the Runtime API server task, aborted when the environment is dropped.
    pub(crate) fn set_server(&self, server: JoinHandle<()>) {
        *self
            .server
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(server);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Phase> {
        // Every critical section only swaps enum values; a panic cannot leave it half-done.
        self.phase
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The runtime's `GET /next`: the first call ends start-up; every call waits for the next
    /// invocation. `None` when the call is out of turn (an invocation awaits its reply) or the
    /// environment has been killed.
    pub(crate) async fn next_invocation(&self) -> Option<Dispatch> {
        self.mark_ready();
        if matches!(
            &*self.lock(),
            Phase::Invoking {
                delivered: true,
                ..
            }
        ) {
            return None;
        }
        let mut shutdown = self.shutdown.subscribe();
        let mut receiver = self.dispatch_receiver.lock().await;
        let dispatch = tokio::select! {
            dispatch = receiver.recv() => dispatch?,
            _ = shutdown.wait_for(|dead| *dead) => return None,
        };
        if let Phase::Invoking { delivered, .. } = &mut *self.lock() {
            *delivered = true;
        }
        Some(dispatch)
    }

    fn mark_ready(&self) {
        let mut became_ready = false;
        self.init.send_if_modified(|state| {
            if matches!(state, InitState::Initializing) {
                *state = InitState::Ready {
                    duration: self.spawned.elapsed(),
                };
                became_ready = true;
                true
            } else {
                false
            }
        });
        if became_ready {
            {
                let mut phase = self.lock();
                if matches!(*phase, Phase::Initializing) {
                    *phase = Phase::Idle;
                }
            }
            if let Err(error) = self.sandbox.set_cpu(self.cpu_cores) {
                tracing::warn!(%error, environment = %self.id, "setting the CPU quota failed");
            }
        }
    }

    /// The runtime's `POST /init/error`; `false` if start-up was already over.
    pub(crate) fn init_failed(&self, error_type: String, body: Bytes) -> bool {
        let duration = self.spawned.elapsed();
        let accepted = self.init.send_if_modified(|state| {
            if matches!(state, InitState::Initializing) {
                *state = InitState::Failed {
                    error_type,
                    body,
                    duration,
                };
                true
            } else {
                false
            }
        });
        if accepted {
            *self.lock() = Phase::Dead;
        }
        accepted
    }

    /// The runtime's reply for `request_id`; `false` if no invocation with that id awaits one.
    pub(crate) fn complete(&self, request_id: &str, reply: RuntimeReply) -> bool {
        let mut phase = self.lock();
        let Phase::Invoking {
            request_id: current,
            delivered: true,
            responder,
        } = &mut *phase
        else {
            return false;
        };
        if current != request_id {
            return false;
        }
        match responder.take() {
            Some(responder) => {
                let _ = responder.send(reply);
                // The runtime's next `GET /next` may arrive before the invoker resumes: the
                // invocation is over for the runtime from this moment.
                *phase = Phase::Idle;
                true
            }
            None => false,
        }
    }

    /// Waits for start-up to end, at most `limit`.
    pub(crate) async fn wait_ready(&self, limit: Duration) -> Readiness {
        let mut init = self.init.subscribe();
        let deadline = tokio::time::sleep(limit);
        tokio::pin!(deadline);
        loop {
            match &*init.borrow_and_update() {
                InitState::Ready { duration } => return Readiness::Ready(*duration),
                InitState::Failed {
                    error_type,
                    body,
                    duration,
                } => {
                    return Readiness::Failed {
                        error_type: error_type.clone(),
                        body: body.clone(),
                        duration: *duration,
                    };
                }
                InitState::Initializing => {}
            }
            tokio::select! {
                biased;
                changed = init.changed() => {
                    if changed.is_err() {
                        return Readiness::TimedOut(self.spawned.elapsed());
                    }
                }
                status = self.sandbox.wait() => {
                    // A runtime that reported its failure then exited: the report wins.
                    if let InitState::Failed { error_type, body, duration } = &*self.init.borrow() {
                        return Readiness::Failed {
                            error_type: error_type.clone(),
                            body: body.clone(),
                            duration: *duration,
                        };
                    }
                    *self.lock() = Phase::Dead;
                    return Readiness::Exited(status, self.spawned.elapsed());
                }
                () = &mut deadline => {
                    *self.lock() = Phase::Dead;
                    return Readiness::TimedOut(self.spawned.elapsed());
                }
            }
        }
    }

    /// Runs one invocation; the environment must be idle.
    pub(crate) async fn run(&self, dispatch: Dispatch, timeout: Duration) -> RunOutcome {
        {
            let _freezing = self.lock_freezing();
            self.generation.fetch_add(1, Ordering::Relaxed);
            if self.frozen.swap(false, Ordering::AcqRel)
                && let Err(error) = self.sandbox.thaw()
            {
                tracing::warn!(%error, environment = %self.id, "thawing failed");
            }
        }
        let (responder, reply) = oneshot::channel();
        *self.lock() = Phase::Invoking {
            request_id: dispatch.request_id.clone(),
            delivered: false,
            responder: Some(responder),
        };
        if self.dispatch_sender.try_send(dispatch).is_err() {
            *self.lock() = Phase::Dead;
            return RunOutcome::Exited(self.sandbox.wait().await);
        }
        let outcome = tokio::select! {
            biased;
            reply = reply => match reply {
                Ok(reply) => RunOutcome::Replied(reply),
                Err(_) => RunOutcome::Exited(self.sandbox.wait().await),
            },
            status = self.sandbox.wait() => RunOutcome::Exited(status),
            () = tokio::time::sleep(timeout) => RunOutcome::TimedOut,
        };
        *self.lock() = match outcome {
            RunOutcome::Replied(_) => Phase::Idle,
            RunOutcome::Exited(_) | RunOutcome::TimedOut => Phase::Dead,
        };
        if matches!(outcome, RunOutcome::TimedOut) {
            self.kill();
        }
        outcome
    }

    /// Whether the environment can take another invocation.
    pub(crate) fn is_idle(&self) -> bool {
        matches!(*self.lock(), Phase::Idle) && self.sandbox.exit_status().is_none()
    }

    /// Kills the sandbox; the environment is dead. Every path that discards an environment
    /// calls this (dropping alone would wait for the runtime's long poll to end).
    pub(crate) fn kill(&self) {
        *self.lock() = Phase::Dead;
        self.shutdown.send_replace(true);
        self.sandbox.kill();
    }

    /// Takes the `/tmp` volume of a dead environment, for the environment that replaces it.
    pub(crate) fn take_tmp(&self) -> Option<TmpVolume> {
        self.tmp
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    pub(crate) fn memory_peak(&self) -> Option<u64> {
        self.sandbox.memory_peak()
    }

    /// Whether a Runtime API connection from `peer` (to `local`) comes from this environment's
    /// own sandbox.
    pub(crate) fn owns_connection(
        &self,
        peer: std::net::SocketAddr,
        local: std::net::SocketAddr,
    ) -> bool {
        self.sandbox.owns_connection(peer, local)
    }

    pub(crate) fn oom_killed(&self) -> bool {
        self.sandbox.oom_killed()
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    fn lock_freezing(&self) -> std::sync::MutexGuard<'_, ()> {
        self.freeze_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the environment is frozen.
    pub(crate) fn is_frozen(&self) -> bool {
        self.frozen.load(Ordering::Acquire)
    }

    /// Freezes the environment if it is idle and no invocation started since `generation`.
    /// Blocking (it waits for the freezer): call it off the async threads.
    pub(crate) fn freeze_if_unused(&self, generation: u64) {
        let _freezing = self.lock_freezing();
        if self.generation() != generation || !self.is_idle() || self.is_frozen() {
            return;
        }
        match self.sandbox.freeze() {
            Ok(()) => self.frozen.store(true, Ordering::Release),
            Err(error) => tracing::debug!(%error, environment = %self.id, "freezing failed"),
        }
    }
}

impl Drop for Environment {
    fn drop(&mut self) {
        if let Some(server) = self
            .server
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            server.abort();
        }
        self.sandbox.kill();
    }
}
