//! Service tests on a temporary data directory: persistence across reopen, group commit,
//! FIFO rules, deduplication, redrive, visibility and long polling.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kiln_core::AccountContext;

use super::*;

fn account() -> AccountContext {
    AccountContext {
        partition: "aws".into(),
        account_id: "000000000000".into(),
        region: "us-east-1".into(),
    }
}

fn open(dir: &std::path::Path) -> QueueService {
    QueueService::open(dir, account()).unwrap()
}

fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn body(text: &str) -> SendRequest {
    SendRequest {
        body: text.into(),
        ..Default::default()
    }
}

fn fifo(text: &str, group: &str, dedup: &str) -> SendRequest {
    SendRequest {
        body: text.into(),
        group_id: Some(group.into()),
        dedup_id: Some(dedup.into()),
        ..Default::default()
    }
}

fn receive(max: usize) -> ReceiveRequest {
    ReceiveRequest {
        max_messages: max,
        wait: Duration::ZERO,
        visibility_timeout: None,
    }
}

/// Creates `source` with a redrive policy to a new queue `dead_letter`, which it returns.
async fn with_dead_letter_queue(
    service: &QueueService,
    source: &str,
    dead_letter: &str,
    max_receive_count: u32,
) -> crate::QueueInfo {
    let dlq = service
        .create_queue(dead_letter, &BTreeMap::new(), BTreeMap::new())
        .await
        .unwrap();
    let policy = format!(
        r#"{{"deadLetterTargetArn":"{}","maxReceiveCount":{max_receive_count}}}"#,
        dlq.arn
    );
    service
        .create_queue(
            source,
            &attrs(&[("RedrivePolicy", &policy)]),
            BTreeMap::new(),
        )
        .await
        .unwrap();
    dlq
}

fn bodies(messages: &[ReceivedMessage]) -> Vec<&str> {
    messages.iter().map(|m| m.body.as_str()).collect()
}

