//! Every Lambda operation and the route (method, path template, literal query) that selects it.
//!
//! Generated once from the Lambda service model's list of operations; routing is a linear scan
//! over [`ROUTES`], which is fine for ~90 entries and keeps the table readable.

/// A Lambda API operation, named as AWS names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    CreateFunction,
    DeleteFunction,
    GetFunction,
    GetFunctionConfiguration,
    ListFunctions,
    UpdateFunctionCode,
    UpdateFunctionConfiguration,
    Invoke,
    InvokeAsync,
    InvokeWithResponseStream,
    ListVersionsByFunction,
    PublishVersion,
    CreateAlias,
    DeleteAlias,
    GetAlias,
    ListAliases,
    UpdateAlias,
    DeleteLayerVersion,
    GetLayerVersion,
    GetLayerVersionByArn,
    ListLayerVersions,
    ListLayers,
    PublishLayerVersion,
    AddLayerVersionPermission,
    AddPermission,
    DeleteResourcePolicy,
    GetLayerVersionPolicy,
    GetPolicy,
    GetResourcePolicy,
    PutResourcePolicy,
    RemoveLayerVersionPermission,
    RemovePermission,
    CreateEventSourceMapping,
    DeleteEventSourceMapping,
    GetEventSourceMapping,
    ListEventSourceMappings,
    UpdateEventSourceMapping,
    DeleteFunctionEventInvokeConfig,
    GetFunctionEventInvokeConfig,
    ListFunctionEventInvokeConfigs,
    PutFunctionEventInvokeConfig,
    UpdateFunctionEventInvokeConfig,
    DeleteFunctionConcurrency,
    DeleteProvisionedConcurrencyConfig,
    GetFunctionConcurrency,
    GetProvisionedConcurrencyConfig,
    ListProvisionedConcurrencyConfigs,
    PutFunctionConcurrency,
    PutProvisionedConcurrencyConfig,
    CreateFunctionUrlConfig,
    DeleteFunctionUrlConfig,
    GetFunctionUrlConfig,
    ListFunctionUrlConfigs,
    UpdateFunctionUrlConfig,
    CreateCodeSigningConfig,
    DeleteCodeSigningConfig,
    DeleteFunctionCodeSigningConfig,
    GetCodeSigningConfig,
    GetFunctionCodeSigningConfig,
    ListCodeSigningConfigs,
    ListFunctionsByCodeSigningConfig,
    PutFunctionCodeSigningConfig,
    UpdateCodeSigningConfig,
    ListTags,
    TagResource,
    UntagResource,
    GetAccountSettings,
    GetFunctionRecursionConfig,
    PutFunctionRecursionConfig,
    GetRuntimeManagementConfig,
    PutRuntimeManagementConfig,
    CreateCapacityProvider,
    DeleteCapacityProvider,
    GetCapacityProvider,
    GetFunctionScalingConfig,
    ListCapacityProviders,
    ListFunctionVersionsByCapacityProvider,
    PutFunctionScalingConfig,
    UpdateCapacityProvider,
    CheckpointDurableExecution,
    DeleteDurableExecution,
    GetDurableExecution,
    GetDurableExecutionHistory,
    GetDurableExecutionState,
    ListDurableExecutionsByFunction,
    PauseDurableExecution,
    ResumeDurableExecution,
    SendDurableExecutionCallbackFailure,
    SendDurableExecutionCallbackHeartbeat,
    SendDurableExecutionCallbackSuccess,
    StopDurableExecution,
}

