#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use common::*;
use doorman::domain::model::Role;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_login_roundtrip() {
    let s = start().await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let (status, body) = status_json(client().get(s.url("/healthz")).send().await.unwrap()).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let t = s.token("ANN@acme.test").await;
    let (status, me) = s.get("/api/v1/me", &t).await;
    assert_eq!(status, 200);
    assert_eq!(me["user"]["email"], "ann@acme.test");
    assert_eq!(me["session"]["current"], true);
}