#[tokio::test]
async fn messages_and_deliveries_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let service = open(dir.path());
    let queue = service
        .create_queue("q", &attrs(&[("VisibilityTimeout", "60")]), BTreeMap::new())
        .await
        .unwrap();
    let mut attributes = BTreeMap::new();
    attributes.insert(
        "kind".to_owned(),
        MessageAttributeValue {
            data_type: "Binary".into(),
            string_value: None,
            binary_value: Some(vec![0, 1, 2]),
        },
    );
    for text in ["a", "b", "c"] {
        let mut request = body(text);
        request.message_attributes = attributes.clone();
        service.send(&queue.arn, request).await.unwrap();
    }
    let got = service.receive("q", receive(1)).await.unwrap();
    assert_eq!(bodies(&got), ["a"]);
    let second = service.receive("q", receive(1)).await.unwrap();
    service
        .delete("q", &second[0].receipt_handle)
        .await
        .unwrap();
    service.shutdown();
    drop(service);

    let service = open(dir.path());
    let info = service.queue_info("q").unwrap();
    assert_eq!(info.visibility_timeout, Duration::from_secs(60));
    // "a" is in flight for 60 s (persisted), "b" deleted, "c" visible.
    let got = service.receive("q", receive(10)).await.unwrap();
    assert_eq!(bodies(&got), ["c"]);
    assert_eq!(got[0].message_attributes, attributes);
    assert_eq!(
        got[0].md5_of_message_attributes,
        md5_of_message_attributes(&attributes)
    );
    let counts = service.get_attributes("q", &["All".to_owned()]).unwrap();
    assert_eq!(counts["ApproximateNumberOfMessagesNotVisible"], "2");
    // The receipt of "a" from before the restart still works.
    service.delete("q", &got[0].receipt_handle).await.unwrap();
    service.shutdown();
    assert_eq!(store::count_messages(dir.path()), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sends_share_commits() {
    let dir = tempfile::tempdir().unwrap();
    let service = open(dir.path());
    service
        .create_queue("q", &BTreeMap::new(), BTreeMap::new())
        .await
        .unwrap();
    let commits_before = service.commits();
    let mut tasks = Vec::new();
    for sender in 0..32 {
        let service = service.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..20 {
                let batch = (0..10)
                    .map(|i| body(&format!("{sender}-{n}-{i}")))
                    .collect();
                for outcome in service.send_batch("q", batch).await.unwrap() {
                    outcome.unwrap();
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let counts = service
        .get_attributes("q", &["ApproximateNumberOfMessages".to_owned()])
        .unwrap();
    assert_eq!(counts["ApproximateNumberOfMessages"], "6400");
    // 640 durable requests; with 32 senders waiting at once, commits carry several each.
    let commits = service.commits() - commits_before;
    assert!(
        commits < 640,
        "{commits} commits for 640 requests: no grouping"
    );
    service.shutdown();
    assert_eq!(store::count_messages(dir.path()), 6400);
}

#[tokio::test]
async fn fifo_groups_deliver_in_order_one_batch_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let service = open(dir.path());
    let err = service
        .create_queue("f", &attrs(&[("FifoQueue", "true")]), BTreeMap::new())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "InvalidParameterValue");
    service
        .create_queue("f.fifo", &attrs(&[("FifoQueue", "true")]), BTreeMap::new())
        .await
        .unwrap();
    let missing = service.send("f.fifo", body("x")).await.unwrap_err();
    assert_eq!(
        missing.to_string(),
        "The request must contain the parameter MessageGroupId."
    );
    let mut sequence = Vec::new();
    for (text, group) in [("a1", "a"), ("b1", "b"), ("a2", "a"), ("b2", "b")] {
        let outcome = service
            .send("f.fifo", fifo(text, group, text))
            .await
            .unwrap();
        sequence.push(outcome.sequence_number.unwrap());
    }
    assert!(sequence.windows(2).all(|w| w[0] < w[1]), "{sequence:?}");
    assert_eq!(sequence[0].len(), 20);
    let first = service.receive("f.fifo", receive(1)).await.unwrap();
    assert_eq!(bodies(&first), ["a1"]);
    // Group a is locked while a1 is in flight: b's messages come, in order.
    let next = service.receive("f.fifo", receive(10)).await.unwrap();
    assert_eq!(bodies(&next), ["b1", "b2"]);
    assert!(
        service
            .receive("f.fifo", receive(10))
            .await
            .unwrap()
            .is_empty()
    );
    service
        .delete("f.fifo", &first[0].receipt_handle)
        .await
        .unwrap();
    let last = service.receive("f.fifo", receive(10)).await.unwrap();
    assert_eq!(bodies(&last), ["a2"]);
    assert_eq!(last[0].system_attributes["MessageGroupId"], "a");
    assert_eq!(last[0].system_attributes["SequenceNumber"], sequence[2]);
}

#[tokio::test]
async fn fifo_deduplicates_within_the_window_and_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let service = open(dir.path());
    service
        .create_queue(
            "d.fifo",
            &attrs(&[("FifoQueue", "true"), ("ContentBasedDeduplication", "true")]),
            BTreeMap::new(),
        )
        .await
        .unwrap();
    let mut request = body("same");
    request.group_id = Some("g".into());
    let first = service.send("d.fifo", request.clone()).await.unwrap();
    let again = service.send("d.fifo", request.clone()).await.unwrap();
    assert_eq!(first.message_id, again.message_id);
    assert_eq!(first.sequence_number, again.sequence_number);
    service.shutdown();
    let service = open(dir.path());
    let after_restart = service.send("d.fifo", request).await.unwrap();
    assert_eq!(first.message_id, after_restart.message_id);
    let got = service.receive("d.fifo", receive(10)).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].system_attributes["MessageDeduplicationId"],
        sha256_hex(b"same")
    );
}

