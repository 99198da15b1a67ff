//! The Lambda Runtime API (`/2018-06-01/runtime/...`), served for one execution environment
//! on its own loopback port (the `AWS_LAMBDA_RUNTIME_API` the environment's runtime talks to).
//!
//! `GET /invocation/next` long-polls until the environment is given an invocation; the
//! runtime answers with `POST /invocation/{id}/response` or `/error`, or reports a failed
//! start with `POST /init/error`. Misuse gets Lambda's errors: an unknown or already answered
//! request id is `400 InvalidRequestID`, a call in the wrong state `403
//! InvalidStateTransition`, an oversized response `413 RequestEntityTooLarge`. Connections
//! from outside the environment's sandbox are closed unanswered.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Weak;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;

use super::environment::{Environment, RuntimeReply};

/// The largest response a runtime may post (6 MiB + 100 bytes, as Lambda's runtime API).
pub(crate) const MAX_RESPONSE_BYTES: usize = 6_291_556;
const PREFIX: &str = "/2018-06-01/runtime/";

/// Serves the Runtime API for `environment` on `listener` until the task is aborted or the
/// environment is gone. The server holds only a weak reference: the environment owns the
/// server task (and aborts it when dropped), not the other way round.
pub(crate) async fn serve(listener: TcpListener, environment: Weak<Environment>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::debug!(%error, "runtime API accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        if environment.strong_count() == 0 {
            return;
        }
        let environment = Weak::clone(&environment);
        tokio::spawn(async move {
            // Every sandbox can reach this port (they share the host's network): only the
            // environment's own processes may take its events or answer them.
            let owned = match (environment.upgrade(), stream.local_addr()) {
                (Some(owner), Ok(local)) => owner.owns_connection(peer, local),
                _ => false,
            };
            if !owned {
                tracing::warn!(%peer, "refused a Runtime API connection from outside the environment's sandbox");
                return;
            }
            let service = hyper::service::service_fn(move |request| {
                let environment = environment.upgrade();
                async move {
                    Ok::<_, Infallible>(match environment {
                        Some(environment) => handle(&environment, request).await,
                        None => error(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "EnvironmentGone",
                            "This execution environment has been shut down",
                        ),
                    })
                }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            if let Err(error) = connection.await {
                tracing::debug!(%error, "runtime API connection ended");
            }
        });
    }
}

/// Binds a loopback listener for a new environment.
pub(crate) async fn bind() -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let address = listener.local_addr()?;
    Ok((listener, address))
}

async fn handle(environment: &Environment, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    let Some(route) = path.strip_prefix(PREFIX) else {
        return error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "No such runtime API endpoint",
        );
    };
    let method = request.method().clone();
    match (method, route.split('/').collect::<Vec<_>>().as_slice()) {
        (Method::GET, ["invocation", "next"]) => next(environment).await,
        (Method::POST, ["invocation", request_id, "response"]) => {
            let request_id = (*request_id).to_owned();
            match read_body(request).await {
                Ok(body) => reply(environment, &request_id, RuntimeReply::Response(body)),
                Err(size) => {
                    let _ = environment.complete(&request_id, RuntimeReply::TooLarge(size));
                    error(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "RequestEntityTooLarge",
                        &format!(
                            "Exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."
                        ),
                    )
                }
            }
        }
        (Method::POST, ["invocation", request_id, "error"]) => {
            let request_id = (*request_id).to_owned();
            let error_type = error_type(&request);
            let body = read_body(request).await.unwrap_or_default();
            reply(
                environment,
                &request_id,
                RuntimeReply::Error { error_type, body },
            )
        }
        (Method::POST, ["init", "error"]) => {
            let error_type = error_type(&request);
            let body = read_body(request).await.unwrap_or_default();
            if environment.init_failed(error_type, body) {
                accepted()
            } else {
                error(
                    StatusCode::FORBIDDEN,
                    "InvalidStateTransition",
                    "State transition from Ready to InitError failed for runtime. Error: The runtime is already initialized",
                )
            }
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "No such runtime API endpoint",
        ),
    }
}

async fn next(environment: &Environment) -> Response<Full<Bytes>> {
    let Some(invocation) = environment.next_invocation().await else {
        return error(
            StatusCode::FORBIDDEN,
            "InvalidStateTransition",
            "State transition from RuntimeResponseSent to InvocationNext failed for runtime: \
             the previous invocation has no response yet",
        );
    };
    let mut response = Response::new(Full::new(invocation.payload.clone()));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    set("Lambda-Runtime-Aws-Request-Id", &invocation.request_id);
    set(
        "Lambda-Runtime-Deadline-Ms",
        &invocation.deadline_millis.to_string(),
    );
    set(
        "Lambda-Runtime-Invoked-Function-Arn",
        &invocation.invoked_function_arn,
    );
    set("Lambda-Runtime-Trace-Id", &invocation.trace_id);
    if let Some(client_context) = &invocation.client_context {
        set("Lambda-Runtime-Client-Context", client_context);
    }
    response
}

fn reply(
    environment: &Environment,
    request_id: &str,
    reply: RuntimeReply,
) -> Response<Full<Bytes>> {
    if environment.complete(request_id, reply) {
        accepted()
    } else {
        error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestID",
            "Invalid request ID",
        )
    }
}

fn error_type(request: &Request<Incoming>) -> String {
    request
        .headers()
        .get("Lambda-Runtime-Function-Error-Type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("Unhandled")
        .to_owned()
}

/// Bodies over the limit are still read (and discarded) up to this size, so that the runtime's
/// write completes and it gets the 413 instead of a broken pipe; past it the connection drops.
const MAX_DISCARDED_BYTES: usize = 64 * 1024 * 1024;

/// The body, or its size when over the limit.
async fn read_body(request: Request<Incoming>) -> Result<Bytes, usize> {
    let mut body = request.into_body();
    let mut collected = bytes::BytesMut::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        let Some(data) = frame.data_ref() else {
            continue;
        };
        total += data.len();
        if total <= MAX_RESPONSE_BYTES {
            collected.extend_from_slice(data);
        } else if total > MAX_DISCARDED_BYTES {
            break;
        }
    }
    if total > MAX_RESPONSE_BYTES {
        Err(total)
    } else {
        Ok(collected.freeze())
    }
}

fn accepted() -> Response<Full<Bytes>> {
    json(StatusCode::ACCEPTED, r#"{"status":"OK"}"#.to_owned())
}

fn error(status: StatusCode, error_type: &str, message: &str) -> Response<Full<Bytes>> {
    json(
        status,
        serde_json::json!({"errorType": error_type, "errorMessage": message}).to_string(),
    )
}

fn json(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
