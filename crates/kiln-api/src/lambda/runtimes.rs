//! Which `Runtime` values a function may be created or updated with.

use crate::error::ApiError;

/// The runtimes AWS accepts for new functions, in the order its error message lists them
/// (recorded from AWS in `conformance/aws-recordings`).
pub(crate) const AWS_CREATABLE: &[&str] = &[
    "nodejs20.x",
    "python3.14",
    "provided.al2023",
    "python3.12",
    "python3.13",
    "nodejs24.x",
    "nodejs22.x",
    "java25",
    "python3.10",
    "python3.11",
    "java21",
    "ruby3.3",
    "ruby3.4",
    "ruby3.2",
    "python3.8",
    "python3.9",
    "java17",
    "nodejs16.x",
    "dotnet10",
    "dotnet8",
    "java11",
    "dotnet6",
    "nodejs18.x",
    "provided.al2",
    "java8.al2",
];

/// Accepted by Kiln beyond AWS's list: `provided`, which AWS no longer lets new functions use
/// but which Kiln runs like `provided.al2023` (old custom-runtime functions keep working
/// locally), and the runtime generations the service model already names.
const KILN_ALSO_ACCEPTS: &[&str] = &["provided", "nodejs26.x", "python3.15", "ruby4.0"];

/// In the service model, but deprecated: AWS refuses them for creates and updates.
const DEPRECATED: &[&str] = &[
    "nodejs",
    "nodejs4.3",
    "nodejs6.10",
    "nodejs8.10",
    "nodejs10.x",
    "nodejs12.x",
    "nodejs14.x",
    "nodejs4.3-edge",
    "java8",
    "java8.al2023",
    "java11.al2023",
    "java17.al2023",
    "python2.7",
    "python3.6",
    "python3.7",
    "dotnetcore1.0",
    "dotnetcore2.0",
    "dotnetcore2.1",
    "dotnetcore3.1",
    "go1.x",
    "ruby2.5",
    "ruby2.7",
    "custom",
];

/// Checks a `Runtime` value for a create or update.
pub(crate) fn check(runtime: &str) -> Result<(), ApiError> {
    if AWS_CREATABLE.contains(&runtime) || KILN_ALSO_ACCEPTS.contains(&runtime) {
        return Ok(());
    }
    if DEPRECATED.contains(&runtime) {
        return Err(ApiError::invalid_parameter(format!(
            "The runtime parameter of {runtime} is no longer supported for creating or updating \
             AWS Lambda functions. We recommend you use a supported runtime while creating or \
             updating functions."
        )));
    }
    Err(ApiError::invalid_parameter(format!(
        "Value {runtime} at 'runtime' failed to satisfy constraint: Member must satisfy enum \
         value set: [{}] or be a valid ARN",
        AWS_CREATABLE.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtimes_are_accepted_deprecated_or_unknown() {
        assert!(check("python3.12").is_ok());
        assert!(check("provided").is_ok());
        assert!(
            check("go1.x")
                .unwrap_err()
                .message
                .starts_with("The runtime parameter of go1.x is no longer supported")
        );
        let unknown = check("PYTHON3.9").unwrap_err().message;
        assert!(unknown.starts_with(
            "Value PYTHON3.9 at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: [nodejs20.x, python3.14,"
        ));
        assert!(unknown.ends_with("provided.al2, java8.al2] or be a valid ARN"));
    }
}