impl Operation {
    /// The operation's AWS name, for logs and error messages.
    pub fn name(self) -> &'static str {
        match self {
            Operation::CreateFunction => "CreateFunction",
            Operation::DeleteFunction => "DeleteFunction",
            Operation::GetFunction => "GetFunction",
            Operation::GetFunctionConfiguration => "GetFunctionConfiguration",
            Operation::ListFunctions => "ListFunctions",
            Operation::UpdateFunctionCode => "UpdateFunctionCode",
            Operation::UpdateFunctionConfiguration => "UpdateFunctionConfiguration",
            Operation::Invoke => "Invoke",
            Operation::InvokeAsync => "InvokeAsync",
            Operation::InvokeWithResponseStream => "InvokeWithResponseStream",
            Operation::ListVersionsByFunction => "ListVersionsByFunction",
            Operation::PublishVersion => "PublishVersion",
            Operation::CreateAlias => "CreateAlias",
            Operation::DeleteAlias => "DeleteAlias",
            Operation::GetAlias => "GetAlias",
            Operation::ListAliases => "ListAliases",
            Operation::UpdateAlias => "UpdateAlias",
            Operation::DeleteLayerVersion => "DeleteLayerVersion",
            Operation::GetLayerVersion => "GetLayerVersion",
            Operation::GetLayerVersionByArn => "GetLayerVersionByArn",
            Operation::ListLayerVersions => "ListLayerVersions",
            Operation::ListLayers => "ListLayers",
            Operation::PublishLayerVersion => "PublishLayerVersion",
            Operation::AddLayerVersionPermission => "AddLayerVersionPermission",
            Operation::AddPermission => "AddPermission",
            Operation::DeleteResourcePolicy => "DeleteResourcePolicy",
            Operation::GetLayerVersionPolicy => "GetLayerVersionPolicy",
            Operation::GetPolicy => "GetPolicy",
            Operation::GetResourcePolicy => "GetResourcePolicy",
            Operation::PutResourcePolicy => "PutResourcePolicy",
            Operation::RemoveLayerVersionPermission => "RemoveLayerVersionPermission",
            Operation::RemovePermission => "RemovePermission",
            Operation::CreateEventSourceMapping => "CreateEventSourceMapping",
            Operation::DeleteEventSourceMapping => "DeleteEventSourceMapping",
            Operation::GetEventSourceMapping => "GetEventSourceMapping",
            Operation::ListEventSourceMappings => "ListEventSourceMappings",
            Operation::UpdateEventSourceMapping => "UpdateEventSourceMapping",
            Operation::DeleteFunctionEventInvokeConfig => "DeleteFunctionEventInvokeConfig",
            Operation::GetFunctionEventInvokeConfig => "GetFunctionEventInvokeConfig",
            Operation::ListFunctionEventInvokeConfigs => "ListFunctionEventInvokeConfigs",
            Operation::PutFunctionEventInvokeConfig => "PutFunctionEventInvokeConfig",
            Operation::UpdateFunctionEventInvokeConfig => "UpdateFunctionEventInvokeConfig",
            Operation::DeleteFunctionConcurrency => "DeleteFunctionConcurrency",
            Operation::DeleteProvisionedConcurrencyConfig => "DeleteProvisionedConcurrencyConfig",
            Operation::GetFunctionConcurrency => "GetFunctionConcurrency",
            Operation::GetProvisionedConcurrencyConfig => "GetProvisionedConcurrencyConfig",
            Operation::ListProvisionedConcurrencyConfigs => "ListProvisionedConcurrencyConfigs",
            Operation::PutFunctionConcurrency => "PutFunctionConcurrency",
            Operation::PutProvisionedConcurrencyConfig => "PutProvisionedConcurrencyConfig",
            Operation::CreateFunctionUrlConfig => "CreateFunctionUrlConfig",
            Operation::DeleteFunctionUrlConfig => "DeleteFunctionUrlConfig",
            Operation::GetFunctionUrlConfig => "GetFunctionUrlConfig",
            Operation::ListFunctionUrlConfigs => "ListFunctionUrlConfigs",
            Operation::UpdateFunctionUrlConfig => "UpdateFunctionUrlConfig",
            Operation::CreateCodeSigningConfig => "CreateCodeSigningConfig",
            Operation::DeleteCodeSigningConfig => "DeleteCodeSigningConfig",
            Operation::DeleteFunctionCodeSigningConfig => "DeleteFunctionCodeSigningConfig",
            Operation::GetCodeSigningConfig => "GetCodeSigningConfig",
            Operation::GetFunctionCodeSigningConfig => "GetFunctionCodeSigningConfig",
            Operation::ListCodeSigningConfigs => "ListCodeSigningConfigs",
            Operation::ListFunctionsByCodeSigningConfig => "ListFunctionsByCodeSigningConfig",
            Operation::PutFunctionCodeSigningConfig => "PutFunctionCodeSigningConfig",
            Operation::UpdateCodeSigningConfig => "UpdateCodeSigningConfig",
            Operation::ListTags => "ListTags",
            Operation::TagResource => "TagResource",
            Operation::UntagResource => "UntagResource",
            Operation::GetAccountSettings => "GetAccountSettings",
            Operation::GetFunctionRecursionConfig => "GetFunctionRecursionConfig",
            Operation::PutFunctionRecursionConfig => "PutFunctionRecursionConfig",
            Operation::GetRuntimeManagementConfig => "GetRuntimeManagementConfig",
            Operation::PutRuntimeManagementConfig => "PutRuntimeManagementConfig",
            Operation::CreateCapacityProvider => "CreateCapacityProvider",
            Operation::DeleteCapacityProvider => "DeleteCapacityProvider",
            Operation::GetCapacityProvider => "GetCapacityProvider",
            Operation::GetFunctionScalingConfig => "GetFunctionScalingConfig",
            Operation::ListCapacityProviders => "ListCapacityProviders",
            Operation::ListFunctionVersionsByCapacityProvider => {
                "ListFunctionVersionsByCapacityProvider"
            }
            Operation::PutFunctionScalingConfig => "PutFunctionScalingConfig",
            Operation::UpdateCapacityProvider => "UpdateCapacityProvider",
            Operation::CheckpointDurableExecution => "CheckpointDurableExecution",
            Operation::DeleteDurableExecution => "DeleteDurableExecution",
            Operation::GetDurableExecution => "GetDurableExecution",
            Operation::GetDurableExecutionHistory => "GetDurableExecutionHistory",
            Operation::GetDurableExecutionState => "GetDurableExecutionState",
            Operation::ListDurableExecutionsByFunction => "ListDurableExecutionsByFunction",
            Operation::PauseDurableExecution => "PauseDurableExecution",
            Operation::ResumeDurableExecution => "ResumeDurableExecution",
            Operation::SendDurableExecutionCallbackFailure => "SendDurableExecutionCallbackFailure",
            Operation::SendDurableExecutionCallbackHeartbeat => {
                "SendDurableExecutionCallbackHeartbeat"
            }
            Operation::SendDurableExecutionCallbackSuccess => "SendDurableExecutionCallbackSuccess",
            Operation::StopDurableExecution => "StopDurableExecution",
        }
    }
}

