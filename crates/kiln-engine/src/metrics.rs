//! Lambda's per-function metrics, kept as atomic counters and rendered in Prometheus' text
//! exposition format for `GET /metrics`.
//!
//! The names follow Lambda's CloudWatch metrics (`Invocations`, `Errors`, `Throttles`,
//! `Duration`, `ConcurrentExecutions`, ...) in Prometheus' spelling (`kiln_lambda_invocations_total`),
//! labelled by function name and, where Lambda reports it per version, the executed version.
//! The provisioned concurrency metrics are labelled by the configuration's qualifier (version
//! number or alias name: Lambda's `Resource` dimension without the function name) as well.
//!
//! Recording costs one read lock and one hash lookup of the function's series (created once, on
//! its first invocation) and a few relaxed atomic additions: nothing on the warm invoke path
//! waits for anything else. An invocation of a version with provisioned concurrency brings its
//! configuration's counters along (the executor's pool holds them), so counting it takes no
//! further lookup; how many provisioned environments are busy is read from the pools when the
//! metrics are rendered, not counted on the invoke path. The text format is a few lines per series, written by hand rather
//! than through a client library, which would add a dependency for a dozen `format!`s.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use kiln_core::FunctionName;

use crate::async_invoke::AsyncCounters;

/// Upper bounds (milliseconds) of the duration histogram's buckets; Lambda durations range from
/// a millisecond to 15 minutes.
const DURATION_BUCKETS_MS: [f64; 14] = [
    1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1_000.0, 2_500.0, 10_000.0, 60_000.0,
    900_000.0,
];

/// How one invocation ended, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvocationOutcome {
    Success,
    /// A function error or a runtime failure (crash, timeout, out of memory): Lambda's `Errors`.
    Error,
}

/// A histogram of durations in milliseconds.
#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; DURATION_BUCKETS_MS.len()],
    count: AtomicU64,
    /// Sum in microseconds, so that it stays an integer.
    sum_micros: AtomicU64,
}

