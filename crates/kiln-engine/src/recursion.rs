//! Recursive loop detection, as Lambda does it.
//!
//! Every invocation carries an X-Ray trace header: the caller's `X-Amzn-Trace-Id`, the
//! `AWSTraceHeader` of the queue messages that triggered it, or a new one. Kiln adds a
//! `Lineage` field to it that counts, per function, how many invocations the chain of events
//! leading here has made, and hands the header to the function (`Lambda-Runtime-Trace-Id`,
//! which runtimes expose as `_X_AMZN_TRACE_ID`). The AWS SDKs forward that variable as
//! `X-Amzn-Trace-Id` on every call a function makes (botocore's and the JS SDK's recursion
//! detection), so a function that sends a message to the queue that triggers it, or invokes
//! itself asynchronously, passes its lineage on. The invocation that would make a function's
//! count exceed [`MAX_RECURSIVE_INVOCATIONS`] is stopped, unless the function's
//! `RecursiveLoop` is `Allow`.
//!
//! Lambda's own `Lineage` encoding is not documented, and only Lambda reads it; Kiln writes
//! `Lineage=<function key>:<count>`, several functions separated by `,` (characters botocore
//! forwards without percent-encoding them).

use std::fmt;

use std::sync::Arc;

use kiln_core::{Function, FunctionName, RecursiveLoop};

use crate::{Engine, EngineError, blocking};

/// Lambda stops a loop once one event has invoked the same function this many times.
pub const MAX_RECURSIVE_INVOCATIONS: u32 = 16;
/// What Lambda says about an invocation it stopped (`RecursiveInvocationException`).
pub const STOPPED_MESSAGE: &str = "Lambda has detected your function being invoked in a recursive \
    loop with other Amazon Web Services resources and stopped your function's invocation.";
/// Functions whose counts one header carries at most; the lowest counts give way.
const MAX_LINEAGE_ENTRIES: usize = 8;
/// Fields (other than `Lineage`) kept from a caller's header, against hostile headers.
const MAX_FIELDS: usize = 8;
/// Longest field value kept.
const MAX_FIELD_LEN: usize = 256;

/// An X-Ray trace header with its `Lineage` counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceHeader {
    /// `Root`, `Parent`, `Sampled` and any other field, in their order.
    fields: Vec<(String, String)>,
    /// Invocations so far along the chain, by function key.
    lineage: Vec<(String, u32)>,
}

impl TraceHeader {
    /// A new trace: `Root=1-<epoch hex>-<96-bit hex>;Parent=<64-bit hex>;Sampled=0`.
    pub fn fresh() -> Self {
        let random = crate::ids::fast_uuid().simple().to_string();
        let seconds = kiln_core::now_millis() / 1000;
        Self {
            fields: vec![
                (
                    "Root".to_owned(),
                    format!("1-{seconds:08x}-{}", &random[..24]),
                ),
                ("Parent".to_owned(), random[16..32].to_owned()),
                ("Sampled".to_owned(), "0".to_owned()),
            ],
            lineage: Vec::new(),
        }
    }

    /// Reads a caller's header leniently: malformed fields are skipped, and a header without a
    /// `Root` gets a new one (keeping its lineage, so a mangled header cannot reset a loop).
    pub fn parse(text: &str) -> Self {
        let mut fields: Vec<(String, String)> = Vec::new();
        let mut lineage = Vec::new();
        for part in text.split(';') {
            let Some((key, value)) = part.trim().split_once('=') else {
                continue;
            };
            let (key, value) = (key.trim(), value.trim());
            let printable = |s: &str| s.bytes().all(|b| b.is_ascii_graphic() && b != b';');
            if key.is_empty() || !printable(key) || !printable(value) {
                continue;
            }
            if key == "Lineage" {
                lineage = parse_lineage(value);
            } else if fields.len() < MAX_FIELDS
                && value.len() <= MAX_FIELD_LEN
                && !fields.iter().any(|(known, _)| known == key)
            {
                fields.push((key.to_owned(), value.to_owned()));
            }
        }
        if !fields.iter().any(|(key, _)| key == "Root") {
            let mut root = Self::fresh().fields;
            root.truncate(1);
            root.extend(fields);
            fields = root;
        }
        Self { fields, lineage }
    }

    /// A caller's header, or a new trace when there is none.
    pub fn of_caller(text: Option<&str>) -> Self {
        text.map_or_else(Self::fresh, Self::parse)
    }

