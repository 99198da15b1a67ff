//! Every example of AWS's filtering documentation, as a test.
//!
//! Sources, quoted below section by section:
//! - [LAMBDA] AWS Lambda Developer Guide, "Lambda event filtering"
//!   (`invocation-eventfiltering`), as published in `awsdocs/aws-lambda-developer-guide`,
//!   `doc_source/invocation-eventfiltering.md` at commit 4ca3ba6.
//! - [SQS] AWS Lambda Developer Guide, "Using event filtering with an Amazon SQS event source"
//!   (`with-sqs-filtering`).
//! - [MQ] AWS Lambda Developer Guide, "Filter events from an Amazon MQ event source"
//!   (`with-mq-filtering`).
//! - [EB] Amazon EventBridge User Guide, "Content filtering in Amazon EventBridge event
//!   patterns" (`eb-event-patterns-content-based-filtering`), and its comparison operator table
//!   (`eb-create-pattern-operators`), which Lambda's guide defers to.

use serde_json::{Value, json};

use crate::{FilterCriteria, FilterError, INVALID_PATTERN_MESSAGE};

fn check(pattern: &str, event: &Value) -> bool {
    FilterCriteria::parse(&[pattern])
        .unwrap_or_else(|err| panic!("{pattern}: {err}"))
        .matches(event)
}

fn check_sqs(pattern: &str, record: &Value) -> bool {
    FilterCriteria::parse(&[pattern])
        .unwrap_or_else(|err| panic!("{pattern}: {err}"))
        .matches_sqs_record(record)
}

/// The `FilterCriteria` wrapper as the docs print it: `{"Filters": [{"Pattern": "..."}]}`.
fn from_filter_criteria(criteria: &str) -> FilterCriteria {
    let criteria: Value = serde_json::from_str(criteria).unwrap();
    let patterns: Vec<&str> = criteria["Filters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|filter| filter["Pattern"].as_str().unwrap())
        .collect();
    FilterCriteria::parse(&patterns).unwrap()
}

/// [LAMBDA] "Event filtering basics": the Kinesis record, filtered on a metadata property
/// (`partitionKey`) and a data property (`data.City`), the two kinds the section describes.
#[test]
fn lambda_event_filtering_basics() {
    // "kinesis": { "partitionKey": "1", "sequenceNumber": "4959...", "data": { "City":
    // "Seattle", "State": "WA", "Temperature": "46", "Month": "December" },
    // "approximateArrivalTimestamp": 1545084650.987 }
    let kinesis = json!({
        "partitionKey": "1",
        "sequenceNumber": "49590338271490256608559692538361571095921575989136588898",
        "data": { "City": "Seattle", "State": "WA", "Temperature": "46", "Month": "December" },
        "approximateArrivalTimestamp": 1545084650.987
    });
    // { "Metadata1": [ rule1 ], "data": { "Data1": [ rule2 ] } }
    assert!(check(
        r#"{ "partitionKey": [ "1" ], "data": { "City": [ "Seattle" ] } }"#,
        &kinesis
    ));
    assert!(!check(
        r#"{ "partitionKey": [ "2" ], "data": { "City": [ "Seattle" ] } }"#,
        &kinesis
    ));
    // "For Lambda to consider the event a match, the event must contain all the field names
    // included in a filter."
    assert!(!check(
        r#"{ "partitionKey": [ "1" ], "data": { "Country": [ "US" ] } }"#,
        &kinesis
    ));
}

/// [LAMBDA] "Duplicate keys": "If a pattern contains duplicate keys with different values,
/// Lambda uses only the last value for that key."
#[test]
fn lambda_duplicate_keys() {
    let pattern = r#"{
      "Metadata1": [ "pattern1" ],
      "data": {
          "duplicateKey" : ["hello"],
          "uniqueKey" : ["test123"],
          "duplicateKey" : ["world"]
      }
    }"#;
    let event = |duplicate: &str| json!({ "Metadata1": "pattern1", "data": { "uniqueKey": "test123", "duplicateKey": duplicate } });
    assert!(check(pattern, &event("world")));
    assert!(!check(pattern, &event("hello")));
}

