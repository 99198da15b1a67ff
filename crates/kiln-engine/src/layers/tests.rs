use std::io::Write;
use std::time::Duration;

use kiln_core::{
    AccountContext, Architecture, FunctionConfig, FunctionName, FunctionState, LastUpdateStatus,
    LoggingConfig, PackageType, TracingMode,
};
use kiln_store::Store;

use super::*;
use crate::{ConfigUpdate, EngineConfig, NewFunction};

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

async fn start(dir: &std::path::Path, config: EngineConfig) -> Engine {
    Engine::start(Store::open(dir).unwrap(), account(), config, None)
        .await
        .unwrap()
}

fn new_layer(name: &str, files: &[(&str, &str)]) -> NewLayerVersion {
    NewLayerVersion {
        layer_name: name.into(),
        description: String::new(),
        compatible_runtimes: None,
        compatible_architectures: Some(vec![Architecture::X86_64]),
        license_info: None,
        zip: zip_of(files),
    }
}

fn function_config(name: &FunctionName, layers: Vec<FunctionLayer>) -> FunctionConfig {
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
        layers,
    }
}

async fn wait_deployed(engine: &Engine, name: &FunctionName) {
    for _ in 0..400 {
        let function = engine.function(name).unwrap();
        if function.latest.state.state == FunctionState::Active
            && function
                .latest
                .last_update
                .as_ref()
                .is_some_and(|update| update.status == LastUpdateStatus::Successful)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("{name} was never deployed");
}

fn merged_trees(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir.join("layers-merged"))
        .unwrap()
        .count()
}

#[tokio::test]
async fn versions_are_numbered_once_and_for_all() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = start(dir.path(), EngineConfig::default()).await;
        let files = [("python/a.py", "A = 1")];
        assert_eq!(
            engine
                .publish_layer_version(new_layer("l", &files))
                .await
                .unwrap()
                .version,
            1
        );
        assert_eq!(
            engine
                .publish_layer_version(new_layer("l", &files))
                .await
                .unwrap()
                .version,
            2
        );
        engine.delete_layer_version("l", 2).await.unwrap();
        engine.delete_layer_version("l", 2).await.unwrap();
        engine.delete_layer_version("l", 1).await.unwrap();
        assert!(engine.layers().is_empty());
    }
    let engine = start(dir.path(), EngineConfig::default()).await;
    let next = engine
        .publish_layer_version(new_layer("l", &[("x", "y")]))
        .await
        .unwrap();
    assert_eq!(next.version, 3, "numbers survive deletion and restarts");
    assert_eq!(
        engine
            .layer_versions("l")
            .iter()
            .map(|v| v.version)
            .collect::<Vec<_>>(),
        [3]
    );
}

#[tokio::test]
async fn a_deleted_layer_version_stays_with_its_functions_until_they_go() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(dir.path(), EngineConfig::default()).await;
    let layer = engine
        .publish_layer_version(new_layer("deps", &[("python/mylib.py", "V = 1")]))
        .await
        .unwrap();
    let digest = layer.code.sha256_hex.clone();
    let (layers, pins) = engine.resolve_layers(&[("deps".into(), 1)]).unwrap();
    let name = FunctionName::parse("f").unwrap();
    engine
        .create_function(NewFunction {
            config: function_config(&name, layers),
            name: name.clone(),
            zip: zip_of(&[("app.py", "import mylib")]),
            tags: Default::default(),
            publish: false,
        })
        .await
        .unwrap();
    drop(pins);
    wait_deployed(&engine, &name).await;
    assert_eq!(merged_trees(dir.path()), 1, "the deployment built /opt");

    engine.delete_layer_version("deps", 1).await.unwrap();
    assert!(engine.layer_version("deps", 1).is_none());
    assert!(
        engine.blobs().path(&digest).exists(),
        "the function still uses it"
    );
    drop(engine);
    let engine = start(dir.path(), EngineConfig::default()).await;
    assert!(
        engine.blobs().path(&digest).exists(),
        "the start-up sweep keeps it"
    );
    assert_eq!(merged_trees(dir.path()), 1);

    // Dropping the layers from the function releases the package and the merged tree.
    engine
        .update_function_configuration(
            &name,
            ConfigUpdate {
                layers: Some(Vec::new()),
                ..ConfigUpdate::default()
            },
            None,
        )
        .await
        .unwrap();
    for _ in 0..200 {
        if !engine.blobs().path(&digest).exists() && merged_trees(dir.path()) == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the released layer package or its merged tree was not collected");
}

#[tokio::test]
async fn code_and_layers_share_the_unzipped_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = EngineConfig::default();
    config.code_limits.max_unzipped_bytes = 100;
    let engine = start(dir.path(), config).await;
    engine
        .publish_layer_version(new_layer("big", &[("blob", &"x".repeat(60))]))
        .await
        .unwrap();
    let (layers, _pins) = engine.resolve_layers(&[("big".into(), 1)]).unwrap();
    let name = FunctionName::parse("f").unwrap();
    let refused = engine
        .create_function(NewFunction {
            config: function_config(&name, layers),
            name: name.clone(),
            zip: zip_of(&[("app.py", &"y".repeat(50))]),
            tags: Default::default(),
            publish: false,
        })
        .await;
    assert!(matches!(
        refused,
        Err(EngineError::CodeWithLayersTooLarge {
            limit: 100,
            actual: 110
        })
    ));
    assert!(engine.function(&name).is_err());
}

#[tokio::test]
async fn policies_check_revisions_and_statement_ids() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(dir.path(), EngineConfig::default()).await;
    engine
        .publish_layer_version(new_layer("p", &[("a", "b")]))
        .await
        .unwrap();
    let statement = |id: &str| NewLayerStatement {
        statement: LayerStatement {
            statement_id: id.into(),
            principal: "*".into(),
            action: "lambda:GetLayerVersion".into(),
            organization_id: None,
        },
        expected_revision: None,
    };
    let (_, first) = engine
        .add_layer_permission("p", 1, statement("s1"))
        .await
        .unwrap();
    assert!(matches!(
        engine.add_layer_permission("p", 1, statement("s1")).await,
        Err(EngineError::StatementExists { .. })
    ));
    let stale = NewLayerStatement {
        expected_revision: Some("stale".into()),
        ..statement("s2")
    };
    assert!(matches!(
        engine.add_layer_permission("p", 1, stale).await,
        Err(EngineError::PolicyRevisionMismatch)
    ));
    let fresh = NewLayerStatement {
        expected_revision: Some(first),
        ..statement("s2")
    };
    engine.add_layer_permission("p", 1, fresh).await.unwrap();
    assert!(matches!(
        engine.remove_layer_permission("p", 1, "nope", None).await,
        Err(EngineError::StatementNotFound { .. })
    ));
    engine
        .remove_layer_permission("p", 1, "s1", None)
        .await
        .unwrap();
    engine
        .remove_layer_permission("p", 1, "s2", None)
        .await
        .unwrap();
    assert!(engine.layer_version("p", 1).unwrap().policy.is_none());
    assert!(matches!(
        engine.add_layer_permission("p", 2, statement("s1")).await,
        Err(EngineError::LayerVersionNotFound { .. })
    ));
}