    /// How many invocations of the function `key` the chain has made so far.
    pub fn count(&self, key: &str) -> u32 {
        self.lineage
            .iter()
            .find(|(known, _)| known == key)
            .map_or(0, |(_, count)| *count)
    }

    /// Counts one more invocation of the function `key`; returns its new count.
    pub fn record_invocation(&mut self, key: &str) -> u32 {
        let count = self.count(key).saturating_add(1);
        self.lineage.retain(|(known, _)| known != key);
        self.lineage.push((key.to_owned(), count));
        if self.lineage.len() > MAX_LINEAGE_ENTRIES {
            // Forget the function least likely to be looping (the fewest invocations), never
            // the one just counted.
            let newest = self.lineage.len() - 1;
            if let Some(lowest) = (0..newest).min_by_key(|&index| self.lineage[index].1) {
                self.lineage.remove(lowest);
            }
        }
        count
    }
}

impl fmt::Display for TraceHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, (key, value)) in self.fields.iter().enumerate() {
            if index > 0 {
                f.write_str(";")?;
            }
            write!(f, "{key}={value}")?;
        }
        for (index, (key, count)) in self.lineage.iter().enumerate() {
            let separator = if index == 0 { ";Lineage=" } else { "," };
            write!(f, "{separator}{key}:{count}")?;
        }
        Ok(())
    }
}

/// `key:count[,key:count...]`; Lambda's three-part `n:key:count` entries are read too.
fn parse_lineage(value: &str) -> Vec<(String, u32)> {
    let mut entries: Vec<(String, u32)> = Vec::new();
    for entry in value.split(',') {
        let parts: Vec<&str> = entry.split(':').collect();
        let (key, count) = match parts.as_slice() {
            [key, count] | [_, key, count] => (*key, *count),
            _ => continue,
        };
        let Ok(count) = count.parse::<u32>() else {
            continue;
        };
        if key.is_empty() || key.len() > 16 || !key.bytes().all(|b| b.is_ascii_alphanumeric()) {
            continue;
        }
        match entries.iter().position(|(known, _)| known == key) {
            Some(index) => entries[index].1 = entries[index].1.max(count),
            None if entries.len() < MAX_LINEAGE_ENTRIES => entries.push((key.to_owned(), count)),
            None => {}
        }
    }
    entries
}

/// The key a function's invocations are counted under: a hash of its unqualified ARN (so all
/// of its versions and aliases count together), 8 hex digits as in Lambda's headers.
pub fn lineage_key(function_arn: &str) -> String {
    // FNV-1a: stable across restarts and builds, which std's hasher does not promise.
    let hash = function_arn.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    format!("{hash:08x}")
}

/// Whether an invocation that brings `function`'s count to `count` is stopped.
pub fn stops(function: &Function, count: u32) -> bool {
    count > MAX_RECURSIVE_INVOCATIONS && function.recursive_loop == RecursiveLoop::Terminate
}

impl Engine {
    /// Sets a function's recursive loop detection (`PutFunctionRecursionConfig`).
    pub async fn put_recursion_config(
        &self,
        name: &FunctionName,
        setting: RecursiveLoop,
    ) -> Result<RecursiveLoop, EngineError> {
        let _writer = self.inner.writer.lock().await;
        let function = self.function(name)?;
        let store = Arc::clone(&self.inner.store);
        let owner = function.name.clone();
        blocking(move || store.put_recursive_loop(&owner, setting)).await??;
        let mut updated = (*function).clone();
        updated.recursive_loop = setting;
        self.inner.registry.put(updated);
        Ok(setting)
    }

    /// Recursive loop detection for one invocation of `function` that came with `trace`: the
    /// trace header to hand the function (the caller's, with this invocation counted in its
    /// lineage), or [`EngineError::RecursiveInvocation`] when the loop must stop here.
    pub(crate) fn trace_invocation(
        &self,
        function: &Function,
        trace: Option<&str>,
    ) -> Result<TraceHeader, EngineError> {
        let mut header = TraceHeader::of_caller(trace);
        let key = lineage_key(&self.inner.account.function_arn(&function.name));
        let count = header.record_invocation(&key);
        if stops(function, count) {
            self.inner.metrics.record_recursion_stop(&function.name);
            tracing::warn!(function = %function.name, count, "stopped a recursive loop");
            return Err(EngineError::RecursiveInvocation {
                name: function.name.clone(),
            });
        }
        Ok(header)
    }