#[tokio::test]
async fn redrive_moves_messages_after_max_receives() {
    let dir = tempfile::tempdir().unwrap();
    let service = open(dir.path());
    with_dead_letter_queue(&service, "src", "dlq", 2).await;
    let sent = service.send("src", body("poison")).await.unwrap();
    let zero = ReceiveRequest {
        max_messages: 1,
        wait: Duration::ZERO,
        visibility_timeout: Some(Duration::ZERO),
    };
    for count in 1..=2 {
        let got = service.receive("src", zero.clone()).await.unwrap();
        assert_eq!(
            got[0].system_attributes["ApproximateReceiveCount"],
            count.to_string()
        );
    }
    assert!(service.receive("src", zero).await.unwrap().is_empty());
    let moved = service.receive("dlq", receive(1)).await.unwrap();
    assert_eq!(moved[0].message_id, sent.message_id);
    assert_eq!(
        moved[0].system_attributes["DeadLetterQueueSourceArn"],
        service.queue_info("src").unwrap().arn
    );
    let sources = service.dead_letter_sources("dlq").unwrap();
    assert_eq!(sources[0].name, "src");
}

#[tokio::test]
async fn received_messages_move_to_the_dead_letter_queue_on_demand() {
    let dir = tempfile::tempdir().unwrap();
    let dlq_arn = {
        let service = open(dir.path());
        let dlq = with_dead_letter_queue(&service, "src", "dlq", 5).await;
        service
            .create_queue("plain", &BTreeMap::new(), BTreeMap::new())
            .await
            .unwrap();
        let mut looping = body("looping");
        looping.trace_header = Some("Root=1-5759e988-bd862e3fe1be46a994272793".into());
        let sent = service.send("src", looping).await.unwrap();
        service.send("src", body("kept")).await.unwrap();
        let got = service.receive("src", receive(10)).await.unwrap();
        let handle = got
            .iter()
            .find(|m| m.message_id == sent.message_id)
            .unwrap()
            .receipt_handle
            .clone();
        let moved = service
            .move_to_dead_letter_queue("src", &[handle.clone(), handle])
            .await
            .unwrap();
        assert_eq!(moved, 1, "a second receipt of a moved message is stale");

        // Without a dead-letter queue the message is deleted.
        service.send("plain", body("dropped")).await.unwrap();
        let visible_at_once = ReceiveRequest {
            max_messages: 1,
            wait: Duration::ZERO,
            visibility_timeout: Some(Duration::ZERO),
        };
        let got = service.receive("plain", visible_at_once).await.unwrap();
        let moved = service
            .move_to_dead_letter_queue("plain", &[got[0].receipt_handle.clone()])
            .await
            .unwrap();
        assert_eq!(moved, 0);
        service.shutdown();
        dlq.arn
    };
    // Durable: after a restart the message is in the DLQ, intact, and gone from its source.
    let service = open(dir.path());
    let moved = service.receive(&dlq_arn, receive(10)).await.unwrap();
    assert_eq!(bodies(&moved), vec!["looping"]);
    assert_eq!(
        moved[0].system_attributes["AWSTraceHeader"],
        "Root=1-5759e988-bd862e3fe1be46a994272793"
    );
    let plain = service.receive("plain", receive(10)).await.unwrap();
    assert!(plain.is_empty(), "deleted, not returned");
    service.shutdown();
}

