use std::io::Write;
use std::time::Duration;

use kiln_core::{
    AdditionalVersion, Architecture, EventSourceState, LoggingConfig, PackageType, TracingMode,
};

use super::*;

fn account() -> AccountContext {
    AccountContext {
        partition: "aws".into(),
        account_id: "000000000000".into(),
        region: "us-east-1".into(),
    }
}

fn zip_of(files: &[(&str, &str)]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, content) in files {
        writer
            .start_file(*name, zip::write::SimpleFileOptions::default())
            .unwrap();
        writer.write_all(content.as_bytes()).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

fn config(name: &FunctionName) -> FunctionConfig {
    FunctionConfig {
        description: String::new(),
        runtime: "python3.12".into(),
        handler: "app.handler".into(),
        role: "arn:aws:iam::000000000000:role/r".into(),
        memory_size_mb: 128,
        timeout_seconds: 3,
        environment: None,
        ephemeral_storage_mb: 512,
        architecture: Architecture::X86_64,
        package_type: PackageType::Zip,
        tracing_mode: TracingMode::PassThrough,
        logging: LoggingConfig::default_for(name),
        kms_key_arn: None,
        vpc: None,
        dead_letter: None,
        layers: Vec::new(),
    }
}

async fn start(dir: &std::path::Path) -> Engine {
    Engine::start(
        Store::open(dir).unwrap(),
        account(),
        EngineConfig::default(),
        None,
    )
    .await
    .unwrap()
}

async fn create(engine: &Engine, name: &str, code: &str) -> FunctionVersion {
    let name = FunctionName::parse(name).unwrap();
    engine
        .create_function(NewFunction {
            config: config(&name),
            name,
            zip: zip_of(&[("app.py", code)]),
            tags: BTreeMap::new(),
            publish: false,
        })
        .await
        .unwrap()
}

async fn wait_until_active(engine: &Engine, name: &str) -> Arc<Function> {
    let name = FunctionName::parse(name).unwrap();
    for _ in 0..200 {
        let function = engine.function(&name).unwrap();
        let settled = function.latest.state.state == FunctionState::Active
            && function
                .latest
                .last_update
                .as_ref()
                .is_some_and(|u| u.status == LastUpdateStatus::Successful);
        if settled {
            return function;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("{name} never became active");
}

#[tokio::test]
async fn create_starts_pending_then_becomes_active() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(dir.path()).await;
    let created = create(&engine, "f", "x = 1").await;
    assert_eq!(created.state.state, FunctionState::Pending);
    assert_eq!(created.state.reason_code.as_deref(), Some("Creating"));
    assert!(created.last_update.is_none());

    let active = wait_until_active(&engine, "f").await;
    assert_ne!(active.latest.revision_id, created.revision_id);
    assert_eq!(active.latest.state.reason, None);

    let duplicate = engine
        .create_function(NewFunction {
            name: FunctionName::parse("f").unwrap(),
            config: config(&FunctionName::parse("f").unwrap()),
            zip: zip_of(&[("a", "b")]),
            tags: BTreeMap::new(),
            publish: false,
        })
        .await;
    assert!(matches!(duplicate, Err(EngineError::FunctionExists { .. })));
}

#[tokio::test]
async fn updates_honour_revision_preconditions() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(dir.path()).await;
    create(&engine, "f", "x = 1").await;
    let active = wait_until_active(&engine, "f").await;
    let name = active.name.clone();

    let stale = engine
        .update_function_configuration(
            &name,
            ConfigUpdate {
                memory_size_mb: Some(256),
                ..ConfigUpdate::default()
            },
            Some("not-the-revision"),
        )
        .await;
    assert!(matches!(stale, Err(EngineError::RevisionMismatch)));

    let updated = engine
        .update_function_configuration(
            &name,
            ConfigUpdate {
                memory_size_mb: Some(256),
                environment: Some(Some(vec![("A".into(), "1".into())])),
                ..ConfigUpdate::default()
            },
            Some(&active.latest.revision_id),
        )
        .await
        .unwrap();
    assert_eq!(updated.config.memory_size_mb, 256);
    assert_eq!(
        updated.last_update.as_ref().map(|u| u.status),
        Some(LastUpdateStatus::InProgress)
    );
    let settled = wait_until_active(&engine, "f").await;
    assert_eq!(
        settled.latest.config.environment,
        Some(vec![("A".into(), "1".into())])
    );
    assert_eq!(
        settled.latest.config.handler, "app.handler",
        "untouched fields stay"
    );
}

#[tokio::test]
async fn code_updates_replace_the_package_and_collect_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(dir.path()).await;
    let first = create(&engine, "f", "v = 1").await;
    wait_until_active(&engine, "f").await;
    let name = FunctionName::parse("f").unwrap();
    let second = engine
        .update_function_code(
            &name,
            CodeUpdate {
                zip: zip_of(&[("app.py", "v = 2")]),
                architecture: None,
                expected_revision: None,
                dry_run: false,
                publish: false,
            },
        )
        .await
        .unwrap();
    assert_ne!(first.code.sha256_hex, second.code.sha256_hex);
    wait_until_active(&engine, "f").await;
    // The old package is collected in the background.
    let store_blobs = engine.blobs().clone();
    for _ in 0..200 {
        if store_blobs.list().unwrap() == vec![second.code.sha256_hex.clone()] {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("old code was not collected: {:?}", store_blobs.list());
}

#[tokio::test]
async fn invalid_code_is_refused_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(dir.path()).await;
    let name = FunctionName::parse("bad").unwrap();
    let refused = engine
        .create_function(NewFunction {
            config: config(&name),
            name: name.clone(),
            zip: zip_of(&[("../escape", "x")]),
            tags: BTreeMap::new(),
            publish: false,
        })
        .await;
    assert!(
        matches!(refused, Err(EngineError::InvalidZip(_))),
        "{refused:?}"
    );
    let refused = engine
        .create_function(NewFunction {
            config: config(&name),
            name,
            zip: b"garbage".to_vec(),
            tags: BTreeMap::new(),
            publish: false,
        })
        .await;
    assert!(
        matches!(refused, Err(EngineError::InvalidZip(_))),
        "{refused:?}"
    );
    assert!(engine.functions().is_empty());
    assert!(engine.blobs().list().unwrap().is_empty());
}

#[tokio::test]
async fn state_survives_restart_and_interrupted_deployments_resume() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = start(dir.path()).await;
        create(&engine, "kept", "a = 1").await;
        wait_until_active(&engine, "kept").await;
        engine
            .tag_function(
                &FunctionName::parse("kept").unwrap(),
                BTreeMap::from([("k".into(), "v".into())]),
                50,
            )
            .await
            .unwrap();
    }
    // Simulate a crash between "persisted as Pending" and "deployed": write a Pending record
    // straight into the store.
    {
        let store = Store::open(dir.path()).unwrap();
        let mut functions = store.load_functions().unwrap();
        let mut pending = functions.remove(0);
        pending.name = FunctionName::parse("crashed").unwrap();
        pending.tags.clear();
        pending.latest.state = StateInfo {
            state: FunctionState::Pending,
            reason: Some("The function is being created.".into()),
            reason_code: Some("Creating".into()),
        };
        pending.latest.last_update = None;
        store.insert_function(&pending).unwrap();
    }
    let engine = start(dir.path()).await;
    let kept = engine
        .function(&FunctionName::parse("kept").unwrap())
        .unwrap();
    assert_eq!(kept.tags.get("k").map(String::as_str), Some("v"));
    wait_until_active(&engine, "crashed").await;
    assert_eq!(engine.usage().function_count, 2);
}

