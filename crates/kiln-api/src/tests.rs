//! In-process router tests: real engine and store on a temporary directory, requests sent
//! with `tower::ServiceExt::oneshot`, no sockets.

use std::io::Write;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine as _;
use http_body_util::BodyExt;
use kiln_core::AccountContext;
use kiln_engine::{Engine, EngineConfig};
use kiln_store::Store;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::*;

struct Harness {
    router: Router,
    _dir: tempfile::TempDir,
}

async fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(
        Store::open(dir.path()).unwrap(),
        AccountContext {
            partition: "aws".into(),
            account_id: "000000000000".into(),
            region: "us-east-1".into(),
        },
        EngineConfig::default(),
        None,
    )
    .await
    .unwrap();
    let state = ApiState::new(
        engine,
        ApiConfig {
            public_address: "127.0.0.1:9700".into(),
        },
    );
    Harness {
        router: router(state),
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

    fn error_type(&self) -> &str {
        self.headers["x-amzn-ErrorType"].to_str().unwrap()
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
        assert!(
            headers.contains_key("x-amzn-RequestId"),
            "every response carries a request id"
        );
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn call(&self, method: &str, uri: &str, body: Option<Value>) -> Reply {
        let body = body.map_or_else(Body::empty, |value| Body::from(value.to_string()));
        self.send(
            Request::builder()
                .method(method)
                .uri(uri)
                .header("content-type", "application/json")
                .body(body)
                .unwrap(),
        )
        .await
    }
}

fn zip_base64(files: &[(&str, &str)]) -> String {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, content) in files {
        writer
            .start_file(*name, zip::write::SimpleFileOptions::default())
            .unwrap();
        writer.write_all(content.as_bytes()).unwrap();
    }
    base64::engine::general_purpose::STANDARD.encode(writer.finish().unwrap().into_inner())
}

fn create_body(name: &str) -> Value {
    json!({
        "FunctionName": name,
        "Runtime": "python3.12",
        "Role": "arn:aws:iam::000000000000:role/r",
        "Handler": "app.handler",
        "Code": {"ZipFile": zip_base64(&[("app.py", "def handler(e, c): return e")])},
    })
}

#[tokio::test]
async fn create_then_get_then_delete() {
    let h = harness().await;
    let created = h
        .call("POST", "/2015-03-31/functions", Some(create_body("f")))
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let body = created.json();
    assert_eq!(body["State"], "Pending");
    assert_eq!(
        body["FunctionArn"],
        "arn:aws:lambda:us-east-1:000000000000:function:f"
    );
    assert!(
        body.get("Environment").is_none(),
        "unset environment is omitted"
    );

    let got = h.call("GET", "/2015-03-31/functions/f", None).await;
    assert_eq!(got.status, StatusCode::OK);
    let location = got.json()["Code"]["Location"].as_str().unwrap().to_owned();
    let code_path = location.strip_prefix("http://127.0.0.1:9700").unwrap();
    let download = h.call("GET", code_path, None).await;
    assert_eq!(download.status, StatusCode::OK);
    assert_eq!(download.headers["content-type"], "application/zip");

    let by_arn = h
        .call(
            "GET",
            "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Af/configuration",
            None,
        )
        .await;
    assert_eq!(by_arn.status, StatusCode::OK);

    let deleted = h.call("DELETE", "/2015-03-31/functions/f", None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert!(deleted.body.is_empty());
    let gone = h.call("GET", "/2015-03-31/functions/f", None).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(gone.error_type(), "ResourceNotFoundException");
    assert_eq!(
        gone.json(),
        json!({"Type": "User", "Message": "Function not found: arn:aws:lambda:us-east-1:000000000000:function:f"})
    );
}

#[tokio::test]
async fn duplicate_create_conflicts() {
    let h = harness().await;
    h.call("POST", "/2015-03-31/functions", Some(create_body("dup")))
        .await;
    let again = h
        .call("POST", "/2015-03-31/functions", Some(create_body("dup")))
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.json()["message"], "Function already exist: dup");
}

#[tokio::test]
async fn malformed_json_is_invalid_request_content() {
    let h = harness().await;
    let reply = h
        .send(
            Request::post("/2015-03-31/functions")
                .body(Body::from("{not json"))
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_type(), "InvalidRequestContentException");
    assert!(
        reply.json()["message"]
            .as_str()
            .unwrap()
            .starts_with("Could not parse request body into json")
    );
}

#[tokio::test]
async fn wrong_types_are_invalid_request_content() {
    let h = harness().await;
    let mut body = create_body("typed");
    body["MemorySize"] = json!("lots");
    let reply = h.call("POST", "/2015-03-31/functions", Some(body)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_type(), "InvalidRequestContentException");
}

#[tokio::test]
async fn constraint_violations_are_listed_together() {
    let h = harness().await;
    let mut body = create_body("limits");
    body["Timeout"] = json!(0);
    body["MemorySize"] = json!(64);
    let reply = h.call("POST", "/2015-03-31/functions", Some(body)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_type(), "ValidationException");
    assert_eq!(
        reply.json()["message"],
        "2 validation errors detected: Value '0' at 'timeout' failed to satisfy constraint: \
         Member must have value greater than or equal to 1; Value '64' at 'memorySize' failed \
         to satisfy constraint: Member must have value greater than or equal to 128"
    );
}

#[tokio::test]
async fn oversized_bodies_are_refused_before_reading() {
    let h = harness().await;
    let reply = h
        .send(
            Request::post("/2015-03-31/functions")
                .header("content-length", "70167211")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.error_type(), "RequestEntityTooLargeException");
    assert_eq!(
        reply.json()["message"],
        "Request must be smaller than 70167211 bytes for the CreateFunction operation"
    );
}

#[tokio::test]
async fn unknown_and_unimplemented_routes_answer_in_aws_shape() {
    let h = harness().await;
    let unknown = h.call("GET", "/nothing/here", None).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.error_type(), "UnknownOperationException");

    let unimplemented = h.call("GET", "/2015-03-31/functions/f/policy", None).await;
    assert_eq!(unimplemented.status, StatusCode::NOT_IMPLEMENTED);
    assert_eq!(unimplemented.error_type(), "NotImplementedException");
    assert!(
        unimplemented.json()["Message"]
            .as_str()
            .unwrap()
            .contains("GetPolicy")
    );
}

#[tokio::test]
async fn list_pages_with_markers() {
    let h = harness().await;
    for name in ["a", "b", "c"] {
        h.call("POST", "/2015-03-31/functions", Some(create_body(name)))
            .await;
    }
    let first = h
        .call("GET", "/2015-03-31/functions?MaxItems=2", None)
        .await
        .json();
    let names: Vec<&str> = first["Functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["FunctionName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b"]);
    let marker = first["NextMarker"].as_str().unwrap();
    let second = h
        .call(
            "GET",
            &format!("/2015-03-31/functions?MaxItems=2&Marker={marker}"),
            None,
        )
        .await
        .json();
    assert_eq!(second["Functions"][0]["FunctionName"], "c");
    assert!(second.get("NextMarker").is_none());
    assert!(
        second["Functions"][0].get("State").is_none(),
        "listings omit lifecycle fields, as Lambda's"
    );
}

#[tokio::test]
async fn health_reports_ok() {
    let h = harness().await;
    let reply = h.call("GET", "/_kiln/health", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["status"], "ok");
}
