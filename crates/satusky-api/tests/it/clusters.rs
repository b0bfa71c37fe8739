use serde_json::json;

use crate::support::TestApp;

#[tokio::test]
async fn only_platform_admins_manage_clusters_and_kubeconfigs_never_come_back() {
    let app = TestApp::new().await;
    let op = app.user("op@example.com").await;
    let user = app.user("user@example.com").await;
    let body = json!({"name": "eu-1", "region": "eu", "zone": "eu-a", "kubeconfig": "apiVersion: v1\nkind: Config\n", "default": true});
    app.post("/v1/clusters", &op, body.clone())
        .await
        .err(403, "forbidden");
    app.grant_admin("op@example.com").await;
    let created = app.post("/v1/clusters", &op, body.clone()).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["in_cluster"], false);
    assert!(!created.body.to_string().contains("kind: Config"));
    app.post("/v1/clusters", &op, body)
        .await
        .err(409, "cluster_name_taken");
    app.post(
        "/v1/clusters",
        &op,
        json!({"name": "us-1", "region": "us", "zone": "us-a"}),
    )
    .await
    .ok();
    app.post(
        "/v1/clusters",
        &op,
        json!({"name": "Bad Name", "region": "us", "zone": "us-a"}),
    )
    .await
    .err(400, "validation_failed");
    let listed = app.get("/v1/clusters", &op).await.ok();
    assert_eq!(listed["items"].as_array().unwrap().len(), 2);
    assert!(!listed.to_string().contains("kubeconfig"));
    app.get("/v1/clusters", &user).await.err(403, "forbidden");
    let zones = app.get("/v1/zones", &user).await.ok();
    let names: Vec<_> = zones["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|z| z["zone"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["eu-a", "us-a"]);
    // Apps are placed by zone, else on the default cluster.
    app.org(&user, "acme").await;
    let placed = app
        .post(
            "/v1/orgs/acme/apps/web/deploy",
            &user,
            json!({"image": "nginx", "create": true, "zone": "us-a"}),
        )
        .await
        .ok();
    let us = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "us-1")
        .unwrap()["id"]
        .clone();
    assert_eq!(placed["app"]["cluster"], us);
    let default = app
        .post(
            "/v1/orgs/acme/apps/api/deploy",
            &user,
            json!({"image": "nginx", "create": true}),
        )
        .await
        .ok();
    let eu = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "eu-1")
        .unwrap()["id"]
        .clone();
    assert_eq!(default["app"]["cluster"], eu);
    app.post(
        "/v1/orgs/acme/apps/x/deploy",
        &user,
        json!({"image": "nginx", "create": true, "zone": "mars"}),
    )
    .await
    .err(400, "validation_failed");
    assert_eq!(app.delete("/v1/clusters/us-1", &op).await.status, 204);
    app.delete("/v1/clusters/us-1", &op)
        .await
        .err(404, "cluster_not_found");
}