#[tokio::test]
async fn visibility_timeout_and_changes() {
    let dir = tempfile::tempdir().unwrap();
    let service = open(dir.path());
    service
        .create_queue("v", &BTreeMap::new(), BTreeMap::new())
        .await
        .unwrap();
    service.send("v", body("m")).await.unwrap();
    let short = ReceiveRequest {
        max_messages: 1,
        wait: Duration::ZERO,
        visibility_timeout: Some(Duration::from_secs(1)),
    };
    let got = service.receive("v", short).await.unwrap();
    assert!(service.receive("v", receive(1)).await.unwrap().is_empty());
    // Long poll returns when the visibility timeout ends.
    let started = Instant::now();
    let again = service
        .receive(
            "v",
            ReceiveRequest {
                max_messages: 1,
                wait: Duration::from_secs(5),
                visibility_timeout: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(bodies(&again), ["m"]);
    assert!(started.elapsed() < Duration::from_millis(1500));
    assert_eq!(again[0].system_attributes["ApproximateReceiveCount"], "2");
    // The first receipt is stale: deleting with it does nothing, changing with it fails.
    service.delete("v", &got[0].receipt_handle).await.unwrap();
    let stale = service
        .change_visibility("v", &got[0].receipt_handle, Duration::ZERO)
        .await
        .unwrap_err();
    assert_eq!(stale.code(), "MessageNotInflight");
    service
        .change_visibility("v", &again[0].receipt_handle, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(service.receive("v", receive(1)).await.unwrap().len(), 1);
    let invalid = service.delete("v", "garbage").await.unwrap_err();
    assert_eq!(invalid.code(), "ReceiptHandleIsInvalid");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_returns_as_soon_as_a_message_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let service = open(dir.path());
    service
        .create_queue("p", &BTreeMap::new(), BTreeMap::new())
        .await
        .unwrap();
    let sender = service.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        sender.send("p", body("late")).await.unwrap();
    });
    let started = Instant::now();
    let got = service
        .receive(
            "p",
            ReceiveRequest {
                max_messages: 1,
                wait: Duration::from_secs(5),
                visibility_timeout: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(bodies(&got), ["late"]);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn create_queue_is_idempotent_only_with_equal_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let service = open(dir.path());
    let a = attrs(&[("VisibilityTimeout", "45")]);
    service
        .create_queue("i", &a, BTreeMap::new())
        .await
        .unwrap();
    service
        .create_queue("i", &a, BTreeMap::new())
        .await
        .unwrap();
    service
        .create_queue("i", &BTreeMap::new(), BTreeMap::new())
        .await
        .unwrap();
    let err = service
        .create_queue("i", &attrs(&[("VisibilityTimeout", "46")]), BTreeMap::new())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "QueueNameExists");
    assert_eq!(
        err.to_string(),
        "A queue already exists with the same name and a different value for attribute VisibilityTimeout"
    );
    service.delete_queue("i").await.unwrap();
    assert_eq!(
        service.queue_info("i").unwrap_err().code(),
        "QueueDoesNotExist"
    );
}

#[tokio::test]
async fn delays_and_retention() {
    let dir = tempfile::tempdir().unwrap();
    let service = open(dir.path());
    service
        .create_queue("r", &BTreeMap::new(), BTreeMap::new())
        .await
        .unwrap();
    let mut delayed = body("later");
    delayed.delay = Some(Duration::from_secs(1));
    service.send("r", delayed).await.unwrap();
    let counts = service
        .get_attributes("r", &["ApproximateNumberOfMessagesDelayed".to_owned()])
        .unwrap();
    assert_eq!(counts["ApproximateNumberOfMessagesDelayed"], "1");
    assert!(service.receive("r", receive(1)).await.unwrap().is_empty());
    let got = service
        .receive(
            "r",
            ReceiveRequest {
                max_messages: 1,
                wait: Duration::from_secs(3),
                visibility_timeout: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(bodies(&got), ["later"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweeper_expires_messages_past_retention_durably() {
    let dir = tempfile::tempdir().unwrap();
    let service = open(dir.path());
    service
        .create_queue(
            "old",
            &attrs(&[("MessageRetentionPeriod", "60")]),
            BTreeMap::new(),
        )
        .await
        .unwrap();
    service.send("old", body("stale")).await.unwrap();
    service.send("old", body("fresh")).await.unwrap();
    service.shutdown();
    // Age the first message by two minutes, as if the server had been down that long.
    let connection = rusqlite::Connection::open(dir.path().join("queues.db")).unwrap();
    connection
        .execute(
            "UPDATE messages SET sent_ms = sent_ms - 120000 WHERE body = 'stale'",
            [],
        )
        .unwrap();
    drop(connection);
    let service = open(dir.path());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let counts = service
            .get_attributes("old", &["ApproximateNumberOfMessages".to_owned()])
            .unwrap();
        if counts["ApproximateNumberOfMessages"] == "1" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the stale message was not expired"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        bodies(&service.receive("old", receive(10)).await.unwrap()),
        ["fresh"]
    );
    service.shutdown();
    assert_eq!(store::count_messages(dir.path()), 1);
}