    /// Whether an invocation of `function` with `trace` would be stopped as a recursive loop.
    pub(crate) fn stops_recursion(&self, function: &Function, trace: Option<&str>) -> bool {
        let Some(trace) = trace else {
            return false;
        };
        let key = lineage_key(&self.inner.account.function_arn(&function.name));
        let count = TraceHeader::parse(trace).count(&key);
        stops(function, count.saturating_add(1))
    }

    /// Of several traces, the one in which `function` has been invoked the most times.
    pub(crate) fn furthest_trace<'a>(
        &self,
        function: &FunctionName,
        traces: impl Iterator<Item = &'a str>,
    ) -> Option<&'a str> {
        let key = lineage_key(&self.inner.account.function_arn(function));
        traces.max_by_key(|trace| TraceHeader::parse(trace).count(&key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_headers_have_xrays_shape() {
        let text = TraceHeader::fresh().to_string();
        let parts: Vec<&str> = text.split(';').collect();
        assert_eq!(parts.len(), 3, "{text}");
        let root = parts[0].strip_prefix("Root=1-").unwrap();
        let (epoch, id) = root.split_once('-').unwrap();
        assert_eq!(epoch.len(), 8);
        assert_eq!(id.len(), 24);
        assert_eq!(parts[1].strip_prefix("Parent=").unwrap().len(), 16);
        assert_eq!(parts[2], "Sampled=0");
    }

    #[test]
    fn counts_each_function_along_the_chain() {
        let mut trace = TraceHeader::parse("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1");
        assert_eq!(trace.record_invocation("aaaaaaaa"), 1);
        assert_eq!(trace.record_invocation("bbbbbbbb"), 1);
        let forwarded = trace.to_string();
        assert_eq!(
            forwarded,
            "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1;Lineage=aaaaaaaa:1,bbbbbbbb:1"
        );
        let mut next = TraceHeader::parse(&forwarded);
        assert_eq!(next.record_invocation("aaaaaaaa"), 2);
        assert_eq!(next.count("bbbbbbbb"), 1);
        assert_eq!(next.count("cccccccc"), 0);
    }

    #[test]
    fn reads_lambdas_three_part_entries_and_skips_garbage() {
        let trace = TraceHeader::parse(
            "Root=1-5759e988-bd862e3fe1be46a994272793;Lineage=1:a87bd80c:7,zz:x,:3,badentry,a-b:2",
        );
        assert_eq!(trace.count("a87bd80c"), 7);
        assert_eq!(trace.lineage.len(), 1);
    }

    #[test]
    fn a_header_without_root_gets_one_and_keeps_its_lineage() {
        let trace = TraceHeader::parse("Lineage=abcdef01:15;Sampled=1;garbage");
        let text = trace.to_string();
        assert!(text.starts_with("Root=1-"), "{text}");
        assert!(text.contains(";Sampled=1"), "{text}");
        assert!(!text.contains("Sampled=0"), "{text}");
        assert_eq!(trace.count("abcdef01"), 15);
    }

    #[test]
    fn hostile_headers_stay_bounded_and_printable() {
        let mut text = String::from("Root=1-5759e988-bd862e3fe1be46a994272793;Lineage=");
        for index in 0..100 {
            text.push_str(&format!("{index:08x}:{index},"));
        }
        for index in 0..100 {
            text.push_str(&format!(";F{index}={}", "x".repeat(1000)));
        }
        text.push_str(";Evil=a\u{7}b;Ok=1");
        let mut trace = TraceHeader::parse(&text);
        trace.record_invocation("ffffffff");
        let rendered = trace.to_string();
        assert!(rendered.len() < 1024, "{}", rendered.len());
        assert!(rendered.bytes().all(|b| b.is_ascii_graphic()));
        assert_eq!(
            trace.count("ffffffff"),
            1,
            "the function just counted is kept"
        );
    }

    #[test]
    fn lineage_keys_are_stable_and_distinct() {
        let a = lineage_key("arn:aws:lambda:us-east-1:000000000000:function:a");
        assert_eq!(
            a,
            lineage_key("arn:aws:lambda:us-east-1:000000000000:function:a")
        );
        assert_ne!(
            a,
            lineage_key("arn:aws:lambda:us-east-1:000000000000:function:b")
        );
        assert_eq!(a.len(), 8);
    }
}
