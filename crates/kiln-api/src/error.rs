//! API errors and their AWS wire form.
//!
//! Every error leaves as Lambda's restJson1 error: the HTTP status of the error shape, the
//! `x-amzn-ErrorType` header carrying the code (botocore reads the code from it), and a JSON
//! body with `Type` and the message under the key that shape uses (`message` or `Message`,
//! per the service model). The `x-amzn-RequestId` header is added for every response by the
//! dispatcher.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The error codes Kiln returns, each with its status and body form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    ResourceNotFound,
    ResourceConflict,
    /// A resource in a transitional state (an event source mapping being changed).
    ResourceInUse,
    InvalidParameterValue,
    InvalidRequestContent,
    /// Unmodelled constraint violations (`max`, `pattern`, `enum`), which AWS reports this way.
    Validation,
    /// Request body over the operation's limit.
    RequestEntityTooLarge,
    /// An invoke payload over the limit (the modelled 413 of Invoke).
    RequestTooLarge,
    UnsupportedMediaType,
    PreconditionFailed,
    /// A throttled invocation (with Lambda's `Reason`).
    TooManyRequests,
    ProvisionedConcurrencyConfigNotFound,
    /// An invocation stopped by recursive loop detection.
    RecursiveInvocation,
    AccessDenied,
    ServiceException,
    /// An operation Kiln routes but does not implement.
    NotImplemented,
    /// A path that is no Lambda operation.
    UnknownOperation,
}

/// Which key the message uses in the body.
enum MessageKey {
    /// `{"Type":"User","message":...}`
    Lower,
    /// `{"Type":"User","Message":...}`
    Upper,
    /// `{"message":...}`, no `Type` (unmodelled shapes).
    Bare,
}

impl ErrorCode {
    /// The code botocore and the SDKs surface.
    pub fn aws_code(self) -> &'static str {
        match self {
            ErrorCode::ResourceNotFound => "ResourceNotFoundException",
            ErrorCode::ResourceConflict => "ResourceConflictException",
            ErrorCode::ResourceInUse => "ResourceInUseException",
            ErrorCode::InvalidParameterValue => "InvalidParameterValueException",
            ErrorCode::InvalidRequestContent => "InvalidRequestContentException",
            ErrorCode::Validation => "ValidationException",
            ErrorCode::RequestEntityTooLarge => "RequestEntityTooLargeException",
            ErrorCode::RequestTooLarge => "RequestTooLargeException",
            ErrorCode::UnsupportedMediaType => "UnsupportedMediaTypeException",
            ErrorCode::PreconditionFailed => "PreconditionFailedException",
            ErrorCode::TooManyRequests => "TooManyRequestsException",
            ErrorCode::ProvisionedConcurrencyConfigNotFound => {
                "ProvisionedConcurrencyConfigNotFoundException"
            }
            ErrorCode::RecursiveInvocation => "RecursiveInvocationException",
            ErrorCode::AccessDenied => "AccessDeniedException",
            ErrorCode::ServiceException => "ServiceException",
            ErrorCode::NotImplemented => "NotImplementedException",
            ErrorCode::UnknownOperation => "UnknownOperationException",
        }
    }

    /// The HTTP status of the error shape.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::ResourceNotFound
            | ErrorCode::UnknownOperation
            | ErrorCode::ProvisionedConcurrencyConfigNotFound => StatusCode::NOT_FOUND,
            ErrorCode::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::ResourceConflict => StatusCode::CONFLICT,
            ErrorCode::InvalidParameterValue
            | ErrorCode::InvalidRequestContent
            | ErrorCode::ResourceInUse
            | ErrorCode::RecursiveInvocation
            | ErrorCode::Validation => StatusCode::BAD_REQUEST,
            ErrorCode::RequestEntityTooLarge | ErrorCode::RequestTooLarge => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            ErrorCode::AccessDenied => StatusCode::FORBIDDEN,
            ErrorCode::ServiceException => StatusCode::INTERNAL_SERVER_ERROR,
            // 501, not 500: SDKs retry 500s, and retrying cannot make an operation exist.
            ErrorCode::NotImplemented => StatusCode::NOT_IMPLEMENTED,
        }
    }

    fn message_key(self) -> MessageKey {
        match self {
            ErrorCode::InvalidParameterValue
            | ErrorCode::InvalidRequestContent
            | ErrorCode::ResourceConflict
            | ErrorCode::UnsupportedMediaType
            | ErrorCode::RequestTooLarge
            | ErrorCode::PreconditionFailed
            | ErrorCode::TooManyRequests
            | ErrorCode::ProvisionedConcurrencyConfigNotFound => MessageKey::Lower,
            ErrorCode::ResourceNotFound
            | ErrorCode::ResourceInUse
            | ErrorCode::RecursiveInvocation
            | ErrorCode::ServiceException
            | ErrorCode::AccessDenied
            | ErrorCode::NotImplemented
            | ErrorCode::UnknownOperation => MessageKey::Upper,
            ErrorCode::Validation | ErrorCode::RequestEntityTooLarge => MessageKey::Bare,
        }
    }

    fn error_type(self) -> &'static str {
        match self {
            ErrorCode::ServiceException => "Service",
            _ => "User",
        }
    }
}

