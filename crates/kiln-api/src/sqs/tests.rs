//! In-process tests of the SQS endpoint: real queue service on a temporary directory,
//! requests sent with `tower::ServiceExt::oneshot`.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use kiln_core::AccountContext;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::*;

struct Harness {
    router: Router,
    queues: QueueService,
    _dir: tempfile::TempDir,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.queues.shutdown();
    }
}

fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let queues = QueueService::open(
        dir.path(),
        AccountContext {
            partition: "aws".into(),
            account_id: "000000000000".into(),
            region: "us-east-1".into(),
        },
    )
    .unwrap();
    Harness {
        router: router(SqsState::new(queues.clone(), "127.0.0.1:9701".into())),
        queues,
        _dir: dir,
    }
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }
}

impl Harness {
    async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        assert!(headers.contains_key("x-amzn-RequestId"));
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn call(&self, operation: &str, input: Value) -> Reply {
        self.send(
            Request::post("/")
                .header("host", "localhost:9701")
                .header("content-type", "application/x-amz-json-1.0")
                .header("x-amz-target", format!("AmazonSQS.{operation}"))
                .body(Body::from(input.to_string()))
                .unwrap(),
        )
        .await
    }

    async fn ok(&self, operation: &str, input: Value) -> Value {
        let reply = self.call(operation, input).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        reply.json()
    }

    async fn query(&self, form: &str) -> Reply {
        self.send(
            Request::post("/")
                .header("host", "localhost:9701")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(form.to_owned()))
                .unwrap(),
        )
        .await
    }
}

const URL: &str = "http://localhost:9701/000000000000/q";

#[tokio::test]
async fn json_protocol_round_trip() {
    let h = harness();
    let created = h.ok("CreateQueue", json!({"QueueName": "q"})).await;
    assert_eq!(created, json!({"QueueUrl": URL}));
    let sent = h
        .ok(
            "SendMessage",
            json!({"QueueUrl": URL, "MessageBody": "hello",
                   "MessageAttributes": {"attribName1": {"DataType": "String", "StringValue": "attribValue 1"}}}),
        )
        .await;
    assert_eq!(sent["MD5OfMessageBody"], "5d41402abc4b2a76b9719d911017c592");
    assert_eq!(
        sent["MD5OfMessageAttributes"],
        "19e27d4e946b072f3f58da80d94fd778"
    );
    let received = h
        .ok(
            "ReceiveMessage",
            json!({"QueueUrl": URL, "MessageAttributeNames": ["All"], "MessageSystemAttributeNames": ["ApproximateReceiveCount"]}),
        )
        .await;
    let message = &received["Messages"][0];
    assert_eq!(message["Body"], "hello");
    assert_eq!(
        message["Attributes"],
        json!({"ApproximateReceiveCount": "1"})
    );
    assert_eq!(
        message["MessageAttributes"]["attribName1"]["StringValue"],
        "attribValue 1"
    );
    assert_eq!(
        message["MD5OfMessageAttributes"],
        "19e27d4e946b072f3f58da80d94fd778"
    );
    h.ok(
        "DeleteMessage",
        json!({"QueueUrl": URL, "ReceiptHandle": message["ReceiptHandle"]}),
    )
    .await;
    let attributes = h
        .ok(
            "GetQueueAttributes",
            json!({"QueueUrl": URL, "AttributeNames": ["All"]}),
        )
        .await;
    assert_eq!(attributes["Attributes"]["ApproximateNumberOfMessages"], "0");
    assert_eq!(
        attributes["Attributes"]["QueueArn"],
        "arn:aws:sqs:us-east-1:000000000000:q"
    );
    assert_eq!(attributes["Attributes"]["VisibilityTimeout"], "30");
}

#[tokio::test]
async fn errors_carry_the_shape_and_the_query_code() {
    let h = harness();
    let reply = h.call("GetQueueUrl", json!({"QueueName": "missing"})).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.json(),
        json!({"__type": "com.amazonaws.sqs#QueueDoesNotExist", "message": "The specified queue does not exist."})
    );
    assert_eq!(
        reply.headers["x-amzn-query-error"],
        "AWS.SimpleQueueService.NonExistentQueue;Sender"
    );
    let reply = h.call("Bogus", json!({})).await;
    assert_eq!(reply.headers["x-amzn-query-error"], "InvalidAction;Sender");
    let reply = h
        .send(
            Request::post("/")
                .header("x-amz-target", "AmazonSQS.ListQueues")
                .body(Body::from("{not json"))
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    h.ok("CreateQueue", json!({"QueueName": "q"})).await;
    let reply = h
        .call(
            "ReceiveMessage",
            json!({"QueueUrl": URL, "MaxNumberOfMessages": 11}),
        )
        .await;
    assert_eq!(
        reply.headers["x-amzn-query-error"],
        "InvalidParameterValue;Sender"
    );
    assert_eq!(
        reply.json()["message"],
        "Value 11 for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided."
    );
}

