//! The configuration fields shared by `CreateFunction` and `UpdateFunctionConfiguration`:
//! their wire form, their validation, and their conversion into the domain.

use kiln_core::{
    Architecture, DeadLetterConfig, FunctionName, LogFormat, LoggingConfig, TracingMode, VpcConfig,
};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::runtimes;
use crate::error::{ApiError, ErrorCode};
use crate::validate::{self, Violations};

/// Lambda's largest memory size for functions without accelerators.
pub(crate) const MAX_MEMORY_MB: i64 = 10_240;
/// Lambda's documented timeout quota, in seconds.
pub(crate) const MAX_TIMEOUT_SECONDS: i64 = 900;
/// Largest `/tmp`, in MB.
pub(crate) const MAX_EPHEMERAL_MB: i64 = 10_240;
/// Environment variables, measured as compact JSON, may not exceed this many bytes.
const MAX_ENVIRONMENT_BYTES: usize = 4096;

/// Variables Lambda sets itself; functions may not set them.
const RESERVED_ENVIRONMENT_KEYS: &[&str] = &[
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
];

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct EnvironmentIn {
    pub variables: Option<Map<String, Value>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct TracingConfigIn {
    pub mode: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct EphemeralStorageIn {
    pub size: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct LoggingConfigIn {
    pub log_format: Option<String>,
    pub application_log_level: Option<String>,
    pub system_log_level: Option<String>,
    pub log_group: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct VpcConfigIn {
    pub subnet_ids: Option<Vec<String>>,
    pub security_group_ids: Option<Vec<String>>,
    pub ipv6_allowed_for_dual_stack: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DeadLetterConfigIn {
    pub target_arn: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct SnapStartIn {
    pub apply_on: Option<String>,
}

/// Fields both `CreateFunction` and `UpdateFunctionConfiguration` carry.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ConfigFields {
    pub description: Option<String>,
    pub runtime: Option<String>,
    pub handler: Option<String>,
    pub role: Option<String>,
    pub timeout: Option<i64>,
    pub memory_size: Option<i64>,
    #[serde(default, deserialize_with = "crate::wire::optional_object")]
    pub environment: Option<EnvironmentIn>,
    #[serde(default, deserialize_with = "crate::wire::optional_object")]
    pub ephemeral_storage: Option<EphemeralStorageIn>,
    #[serde(default, deserialize_with = "crate::wire::optional_object")]
    pub tracing_config: Option<TracingConfigIn>,
    #[serde(default, deserialize_with = "crate::wire::optional_object")]
    pub logging_config: Option<LoggingConfigIn>,
    #[serde(rename = "KMSKeyArn")]
    pub kms_key_arn: Option<String>,
    #[serde(default, deserialize_with = "crate::wire::optional_object")]
    pub vpc_config: Option<VpcConfigIn>,
    #[serde(default, deserialize_with = "crate::wire::optional_object")]
    pub dead_letter_config: Option<DeadLetterConfigIn>,
    pub layers: Option<Vec<String>>,
    pub file_system_configs: Option<Vec<Value>>,
    pub image_config: Option<Value>,
    #[serde(default, deserialize_with = "crate::wire::optional_object")]
    pub snap_start: Option<SnapStartIn>,
    pub tenancy_config: Option<Value>,
    pub capacity_provider_config: Option<Value>,
    pub durable_config: Option<Value>,
    pub runtime_config: Option<Value>,
    pub accelerator_config: Option<Value>,
}

/// The model constraints (`ValidationException` territory) of the shared fields.
pub(crate) fn check_model_constraints(fields: &ConfigFields, violations: &mut Violations) {
    if let Some(description) = &fields.description {
        violations.length(description, "description", 0, 256);
    }
    if let Some(handler) = &fields.handler {
        if handler.chars().count() > 128 {
            violations.add(handler, "handler", validate::max_length(128));
        } else {
            violations.pattern(handler, "handler", &validate::HANDLER);
        }
    }
    if let Some(role) = &fields.role {
        violations.pattern(role, "role", &validate::ROLE_ARN);
    }
    if let Some(timeout) = fields.timeout {
        violations.range(timeout, "timeout", 1, MAX_TIMEOUT_SECONDS);
    }
    if let Some(memory) = fields.memory_size {
        violations.range(memory, "memorySize", 128, MAX_MEMORY_MB);
    }
    if let Some(storage) = &fields.ephemeral_storage {
        match storage.size {
            Some(size) => violations.range(size, "ephemeralStorage.size", 512, MAX_EPHEMERAL_MB),
            None => violations.add_null("ephemeralStorage.size"),
        }
    }
    if let Some(mode) = fields
        .tracing_config
        .as_ref()
        .and_then(|t| t.mode.as_deref())
    {
        violations.one_of(mode, "tracingConfig.mode", &["Active", "PassThrough"]);
    }
    if let Some(logging) = &fields.logging_config {
        if let Some(format) = &logging.log_format {
            violations.one_of(format, "loggingConfig.logFormat", &["JSON", "Text"]);
        }
        if let Some(level) = &logging.application_log_level {
            violations.one_of(
                level,
                "loggingConfig.applicationLogLevel",
                &["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"],
            );
        }
        if let Some(level) = &logging.system_log_level {
            violations.one_of(
                level,
                "loggingConfig.systemLogLevel",
                &["DEBUG", "INFO", "WARN"],
            );
        }
        if let Some(group) = &logging.log_group {
            violations.length(group, "loggingConfig.logGroup", 1, 512);
            violations.pattern(group, "loggingConfig.logGroup", &validate::LOG_GROUP);
        }
    }
    if let Some(arn) = &fields.kms_key_arn {
        violations.pattern(arn, "kMSKeyArn", &validate::KMS_KEY_ARN);
    }
    if let Some(variables) = fields
        .environment
        .as_ref()
        .and_then(|e| e.variables.as_ref())
        && variables
            .keys()
            .any(|key| !validate::ENV_VAR_NAME.matches(key))
    {
        violations.add_redacted(
            "environment.variables",
            format!(
                "Map keys must satisfy constraint: [{}]",
                validate::ENV_VAR_NAME.constraint()
            ),
        );
    }
    if let Some(vpc) = &fields.vpc_config {
        check_id_list(
            vpc.subnet_ids.as_deref(),
            "vpcConfig.subnetIds",
            16,
            &validate::SUBNET_ID,
            violations,
        );
        check_id_list(
            vpc.security_group_ids.as_deref(),
            "vpcConfig.securityGroupIds",
            5,
            &validate::SECURITY_GROUP_ID,
            violations,
        );
    }
    if let Some(layers) = &fields.layers {
        super::layers::check_function_layers(layers, violations);
    }
    if let Some(snap_start) = &fields.snap_start
        && let Some(apply_on) = &snap_start.apply_on
    {
        violations.one_of(
            apply_on,
            "snapStart.applyOn",
            &["PublishedVersions", "None"],
        );
    }
}

/// Checks a list of VPC resource ids: at most `max_items`, each matching `pattern`.
fn check_id_list(
    ids: Option<&[String]>,
    field: &str,
    max_items: usize,
    pattern: &validate::Pattern,
    violations: &mut Violations,
) {
    let Some(ids) = ids else { return };
    let listed = format!("[{}]", ids.join(", "));
    if ids.len() > max_items {
        violations.add(&listed, field, validate::max_length(max_items));
    }
    if ids.iter().any(|id| id.len() > 1024 || !pattern.matches(id)) {
        violations.add(
            &listed,
            field,
            format!(
                "Member must satisfy constraint: [{}, {}, {}]",
                validate::max_length(1024),
                validate::min_length(0),
                pattern.constraint()
            ),
        );
    }
}

/// Checks `Architectures` (exactly one of `x86_64`, `arm64`).
pub(crate) fn check_architectures(architectures: &[String], violations: &mut Violations) {
    let listed = format!("[{}]", architectures.join(", "));
    if architectures.len() > 1 {
        violations.add(listed, "architectures", validate::max_length(1));
    } else if architectures.is_empty() {
        violations.add(listed, "architectures", validate::min_length(1));
    } else if architectures.iter().any(|a| a != "x86_64" && a != "arm64") {
        violations.add(
            listed,
            "architectures",
            "Member must satisfy constraint: [Member must satisfy enum value set: [x86_64, arm64], Member must not be null]",
        );
    }
}

/// The architecture of a list that passed [`check_architectures`].
pub(crate) fn architecture(architectures: &[String]) -> Architecture {
    match architectures.first().map(String::as_str) {
        Some("arm64") => Architecture::Arm64,
        _ => Architecture::X86_64,
    }
}

/// Semantic checks (`InvalidParameterValueException` territory) on the shared fields, for
/// features Kiln refuses rather than silently ignores.
pub(crate) fn check_supported(fields: &ConfigFields) -> Result<(), ApiError> {
    if let Some(runtime) = &fields.runtime {
        runtimes::check(runtime)?;
    }
    let unsupported = [
        (
            fields
                .file_system_configs
                .as_ref()
                .is_some_and(|c| !c.is_empty()),
            "FileSystemConfigs (Amazon EFS mounts)",
        ),
        (
            fields.image_config.is_some(),
            "ImageConfig (container images)",
        ),
        (fields.tenancy_config.is_some(), "TenancyConfig"),
        (
            fields.capacity_provider_config.is_some(),
            "CapacityProviderConfig (Lambda Managed Instances)",
        ),
        (
            fields.durable_config.is_some(),
            "DurableConfig (durable functions)",
        ),
        (fields.runtime_config.is_some(), "RuntimeConfig"),
        (fields.accelerator_config.is_some(), "AcceleratorConfig"),
        (
            fields
                .snap_start
                .as_ref()
                .and_then(|s| s.apply_on.as_deref())
                == Some("PublishedVersions"),
            "SnapStart",
        ),
    ];
    if let Some((_, feature)) = unsupported.iter().find(|(present, _)| *present) {
        return Err(ApiError::invalid_parameter(format!(
            "Kiln does not support {feature}; see docs/compat.md."
        )));
    }
    Ok(())
}

/// The environment variables as the domain keeps them, after Lambda's semantic checks:
/// string values, no reserved keys, at most 4 KB as compact JSON.
pub(crate) fn environment(environment: &EnvironmentIn) -> Result<Vec<(String, String)>, ApiError> {
    let Some(variables) = &environment.variables else {
        return Ok(Vec::new());
    };
    let mut pairs = Vec::with_capacity(variables.len());
    for (key, value) in variables {
        let Value::String(value) = value else {
            return Err(ApiError::invalid_content(format!(
                "Could not parse request body into json: Could not parse payload into json: \
                 the value of environment variable {key} is not a string"
            )));
        };
        pairs.push((key.clone(), value.clone()));
    }
    let reserved: Vec<&str> = pairs
        .iter()
        .map(|(key, _)| key.as_str())
        .filter(|key| RESERVED_ENVIRONMENT_KEYS.contains(key))
        .collect();
    if !reserved.is_empty() {
        return Err(ApiError::invalid_parameter(format!(
            "Lambda was unable to configure your environment variables because the environment \
             variables you have provided contains reserved keys that are currently not supported \
             for modification. Reserved keys used in this request: {}",
            reserved.join(", ")
        )));
    }
    let measured = Value::Object(variables.clone()).to_string();
    if measured.len() > MAX_ENVIRONMENT_BYTES {
        return Err(ApiError::invalid_parameter(format!(
            "Lambda was unable to configure your environment variables because the environment \
             variables you have provided exceeded the 4KB limit. String measured: {measured}"
        )));
    }
    Ok(pairs)
}

/// The tracing mode of a field that passed validation.
pub(crate) fn tracing_mode(config: &TracingConfigIn) -> Option<TracingMode> {
    match config.mode.as_deref() {
        Some("Active") => Some(TracingMode::Active),
        Some("PassThrough") => Some(TracingMode::PassThrough),
        _ => None,
    }
}

/// Applies a `LoggingConfig` request to the current (or default) logging settings. Fields
/// not given keep their value; JSON logs default both levels to `INFO`, text logs have none.
pub(crate) fn logging(
    requested: &LoggingConfigIn,
    current: Option<&LoggingConfig>,
    name: &FunctionName,
) -> LoggingConfig {
    let mut logging = current
        .cloned()
        .unwrap_or_else(|| LoggingConfig::default_for(name));
    match requested.log_format.as_deref() {
        Some("JSON") => logging.log_format = LogFormat::Json,
        Some("Text") => logging.log_format = LogFormat::Text,
        _ => {}
    }
    if let Some(group) = &requested.log_group {
        logging.log_group.clone_from(group);
    }
    if let Some(level) = &requested.application_log_level {
        logging.application_log_level = Some(level.clone());
    }
    if let Some(level) = &requested.system_log_level {
        logging.system_log_level = Some(level.clone());
    }
    match logging.log_format {
        LogFormat::Json => {
            logging
                .application_log_level
                .get_or_insert_with(|| "INFO".to_owned());
            logging
                .system_log_level
                .get_or_insert_with(|| "INFO".to_owned());
        }
        LogFormat::Text => {
            logging.application_log_level = None;
            logging.system_log_level = None;
        }
    }
    logging
}

/// The VPC settings, or `None` when the request clears them (no subnets and no groups).
pub(crate) fn vpc(config: &VpcConfigIn) -> Option<VpcConfig> {
    let vpc = VpcConfig {
        subnet_ids: config.subnet_ids.clone().unwrap_or_default(),
        security_group_ids: config.security_group_ids.clone().unwrap_or_default(),
        ipv6_allowed_for_dual_stack: config.ipv6_allowed_for_dual_stack.unwrap_or(false),
    };
    (!vpc.subnet_ids.is_empty() || !vpc.security_group_ids.is_empty()).then_some(vpc)
}

/// The dead-letter target, or `None` when the request clears it (empty `TargetArn`).
pub(crate) fn dead_letter(
    config: &DeadLetterConfigIn,
    violations: &mut Violations,
) -> Option<DeadLetterConfig> {
    let target = config.target_arn.as_deref().unwrap_or_default();
    if target.is_empty() {
        return None;
    }
    violations.pattern(target, "deadLetterConfig.targetArn", &validate::KMS_KEY_ARN);
    Some(DeadLetterConfig {
        target_arn: target.to_owned(),
    })
}

/// `InvalidParameterValueException` for a rejected combination.
/// The bytes of a base64 `ZipFile` (a function's code or a layer's content), or AWS's error.
pub(crate) fn decode_zip_file(encoded: &str) -> Result<Vec<u8>, ApiError> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(encoded.as_bytes())
        .map_err(|error| {
            ApiError::invalid_content(format!(
                "Could not parse request body into json: Could not parse payload into json: \
                 ZipFile is not valid base64: {error}"
            ))
        })
}

pub(crate) fn refuse(message: &str) -> ApiError {
    ApiError::new(ErrorCode::InvalidParameterValue, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(json: &str) -> EnvironmentIn {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn environment_keeps_order_and_measures_compact_json() {
        let pairs = environment(&env(r#"{"Variables":{"B":"2","A":"1"}}"#)).unwrap();
        assert_eq!(
            pairs,
            vec![("B".into(), "2".into()), ("A".into(), "1".into())]
        );

        // {"LARGE_VAR":"x..."} is 16 bytes of JSON around the value.
        let at_limit = format!(
            r#"{{"Variables":{{"LARGE_VAR":"{}"}}}}"#,
            "x".repeat(4096 - 16)
        );
        assert!(environment(&env(&at_limit)).is_ok());
        let over = format!(
            r#"{{"Variables":{{"LARGE_VAR":"{}"}}}}"#,
            "x".repeat(4097 - 16)
        );
        let error = environment(&env(&over)).unwrap_err();
        assert!(
            error
                .message
                .contains("exceeded the 4KB limit. String measured: {\"LARGE_VAR\":\"xxx")
        );
    }

    #[test]
    fn reserved_keys_are_refused() {
        let error = environment(&env(r#"{"Variables":{"AWS_REGION":"x","OK":"y"}}"#)).unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidParameterValue);
        assert!(
            error
                .message
                .ends_with("Reserved keys used in this request: AWS_REGION")
        );
    }

    #[test]
    fn invalid_keys_are_model_violations() {
        let fields: ConfigFields =
            serde_json::from_str(r#"{"Environment":{"Variables":{"1BAD":"x"}}}"#).unwrap();
        let mut violations = Violations::default();
        check_model_constraints(&fields, &mut violations);
        let error = violations.finish().unwrap_err();
        assert_eq!(
            error.message,
            "1 validation error detected: Value at 'environment.variables' failed to satisfy \
             constraint: Map keys must satisfy constraint: [Member must satisfy regular \
             expression pattern: [a-zA-Z]([a-zA-Z0-9_])+]"
        );
    }

    #[test]
    fn architectures_messages_match_aws() {
        let check = |list: &[&str]| {
            let list: Vec<String> = list.iter().map(|s| (*s).to_owned()).collect();
            let mut violations = Violations::default();
            check_architectures(&list, &mut violations);
            violations.finish().err().map(|e| e.message)
        };
        assert_eq!(check(&["arm64"]), None);
        assert_eq!(
            check(&["x86_64", "arm64"]).unwrap(),
            "1 validation error detected: Value '[x86_64, arm64]' at 'architectures' failed to \
             satisfy constraint: Member must have length less than or equal to 1"
        );
        assert_eq!(
            check(&["X86_64"]).unwrap(),
            "1 validation error detected: Value '[X86_64]' at 'architectures' failed to satisfy \
             constraint: Member must satisfy constraint: [Member must satisfy enum value set: \
             [x86_64, arm64], Member must not be null]"
        );
    }

    #[test]
    fn vpc_ids_follow_their_patterns() {
        let fields: ConfigFields = serde_json::from_str(
            r#"{"VpcConfig":{"SubnetIds":["subnet-0abc","invalid-subnet-id"],"SecurityGroupIds":["sg-0AbC"]}}"#,
        )
        .unwrap();
        let mut violations = Violations::default();
        check_model_constraints(&fields, &mut violations);
        assert_eq!(
            violations.finish().unwrap_err().message,
            "1 validation error detected: Value '[subnet-0abc, invalid-subnet-id]' at \
             'vpcConfig.subnetIds' failed to satisfy constraint: Member must satisfy constraint: \
             [Member must have length less than or equal to 1024, Member must have length greater \
             than or equal to 0, Member must satisfy regular expression pattern: subnet-[0-9a-z]*]"
        );
    }

    #[test]
    fn json_logging_defaults_levels() {
        let name = FunctionName::parse("f").unwrap();
        let logging = logging(
            &LoggingConfigIn {
                log_format: Some("JSON".into()),
                ..LoggingConfigIn::default()
            },
            None,
            &name,
        );
        assert_eq!(logging.application_log_level.as_deref(), Some("INFO"));
        assert_eq!(logging.log_group, "/aws/lambda/f");
    }
}