/// An error answered to an API caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// Whether the body carries `"Type": "User"`; a few of Lambda's errors come without it.
    pub typed: bool,
    /// `TooManyRequestsException`'s `Reason` (which limit was hit).
    pub reason: Option<&'static str>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            typed: true,
            reason: None,
        }
    }

    /// Lambda's 429 for a throttled invocation: `Rate Exceeded.` with the limit's `Reason`.
    pub fn throttled(reason: &'static str) -> Self {
        Self {
            reason: Some(reason),
            ..Self::new(ErrorCode::TooManyRequests, "Rate Exceeded.")
        }
    }

    /// The same error without the body's `Type` field, as Lambda sends some of them.
    pub fn without_type(self) -> Self {
        Self {
            typed: false,
            ..self
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ResourceNotFound, message)
    }

    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidParameterValue, message)
    }

    pub fn invalid_content(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequestContent, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ResourceConflict, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ServiceException, message)
    }

    /// The JSON body for this error.
    pub fn body(&self) -> serde_json::Value {
        // AWS sends no message with a cross-account AccessDenied; Kiln logs the reason instead.
        let message = if self.code == ErrorCode::AccessDenied {
            serde_json::Value::Null
        } else {
            serde_json::Value::String(self.message.clone())
        };
        let mut body = match self.code.message_key() {
            MessageKey::Lower | MessageKey::Upper if !self.typed => {
                let key = match self.code.message_key() {
                    MessageKey::Upper => "Message",
                    _ => "message",
                };
                serde_json::json!({ key: message })
            }
            MessageKey::Lower => {
                serde_json::json!({"Type": self.code.error_type(), "message": message})
            }
            MessageKey::Upper => {
                serde_json::json!({"Type": self.code.error_type(), "Message": message})
            }
            MessageKey::Bare => serde_json::json!({"message": message}),
        };
        if let Some(reason) = self.reason {
            body["Reason"] = serde_json::Value::from(reason);
        }
        body
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.aws_code(), self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body().to_string();
        let mut response = (self.code.status(), body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(
            "x-amzn-ErrorType",
            HeaderValue::from_static(self.code.aws_code()),
        );
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_use_each_shapes_message_key() {
        let not_found = ApiError::not_found("Function not found: x");
        assert_eq!(
            not_found.body(),
            serde_json::json!({"Type": "User", "Message": "Function not found: x"})
        );
        let invalid = ApiError::invalid_parameter("bad");
        assert_eq!(
            invalid.body(),
            serde_json::json!({"Type": "User", "message": "bad"})
        );
        let validation = ApiError::new(ErrorCode::Validation, "1 validation error detected: x");
        assert_eq!(
            validation.body(),
            serde_json::json!({"message": "1 validation error detected: x"})
        );
    }

    #[test]
    fn throttles_carry_lambdas_reason() {
        let throttled = ApiError::throttled("ConcurrentInvocationLimitExceeded");
        assert_eq!(
            throttled.body(),
            serde_json::json!({
                "Type": "User",
                "message": "Rate Exceeded.",
                "Reason": "ConcurrentInvocationLimitExceeded",
            })
        );
        let response = throttled.into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            response.headers()["x-amzn-ErrorType"],
            "TooManyRequestsException"
        );
    }

    #[test]
    fn responses_carry_status_and_error_type_header() {
        let response = ApiError::conflict("exists").into_response();
        assert_eq!(response.status(), StatusCode::CONFLICT);
        assert_eq!(
            response.headers()["x-amzn-ErrorType"],
            "ResourceConflictException"
        );
    }
}
