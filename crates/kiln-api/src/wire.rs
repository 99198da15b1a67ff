//! Small wire-format helpers shared by the Lambda handlers.

use serde::Deserialize;
use serde::de::{DeserializeOwned, Deserializer, Error as _};
use time::OffsetDateTime;
use time::macros::format_description;

/// Lambda's `LastModified` string: `2020-04-10T19:06:32.563+0000` (always UTC).
pub(crate) fn lambda_timestamp(epoch_millis: i64) -> String {
    let nanos = i128::from(epoch_millis) * 1_000_000;
    let instant =
        OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    instant
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]+0000"
        ))
        .unwrap_or_default()
}

/// For `#[serde(default, deserialize_with = "wire::optional_object")]` on a field holding a
/// nested structure: accepts only a JSON object (or null), where serde's derive would also
/// accept an array and fill the fields by position, which AWS refuses as a type mismatch.
pub(crate) fn optional_object<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    let object: Option<serde_json::Map<String, serde_json::Value>> =
        Option::deserialize(deserializer)?;
    object
        .map(|object| {
            serde_json::from_value(serde_json::Value::Object(object)).map_err(D::Error::custom)
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Inner {
        #[allow(dead_code)]
        mode: Option<String>,
    }

    #[derive(Debug, serde::Deserialize)]
    struct Outer {
        #[serde(default, deserialize_with = "optional_object")]
        inner: Option<Inner>,
    }

    #[test]
    fn nested_structures_must_be_objects() {
        assert!(serde_json::from_str::<Outer>(r#"{"inner":{"mode":"x"}}"#).is_ok());
        assert!(serde_json::from_str::<Outer>(r#"{"inner":null}"#).is_ok());
        assert!(
            serde_json::from_str::<Outer>(r#"{}"#)
                .unwrap()
                .inner
                .is_none()
        );
        assert!(serde_json::from_str::<Outer>(r#"{"inner":["x"]}"#).is_err());
    }

    #[test]
    fn timestamps_match_lambdas_format() {
        assert_eq!(
            lambda_timestamp(1_586_545_592_563),
            "2020-04-10T19:06:32.563+0000"
        );
        assert_eq!(lambda_timestamp(0), "1970-01-01T00:00:00.000+0000");
    }
}
