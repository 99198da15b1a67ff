//! Small wire-format helpers shared by the Lambda handlers.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_match_lambdas_format() {
        assert_eq!(
            lambda_timestamp(1_586_545_592_563),
            "2020-04-10T19:06:32.563+0000"
        );
        assert_eq!(lambda_timestamp(0), "1970-01-01T00:00:00.000+0000");
    }
}