#[tokio::test]
async fn batch_requests_are_checked_then_run_per_entry() {
    let h = harness();
    h.ok("CreateQueue", json!({"QueueName": "q"})).await;
    let reply = h
        .call("SendMessageBatch", json!({"QueueUrl": URL, "Entries": []}))
        .await;
    assert_eq!(
        reply.headers["x-amzn-query-error"],
        "AWS.SimpleQueueService.EmptyBatchRequest;Sender"
    );
    let eleven: Vec<Value> = (0..11)
        .map(|i| json!({"Id": format!("m{i}"), "MessageBody": "x"}))
        .collect();
    let reply = h
        .call(
            "SendMessageBatch",
            json!({"QueueUrl": URL, "Entries": eleven}),
        )
        .await;
    assert_eq!(
        reply.json()["message"],
        "Maximum number of entries per request are 10. You have sent 11."
    );
    let reply = h
        .call(
            "SendMessageBatch",
            json!({"QueueUrl": URL, "Entries": [{"Id": "a", "MessageBody": "x"}, {"Id": "a", "MessageBody": "y"}]}),
        )
        .await;
    assert_eq!(
        reply.json()["__type"],
        "com.amazonaws.sqs#BatchEntryIdsNotDistinct"
    );
    let big = "x".repeat(600_000);
    let reply = h
        .call(
            "SendMessageBatch",
            json!({"QueueUrl": URL, "Entries": [{"Id": "a", "MessageBody": big}, {"Id": "b", "MessageBody": big}]}),
        )
        .await;
    assert_eq!(
        reply.json()["__type"],
        "com.amazonaws.sqs#BatchRequestTooLong"
    );
    let result = h
        .ok(
            "SendMessageBatch",
            json!({"QueueUrl": URL, "Entries": [
                {"Id": "good", "MessageBody": "x"},
                {"Id": "bad", "MessageBody": "y", "DelaySeconds": 901},
            ]}),
        )
        .await;
    assert_eq!(result["Successful"][0]["Id"], "good");
    assert_eq!(result["Failed"][0]["Id"], "bad");
    assert_eq!(result["Failed"][0]["Code"], "InvalidParameterValue");
    assert_eq!(result["Failed"][0]["SenderFault"], true);
    let result = h
        .ok(
            "DeleteMessageBatch",
            json!({"QueueUrl": URL, "Entries": [{"Id": "z", "ReceiptHandle": "nope"}]}),
        )
        .await;
    assert_eq!(result["Failed"][0]["Code"], "ReceiptHandleIsInvalid");
    assert_eq!(
        result["Failed"][0]["Message"],
        "The input receipt handle \"nope\" is not a valid receipt handle."
    );
}

#[tokio::test]
async fn list_queues_pages_by_name() {
    let h = harness();
    for name in ["a1", "a2", "a3", "b1"] {
        h.ok("CreateQueue", json!({"QueueName": name})).await;
    }
    let all = h.ok("ListQueues", json!({"QueueNamePrefix": "a"})).await;
    assert_eq!(all["QueueUrls"].as_array().unwrap().len(), 3);
    assert!(all.get("NextToken").is_none());
    let first = h
        .ok(
            "ListQueues",
            json!({"QueueNamePrefix": "a", "MaxResults": 2}),
        )
        .await;
    assert_eq!(first["QueueUrls"].as_array().unwrap().len(), 2);
    let rest = h
        .ok(
            "ListQueues",
            json!({"QueueNamePrefix": "a", "MaxResults": 2, "NextToken": first["NextToken"]}),
        )
        .await;
    assert_eq!(
        rest["QueueUrls"],
        json!(["http://localhost:9701/000000000000/a3"])
    );
    assert!(rest.get("NextToken").is_none());
    assert_eq!(
        h.ok("ListQueues", json!({"QueueNamePrefix": "zz"})).await,
        json!({})
    );
}

#[tokio::test]
async fn query_protocol_serves_the_same_operations_in_xml() {
    let h = harness();
    let reply = h
        .query("Action=CreateQueue&QueueName=q&Attribute.1.Name=VisibilityTimeout&Attribute.1.Value=40&Version=2012-11-05")
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert!(reply.text().contains(&format!(
        "<CreateQueueResult><QueueUrl>{URL}</QueueUrl></CreateQueueResult>"
    )));
    let reply = h
        .query(&format!(
            "Action=SendMessage&QueueUrl={URL}&MessageBody=hi%20there&MessageAttribute.1.Name=attribName1&MessageAttribute.1.Value.DataType=String&MessageAttribute.1.Value.StringValue=attribValue%201"
        ))
        .await;
    assert!(
        reply.text().contains(
            "<MD5OfMessageAttributes>19e27d4e946b072f3f58da80d94fd778</MD5OfMessageAttributes>"
        ),
        "{}",
        reply.text()
    );
    let reply = h
        .query(&format!(
            "Action=ReceiveMessage&QueueUrl={URL}&AttributeName.1=All&MessageAttributeName.1=All"
        ))
        .await;
    let text = reply.text();
    assert!(text.contains("<Body>hi there</Body>"), "{text}");
    assert!(text.contains("<MessageAttribute><Name>attribName1</Name><Value><StringValue>attribValue 1</StringValue><DataType>String</DataType></Value></MessageAttribute>"), "{text}");
    let reply = h.query("Action=GetQueueUrl&QueueName=nope").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply
            .text()
            .contains("<Code>AWS.SimpleQueueService.NonExistentQueue</Code>")
    );
    // Older clients post to the queue URL itself.
    let reply = h
        .send(
            Request::post("/000000000000/q")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(
                    "Action=GetQueueAttributes&AttributeName.1=VisibilityTimeout",
                ))
                .unwrap(),
        )
        .await;
    assert!(
        reply
            .text()
            .contains("<Attribute><Name>VisibilityTimeout</Name><Value>40</Value></Attribute>"),
        "{}",
        reply.text()
    );
}