/// One route: the operation is chosen when the method and every literal path segment match
/// (segments in braces are parameters) and, if present, the literal query pair is in the URL.
#[derive(Debug)]
pub struct Route {
    pub operation: Operation,
    pub method: &'static str,
    pub path: &'static [&'static str],
    pub literal_query: Option<(&'static str, &'static str)>,
}

/// All routes. Routes with a literal query come before the same path without one.
pub static ROUTES: &[Route] = &[
    Route {
        operation: Operation::GetLayerVersionByArn,
        method: "GET",
        path: &["2018-10-31", "layers"],
        literal_query: Some(("find", "LayerVersion")),
    },
    Route {
        operation: Operation::ListProvisionedConcurrencyConfigs,
        method: "GET",
        path: &[
            "2019-09-30",
            "functions",
            "{FunctionName}",
            "provisioned-concurrency",
        ],
        literal_query: Some(("List", "ALL")),
    },
    Route {
        operation: Operation::CreateFunction,
        method: "POST",
        path: &["2015-03-31", "functions"],
        literal_query: None,
    },
    Route {
        operation: Operation::DeleteFunction,
        method: "DELETE",
        path: &["2015-03-31", "functions", "{FunctionName}"],
        literal_query: None,
    },
    Route {
        operation: Operation::GetFunction,
        method: "GET",
        path: &["2015-03-31", "functions", "{FunctionName}"],
        literal_query: None,
    },
    Route {
        operation: Operation::GetFunctionConfiguration,
        method: "GET",
        path: &["2015-03-31", "functions", "{FunctionName}", "configuration"],
        literal_query: None,
    },
    Route {
        operation: Operation::ListFunctions,
        method: "GET",
        path: &["2015-03-31", "functions"],
        literal_query: None,
    },
    Route {
        operation: Operation::UpdateFunctionCode,
        method: "PUT",
        path: &["2015-03-31", "functions", "{FunctionName}", "code"],
        literal_query: None,
    },
    Route {
        operation: Operation::UpdateFunctionConfiguration,
        method: "PUT",
        path: &["2015-03-31", "functions", "{FunctionName}", "configuration"],
        literal_query: None,
    },
    Route {
        operation: Operation::Invoke,
        method: "POST",
        path: &["2015-03-31", "functions", "{FunctionName}", "invocations"],
        literal_query: None,
    },
    Route {
        operation: Operation::InvokeAsync,
        method: "POST",
        path: &["2014-11-13", "functions", "{FunctionName}", "invoke-async"],
        literal_query: None,
    },
    Route {
        operation: Operation::InvokeWithResponseStream,
        method: "POST",
        path: &[
            "2021-11-15",
            "functions",
            "{FunctionName}",
            "response-streaming-invocations",
        ],
        literal_query: None,
    },
    Route {
        operation: Operation::ListVersionsByFunction,
        method: "GET",
        path: &["2015-03-31", "functions", "{FunctionName}", "versions"],
        literal_query: None,
    },
    Route {
        operation: Operation::PublishVersion,
        method: "POST",
        path: &["2015-03-31", "functions", "{FunctionName}", "versions"],
        literal_query: None,
    },
    Route {
        operation: Operation::CreateAlias,
        method: "POST",
        path: &["2015-03-31", "functions", "{FunctionName}", "aliases"],
        literal_query: None,
    },
    Route {
        operation: Operation::DeleteAlias,
        method: "DELETE",
        path: &[
            "2015-03-31",
            "functions",
            "{FunctionName}",
            "aliases",
            "{Name}",
        ],
        literal_query: None,
    },
    Route {
        operation: Operation::GetAlias,
        method: "GET",
        path: &[
            "2015-03-31",
            "functions",
            "{FunctionName}",
            "aliases",
            "{Name}",
        ],
        literal_query: None,
    },
    Route {
        operation: Operation::ListAliases,
        method: "GET",
        path: &["2015-03-31", "functions", "{FunctionName}", "aliases"],
        literal_query: None,
    },
    Route {
        operation: Operation::UpdateAlias,
        method: "PUT",
        path: &[
            "2015-03-31",
            "functions",
            "{FunctionName}",
            "aliases",
            "{Name}",
        ],
        literal_query: None,
    },
    Route {
        operation: Operation::DeleteLayerVersion,
        method: "DELETE",
        path: &[
            "2018-10-31",
            "layers",
            "{LayerName}",
            "versions",
            "{VersionNumber}",
        ],
        literal_query: None,
    },
    Route {
        operation: Operation::GetLayerVersion,
        method: "GET",
        path: &[
            "2018-10-31",
            "layers",
            "{LayerName}",
            "versions",
            "{VersionNumber}",
        ],
        literal_query: None,
    },
    Route {
        operation: Operation::ListLayerVersions,
        method: "GET",
        path: &["2018-10-31", "layers", "{LayerName}", "versions"],
        literal_query: None,
    },
    Route {
        operation: Operation::ListLayers,
        method: "GET",
        path: &["2018-10-31", "layers"],
        literal_query: None,
    },
    Route {
        operation: Operation::PublishLayerVersion,
        method: "POST",
        path: &["2018-10-31", "layers", "{LayerName}", "versions"],
        literal_query: None,
    },
    Route {
        operation: Operation::AddLayerVersionPermission,
        method: "POST",
        path: &[
            "2018-10-31",
            "layers",
            "{LayerName}",
            "versions",
            "{VersionNumber}",
            "policy",
        ],
        literal_query: None,
    },
    Route {
        operation: Operation::AddPermission,
        method: "POST",
        path: &["2015-03-31", "functions", "{FunctionName}", "policy"],
        literal_query: None,
    },
    Route {
        operation: Operation::DeleteResourcePolicy,
        method: "DELETE",
        path: &["2026-07-09", "resource-policy", "{ResourceArn}"],
        literal_query: None,
    },
    Route {
        operation: Operation::GetLayerVersionPolicy,
        method: "GET",
        path: &[
            "2018-10-31",
            "layers",
            "{LayerName}",
            "versions",
            "{VersionNumber}",
            "policy",
        ],
        literal_query: None,
    },
    Route {
        operation: Operation::GetPolicy,
        method: "GET",
        path: &["2015-03-31", "functions", "{FunctionName}", "policy"],
        literal_query: None,
    },
    Route {
        operation: Operation::GetResourcePolicy,
        method: "GET",
        path: &["2026-07-09", "resource-policy", "{ResourceArn}"],
        literal_query: None,
    },
    Route {
        operation: Operation::PutResourcePolicy,
        method: "PUT",
        path: &["2026-07-09", "resource-policy", "{ResourceArn}"],
        literal_query: None,
    },
    Route {
        operation: Operation::RemoveLayerVersionPermission,
        method: "DELETE",
        path: &[
            "2018-10-31",
            "layers",
            "{LayerName}",
            "versions",
            "{VersionNumber}",
            "policy",
            "{StatementId}",
        ],
        literal_query: None,
    },
    Route {
        operation: Operation::RemovePermission,
        method: "DELETE",
        path: &[
            "2015-03-31",
            "functions",
            "{FunctionName}",
            "policy",
            "{StatementId}",
        ],
        literal_query: None,
    },
    Route {
        operation: Operation::CreateEventSourceMapping,
        method: "POST",
        path: &["2015-03-31", "event-source-mappings"],
        literal_query: None,
    },
    Route {
        operation: Operation::DeleteEventSourceMapping,
        method: "DELETE",
        path: &["2015-03-31", "event-source-mappings", "{UUID}"],
        literal_query: None,
    },
    Route {
        operation: Operation::GetEventSourceMapping,
        method: "GET",
        path: &["2015-03-31", "event-source-mappings", "{UUID}"],
        literal_query: None,
    },
    Route {
        operation: Operation::ListEventSourceMappings,
        method: "GET",
        path: &["2015-03-31", "event-source-mappings"],
        literal_query: None,
    },
    Route {
        operation: Operation::UpdateEventSourceMapping,
        method: "PUT",
        path: &["2015-03-31", "event-source-mappings", "{UUID}"],
        literal_query: None,
    },
    Route {
        operation: Operation::DeleteFunctionEventInvokeConfig,
        method: "DELETE",
        path: &[
            "2019-09-25",
            "functions",
            "{FunctionName}",
            "event-invoke-config",
        ],
        literal_query: None,
    },
    Route {
        operation: Operation::GetFunctionEventInvokeConfig,
        method: "GET",
        path: &[
            "2019-09-25",
            "functions",
            "{FunctionName}",
            "event-invoke-config",
        ],
        literal_query: None,
    },
    Route {
        operation: Operation::ListFunctionEventInvokeConfigs,
        method: "GET",
        path: &[
            "2019-09-25",
            "functions",
            "{FunctionName}",
            "event-invoke-config",
            "list",
        ],
        literal_query: None,
    },
    Route {
        operation: Operation::PutFunctionEventInvokeConfig,
        method: "PUT",
        path: &[
            "2019-09-25",
            "functions",
            "{FunctionName}",
            "event-invoke-config",
        ],
        literal_query: None,
    },
    Route {
        operation: Operation::UpdateFunctionEventInvokeConfig,
        method: "POST",
        path: &[
            "2019-09-25",
            "functions",
            "{FunctionName}",
            "event-invoke-config",
        ],
        literal_query: None,
    },
    Route {
        operation: Operation::DeleteFunctionConcurrency,
        method: "DELETE",
        path: &["2017-10-31", "functions", "{FunctionName}", "concurrency"],
        literal_query: None,
    },
    Route {
        operation: Operation::DeleteProvisionedConcurrencyConfig,
        method: "DELETE",
        path: &[
            "2019-09-30",
            "functions",
            "{FunctionName}",
            "provisioned-concurrency",
        ],
        literal_query: None,
    },
    Route {
        operation: Operation::GetFunctionConcurrency,
        method: "GET",
        path: &["2019-09-30", "functions", "{FunctionName}", "concurrency"],
        literal_query: None,
    },
    Route {
        operation: Operation::GetProvisionedConcurrencyConfig,
        method: "GET",
        path: &[
            "2019-09-30",
            "functions",
            "{FunctionName}",
            "provisioned-concurrency",
        ],
        literal_query: None,
    },
    Route {
        operation: Operation::PutFunctionConcurrency,
        method: "PUT",
        path: &["2017-10-31", "functions", "{FunctionName}", "concurrency"],
        literal_query: None,
    },
    Route {
        operation: Operation::PutProvisionedConcurrencyConfig,
        method: "PUT",
        path: &[
            "2019-09-30",
            "functions",
            "{FunctionName}",
            "provisioned-concurrency",
        ],
        literal_query: None,
    },
    Route {
        operation: Operation::CreateFunctionUrlConfig,
        method: "POST",
        path: &["2021-10-31", "functions", "{FunctionName}", "url"],
        literal_query: None,
    },
    Route {
        operation: Operation::DeleteFunctionUrlConfig,
        method: "DELETE",
        path: &["2021-10-31", "functions", "{FunctionName}", "url"],
        literal_query: None,
    },
    Route {
        operation: Operation::GetFunctionUrlConfig,
        method: "GET",
        path: &["2021-10-31", "functions", "{FunctionName}", "url"],
        literal_query: None,
    },
    Route {
        operation: Operation::ListFunctionUrlConfigs,
        method: "GET",
        path: &["2021-10-31", "functions", "{FunctionName}", "urls"],
        literal_query: None,
    },
    Route {
        operation: Operation::UpdateFunctionUrlConfig,
        method: "PUT",
        path: &["2021-10-31", "functions", "{FunctionName}", "url"],
        literal_query: None,
    },
    Route {
        operation: Operation::CreateCodeSigningConfig,
        method: "POST",
        path: &["2020-04-22", "code-signing-configs"],
        literal_query: None,
    },
    Route {
        operation: Operation::DeleteCodeSigningConfig,
        method: "DELETE",
        path: &[
            "2020-04-22",
            "code-signing-configs",
            "{CodeSigningConfigArn}",
        ],
        literal_query: None,
    },
    Route {
        operation: Operation::DeleteFunctionCodeSigningConfig,
        method: "DELETE",
        path: &[
            "2020-06-30",
            "functions",
            "{FunctionName}",
            "code-signing-config",
        ],
        literal_query: None,
    },
    Route {
        operation: Operation::GetCodeSigningConfig,
        method: "GET",
        path: &[
            "2020-04-22",
            "code-signing-configs",
            "{CodeSigningConfigArn}",
        ],
        literal_query: None,
    },
    Route {
        operation: Operation::GetFunctionCodeSigningConfig,
        method: "GET",
        path: &[
            "2020-06-30",
            "functions",
            "{FunctionName}",
            "code-signing-config",
        ],
        literal_query: None,
    },
    Route {
        operation: Operation::ListCodeSigningConfigs,
        method: "GET",
        path: &["2020-04-22", "code-signing-configs"],
        literal_query: None,
    },
    Route {
        operation: Operation::ListFunctionsByCodeSigningConfig,
        method: "GET",
        path: &[
            "2020-04-22",
            "code-signing-configs",
            "{CodeSigningConfigArn}",
            "functions",
        ],
        literal_query: None,
    },
    Route {
        operation: Operation::PutFunctionCodeSigningConfig,
        method: "PUT",
        path: &[
            "2020-06-30",
            "functions",
            "{FunctionName}",
            "code-signing-config",
        ],
        literal_query: None,
    },
    Route {
        operation: Operation::UpdateCodeSigningConfig,
        method: "PUT",
        path: &[
            "2020-04-22",
            "code-signing-configs",
            "{CodeSigningConfigArn}",
        ],
        literal_query: None,
    },
    Route {
        operation: Operation::ListTags,
        method: "GET",
        path: &["2017-03-31", "tags", "{Resource}"],
        literal_query: None,
    },
    Route {
        operation: Operation::TagResource,
        method: "POST",
        path: &["2017-03-31", "tags", "{Resource}"],
        literal_query: None,
    },
    Route {
        operation: Operation::UntagResource,
        method: "DELETE",
        path: &["2017-03-31", "tags", "{Resource}"],
        literal_query: None,
    },
    Route {
        operation: Operation::GetAccountSettings,
        method: "GET",
        path: &["2016-08-19", "account-settings"],
        literal_query: None,
    },
    Route {
        operation: Operation::GetFunctionRecursionConfig,
        method: "GET",
        path: &[
            "2024-08-31",
            "functions",
            "{FunctionName}",
            "recursion-config",
        ],
        literal_query: None,
    },
    Route {
        operation: Operation::PutFunctionRecursionConfig,
        method: "PUT",
        path: &[
            "2024-08-31",
            "functions",
            "{FunctionName}",
            "recursion-config",
        ],
        literal_query: None,
    },
    Route {
        operation: Operation::GetRuntimeManagementConfig,
        method: "GET",
        path: &[
            "2021-07-20",
            "functions",
            "{FunctionName}",
            "runtime-management-config",
        ],
        literal_query: None,
    },
    Route {
        operation: Operation::PutRuntimeManagementConfig,
        method: "PUT",
        path: &[
            "2021-07-20",
            "functions",
            "{FunctionName}",
            "runtime-management-config",
        ],
        literal_query: None,
    },
    Route {
        operation: Operation::CreateCapacityProvider,
        method: "POST",
        path: &["2025-11-30", "capacity-providers"],
        literal_query: None,
    },
    Route {
        operation: Operation::DeleteCapacityProvider,
        method: "DELETE",
        path: &["2025-11-30", "capacity-providers", "{CapacityProviderName}"],
        literal_query: None,
    },
    Route {
        operation: Operation::GetCapacityProvider,
        method: "GET",
        path: &["2025-11-30", "capacity-providers", "{CapacityProviderName}"],
        literal_query: None,
    },
    Route {
        operation: Operation::GetFunctionScalingConfig,
        method: "GET",
        path: &[
            "2025-11-30",
            "functions",
            "{FunctionName}",
            "function-scaling-config",
        ],
        literal_query: None,
    },
    Route {
        operation: Operation::ListCapacityProviders,
        method: "GET",
        path: &["2025-11-30", "capacity-providers"],
        literal_query: None,
    },
    Route {
        operation: Operation::ListFunctionVersionsByCapacityProvider,
        method: "GET",
        path: &[
            "2025-11-30",
            "capacity-providers",
            "{CapacityProviderName}",
            "function-versions",
        ],
        literal_query: None,
    },
    Route {
        operation: Operation::PutFunctionScalingConfig,
        method: "PUT",
        path: &[
            "2025-11-30",
            "functions",
            "{FunctionName}",
            "function-scaling-config",
        ],
        literal_query: None,
    },
    Route {
        operation: Operation::UpdateCapacityProvider,
        method: "PUT",
        path: &["2025-11-30", "capacity-providers", "{CapacityProviderName}"],
        literal_query: None,
    },
    Route {
        operation: Operation::CheckpointDurableExecution,
        method: "POST",
        path: &[
            "2025-12-01",
            "durable-executions",
            "{DurableExecutionArn}",
            "checkpoint",
        ],
        literal_query: None,
    },
    Route {
        operation: Operation::DeleteDurableExecution,
        method: "DELETE",
        path: &["2025-12-01", "durable-executions", "{DurableExecutionArn}"],
        literal_query: None,
    },
    Route {
        operation: Operation::GetDurableExecution,
        method: "GET",
        path: &["2025-12-01", "durable-executions", "{DurableExecutionArn}"],
        literal_query: None,
    },
    Route {
        operation: Operation::GetDurableExecutionHistory,
        method: "GET",
        path: &[
            "2025-12-01",
            "durable-executions",
            "{DurableExecutionArn}",
            "history",
        ],
        literal_query: None,
    },
    Route {
        operation: Operation::GetDurableExecutionState,
        method: "GET",
        path: &[
            "2025-12-01",
            "durable-executions",
            "{DurableExecutionArn}",
            "state",
        ],
        literal_query: None,
    },
    Route {
        operation: Operation::ListDurableExecutionsByFunction,
        method: "GET",
        path: &[
            "2025-12-01",
            "functions",
            "{FunctionName}",
            "durable-executions",
        ],
        literal_query: None,
    },
    Route {
        operation: Operation::PauseDurableExecution,
        method: "POST",
        path: &[
            "2025-12-01",
            "durable-executions",
            "{DurableExecutionArn}",
            "pause",
        ],
        literal_query: None,
    },
    Route {
        operation: Operation::ResumeDurableExecution,
        method: "POST",
        path: &[
            "2025-12-01",
            "durable-executions",
            "{DurableExecutionArn}",
            "resume",
        ],
        literal_query: None,
    },
    Route {
        operation: Operation::SendDurableExecutionCallbackFailure,
        method: "POST",
        path: &[
            "2025-12-01",
            "durable-execution-callbacks",
            "{CallbackId}",
            "fail",
        ],
        literal_query: None,
    },
    Route {
        operation: Operation::SendDurableExecutionCallbackHeartbeat,
        method: "POST",
        path: &[
            "2025-12-01",
            "durable-execution-callbacks",
            "{CallbackId}",
            "heartbeat",
        ],
        literal_query: None,
    },
    Route {
        operation: Operation::SendDurableExecutionCallbackSuccess,
        method: "POST",
        path: &[
            "2025-12-01",
            "durable-execution-callbacks",
            "{CallbackId}",
            "succeed",
        ],
        literal_query: None,
    },
    Route {
        operation: Operation::StopDurableExecution,
        method: "POST",
        path: &[
            "2025-12-01",
            "durable-executions",
            "{DurableExecutionArn}",
            "stop",
        ],
        literal_query: None,
    },
];

