//! GetAccountSettings.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::json;
use crate::ApiState;
use crate::error::ApiError;

/// Lambda's default code storage quota per region (75 GB).
const TOTAL_CODE_SIZE_LIMIT: u64 = 80_530_636_800;

/// `GET /2016-08-19/account-settings`.
pub(crate) fn get_settings(state: &ApiState) -> Result<Response, ApiError> {
    let engine = state.engine();
    let limits = engine.code_limits();
    let usage = engine.usage();
    let concurrency = engine.concurrency_settings();
    Ok(json(
        StatusCode::OK,
        &json!({
            "AccountLimit": {
                "TotalCodeSize": TOTAL_CODE_SIZE_LIMIT,
                "CodeSizeUnzipped": limits.max_unzipped_bytes,
                "CodeSizeZipped": limits.max_zipped_bytes,
                "ConcurrentExecutions": concurrency.limit,
                "UnreservedConcurrentExecutions": concurrency.unreserved,
            },
            "AccountUsage": {
                "TotalCodeSize": usage.total_code_size_bytes,
                "FunctionCount": usage.function_count,
            },
        }),
    ))
}
