//! The account and region this Kiln instance impersonates, and the ARNs built from them.

use crate::names::{FunctionName, Qualifier};

/// The AWS partition, account and region that every ARN Kiln issues carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountContext {
    /// `aws` unless configured otherwise.
    pub partition: String,
    /// Twelve digits; `000000000000` by default, as local AWS emulators use.
    pub account_id: String,
    /// `us-east-1` by default.
    pub region: String,
}

impl AccountContext {
    /// `arn:aws:lambda:REGION:ACCOUNT:function:NAME`.
    pub fn function_arn(&self, name: &FunctionName) -> String {
        format!(
            "arn:{}:lambda:{}:{}:function:{}",
            self.partition, self.region, self.account_id, name
        )
    }

    /// The function ARN followed by `:QUALIFIER`.
    pub fn qualified_function_arn(&self, name: &FunctionName, qualifier: &Qualifier) -> String {
        format!("{}:{}", self.function_arn(name), qualifier)
    }

    /// `arn:aws:lambda:REGION:ACCOUNT:event-source-mapping:UUID`.
    pub fn event_source_mapping_arn(&self, uuid: &str) -> String {
        format!(
            "arn:{}:lambda:{}:{}:event-source-mapping:{uuid}",
            self.partition, self.region, self.account_id
        )
    }

    /// The ARN of a role in this account.
    pub fn role_arn(&self, role_name: &str) -> String {
        format!(
            "arn:{}:iam::{}:role/{}",
            self.partition, self.account_id, role_name
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::VersionId;

    #[test]
    fn arns_carry_partition_region_and_account() {
        let account = AccountContext {
            partition: "aws".into(),
            account_id: "000000000000".into(),
            region: "us-east-1".into(),
        };
        let name = FunctionName::parse("f").expect("valid name");
        assert_eq!(
            account.function_arn(&name),
            "arn:aws:lambda:us-east-1:000000000000:function:f"
        );
        assert_eq!(
            account.qualified_function_arn(&name, &Qualifier::Version(VersionId::Latest)),
            "arn:aws:lambda:us-east-1:000000000000:function:f:$LATEST"
        );
    }
}
