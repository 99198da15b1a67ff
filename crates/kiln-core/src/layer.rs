//! Lambda layers: immutable, numbered versions of a zip extracted into `/opt`, and the layer
//! references a function version keeps.
//!
//! As with functions, the serde derives are the store's format (snake_case), pinned by tests
//! in `kiln-store`; the API layer renders Lambda's wire shapes itself.

use serde::{Deserialize, Serialize};

use crate::EpochMillis;
use crate::account::AccountContext;
use crate::function::{Architecture, CodeArtifact};

/// One published version of a layer. Everything but its permission policy is immutable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerVersion {
    /// The layer's name (`[a-zA-Z0-9-_]+`, at most 140 characters).
    pub layer_name: String,
    /// 1, 2, 3... per layer name, never reused, even after deletion.
    pub version: u64,
    pub description: String,
    pub created: EpochMillis,
    /// `None` when the publisher gave none (Lambda then omits the field); an empty list is
    /// echoed as given.
    pub compatible_runtimes: Option<Vec<String>>,
    pub compatible_architectures: Option<Vec<Architecture>>,
    pub license_info: Option<String>,
    pub code: CodeArtifact,
    /// Who else may use this version (`AddLayerVersionPermission`); `None` when no statement
    /// was ever added or the last one was removed.
    pub policy: Option<LayerPolicy>,
}

impl LayerVersion {
    /// Whether this version declares `runtime` compatible (filters of the List operations).
    pub fn supports_runtime(&self, runtime: &str) -> bool {
        self.compatible_runtimes
            .as_ref()
            .is_some_and(|runtimes| runtimes.iter().any(|r| r == runtime))
    }

    /// Whether this version declares `architecture` compatible.
    pub fn supports_architecture(&self, architecture: Architecture) -> bool {
        self.compatible_architectures
            .as_ref()
            .is_some_and(|architectures| architectures.contains(&architecture))
    }
}

/// A layer version's resource policy: its statements in the order they were added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerPolicy {
    /// Changes with every added or removed statement; callers pass it back as a precondition.
    pub revision_id: String,
    pub statements: Vec<LayerStatement>,
}

/// One `lambda:GetLayerVersion` grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerStatement {
    pub statement_id: String,
    /// `*` or an account id.
    pub principal: String,
    pub action: String,
    /// Restricts a `*` grant to one AWS Organization.
    pub organization_id: Option<String>,
}

/// A layer version a function version uses, with the package it had when the function was
/// configured: the function keeps working (and keeps its layers) after the layer version is
/// deleted, as on Lambda.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionLayer {
    pub layer_name: String,
    pub version: u64,
    pub code: CodeArtifact,
}

impl AccountContext {
    /// `arn:aws:lambda:REGION:ACCOUNT:layer:NAME`.
    pub fn layer_arn(&self, layer_name: &str) -> String {
        format!(
            "arn:{}:lambda:{}:{}:layer:{layer_name}",
            self.partition, self.region, self.account_id
        )
    }

    /// `arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION`.
    pub fn layer_version_arn(&self, layer_name: &str, version: u64) -> String {
        format!("{}:{version}", self.layer_arn(layer_name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_arns_carry_partition_region_and_account() {
        let account = AccountContext {
            partition: "aws".into(),
            account_id: "000000000000".into(),
            region: "us-east-1".into(),
        };
        assert_eq!(
            account.layer_version_arn("deps", 3),
            "arn:aws:lambda:us-east-1:000000000000:layer:deps:3"
        );
    }
}
