//! `GET /_kiln/logs/{function}`: a function's log events as JSON lines, optionally followed
//! live (`?follow=true`), for `kiln logs`.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body::Frame;
use kiln_core::FunctionName;
use kiln_engine::execution::LogEvent;
use tokio::sync::{broadcast, mpsc};

use crate::ApiState;
use crate::error::ApiError;

/// Serves the logs of `function` since `since` (epoch milliseconds).
pub(crate) async fn serve(state: &ApiState, function: &str, since: i64, follow: bool) -> Response {
    let group: Arc<str> = Arc::from(log_group(state, function));
    // Subscribe before reading the stored events, so nothing falls between the two.
    let live = follow.then(|| state.engine().logs().subscribe());
    let stored = match state.engine().logs().read(&group, since).await {
        Ok(events) => events,
        Err(error) => {
            tracing::error!(%error, %group, "reading logs failed");
            return ApiError::internal("The logs could not be read.").into_response();
        }
    };
    let (sender, receiver) = mpsc::channel::<Bytes>(256);
    let last_stored = stored.last().map(|event| event.timestamp_millis);
    for event in &stored {
        if sender.try_send(line(event)).is_err() {
            break;
        }
    }
    let backlog: Vec<Bytes> = stored.iter().skip(256).map(line).collect();
    let follow_group = Arc::clone(&group);
    tokio::spawn(async move {
        for entry in backlog {
            if sender.send(entry).await.is_err() {
                return;
            }
        }
        let Some(mut live) = live else { return };
        loop {
            match live.recv().await {
                Ok(event) if event.group == follow_group => {
                    // Events stored before the read above were already sent.
                    if last_stored.is_some_and(|last| event.timestamp_millis < last) {
                        continue;
                    }
                    if sender.send(line(&event)).await.is_err() {
                        return;
                    }
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::new(Lines { receiver }),
    )
        .into_response()
}

/// The function's log group (its configured one, else Lambda's default).
fn log_group(state: &ApiState, function: &str) -> String {
    FunctionName::parse(function)
        .ok()
        .and_then(|name| state.engine().function(&name).ok())
        .map(|function| function.latest.config.logging.log_group.clone())
        .unwrap_or_else(|| format!("/aws/lambda/{function}"))
}

fn line(event: &LogEvent) -> Bytes {
    let mut text = serde_json::json!({
        "timestamp": event.timestamp_millis,
        "logStreamName": &*event.stream,
        "message": event.message,
    })
    .to_string();
    text.push('\n');
    Bytes::from(text)
}

/// A response body fed by a channel; ends when the sender is dropped.
struct Lines {
    receiver: mpsc::Receiver<Bytes>,
}

impl http_body::Body for Lines {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.receiver
            .poll_recv(context)
            .map(|line| line.map(|line| Ok(Frame::data(line))))
    }
}
