//! Rendering domain functions as Lambda's `FunctionConfiguration` and `GetFunction` JSON.

use kiln_core::{
    AccountContext, Alias, Function, FunctionVersion, LogFormat, TracingMode, VersionId,
};
use serde_json::{Map, Value, json};

use crate::wire::lambda_timestamp;

/// How much of a configuration to show: `ListFunctions` omits the lifecycle fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum View {
    Full,
    Listing,
}

/// Lambda's `FunctionConfiguration` for one version. `qualified` puts the version into
/// `FunctionArn`, as Lambda does when the caller named a version.
pub(crate) fn configuration(
    account: &AccountContext,
    function: &Function,
    version: &FunctionVersion,
    qualified: bool,
    view: View,
) -> Value {
    let version_id = version.version_id();
    let arn = if qualified || version_id != VersionId::Latest {
        format!(
            "{}:{}",
            account.function_arn(&function.name),
            version_id.as_lambda_string()
        )
    } else {
        account.function_arn(&function.name)
    };
    configuration_as(account, function, version, arn, view)
}

/// Lambda's `FunctionConfiguration` for one version, under the `FunctionArn` the caller used
/// (an alias's ARN when it named an alias; unqualified for a version just published by
/// `CreateFunction`).
pub(crate) fn configuration_as(
    account: &AccountContext,
    function: &Function,
    version: &FunctionVersion,
    arn: String,
    view: View,
) -> Value {
    let config = &version.config;
    let version_id = version.version_id();
    let mut out = Map::new();
    out.insert("FunctionName".into(), json!(function.name.as_str()));
    out.insert("FunctionArn".into(), json!(arn));
    out.insert("Runtime".into(), json!(config.runtime));
    out.insert("Role".into(), json!(config.role));
    out.insert("Handler".into(), json!(config.handler));
    out.insert("CodeSize".into(), json!(version.code.size_bytes));
    out.insert("Description".into(), json!(config.description));
    out.insert("Timeout".into(), json!(config.timeout_seconds));
    out.insert("MemorySize".into(), json!(config.memory_size_mb));
    out.insert(
        "LastModified".into(),
        json!(lambda_timestamp(version.last_modified)),
    );
    out.insert("CodeSha256".into(), json!(version.code.sha256_base64));
    out.insert("Version".into(), json!(version_id.as_lambda_string()));
    if let Some(vpc) = &config.vpc {
        out.insert(
            "VpcConfig".into(),
            json!({
                "SubnetIds": vpc.subnet_ids,
                "SecurityGroupIds": vpc.security_group_ids,
                "VpcId": "",
                "Ipv6AllowedForDualStack": vpc.ipv6_allowed_for_dual_stack,
            }),
        );
    }
    if let Some(dead_letter) = &config.dead_letter {
        out.insert(
            "DeadLetterConfig".into(),
            json!({"TargetArn": dead_letter.target_arn}),
        );
    }
    if let Some(environment) = &config.environment {
        let variables: Map<String, Value> = environment
            .iter()
            .map(|(key, value)| (key.clone(), json!(value)))
            .collect();
        out.insert("Environment".into(), json!({ "Variables": variables }));
    }
    if !config.layers.is_empty() {
        out.insert(
            "Layers".into(),
            super::layers::render_function_layers(account, &config.layers),
        );
    }
    if let Some(kms) = &config.kms_key_arn {
        out.insert("KMSKeyArn".into(), json!(kms));
    }
    out.insert(
        "TracingConfig".into(),
        json!({"Mode": match config.tracing_mode {
            TracingMode::Active => "Active",
            TracingMode::PassThrough => "PassThrough",
        }}),
    );
    out.insert("RevisionId".into(), json!(version.revision_id));
    if view == View::Full {
        insert_lifecycle(&mut out, version);
    }
    out.insert("PackageType".into(), json!("Zip"));
    out.insert(
        "Architectures".into(),
        json!([config.architecture.as_str()]),
    );
    out.insert(
        "EphemeralStorage".into(),
        json!({"Size": config.ephemeral_storage_mb}),
    );
    out.insert(
        "SnapStart".into(),
        json!({"ApplyOn": "None", "OptimizationStatus": "Off"}),
    );
    if view == View::Full {
        out.insert(
            "RuntimeVersionConfig".into(),
            json!({"RuntimeVersionArn": kiln_engine::execution::runtime_version_arn(account, &config.runtime)}),
        );
    }
    let mut logging = Map::new();
    logging.insert(
        "LogFormat".into(),
        json!(match config.logging.log_format {
            LogFormat::Json => "JSON",
            LogFormat::Text => "Text",
        }),
    );
    if let Some(level) = &config.logging.application_log_level {
        logging.insert("ApplicationLogLevel".into(), json!(level));
    }
    if let Some(level) = &config.logging.system_log_level {
        logging.insert("SystemLogLevel".into(), json!(level));
    }
    logging.insert("LogGroup".into(), json!(config.logging.log_group));
    out.insert("LoggingConfig".into(), Value::Object(logging));
    Value::Object(out)
}