impl Histogram {
    fn observe(&self, value: Duration) {
        let millis = value.as_secs_f64() * 1000.0;
        for (bound, bucket) in DURATION_BUCKETS_MS.iter().zip(&self.buckets) {
            if millis <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(
            u64::try_from(value.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        for (bound, bucket) in DURATION_BUCKETS_MS.iter().zip(&self.buckets) {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels},le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum{{{labels}}} {}",
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1000.0
        );
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
}

/// The series of one function version.
#[derive(Debug, Default)]
struct VersionSeries {
    invocations: AtomicU64,
    errors: AtomicU64,
    duration: Histogram,
}

/// The counters of one provisioned concurrency configuration (Lambda's `Resource`: a version or
/// an alias). They outlive the configuration, as counters must.
#[derive(Debug, Default)]
pub struct ProvisionedSeries {
    /// `ProvisionedConcurrencyInvocations`.
    invocations: AtomicU64,
    /// `ProvisionedConcurrencySpilloverInvocations`.
    spillover_invocations: AtomicU64,
}

/// How an invocation of a version with a provisioned concurrency configuration was served.
#[derive(Debug, Clone)]
pub struct ProvisionedUse {
    /// The configuration's counters.
    pub(crate) series: Arc<ProvisionedSeries>,
    /// It ran on an on-demand environment because none of the configuration's provisioned
    /// environments was idle.
    pub spillover: bool,
}

/// The provisioned environments of one configuration at rendering time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionedUsage {
    pub function: FunctionName,
    /// The version number or alias name the configuration is on.
    pub resource: String,
    /// Environments running an invocation now (`ProvisionedConcurrentExecutions`).
    pub busy: u32,
    /// Environments initialised, busy or idle.
    pub allocated: u32,
}

/// The series of one function (all versions).
#[derive(Debug, Default)]
pub struct FunctionSeries {
    versions: RwLock<HashMap<String, Arc<VersionSeries>>>,
    /// By configuration qualifier.
    provisioned: RwLock<HashMap<String, Arc<ProvisionedSeries>>>,
    throttles: AtomicU64,
    concurrent: AtomicI64,
    recursion_stops: AtomicU64,
}

impl FunctionSeries {
    fn version(&self, version: &str) -> Arc<VersionSeries> {
        if let Some(series) = self
            .versions
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(version)
        {
            return Arc::clone(series);
        }
        Arc::clone(
            self.versions
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .entry(version.to_owned())
                .or_default(),
        )
    }
}

/// Every function's series.
#[derive(Debug, Default)]
pub struct Metrics {
    functions: RwLock<HashMap<FunctionName, Arc<FunctionSeries>>>,
    /// Invocations running now, account-wide.
    concurrent: AtomicI64,
}

/// Counts one invocation as running until dropped (`ConcurrentExecutions`).
#[derive(Debug)]
pub struct RunningInvocation {
    metrics: Arc<Metrics>,
    function: Arc<FunctionSeries>,
}

impl Drop for RunningInvocation {
    fn drop(&mut self) {
        self.function.concurrent.fetch_sub(1, Ordering::Relaxed);
        self.metrics.concurrent.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    /// The series of `function`, created on first use.
    pub fn function(&self, function: &FunctionName) -> Arc<FunctionSeries> {
        if let Some(series) = self
            .functions
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(function)
        {
            return Arc::clone(series);
        }
        Arc::clone(
            self.functions
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .entry(function.clone())
                .or_default(),
        )
    }

    /// The counters of `function`'s provisioned concurrency configuration on `resource` (a
    /// version number or alias name), created on first use.
    pub fn provisioned(&self, function: &FunctionName, resource: &str) -> Arc<ProvisionedSeries> {
        let series = self.function(function);
        if let Some(provisioned) = series
            .provisioned
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(resource)
        {
            return Arc::clone(provisioned);
        }
        Arc::clone(
            series
                .provisioned
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .entry(resource.to_owned())
                .or_default(),
        )
    }

    /// Marks an invocation of `function` as running (`ConcurrentExecutions`) until the returned
    /// guard is dropped.
    pub fn start(self: &Arc<Self>, function: &FunctionName) -> RunningInvocation {
        let series = self.function(function);
        series.concurrent.fetch_add(1, Ordering::Relaxed);
        self.concurrent.fetch_add(1, Ordering::Relaxed);
        RunningInvocation {
            metrics: Arc::clone(self),
            function: series,
        }
    }

    /// Counts a finished invocation of `version` (`$LATEST` or a number), and for a version
    /// with provisioned concurrency, whether it ran on a provisioned environment.
    pub fn record_invocation(
        &self,
        function: &FunctionName,
        version: &str,
        outcome: InvocationOutcome,
        duration: Duration,
        provisioned: Option<&ProvisionedUse>,
    ) {
        let series = self.function(function).version(version);
        series.invocations.fetch_add(1, Ordering::Relaxed);
        if outcome == InvocationOutcome::Error {
            series.errors.fetch_add(1, Ordering::Relaxed);
        }
        series.duration.observe(duration);
        if let Some(provisioned) = provisioned {
            let counter = if provisioned.spillover {
                &provisioned.series.spillover_invocations
            } else {
                &provisioned.series.invocations
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts an invocation refused for concurrency (`Throttles`).
    pub fn record_throttle(&self, function: &FunctionName) {
        self.function(function)
            .throttles
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an invocation that recursive loop detection stopped
    /// (`RecursiveInvocationsDropped`).
    pub fn record_recursion_stop(&self, function: &FunctionName) {
        self.function(function)
            .recursion_stops
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Every series in Prometheus' text exposition format (version 0.0.4), with the
    /// asynchronous invocation counters the async dispatcher keeps and the state of the
    /// provisioned environments.
    pub fn render(
        &self,
        asynchronous: &[(FunctionName, Arc<AsyncCounters>)],
        provisioned: &[ProvisionedUsage],
    ) -> String {
        let functions: Vec<(FunctionName, Arc<FunctionSeries>)> = {
            let map = self
                .functions
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut entries: Vec<_> = map
                .iter()
                .map(|(name, series)| (name.clone(), Arc::clone(series)))
                .collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            entries
        };
        let versions_of = |series: &FunctionSeries| {
            let map = series
                .versions
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut entries: Vec<(String, Arc<VersionSeries>)> = map
                .iter()
                .map(|(version, series)| (version.clone(), Arc::clone(series)))
                .collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            entries
        };
        let mut out = String::new();

        header(
            &mut out,
            "kiln_lambda_invocations_total",
            "counter",
            "Invocations, successful or not (Lambda's Invocations).",
        );
        for (function, series) in &functions {
            for (version, version_series) in versions_of(series) {
                let _ = writeln!(
                    out,
                    "kiln_lambda_invocations_total{{{}}} {}",
                    labels(function, Some(&version)),
                    version_series.invocations.load(Ordering::Relaxed)
                );
            }
        }
        header(
            &mut out,
            "kiln_lambda_errors_total",
            "counter",
            "Invocations that ended in a function error or a runtime failure (Lambda's Errors).",
        );
        for (function, series) in &functions {
            for (version, version_series) in versions_of(series) {
                let _ = writeln!(
                    out,
                    "kiln_lambda_errors_total{{{}}} {}",
                    labels(function, Some(&version)),
                    version_series.errors.load(Ordering::Relaxed)
                );
            }
        }
        header(
            &mut out,
            "kiln_lambda_duration_milliseconds",
            "histogram",
            "Time spent in the function's handler, as in REPORT (Lambda's Duration).",
        );
        for (function, series) in &functions {
            for (version, version_series) in versions_of(series) {
                version_series.duration.render(
                    &mut out,
                    "kiln_lambda_duration_milliseconds",
                    &labels(function, Some(&version)),
                );
            }
        }
        header(
            &mut out,
            "kiln_lambda_throttles_total",
            "counter",
            "Invocations refused for concurrency (Lambda's Throttles).",
        );
        for (function, series) in &functions {
            let _ = writeln!(
                out,
                "kiln_lambda_throttles_total{{{}}} {}",
                labels(function, None),
                series.throttles.load(Ordering::Relaxed)
            );
        }
        header(
            &mut out,
            "kiln_lambda_recursive_invocations_dropped_total",
            "counter",
            "Invocations stopped because the function was in a recursive loop (Lambda's RecursiveInvocationsDropped).",
        );
        for (function, series) in &functions {
            let _ = writeln!(
                out,
                "kiln_lambda_recursive_invocations_dropped_total{{{}}} {}",
                labels(function, None),
                series.recursion_stops.load(Ordering::Relaxed)
            );
        }
        let mut asynchronous: Vec<&(FunctionName, Arc<AsyncCounters>)> =
            asynchronous.iter().collect();
        asynchronous.sort_by(|a, b| a.0.cmp(&b.0));
        let counters: [CounterFamily<AsyncCounters>; 4] = [
            (
                "kiln_lambda_async_events_received_total",
                "Asynchronous events accepted (Lambda's AsyncEventsReceived).",
                |c| c.events_received.load(Ordering::Relaxed),
            ),
            (
                "kiln_lambda_async_events_dropped_total",
                "Asynchronous events dropped without a successful execution, after any DLQ or on-failure delivery (Lambda's AsyncEventsDropped).",
                |c| c.events_dropped.load(Ordering::Relaxed),
            ),
            (
                "kiln_lambda_dead_letter_errors_total",
                "Failed deliveries to a dead-letter queue (Lambda's DeadLetterErrors).",
                |c| c.dead_letter_errors.load(Ordering::Relaxed),
            ),
            (
                "kiln_lambda_destination_delivery_failures_total",
                "Failed deliveries to a destination (Lambda's DestinationDeliveryFailures).",
                |c| c.destination_delivery_failures.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, read) in counters {
            header(&mut out, name, "counter", help);
            for (function, counters) in &asynchronous {
                let _ = writeln!(
                    out,
                    "{name}{{{}}} {}",
                    labels(function, None),
                    read(counters)
                );
            }
        }
        header(
            &mut out,
            "kiln_lambda_async_event_age_milliseconds",
            "summary",
            "Time from accepting an asynchronous event to invoking it (Lambda's AsyncEventAge).",
        );
        for (function, counters) in &asynchronous {
            let labels = labels(function, None);
            let _ = writeln!(
                out,
                "kiln_lambda_async_event_age_milliseconds_sum{{{labels}}} {}",
                counters.event_age_ms_sum.load(Ordering::Relaxed)
            );
            let _ = writeln!(
                out,
                "kiln_lambda_async_event_age_milliseconds_count{{{labels}}} {}",
                counters.event_age_samples.load(Ordering::Relaxed)
            );
        }
        header(
            &mut out,
            "kiln_lambda_async_event_age_max_milliseconds",
            "gauge",
            "The oldest asynchronous event invoked so far (Lambda's AsyncEventAge maximum).",
        );
        for (function, counters) in &asynchronous {
            let _ = writeln!(
                out,
                "kiln_lambda_async_event_age_max_milliseconds{{{}}} {}",
                labels(function, None),
                counters.event_age_ms_max.load(Ordering::Relaxed)
            );
        }
        header(
            &mut out,
            "kiln_lambda_concurrent_executions",
            "gauge",
            "Invocations running now, per function and account-wide without a label (Lambda's ConcurrentExecutions).",
        );
        let _ = writeln!(
            out,
            "kiln_lambda_concurrent_executions {}",
            self.concurrent.load(Ordering::Relaxed).max(0)
        );
        for (function, series) in &functions {
            let _ = writeln!(
                out,
                "kiln_lambda_concurrent_executions{{{}}} {}",
                labels(function, None),
                series.concurrent.load(Ordering::Relaxed).max(0)
            );
        }
        render_provisioned(&mut out, &functions, provisioned);
        out
    }
}

/// The `ProvisionedConcurrency*` families: per function (the sum over its configurations, as
/// Lambda's function-level figure) and per configuration (`resource`).
fn render_provisioned(
    out: &mut String,
    functions: &[(FunctionName, Arc<FunctionSeries>)],
    usage: &[ProvisionedUsage],
) {
    let mut usage: Vec<&ProvisionedUsage> = usage.iter().collect();
    usage.sort_by(|a, b| (&a.function, &a.resource).cmp(&(&b.function, &b.resource)));
    header(
        out,
        "kiln_lambda_provisioned_concurrent_executions",
        "gauge",
        "Invocations running on provisioned environments now, per function and per configuration (Lambda's ProvisionedConcurrentExecutions).",
    );
    for (index, entry) in usage.iter().enumerate() {
        let first_of_function = index == 0 || usage[index - 1].function != entry.function;
        if first_of_function {
            let busy: u64 = usage
                .iter()
                .filter(|other| other.function == entry.function)
                .map(|other| u64::from(other.busy))
                .sum();
            let _ = writeln!(
                out,
                "kiln_lambda_provisioned_concurrent_executions{{{}}} {busy}",
                labels(&entry.function, None)
            );
        }
        let _ = writeln!(
            out,
            "kiln_lambda_provisioned_concurrent_executions{{{}}} {}",
            resource_labels(&entry.function, &entry.resource),
            entry.busy
        );
    }
    header(
        out,
        "kiln_lambda_provisioned_concurrency_utilization",
        "gauge",
        "Busy provisioned environments divided by those initialised, per configuration (Lambda's ProvisionedConcurrencyUtilization).",
    );
    for entry in &usage {
        let utilization = if entry.allocated == 0 {
            0.0
        } else {
            f64::from(entry.busy) / f64::from(entry.allocated)
        };
        let _ = writeln!(
            out,
            "kiln_lambda_provisioned_concurrency_utilization{{{}}} {utilization}",
            resource_labels(&entry.function, &entry.resource)
        );
    }
    let counters: [CounterFamily<ProvisionedSeries>; 2] = [
        (
            "kiln_lambda_provisioned_concurrency_invocations_total",
            "Invocations that ran on a provisioned environment, per function and per configuration (Lambda's ProvisionedConcurrencyInvocations).",
            |series| series.invocations.load(Ordering::Relaxed),
        ),
        (
            "kiln_lambda_provisioned_concurrency_spillover_invocations_total",
            "Invocations of a version with provisioned concurrency that ran on an on-demand environment because no provisioned one was idle, per function and per configuration (Lambda's ProvisionedConcurrencySpilloverInvocations).",
            |series| series.spillover_invocations.load(Ordering::Relaxed),
        ),
    ];
    for (name, help, read) in counters {
        header(out, name, "counter", help);
        for (function, series) in functions {
            let mut resources: Vec<(String, u64)> = series
                .provisioned
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .map(|(resource, series)| (resource.clone(), read(series)))
                .collect();
            if resources.is_empty() {
                continue;
            }
            resources.sort();
            let total: u64 = resources.iter().map(|(_, value)| value).sum();
            let _ = writeln!(out, "{name}{{{}}} {total}", labels(function, None));
            for (resource, value) in resources {
                let _ = writeln!(
                    out,
                    "{name}{{{}}} {value}",
                    resource_labels(function, &resource)
                );
            }
        }
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A counter family: name, help, and how to read it from the counters of a function (or of a
/// provisioned concurrency configuration).
type CounterFamily<Counters> = (&'static str, &'static str, fn(&Counters) -> u64);

/// `function_name="f",resource="live"`; a resource is a version number or an alias name
/// (`[a-zA-Z0-9-_]`), which needs no escaping either.
fn resource_labels(function: &FunctionName, resource: &str) -> String {
    format!("function_name=\"{function}\",resource=\"{resource}\"")
}

/// `function_name="f"[,executed_version="1"]`; function names and versions need no escaping
/// (`[a-zA-Z0-9-_]`, `$LATEST`).
fn labels(function: &FunctionName, version: Option<&str>) -> String {
    match version {
        Some(version) => format!("function_name=\"{function}\",executed_version=\"{version}\""),
        None => format!("function_name=\"{function}\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_renders_prometheus_text() {
        let metrics = Arc::new(Metrics::default());
        let f = FunctionName::parse("f").unwrap();
        {
            let _running = metrics.start(&f);
            let text = metrics.render(&[], &[]);
            assert!(text.contains("kiln_lambda_concurrent_executions{function_name=\"f\"} 1\n"));
            assert!(text.contains("kiln_lambda_concurrent_executions 1\n"));
        }
        metrics.record_invocation(
            &f,
            "$LATEST",
            InvocationOutcome::Success,
            Duration::from_millis(3),
            None,
        );
        metrics.record_invocation(
            &f,
            "$LATEST",
            InvocationOutcome::Error,
            Duration::from_millis(30),
            None,
        );
        metrics.record_invocation(
            &f,
            "2",
            InvocationOutcome::Success,
            Duration::from_secs(2),
            None,
        );
        metrics.record_throttle(&f);
        metrics.record_recursion_stop(&f);
        let asynchronous = vec![(f, Arc::new(AsyncCounters::default()))];
        asynchronous[0].1.record_age(40);
        let text = metrics.render(&asynchronous, &[]);
        assert!(
            text.contains("kiln_lambda_async_event_age_milliseconds_sum{function_name=\"f\"} 40\n")
        );
        assert!(text.contains(
            "kiln_lambda_invocations_total{function_name=\"f\",executed_version=\"$LATEST\"} 2\n"
        ));
        assert!(text.contains(
            "kiln_lambda_errors_total{function_name=\"f\",executed_version=\"$LATEST\"} 1\n"
        ));
        assert!(text.contains(
            "kiln_lambda_invocations_total{function_name=\"f\",executed_version=\"2\"} 1\n"
        ));
        assert!(text.contains(
            "kiln_lambda_duration_milliseconds_bucket{function_name=\"f\",executed_version=\"$LATEST\",le=\"5\"} 1\n"
        ));
        assert!(text.contains(
            "kiln_lambda_duration_milliseconds_bucket{function_name=\"f\",executed_version=\"$LATEST\",le=\"+Inf\"} 2\n"
        ));
        assert!(text.contains(
            "kiln_lambda_duration_milliseconds_sum{function_name=\"f\",executed_version=\"$LATEST\"} 33\n"
        ));
        assert!(text.contains("kiln_lambda_throttles_total{function_name=\"f\"} 1\n"));
        assert!(
            text.contains(
                "kiln_lambda_recursive_invocations_dropped_total{function_name=\"f\"} 1\n"
            )
        );
        assert!(text.contains("kiln_lambda_concurrent_executions{function_name=\"f\"} 0\n"));
        // Every sample line belongs to a declared family.
        for line in text.lines().filter(|line| !line.starts_with('#')) {
            let family = line.split(['{', ' ']).next().unwrap();
            let base = family
                .trim_end_matches("_bucket")
                .trim_end_matches("_sum")
                .trim_end_matches("_count");
            assert!(
                text.contains(&format!("# TYPE {base} ")),
                "{line} has no TYPE line"
            );
        }
    }
    #[test]
    fn renders_provisioned_concurrency_per_function_and_per_configuration() {
        let metrics = Metrics::default();
        let f = FunctionName::parse("f").unwrap();
        let g = FunctionName::parse("g").unwrap();
        let live = metrics.provisioned(&f, "live");
        assert!(Arc::ptr_eq(&live, &metrics.provisioned(&f, "live")));
        let version_three = metrics.provisioned(&f, "3");
        // Configured but never invoked: its counters show, at zero.
        metrics.provisioned(&g, "1");
        let record = |series: &Arc<ProvisionedSeries>, spillover: bool| {
            metrics.record_invocation(
                &f,
                "2",
                InvocationOutcome::Success,
                Duration::from_millis(1),
                Some(&ProvisionedUse {
                    series: Arc::clone(series),
                    spillover,
                }),
            );
        };
        record(&live, false);
        record(&live, false);
        record(&live, true);
        record(&version_three, false);
        let usage = [
            ProvisionedUsage {
                function: f.clone(),
                resource: "live".into(),
                busy: 1,
                allocated: 4,
            },
            ProvisionedUsage {
                function: f.clone(),
                resource: "3".into(),
                busy: 2,
                allocated: 2,
            },
            ProvisionedUsage {
                function: g,
                resource: "1".into(),
                busy: 0,
                allocated: 0,
            },
        ];
        let text = metrics.render(&[], &usage);
        for expected in [
            "kiln_lambda_provisioned_concurrency_invocations_total{function_name=\"f\"} 3\n",
            "kiln_lambda_provisioned_concurrency_invocations_total{function_name=\"f\",resource=\"live\"} 2\n",
            "kiln_lambda_provisioned_concurrency_invocations_total{function_name=\"f\",resource=\"3\"} 1\n",
            "kiln_lambda_provisioned_concurrency_invocations_total{function_name=\"g\",resource=\"1\"} 0\n",
            "kiln_lambda_provisioned_concurrency_spillover_invocations_total{function_name=\"f\"} 1\n",
            "kiln_lambda_provisioned_concurrency_spillover_invocations_total{function_name=\"f\",resource=\"live\"} 1\n",
            "kiln_lambda_provisioned_concurrency_spillover_invocations_total{function_name=\"f\",resource=\"3\"} 0\n",
            "kiln_lambda_provisioned_concurrent_executions{function_name=\"f\"} 3\n",
            "kiln_lambda_provisioned_concurrent_executions{function_name=\"f\",resource=\"live\"} 1\n",
            "kiln_lambda_provisioned_concurrent_executions{function_name=\"f\",resource=\"3\"} 2\n",
            "kiln_lambda_provisioned_concurrent_executions{function_name=\"g\"} 0\n",
            "kiln_lambda_provisioned_concurrency_utilization{function_name=\"f\",resource=\"live\"} 0.25\n",
            "kiln_lambda_provisioned_concurrency_utilization{function_name=\"f\",resource=\"3\"} 1\n",
            "kiln_lambda_provisioned_concurrency_utilization{function_name=\"g\",resource=\"1\"} 0\n",
            "# TYPE kiln_lambda_provisioned_concurrent_executions gauge\n",
            "# TYPE kiln_lambda_provisioned_concurrency_utilization gauge\n",
            "# TYPE kiln_lambda_provisioned_concurrency_invocations_total counter\n",
            "# TYPE kiln_lambda_provisioned_concurrency_spillover_invocations_total counter\n",
        ] {
            assert!(text.contains(expected), "{expected} missing from\n{text}");
        }
        // Provisioned counts do not replace the version's ordinary ones.
        assert!(text.contains(
            "kiln_lambda_invocations_total{function_name=\"f\",executed_version=\"2\"} 4\n"
        ));
        // One TYPE line per family, and no family without its samples' TYPE.
        for line in text.lines().filter(|line| line.starts_with("# TYPE")) {
            assert_eq!(text.matches(&format!("{line}\n")).count(), 1, "{line}");
        }
    }
}