/// [LAMBDA] "Filter rule syntax": every row of the comparison operator table.
#[test]
fn lambda_filter_rule_syntax_table() {
    // Null | UserID is null | "UserID": [ null ]
    let null = r#"{ "UserID": [ null ] }"#;
    assert!(check(null, &json!({ "UserID": null })));
    assert!(!check(null, &json!({ "UserID": "u-1" })));
    assert!(!check(null, &json!({})));

    // Empty | LastName is empty | "LastName": [""]
    let empty = r#"{ "LastName": [""] }"#;
    assert!(check(empty, &json!({ "LastName": "" })));
    assert!(!check(empty, &json!({ "LastName": "Doe" })));
    assert!(!check(empty, &json!({ "LastName": null })));

    // Equals | Name is "Alice" | "Name": [ "Alice" ]
    let equals = r#"{ "Name": [ "Alice" ] }"#;
    assert!(check(equals, &json!({ "Name": "Alice" })));
    assert!(!check(equals, &json!({ "Name": "alice" })));

    // And | Location is "New York" and Day is "Monday" |
    // "Location": [ "New York" ], "Day": ["Monday"]
    let and = r#"{ "Location": [ "New York" ], "Day": ["Monday"] }"#;
    assert!(check(
        and,
        &json!({ "Location": "New York", "Day": "Monday" })
    ));
    assert!(!check(
        and,
        &json!({ "Location": "New York", "Day": "Tuesday" })
    ));

    // Or | PaymentType is "Credit" or "Debit" | "PaymentType": [ "Credit", "Debit"]
    let or = r#"{ "PaymentType": [ "Credit", "Debit"] }"#;
    assert!(check(or, &json!({ "PaymentType": "Credit" })));
    assert!(check(or, &json!({ "PaymentType": "Debit" })));
    assert!(!check(or, &json!({ "PaymentType": "Cash" })));

    // Not | Weather is anything but "Raining" | "Weather": [ { "anything-but": [ "Raining" ] } ]
    let not = r#"{ "Weather": [ { "anything-but": [ "Raining" ] } ] }"#;
    assert!(check(not, &json!({ "Weather": "Sunny" })));
    assert!(!check(not, &json!({ "Weather": "Raining" })));

    // Numeric (equals) | Price is 100 | "Price": [ { "numeric": [ "=", 100 ] } ]
    let numeric_equals = r#"{ "Price": [ { "numeric": [ "=", 100 ] } ] }"#;
    assert!(check(numeric_equals, &json!({ "Price": 100 })));
    assert!(!check(numeric_equals, &json!({ "Price": 101 })));
    assert!(!check(numeric_equals, &json!({ "Price": "100" })));

    // Numeric (range) | Price is more than 10, and less than or equal to 20 |
    // "Price": [ { "numeric": [ ">", 10, "<=", 20 ] } ]
    let numeric_range = r#"{ "Price": [ { "numeric": [ ">", 10, "<=", 20 ] } ] }"#;
    assert!(!check(numeric_range, &json!({ "Price": 10 })));
    assert!(check(numeric_range, &json!({ "Price": 10.5 })));
    assert!(check(numeric_range, &json!({ "Price": 20 })));
    assert!(!check(numeric_range, &json!({ "Price": 20.01 })));

    // Exists | ProductName exists | "ProductName": [ { "exists": true } ]
    let exists = r#"{ "ProductName": [ { "exists": true } ] }"#;
    assert!(check(exists, &json!({ "ProductName": "Widget" })));
    assert!(!check(exists, &json!({ "Product": "Widget" })));

    // Does not exist | ProductName does not exist | "ProductName": [ { "exists": false } ]
    let not_exists = r#"{ "ProductName": [ { "exists": false } ] }"#;
    assert!(!check(not_exists, &json!({ "ProductName": "Widget" })));
    assert!(check(not_exists, &json!({ "Product": "Widget" })));

    // Begins with | Region is in the US | "Region": [ {"prefix": "us-" } ]
    let begins_with = r#"{ "Region": [ {"prefix": "us-" } ] }"#;
    assert!(check(begins_with, &json!({ "Region": "us-east-1" })));
    assert!(!check(begins_with, &json!({ "Region": "eu-west-1" })));
}