fn insert_lifecycle(out: &mut Map<String, Value>, version: &FunctionVersion) {
    out.insert("State".into(), json!(version.state.state.as_str()));
    if let Some(reason) = &version.state.reason {
        out.insert("StateReason".into(), json!(reason));
    }
    if let Some(code) = &version.state.reason_code {
        out.insert("StateReasonCode".into(), json!(code));
    }
    // Lambda reports no update status until the function's first deployment has finished;
    // the engine leaves `last_update` empty until then.
    if let Some(update) = &version.last_update {
        out.insert("LastUpdateStatus".into(), json!(update.status.as_str()));
        if let Some(reason) = &update.reason {
            out.insert("LastUpdateStatusReason".into(), json!(reason));
        }
        if let Some(code) = &update.reason_code {
            out.insert("LastUpdateStatusReasonCode".into(), json!(code));
        }
    }
}

/// Lambda's `GetFunction` response.
pub(crate) fn get_function(
    account: &AccountContext,
    function: &Function,
    version: &FunctionVersion,
    arn: String,
    host: &str,
) -> Value {
    let mut out = Map::new();
    out.insert(
        "Configuration".into(),
        configuration_as(account, function, version, arn, View::Full),
    );
    out.insert(
        "Code".into(),
        json!({
            "RepositoryType": "S3",
            "Location": code_location(host, &version.code.sha256_hex),
        }),
    );
    if !function.tags.is_empty() {
        out.insert("Tags".into(), json!(function.tags));
    }
    if let Some(reserved) = function.reserved_concurrency {
        out.insert(
            "Concurrency".into(),
            json!({ "ReservedConcurrentExecutions": reserved }),
        );
    }
    Value::Object(out)
}

/// Lambda's `AliasConfiguration`.
pub(crate) fn alias(account: &AccountContext, function: &Function, alias: &Alias) -> Value {
    let mut out = Map::new();
    out.insert(
        "AliasArn".into(),
        json!(format!(
            "{}:{}",
            account.function_arn(&function.name),
            alias.name
        )),
    );
    out.insert("Name".into(), json!(alias.name));
    out.insert(
        "FunctionVersion".into(),
        json!(alias.version_id().as_lambda_string()),
    );
    out.insert("Description".into(), json!(alias.description));
    if let Some(routing) = alias.routing {
        out.insert(
            "RoutingConfig".into(),
            json!({"AdditionalVersionWeights": {routing.version.to_string(): routing.weight}}),
        );
    }
    out.insert("RevisionId".into(), json!(alias.revision_id));
    Value::Object(out)
}

/// Where Kiln serves a code package for download (`Code.Location`).
pub(crate) fn code_location(host: &str, sha256_hex: &str) -> String {
    format!("http://{host}/_kiln/code/{sha256_hex}.zip")
}