#[tokio::test]
async fn delete_removes_function_and_code() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(dir.path()).await;
    create(&engine, "gone", "z = 0").await;
    let name = FunctionName::parse("gone").unwrap();
    assert!(matches!(
        engine.delete_function(&name, Some(VersionId::Latest)).await,
        Err(EngineError::CannotDeleteLatest)
    ));
    // Deleting a version that does not exist succeeds, as on Lambda.
    engine
        .delete_function(&name, Some(VersionId::Published(3)))
        .await
        .unwrap();
    assert!(engine.function(&name).is_ok());
    engine.delete_function(&name, None).await.unwrap();
    assert!(matches!(
        engine.function(&name),
        Err(EngineError::FunctionNotFound { .. })
    ));
    assert!(engine.blobs().list().unwrap().is_empty());
    drop(engine);
    let engine = start(dir.path()).await;
    assert!(engine.functions().is_empty());
}

#[tokio::test]
async fn tags_are_merged_removed_and_limited() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(dir.path()).await;
    create(&engine, "t", "t = 1").await;
    let name = FunctionName::parse("t").unwrap();
    let before = engine.function(&name).unwrap().latest.revision_id.clone();
    engine
        .tag_function(
            &name,
            BTreeMap::from([("a".into(), "1".into()), ("b".into(), "2".into())]),
            50,
        )
        .await
        .unwrap();
    let after = engine.function(&name).unwrap();
    assert_ne!(after.latest.revision_id, before, "tags change the revision");
    engine
        .untag_function(&name, &["a".into(), "missing".into()])
        .await
        .unwrap();
    assert_eq!(
        engine.function(&name).unwrap().tags,
        BTreeMap::from([("b".into(), "2".into())])
    );
    let too_many: BTreeMap<String, String> =
        (0..50).map(|i| (format!("k{i}"), String::new())).collect();
    assert!(matches!(
        engine.tag_function(&name, too_many, 50).await,
        Err(EngineError::TooManyTags)
    ));
}