/// [LAMBDA] note under the table: "for strings, Lambda uses exact character-by-character
/// matching without case-folding or any other string normalization. For numbers, Lambda also
/// uses string representation. For example, 300, 300.0, and 3.0e2 are not considered equal."
#[test]
fn lambda_no_normalization() {
    assert!(!check(r#"{ "s": [ "Alice" ] }"#, &json!({ "s": "ALICE" })));
    assert!(!check(r#"{ "s": [ "é" ] }"#, &json!({ "s": "e\u{301}" })));
    assert!(check(r#"{ "n": [ 300 ] }"#, &json!({ "n": 300 })));
    assert!(!check(r#"{ "n": [ 300 ] }"#, &json!({ "n": 300.0 })));
    assert!(!check(r#"{ "n": [ 300.0 ] }"#, &json!({ "n": 300 })));
    assert!(!check(r#"{ "n": [ 3.0e2 ] }"#, &json!({ "n": 300 })));
    // Known gap: 300.0 and 3.0e2 both parse to the same f64, and the event arrives already
    // parsed, so Kiln cannot tell them apart (see the crate docs).
    assert!(check(
        r#"{ "n": [ 3.0e2 ] }"#,
        &serde_json::from_str(r#"{ "n": 300.0 }"#).unwrap()
    ));
}

/// [LAMBDA] "Filtering examples": `partitionKey` and `data.Location` with Equals.
#[test]
fn lambda_filtering_examples_equals() {
    let criteria = from_filter_criteria(
        r#"{
           "Filters": [
                {
                    "Pattern": "{ \"partitionKey\": [ \"1\" ], \"data\": { \"Location\": [ \"Los Angeles\" ] }}"
                }
            ]
        }"#,
    );
    assert!(
        criteria.matches(&json!({ "partitionKey": "1", "data": { "Location": "Los Angeles" } }))
    );
    assert!(!criteria.matches(&json!({ "partitionKey": "1", "data": { "Location": "Seattle" } })));
    assert!(
        !criteria.matches(&json!({ "partitionKey": "2", "data": { "Location": "Los Angeles" } }))
    );
}

/// [LAMBDA] "Filtering examples": `data.Temperature` with Numeric (range).
#[test]
fn lambda_filtering_examples_numeric_range() {
    let criteria = from_filter_criteria(
        r#"{
           "Filters": [
                {
                    "Pattern": "{ \"data\": { \"Temperature\": [ {\"numeric\": [ \">\", 50, \"<=\", 60 ] }]}}"
                }
            ]
        }"#,
    );
    assert!(criteria.matches(&json!({ "data": { "Temperature": 55 } })));
    assert!(criteria.matches(&json!({ "data": { "Temperature": 60 } })));
    assert!(!criteria.matches(&json!({ "data": { "Temperature": 50 } })));
    // The basics section's Kinesis record has "Temperature": "46", a string: never numeric.
    assert!(!criteria.matches(&json!({ "data": { "Temperature": "55" } })));
}

/// [LAMBDA] "Multi-level filtering": DynamoDB `Keys.Id.N` is "101". (The doc's escaped
/// `Pattern` string leaves `"101"` unescaped, a typo; this is its expanded JSON.)
#[test]
fn lambda_multi_level_filtering() {
    let pattern = r#"{
        "dynamodb": {
            "Keys": {
                "Id": {
                    "N": [ "101" ]
                }
            }
        }
    }"#;
    let record = |id: &str| {
        json!({
            "dynamodb": {
                "Keys": { "Id": { "N": id } },
                "NewImage": { "Message": { "S": "New item!" }, "Id": { "N": id } },
                "SequenceNumber": "111",
                "SizeBytes": 26,
                "StreamViewType": "NEW_AND_OLD_IMAGES"
            }
        })
    };
    assert!(check(pattern, &record("101")));
    assert!(!check(pattern, &record("102")));
}

/// [LAMBDA] "Attaching filter criteria ... (console)" and "(AWS CLI)": `{ "a" : [ 1, 2 ] }`
/// "instructs Lambda to process only the records where field `a` is equal to 1 or 2".
#[test]
fn lambda_console_and_cli_example() {
    let criteria =
        from_filter_criteria(r#"{ "Filters": [ { "Pattern": "{ \"a\" : [ 1, 2 ] }" } ] }"#);
    assert!(criteria.matches(&json!({ "a": 1 })));
    assert!(criteria.matches(&json!({ "a": 2 })));
    assert!(!criteria.matches(&json!({ "a": 3 })));
    assert!(!criteria.matches(&json!({ "a": "1" })));
    assert!(!criteria.matches(&json!({ "b": 1 })));
}

/// [LAMBDA] "Properly filtering Amazon SQS messages": every row of the body format table.
#[test]
fn lambda_properly_filtering_sqs_messages() {
    let record = |body: &str| json!({ "messageId": "m-1", "body": body, "eventSource": "aws:sqs" });
    let plain_body = record("Hello from SQS");
    let json_body = record(r#"{ "greeting": "Hello from SQS" }"#);
    let plain_pattern = r#"{ "body": [ { "prefix": "Hello" } ] }"#;
    let json_pattern = r#"{ "body": { "greeting": [ { "prefix": "Hello" } ] } }"#;
    let metadata_only = r#"{ "eventSource": [ "aws:sqs" ] }"#;

    // Plain string | Plain string | Lambda filters based on your filter criteria.
    assert!(check_sqs(plain_pattern, &plain_body));
    assert!(!check_sqs(plain_pattern, &record("Goodbye")));
    // Plain string | No filter pattern for data properties | Lambda filters (on the other
    // metadata properties only) based on your filter criteria.
    assert!(check_sqs(metadata_only, &plain_body));
    // Plain string | Valid JSON | Lambda drops the message.
    assert!(!check_sqs(json_pattern, &plain_body));
    // Valid JSON | Plain string | Lambda drops the message.
    assert!(!check_sqs(plain_pattern, &json_body));
    // Valid JSON | No filter pattern for data properties | Lambda filters (on the other
    // metadata properties only) based on your filter criteria.
    assert!(check_sqs(metadata_only, &json_body));
    // Valid JSON | Valid JSON | Lambda filters based on your filter criteria.
    assert!(check_sqs(json_pattern, &json_body));
    assert!(!check_sqs(
        json_pattern,
        &record(r#"{ "greeting": "Goodbye" }"#)
    ));
}

/// [LAMBDA] "Properly filtering Kinesis and DynamoDB messages": a non-JSON filter pattern is
/// refused "at the time of the event source mapping creation or update", and a non-JSON data
/// field with a JSON pattern for data properties is dropped.
#[test]
fn lambda_properly_filtering_streams() {
    let err = FilterCriteria::parse(&["{ data: Temperature }"]).unwrap_err();
    assert!(matches!(err, FilterError::InvalidPattern { .. }));
    assert_eq!(err.aws_message(), INVALID_PATTERN_MESSAGE);
    assert!(!check(
        r#"{ "data": { "City": [ "Seattle" ] } }"#,
        &json!({ "data": "not json" })
    ));
}

/// [SQS] "Amazon SQS event filtering basics": the example record and its two patterns.
#[test]
fn sqs_event_filtering_basics() {
    let record = |request_code: &str, record_number: u32| {
        json!({
            "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
            "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a...",
            "body": format!(
                "{{\n \"RecordNumber\": {record_number},\n \"TimeStamp\": \"yyyy-mm-ddThh:mm:ss\",\n \"RequestCode\": \"{request_code}\"\n}}"
            ),
            "attributes": {
                "ApproximateReceiveCount": "1",
                "SentTimestamp": "1545082649183",
                "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                "ApproximateFirstReceiveTimestamp": "1545082649185"
            },
            "messageAttributes": {},
            "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-west-2:123456789012:my-queue",
            "awsRegion": "us-west-2"
        })
    };

    // { "body": { "RequestCode": [ "BBBB" ] } }
    let request_code = from_filter_criteria(
        r#"{ "Filters": [ { "Pattern": "{ \"body\" : { \"RequestCode\" : [ \"BBBB\" ] } }" } ] }"#,
    );
    assert!(
        !request_code.matches_sqs_record(&record("AAAA", 1234)),
        "the doc's record is AAAA"
    );
    assert!(request_code.matches_sqs_record(&record("BBBB", 1234)));

    // { "body": { "RecordNumber": [ { "numeric": [ ">", 9999 ] } ] } }
    let record_number = from_filter_criteria(
        r#"{ "Filters": [ { "Pattern": "{ \"body\" : { \"RecordNumber\" : [ { \"numeric\": [ \">\", 9999 ] } ] } }" } ] }"#,
    );
    assert!(!record_number.matches_sqs_record(&record("AAAA", 1234)));
    assert!(record_number.matches_sqs_record(&record("AAAA", 10000)));
}

/// [MQ] "Amazon MQ event filtering basics", on the decoded message (decoding is the poller's
/// job). The doc's escaped `Pattern` for `timeout` has a stray `}`; this is its expanded JSON.
#[test]
fn mq_event_filtering_basics() {
    // { "data": { "timeout": [ { "numeric": [ ">", 0 ] } ] } }
    let timeout = r#"{ "data": { "timeout": [ { "numeric": [ ">", 0 ] } ] } }"#;
    assert!(!check(
        timeout,
        &json!({ "data": { "timeout": 0, "IPAddress": "203.0.113.254" } })
    ));
    assert!(check(
        timeout,
        &json!({ "data": { "timeout": 30, "IPAddress": "203.0.113.254" } })
    ));

    // { "data": [ { "prefix": "Result: " } ] }
    let result = r#"{ "data": [ { "prefix": "Result: " } ] }"#;
    assert!(check(result, &json!({ "data": "Result: ok" })));
    assert!(!check(result, &json!({ "data": "Error: no" })));
}

/// [EB] "Prefix matching".
#[test]
fn eventbridge_prefix_matching() {
    // The doc's pattern has a trailing comma (`[ ... ],\n}`), which is not JSON.
    assert!(FilterCriteria::parse(&[r#"{ "time": [ { "prefix": "2017-10-02" } ], }"#]).is_err());
    let pattern = r#"{ "time": [ { "prefix": "2017-10-02" } ] }"#;
    assert!(check(pattern, &json!({ "time": "2017-10-02T18:43:48Z" })));
    assert!(!check(pattern, &json!({ "time": "2017-10-03T18:43:48Z" })));
}

/// [EB] "Anything-but matching": strings, numbers, lists of each, and a prefix.
#[test]
fn eventbridge_anything_but_matching() {
    let state = |state: &str| json!({ "detail": { "state": state } });
    let limit = |limit: u32| json!({ "detail": { "x-limit": limit } });

    let string = r#"{ "detail": { "state": [ { "anything-but": "initializing" } ] } }"#;
    assert!(check(string, &state("running")));
    assert!(!check(string, &state("initializing")));

    let number = r#"{ "detail": { "x-limit": [ { "anything-but": 123 } ] } }"#;
    assert!(check(number, &limit(124)));
    assert!(!check(number, &limit(123)));

    let strings =
        r#"{ "detail": { "state": [ { "anything-but": [ "stopped", "overloaded" ] } ] } }"#;
    assert!(check(strings, &state("running")));
    assert!(!check(strings, &state("stopped")));
    assert!(!check(strings, &state("overloaded")));

    let numbers = r#"{ "detail": { "x-limit": [ { "anything-but": [ 100, 200, 300 ] } ] } }"#;
    assert!(check(numbers, &limit(150)));
    assert!(!check(numbers, &limit(200)));

    let prefix = r#"{ "detail": { "state": [ { "anything-but": { "prefix": "init" } } ] } }"#;
    assert!(check(prefix, &state("running")));
    assert!(!check(prefix, &state("initializing")));
}

/// [EB] operator table rows beyond Lambda's own table.
#[test]
fn eventbridge_operator_table_extras() {
    // Anything-but (ends with) | "FileName": [ { "anything-but": { "suffix": ".png" } } ]
    let not_png = r#"{ "FileName": [ { "anything-but": { "suffix": ".png" } } ] }"#;
    assert!(check(not_png, &json!({ "FileName": "a.jpg" })));
    assert!(!check(not_png, &json!({ "FileName": "a.png" })));

    // Anything-but (ignore case) | "state": [{ "anything-but": { "equals-ignore-case":
    // "initializing" }}] (the doc's row has a stray `:` and `}`; this is the intended rule)
    let not_init = r#"{ "state": [{ "anything-but": { "equals-ignore-case": "initializing" }}] }"#;
    assert!(check(not_init, &json!({ "state": "running" })));
    assert!(!check(not_init, &json!({ "state": "INITIALIZING" })));

    // Anything-but using a wildcard | "FilePath" : [{ "anything-but": { "wildcard": "*/lib/*" }}]
    let not_lib = r#"{ "FilePath" : [{ "anything-but": { "wildcard": "*/lib/*" }}] }"#;
    assert!(check(not_lib, &json!({ "FilePath": "/usr/bin/ls" })));
    assert!(!check(not_lib, &json!({ "FilePath": "/usr/lib/libc.so" })));

    // Begins with (ignore case) | {"service" : [{ "prefix": { "equals-ignore-case": "eventb" }}]}
    let service = r#"{"service" : [{ "prefix": { "equals-ignore-case": "eventb" }}]}"#;
    assert!(check(service, &json!({ "service": "EventBridge" })));
    assert!(!check(service, &json!({ "service": "Lambda" })));
}

/// [EB] "Numeric matching": "only matches events that are true for all fields".
#[test]
fn eventbridge_numeric_matching() {
    let pattern = r#"{
      "detail": {
        "c-count": [ { "numeric": [ ">", 0, "<=", 5 ] } ],
        "d-count": [ { "numeric": [ "<", 10 ] } ],
        "x-limit": [ { "numeric": [ "=", 3.018e2 ] } ]
      }
    }"#;
    assert!(check(
        pattern,
        &json!({ "detail": { "c-count": 5, "d-count": 9.5, "x-limit": 301.8 } })
    ));
    assert!(!check(
        pattern,
        &json!({ "detail": { "c-count": 0, "d-count": 9, "x-limit": 301.8 } })
    ));
    assert!(!check(
        pattern,
        &json!({ "detail": { "c-count": 1, "d-count": 10, "x-limit": 301.8 } })
    ));
    assert!(!check(
        pattern,
        &json!({ "detail": { "c-count": 1, "d-count": 9, "x-limit": 301 } })
    ));
}

/// [EB] "IP address matching": "IP addresses that start with 10.0.0 and end with a number
/// between 0 and 24" (sic: a /24 covers 10.0.0.0 to 10.0.0.255).
#[test]
fn eventbridge_ip_address_matching() {
    let pattern = r#"{ "detail": { "sourceIPAddress": [ { "cidr": "10.0.0.0/24" } ] } }"#;
    let ip = |address: &str| json!({ "detail": { "sourceIPAddress": address } });
    assert!(check(pattern, &ip("10.0.0.0")));
    assert!(check(pattern, &ip("10.0.0.24")));
    assert!(check(pattern, &ip("10.0.0.255")));
    assert!(!check(pattern, &ip("10.0.1.1")));
}

/// [EB] "Exists matching": both events the doc says match `detail.c-count` not existing.
/// (The second event lacks a comma after `"state": [...]` in the doc; fixed here.)
#[test]
fn eventbridge_exists_matching() {
    let pattern = r#"{ "detail": { "c-count": [ { "exists": false  } ] } }"#;
    let first = json!({
        "detail-type": [ "EC2 Instance State-change Notification" ],
        "resources": [ "arn:aws:ec2:us-east-1:123456789012:instance/i-02ebd4584a2ebd341" ],
        "detail": { "state": [ "initializing", "running" ] }
    });
    assert!(check(pattern, &first));
    // "also matches ... because c-count isn't a leaf node"
    let second = json!({
        "detail-type": [ "EC2 Instance State-change Notification" ],
        "resources": [ "arn:aws:ec2:us-east-1:123456789012:instance/i-02ebd4584a2ebd341" ],
        "detail": { "state": [ "initializing", "running" ], "c-count": { "c1": 100 } }
    });
    assert!(check(pattern, &second));
    assert!(!check(pattern, &json!({ "detail": { "c-count": 3 } })));
}

/// [EB] "Complex example with multiple matching".
#[test]
fn eventbridge_complex_example() {
    let pattern = r#"{
      "time": [ { "prefix": "2017-10-02" } ],
      "detail": {
        "state": [ { "anything-but": "initializing" } ],
        "c-count": [ { "numeric": [ ">", 0, "<=", 5 ] } ],
        "d-count": [ { "numeric": [ "<", 10 ] } ],
        "x-limit": [ { "anything-but": [ 100, 200, 300 ] } ]
      }
    }"#;
    let event = |state: &str, x_limit: u32| {
        json!({
            "time": "2017-10-02T18:43:48Z",
            "detail": { "state": state, "c-count": 3, "d-count": 1, "x-limit": x_limit }
        })
    };
    assert!(check(pattern, &event("running", 150)));
    assert!(!check(pattern, &event("initializing", 150)));
    assert!(!check(pattern, &event("running", 200)));
}

/// A pattern with a bare value instead of a rule array, as in aws/aws-cdk#23057, where
/// CloudFormation reported "Invalid request provided: Invalid filter pattern definition."
#[test]
fn bare_value_is_an_invalid_pattern_definition() {
    let err = FilterCriteria::parse(&[r#"{ "eventName": "INSERT" }"#]).unwrap_err();
    assert_eq!(err.aws_message(), "Invalid filter pattern definition.");
    assert!(FilterCriteria::parse(&[r#"{ "eventName": [ "INSERT" ] }"#]).is_ok());
}