/// An operation matched from a request, with its path parameters percent-decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    pub operation: Operation,
    pub params: Vec<(&'static str, String)>,
}

impl Matched {
    /// A path parameter by its model name (`FunctionName`, `Resource`, ...).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(param, _)| *param == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Finds the operation for a method, decoded path segments and query pairs.
pub fn route(method: &str, segments: &[String], query: &[(String, String)]) -> Option<Matched> {
    ROUTES.iter().find_map(|route| {
        if route.method != method || route.path.len() != segments.len() {
            return None;
        }
        if let Some((key, value)) = route.literal_query
            && !query.iter().any(|(k, v)| k == key && v == value)
        {
            return None;
        }
        let mut params = Vec::new();
        for (template, segment) in route.path.iter().zip(segments) {
            match template.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                Some(name) => params.push((name, segment.clone())),
                None if template == segment => {}
                None => return None,
            }
        }
        Some(Matched {
            operation: route.operation,
            params,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segments(path: &str) -> Vec<String> {
        path.split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }

    fn check(method: &str, path: &str, query: &[(&str, &str)], expected: Option<Operation>) {
        let query: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let matched = route(method, &segments(path), &query).map(|m| m.operation);
        assert_eq!(matched, expected, "{method} {path}");
    }

    #[test]
    fn routes_follow_the_service_model() {
        use Operation::*;
        check("POST", "/2015-03-31/functions", &[], Some(CreateFunction));
        check("GET", "/2015-03-31/functions", &[], Some(ListFunctions));
        check("GET", "/2015-03-31/functions/f", &[], Some(GetFunction));
        check(
            "DELETE",
            "/2015-03-31/functions/f",
            &[],
            Some(DeleteFunction),
        );
        check(
            "GET",
            "/2015-03-31/functions/f/configuration",
            &[],
            Some(GetFunctionConfiguration),
        );
        check(
            "PUT",
            "/2015-03-31/functions/f/configuration",
            &[],
            Some(UpdateFunctionConfiguration),
        );
        check(
            "PUT",
            "/2015-03-31/functions/f/code",
            &[],
            Some(UpdateFunctionCode),
        );
        check(
            "GET",
            "/2016-08-19/account-settings",
            &[],
            Some(GetAccountSettings),
        );
        check("POST", "/2017-03-31/tags/arn", &[], Some(TagResource));
        check("DELETE", "/2017-03-31/tags/arn", &[], Some(UntagResource));
        check("GET", "/2017-03-31/tags/arn", &[], Some(ListTags));
        check("GET", "/2018-10-31/layers", &[], Some(ListLayers));
        check(
            "GET",
            "/2018-10-31/layers",
            &[("find", "LayerVersion"), ("Arn", "x")],
            Some(GetLayerVersionByArn),
        );
        check(
            "GET",
            "/2019-09-30/functions/f/provisioned-concurrency",
            &[("List", "ALL")],
            Some(ListProvisionedConcurrencyConfigs),
        );
        check(
            "GET",
            "/2019-09-30/functions/f/provisioned-concurrency",
            &[],
            Some(GetProvisionedConcurrencyConfig),
        );
        check("GET", "/2015-03-31/nothing", &[], None);
        check("PATCH", "/2015-03-31/functions", &[], None);
    }

    #[test]
    fn every_operation_has_one_route() {
        let mut seen = std::collections::HashSet::new();
        for route in ROUTES {
            assert!(seen.insert(route.operation), "{:?} twice", route.operation);
        }
        assert_eq!(seen.len(), 91);
    }

    #[test]
    fn path_parameters_are_captured() {
        let matched = route(
            "GET",
            &segments("/2015-03-31/functions/arn:aws:lambda:us-east-1:000000000000:function:f"),
            &[],
        )
        .unwrap();
        assert_eq!(
            matched.param("FunctionName"),
            Some("arn:aws:lambda:us-east-1:000000000000:function:f")
        );
    }
}