#[tokio::test]
async fn functions_are_listed_in_name_order() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(dir.path()).await;
    for name in ["c", "a", "b"] {
        create(&engine, name, name).await;
    }
    let names = |page: Vec<Arc<Function>>| -> Vec<String> {
        page.iter().map(|f| f.name.to_string()).collect()
    };
    assert_eq!(names(engine.functions()), ["a", "b", "c"]);
}

#[tokio::test]
async fn updates_are_refused_while_another_is_in_progress() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(dir.path()).await;
    let name = FunctionName::parse("busy").unwrap();
    create(&engine, "busy", "b = 1").await;
    // The test runtime is single-threaded: the deployment spawned by the create has not run
    // yet, so the function is still Pending.
    let refused = engine
        .update_function_configuration(&name, ConfigUpdate::default(), None)
        .await;
    assert!(matches!(
        refused,
        Err(EngineError::Busy {
            activity: BusyActivity::Creating,
            ..
        })
    ));
    wait_until_active(&engine, "busy").await;
    engine
        .update_function_configuration(&name, ConfigUpdate::default(), None)
        .await
        .unwrap();
    let refused = engine
        .update_function_code(
            &name,
            CodeUpdate {
                zip: zip_of(&[("app.py", "b = 2")]),
                architecture: None,
                expected_revision: None,
                dry_run: false,
                publish: false,
            },
        )
        .await;
    assert!(matches!(
        refused,
        Err(EngineError::Busy {
            activity: BusyActivity::Updating,
            ..
        })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_a_create_race_leaves_no_code_behind() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(dir.path()).await;
    let name = FunctionName::parse("raced").unwrap();
    let attempts: Vec<_> = (0..4)
        .map(|i| {
            let engine = engine.clone();
            let name = name.clone();
            tokio::spawn(async move {
                engine
                    .create_function(NewFunction {
                        config: config(&name),
                        name,
                        zip: zip_of(&[("app.py", &format!("attempt = {i}"))]),
                        tags: BTreeMap::new(),
                        publish: false,
                    })
                    .await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(version) => winners.push(version),
            Err(error) => assert!(matches!(error, EngineError::FunctionExists { .. })),
        }
    }
    assert_eq!(winners.len(), 1);
    assert_eq!(
        engine.blobs().list().unwrap(),
        vec![winners[0].code.sha256_hex.clone()],
        "only the winner's package is kept"
    );
}

#[tokio::test]
async fn dry_run_code_updates_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(dir.path()).await;
    let created = create(&engine, "dry", "d = 1").await;
    wait_until_active(&engine, "dry").await;
    let name = FunctionName::parse("dry").unwrap();
    let preview = engine
        .update_function_code(
            &name,
            CodeUpdate {
                zip: zip_of(&[("app.py", "d = 2")]),
                architecture: None,
                expected_revision: None,
                dry_run: true,
                publish: false,
            },
        )
        .await
        .unwrap();
    assert_ne!(preview.code.sha256_hex, created.code.sha256_hex);
    assert_eq!(
        engine.blobs().list().unwrap(),
        vec![created.code.sha256_hex.clone()]
    );
    let settled = engine.function(&name).unwrap();
    assert_eq!(settled.latest.code, created.code, "nothing changed");
}

fn name(text: &str) -> FunctionName {
    FunctionName::parse(text).unwrap()
}

async fn set_memory(engine: &Engine, function: &str, memory_size_mb: u32) {
    engine
        .update_function_configuration(
            &name(function),
            ConfigUpdate {
                memory_size_mb: Some(memory_size_mb),
                ..ConfigUpdate::default()
            },
            None,
        )
        .await
        .unwrap();
    wait_until_active(engine, function).await;
}

async fn publish(engine: &Engine, function: &str) -> u64 {
    match engine
        .publish_version(&name(function), PublishRequest::default())
        .await
        .unwrap()
        .version_id()
    {
        VersionId::Published(number) => number,
        VersionId::Latest => panic!("published $LATEST"),
    }
}

#[tokio::test]
async fn versions_are_numbered_once_and_snapshot_latest() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(dir.path()).await;
    create(&engine, "f", "x = 1").await;
    let before = wait_until_active(&engine, "f").await;
    assert_eq!(publish(&engine, "f").await, 1);
    let after = engine.function(&name("f")).unwrap();
    assert_ne!(after.latest.revision_id, before.latest.revision_id);
    assert_eq!(
        publish(&engine, "f").await,
        1,
        "nothing changed: the same version"
    );

    set_memory(&engine, "f", 256).await;
    assert_eq!(publish(&engine, "f").await, 2);
    let function = engine.function(&name("f")).unwrap();
    assert_eq!(function.published[&1].config.memory_size_mb, 128);
    assert_eq!(function.published[&2].config.memory_size_mb, 256);

    engine
        .delete_function(&name("f"), Some(VersionId::Published(2)))
        .await
        .unwrap();
    set_memory(&engine, "f", 512).await;
    assert_eq!(publish(&engine, "f").await, 3, "2 is never reused");
    drop(engine);

    let engine = start(dir.path()).await;
    set_memory(&engine, "f", 1024).await;
    assert_eq!(
        publish(&engine, "f").await,
        4,
        "the counter survives a restart"
    );
    let function = engine.function(&name("f")).unwrap();
    assert_eq!(
        function.published.keys().copied().collect::<Vec<_>>(),
        vec![1, 3, 4]
    );
}

#[tokio::test]
async fn publish_checks_preconditions_and_refuses_while_busy() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(dir.path()).await;
    create(&engine, "f", "x = 1").await;
    let function = wait_until_active(&engine, "f").await;
    let wrong_sha = engine
        .publish_version(
            &name("f"),
            PublishRequest {
                code_sha256: Some("nope".into()),
                ..PublishRequest::default()
            },
        )
        .await;
    assert!(matches!(
        wrong_sha,
        Err(EngineError::CodeShaMismatch { .. })
    ));
    let wrong_revision = engine
        .publish_version(
            &name("f"),
            PublishRequest {
                expected_revision: Some("stale".into()),
                ..PublishRequest::default()
            },
        )
        .await;
    assert!(matches!(wrong_revision, Err(EngineError::RevisionMismatch)));
    let published = engine
        .publish_version(
            &name("f"),
            PublishRequest {
                code_sha256: Some(function.latest.code.sha256_base64.clone()),
                expected_revision: Some(function.latest.revision_id.clone()),
                description: Some("v1".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(published.config.description, "v1");
    assert_eq!(published.state.state, FunctionState::Active);
}

#[tokio::test]
async fn publish_with_code_update_keeps_old_code_for_old_versions() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(dir.path()).await;
    let created = engine
        .create_function(NewFunction {
            name: name("f"),
            config: config(&name("f")),
            zip: zip_of(&[("app.py", "x = 1")]),
            tags: BTreeMap::new(),
            publish: true,
        })
        .await
        .unwrap();
    assert_eq!(created.version_id(), VersionId::Published(1));
    assert_eq!(created.state.state, FunctionState::Pending);
    wait_until_active(&engine, "f").await;
    let function = engine.function(&name("f")).unwrap();
    assert_eq!(function.published[&1].state.state, FunctionState::Active);
    let first_code = function.published[&1].code.sha256_hex.clone();

    let updated = engine
        .update_function_code(
            &name("f"),
            CodeUpdate {
                zip: zip_of(&[("app.py", "x = 2")]),
                architecture: None,
                expected_revision: None,
                dry_run: false,
                publish: true,
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.version_id(), VersionId::Published(2));
    wait_until_active(&engine, "f").await;
    // The collector runs after the update; give it a moment before checking it kept version
    // 1's package.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        engine.blobs().read(&first_code).is_ok(),
        "version 1 keeps its code"
    );
    let function = engine.function(&name("f")).unwrap();
    assert_eq!(function.published[&2].state.state, FunctionState::Active);
    assert_ne!(function.published[&2].code.sha256_hex, first_code);
}

#[tokio::test]
async fn aliases_route_by_weight_and_pin_their_versions() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(dir.path()).await;
    create(&engine, "f", "x = 1").await;
    wait_until_active(&engine, "f").await;
    publish(&engine, "f").await;
    set_memory(&engine, "f", 256).await;
    publish(&engine, "f").await;

    let same = engine
        .create_alias(
            &name("f"),
            NewAlias {
                name: "live".into(),
                function_version: VersionId::Published(1),
                description: String::new(),
                routing: Some(AdditionalVersion {
                    version: 1,
                    weight: 0.5,
                }),
            },
        )
        .await;
    assert!(matches!(
        same,
        Err(EngineError::InvalidAlias(AliasRule::AdditionalIsPrimary(1)))
    ));
    let alias = engine
        .create_alias(
            &name("f"),
            NewAlias {
                name: "live".into(),
                function_version: VersionId::Published(1),
                description: String::new(),
                routing: Some(AdditionalVersion {
                    version: 2,
                    weight: 0.25,
                }),
            },
        )
        .await
        .unwrap();
    let qualifier = Qualifier::Alias("live".into());
    let mut second = 0;
    for _ in 0..4000 {
        let target = engine
            .resolve_invocation(&name("f"), Some(&qualifier))
            .unwrap();
        assert_eq!(
            target.invoked_function_arn,
            "arn:aws:lambda:us-east-1:000000000000:function:f:live"
        );
        if target.version == VersionId::Published(2) {
            second += 1;
        }
    }
    // Binomial(4000, 0.25): standard deviation ~27.
    assert!(
        (880..=1120).contains(&second),
        "{second} of 4000 went to version 2"
    );

    for version in [1, 2] {
        let refused = engine
            .delete_function(&name("f"), Some(VersionId::Published(version)))
            .await;
        assert!(
            matches!(&refused, Err(EngineError::VersionInUse { aliases }) if aliases == &["live"]),
            "{refused:?}"
        );
    }
    let stale = engine
        .update_alias(
            &name("f"),
            "live",
            AliasChange {
                expected_revision: Some("stale".into()),
                ..AliasChange::default()
            },
        )
        .await;
    assert!(matches!(stale, Err(EngineError::RevisionMismatch)));
    let moved = engine
        .update_alias(
            &name("f"),
            "live",
            AliasChange {
                function_version: Some(VersionId::Published(2)),
                routing: Some(None),
                expected_revision: Some(alias.revision_id.clone()),
                ..AliasChange::default()
            },
        )
        .await
        .unwrap();
    assert_ne!(moved.revision_id, alias.revision_id);
    engine
        .delete_function(&name("f"), Some(VersionId::Published(1)))
        .await
        .unwrap();
    drop(engine);

    let engine = start(dir.path()).await;
    assert_eq!(engine.alias(&name("f"), "live").unwrap(), moved);
    engine.delete_alias(&name("f"), "live").await.unwrap();
    engine.delete_alias(&name("f"), "live").await.unwrap();
    assert!(matches!(
        engine.alias(&name("f"), "live"),
        Err(EngineError::AliasNotFound { .. })
    ));
}

async fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

fn queue_counts(queues: &kiln_queues::QueueService, arn: &str) -> (String, String) {
    let attributes = queues
        .get_attributes(
            arn,
            &[
                "ApproximateNumberOfMessages".to_owned(),
                "ApproximateNumberOfMessagesNotVisible".to_owned(),
            ],
        )
        .unwrap();
    (
        attributes["ApproximateNumberOfMessages"].clone(),
        attributes["ApproximateNumberOfMessagesNotVisible"].clone(),
    )
}

#[tokio::test]
async fn sqs_mappings_feed_functions_and_follow_their_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    let queues = kiln_queues::QueueService::open(&dir.path().join("queues"), account()).unwrap();
    let engine = Engine::start(
        Store::open(dir.path()).unwrap(),
        account(),
        EngineConfig::default(),
        Some(queues.clone()),
    )
    .await
    .unwrap();
    let queue = queues
        .create_queue("source", &BTreeMap::new(), BTreeMap::new())
        .await
        .unwrap();
    create(
        &engine,
        "f",
        "def handler(event, context):\n    assert event['Records'][0]['eventSource'] == 'aws:sqs'\n",
    )
    .await;
    wait_until_active(&engine, "f").await;
    let new = |arn: &str| NewEventSourceMapping {
        event_source_arn: arn.to_owned(),
        function_name: name("f"),
        qualifier: None,
        batch_size: None,
        maximum_batching_window_seconds: None,
        enabled: true,
        filter_patterns: None,
        report_batch_item_failures: false,
        maximum_concurrency: None,
    };
    let missing = engine
        .create_event_source_mapping(new("arn:aws:sqs:us-east-1:000000000000:nope"))
        .await;
    assert!(matches!(missing, Err(EngineError::EventSourceQueueMissing)));
    let mapping = engine
        .create_event_source_mapping(new(&queue.arn))
        .await
        .unwrap();
    assert_eq!(mapping.state, EventSourceState::Creating);
    assert_eq!(mapping.batch_size, 10);
    let duplicate = engine.create_event_source_mapping(new(&queue.arn)).await;
    assert!(matches!(
        duplicate,
        Err(EngineError::DuplicateEventSourceMapping { .. })
    ));
    wait_for("the mapping is enabled", || {
        engine.event_source_mapping(&mapping.uuid).unwrap().state == EventSourceState::Enabled
    })
    .await;

    for n in 0..25 {
        queues
            .send(
                &queue.arn,
                kiln_queues::SendRequest {
                    body: format!("message {n}"),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    }
    wait_for("every message is processed and deleted", || {
        queue_counts(&queues, &queue.arn) == ("0".into(), "0".into())
    })
    .await;

    let disabling = engine
        .update_event_source_mapping(
            &mapping.uuid,
            EventSourceMappingUpdate {
                enabled: Some(false),
                ..EventSourceMappingUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(disabling.state, EventSourceState::Disabling);
    wait_for("the mapping is disabled", || {
        engine.event_source_mapping(&mapping.uuid).unwrap().state == EventSourceState::Disabled
    })
    .await;
    queues
        .send(
            &queue.arn,
            kiln_queues::SendRequest {
                body: "while disabled".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(queue_counts(&queues, &queue.arn), ("1".into(), "0".into()));
    engine.shutdown();
    drop(engine);

    // After a restart the mapping is still there, disabled; enabling it resumes polling.
    let engine = Engine::start(
        Store::open(dir.path()).unwrap(),
        account(),
        EngineConfig::default(),
        Some(queues.clone()),
    )
    .await
    .unwrap();
    assert_eq!(
        engine.event_source_mapping(&mapping.uuid).unwrap().state,
        EventSourceState::Disabled
    );
    engine
        .update_event_source_mapping(
            &mapping.uuid,
            EventSourceMappingUpdate {
                enabled: Some(true),
                ..EventSourceMappingUpdate::default()
            },
        )
        .await
        .unwrap();
    wait_for("the message sent while disabled is processed", || {
        queue_counts(&queues, &queue.arn) == ("0".into(), "0".into())
    })
    .await;
    let deleting = engine
        .delete_event_source_mapping(&mapping.uuid)
        .await
        .unwrap();
    assert_eq!(deleting.state, EventSourceState::Deleting);
    wait_for("the mapping is gone", || {
        engine.event_source_mapping(&mapping.uuid).is_err()
    })
    .await;
    engine.shutdown();
}

#[tokio::test]
async fn any_change_of_latest_publishes_a_new_version() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(dir.path()).await;
    create(&engine, "f", "x = 1").await;
    wait_until_active(&engine, "f").await;
    assert_eq!(publish(&engine, "f").await, 1);
    engine
        .update_function_configuration(
            &name("f"),
            ConfigUpdate {
                description: Some("only the description".into()),
                ..ConfigUpdate::default()
            },
            None,
        )
        .await
        .unwrap();
    wait_until_active(&engine, "f").await;
    assert_eq!(
        publish(&engine, "f").await,
        2,
        "as AWS: a description change counts"
    );
    // A tag change gives $LATEST a new revision but is no change of the function itself.
    engine
        .tag_function(&name("f"), BTreeMap::from([("k".into(), "v".into())]), 50)
        .await
        .unwrap();
    assert_eq!(publish(&engine, "f").await, 2);
}
