//! End to end: the real services over a SQLite store drive the reconciler.

use std::sync::Arc;
use std::time::Duration;

use satusky_core::clock::SystemClock;
use satusky_core::crypto::SecretBox;
use satusky_core::{Ctx, Services, ServicesConfig};
use satusky_reconciler::Reconciler;
use satusky_types::ErrorCode;
use satusky_types::apps::{AppPhase, DeployRequest, KeyValueChange, Port};

use crate::support::{RunningReconciler, TestCluster, WAIT, config};

async fn wait_phase(services: &Services, ctx: &Ctx, phase: AppPhase, generation: u64) {
    let r = tokio::time::timeout(WAIT, async {
        loop {
            let app = services.get_app(ctx, "acme", "web").await.unwrap();
            if app.status.phase == phase && app.status.observed_generation >= generation {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    if r.is_err() {
        let app = services.get_app(ctx, "acme", "web").await.unwrap();
        panic!("timed out waiting for {phase:?}: {:#?}", app.status);
    }
}

#[tokio::test]
async fn an_app_deployed_through_the_services_runs_scales_gets_secrets_and_is_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("satusky.db").display());
    let store = satusky_store::connect(&url).await.unwrap();
    let services = Services::new(
        store,
        Arc::new(SystemClock),
        ServicesConfig {
            secret_box: Some(SecretBox::new(&[7u8; 32])),
            ..ServicesConfig::default()
        },
    );
    services
        .create_user("dev@acme.test", "long enough pw", Some("Dev"))
        .await
        .unwrap();
    let session = services
        .login("dev@acme.test", "long enough pw", "127.0.0.1")
        .await
        .unwrap();
    let ctx = Ctx {
        principal: services.authenticate(&session.token).await.unwrap(),
        request_id: "test".into(),
    };
    services.create_org(&ctx, "acme", None).await.unwrap();
    let req = DeployRequest {
        image: "ghcr.io/acme/web:1".into(),
        replicas: Some(3),
        ports: Some(vec![Port {
            container_port: 8080,
            protocol: "TCP".into(),
            public: true,
        }]),
        create: true,
        ..DeployRequest::default()
    };
    let deployed = services
        .deploy(&ctx, "acme", "web", &req, None)
        .await
        .unwrap();
    let app_id = deployed.app.id.clone();
    let ns = services
        .desired_app(&app_id)
        .await
        .unwrap()
        .unwrap()
        .namespace;

    let c = TestCluster::start().await;
    let r = RunningReconciler::spawn(Reconciler::new(
        services.clone(),
        c.client.clone(),
        config("e2e"),
    ));
    wait_phase(
        &services,
        &ctx,
        AppPhase::Available,
        deployed.app.generation,
    )
    .await;
    assert_eq!(c.pods(&ns, &app_id).await.len(), 3);
    let (_, events) = services
        .app_events(&ctx, "acme", "web", 0, 1000)
        .await
        .unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert!(kinds.contains(&"rollout.complete"), "{kinds:?}");
    assert!(kinds.contains(&"pod.changed"), "{kinds:?}");

    let scaled = services.scale(&ctx, "acme", "web", 2).await.unwrap();
    wait_phase(&services, &ctx, AppPhase::Available, scaled.app.generation).await;
    let app = services.get_app(&ctx, "acme", "web").await.unwrap();
    assert_eq!(app.status.ready_replicas, 2);

    let change = KeyValueChange {
        set: [("TOKEN".to_owned(), "s3cret".to_owned())].into(),
        unset: vec![],
    };
    let with_secret = services
        .change_secrets(&ctx, "acme", "web", &change)
        .await
        .unwrap();
    wait_phase(
        &services,
        &ctx,
        AppPhase::Available,
        with_secret.app.generation,
    )
    .await;
    assert!(
        c.owned(&ns, &app_id)
            .await
            .contains(&("Secret".to_owned(), "web-secrets".to_owned()))
    );

    // An env change rolls out; rolling back to the release before it takes the variable away.
    let env = KeyValueChange {
        set: [("MODE".to_owned(), "fast".to_owned())].into(),
        unset: vec![],
    };
    let changed = services
        .change_env(&ctx, "acme", "web", &env)
        .await
        .unwrap();
    wait_phase(&services, &ctx, AppPhase::Available, changed.app.generation).await;
    let deps = c.deployments(&ns);
    let has_mode = |d: k8s_openapi::api::apps::v1::Deployment| {
        d.spec.unwrap().template.spec.unwrap().containers[0]
            .env
            .clone()
            .unwrap_or_default()
            .iter()
            .any(|e| e.name == "MODE")
    };
    assert!(has_mode(deps.get("web").await.unwrap()));
    let rolled = services.rollback(&ctx, "acme", "web", None).await.unwrap();
    assert_eq!(rolled.release.rollback_of, Some(changed.release.number - 1));
    wait_phase(&services, &ctx, AppPhase::Available, rolled.app.generation).await;
    assert!(!has_mode(deps.get("web").await.unwrap()));
    let app = services.get_app(&ctx, "acme", "web").await.unwrap();
    assert_eq!(app.status.observed_release, Some(rolled.release.number));

    services
        .delete_app(&ctx, "acme", "web", false)
        .await
        .unwrap();
    let gone = tokio::time::timeout(WAIT, async {
        loop {
            match services.get_app(&ctx, "acme", "web").await {
                Err(e) if e.code == ErrorCode::AppNotFound => return,
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    })
    .await;
    assert!(gone.is_ok(), "the app record was never removed");
    assert!(c.owned(&ns, &app_id).await.is_empty());
    r.stop().await;
}
