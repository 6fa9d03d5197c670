//! Second-factor helpers: codes computed here from the key the server showed, the way an
//! authenticator app computes them.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};

use super::{TestServer, status_json};

pub const STEP: u64 = 30;

/// The key's raw bytes from its base32 text (as shown, spaces allowed).
pub fn key_bytes(base32: &str) -> Vec<u8> {
    let compact: String = base32.chars().filter(|c| !c.is_whitespace()).collect();
    totp_rs::Secret::Encoded(compact.to_uppercase())
        .to_bytes()
        .unwrap()
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The code of `key` for the time step `offset` steps away from now.
pub fn code(key: &[u8], offset: i64) -> String {
    let t = totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 0, STEP, key.to_vec()).unwrap();
    let at = (now() as i64 + offset * STEP as i64).max(0) as u64;
    t.generate(at)
}

/// Waits until the current time step has at least 8 seconds left, so that a test's
/// idea of "now" and the server's are the same step.
pub async fn settle() {
    while now() % STEP > STEP - 8 {
        // Time is the subject: the clock moves into the next step.
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// Adds and activates an authenticator app through the API (the session must be
/// fresh); returns its id, its key and the recovery codes. Activates with the code of
/// the previous step (clock skew), so that the current and the next step are unused.
pub async fn enrol(s: &TestServer, token: &str) -> (i64, Vec<u8>, Vec<String>) {
    settle().await;
    let (status, body) = s
        .post(
            "/api/v1/me/second-factors/totp",
            token,
            json!({"name": "Phone"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_i64().unwrap();
    let key = key_bytes(body["secret"].as_str().unwrap());
    assert!(
        body["otpauth_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/Doorman:")
    );
    let (status, act) = s
        .post(
            &format!("/api/v1/me/second-factors/{id}/activate"),
            token,
            json!({"code": code(&key, -1)}),
        )
        .await;
    assert_eq!(status, 200, "{act}");
    let codes: Vec<String> = act["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    (id, key, codes)
}

/// POST /api/v1/login with the right password: (status, body).
pub async fn password_step(s: &TestServer, email: &str) -> (u16, Value) {
    s.login_raw(email, super::PASSWORD, super::CHROME_MAC, None, None)
        .await
}

/// POST /api/v1/login/second-factor: (status, body).
pub async fn second_step(s: &TestServer, challenge: &str, code: &str) -> (u16, Value) {
    let resp = super::client()
        .post(s.url("/api/v1/login/second-factor"))
        .header("user-agent", super::CHROME_MAC)
        .json(&json!({"challenge": challenge, "code": code}))
        .send()
        .await
        .unwrap();
    status_json(resp).await
}

/// Signs in through both steps with `code`; returns the token.
pub async fn login_with_code(s: &TestServer, email: &str, code: &str) -> String {
    let (status, body) = password_step(s, email).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = second_step(s, body["challenge"].as_str().unwrap(), code).await;
    assert_eq!(status, 201, "{body}");
    body["token"].as_str().unwrap().to_string()
}

/// Makes every session of the server older than the step-up window, as if their last
/// "confirm it's you" were long ago.
pub fn stale(s: &TestServer) {
    s.sql_exec("UPDATE sessions SET verified_at = verified_at - 3600");
}
