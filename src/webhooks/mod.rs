//! Webhook delivery (SPEC §15): the outbox worker and the Standard Webhooks signature.
//!
//! Each due delivery is the oldest pending one of its queue (receiver and user), so a
//! user's events arrive in order; different queues go out side by side, at most
//! [`IN_FLIGHT`] at once, each attempt bounded by its receiver's `timeout`. Nothing here
//! runs on a request's path: a slow or dead receiver delays only its own queue.
//!
//! Delivery is at least once: a row is marked delivered only after a 2xx answer; a
//! crash in between sends it again after the restart with the same `webhook-id`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::WebhookConfig;
use crate::domain::audit::events;
use crate::domain::audit::webhooks::{self, Due};
use crate::http::export::EventJson;
use crate::state::AppState;

/// How often the outbox is looked at.
const POLL: Duration = Duration::from_millis(500);
/// Attempts running at once.
const IN_FLIGHT: usize = 16;

/// `v1,<base64 of HMAC-SHA256(key, "<id>.<timestamp>.<body>")>`.
pub fn signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The body of a delivery: `{"type", "timestamp", "data": <the event>}`.
pub fn payload(event: &EventJson) -> Result<Vec<u8>, String> {
    #[derive(serde::Serialize)]
    struct Payload<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        #[serde(with = "time::serde::rfc3339")]
        timestamp: time::OffsetDateTime,
        data: &'a EventJson,
    }
    serde_json::to_vec(&Payload {
        kind: &event.kind,
        timestamp: event.at,
        data: event,
    })
    .map_err(|e| format!("event JSON: {e}"))
}

pub fn spawn(state: AppState, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    if state.config.webhooks.is_empty() {
        return;
    }
    let client = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("Doorman-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(err) => {
            tracing::error!(%err, "webhooks are off: no HTTP client");
            return;
        }
    };
    let busy: Arc<Mutex<HashSet<i64>>> = Arc::default();
    tokio::spawn(async move {
        loop {
            if let Err(err) = start_due(&state, &client, &busy).await {
                tracing::warn!(%err, "webhook outbox unavailable");
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = shutdown.changed() => return,
            }
        }
    });
}

/// Starts an attempt for each due delivery not already in flight.
async fn start_due(
    state: &AppState,
    client: &reqwest::Client,
    busy: &Arc<Mutex<HashSet<i64>>>,
) -> crate::error::Result<()> {
    let free = IN_FLIGHT.saturating_sub(busy.lock().map(|b| b.len()).unwrap_or(IN_FLIGHT));
    if free == 0 {
        return Ok(());
    }
    let due = webhooks::due(state, (free + IN_FLIGHT) as i64).await?;
    for d in due {
        let Some(hook) = configured(state, d.webhook_id) else {
            continue;
        };
        {
            let Ok(mut b) = busy.lock() else {
                return Ok(());
            };
            if b.len() >= IN_FLIGHT || !b.insert(d.id) {
                continue;
            }
        }
        let (st, cl, busy, hook) = (state.clone(), client.clone(), busy.clone(), hook.clone());
        tokio::spawn(async move {
            let id = d.id;
            // Its own task: a panic while building one delivery is that delivery's
            // failed attempt, not the worker's end.
            let (st2, d2) = (st.clone(), d.clone());
            let outcome = tokio::spawn(async move { attempt(&st2, &cl, &hook, &d2).await })
                .await
                .unwrap_or_else(|e| Err(format!("delivery failed unexpectedly: {e}")));
            let recorded = match outcome {
                Ok(()) => {
                    tracing::info!(delivery = id, "webhook delivered");
                    webhooks::mark_delivered(&st, id).await
                }
                Err(error) => {
                    tracing::warn!(delivery = id, attempts = d.attempts + 1, %error, "webhook not delivered");
                    webhooks::mark_failed(&st, id, d.attempts, error).await
                }
            };
            if let Err(err) = recorded {
                tracing::warn!(delivery = id, %err, "webhook outcome not recorded");
            }
            if let Ok(mut b) = busy.lock() {
                b.remove(&id);
            }
        });
    }
    Ok(())
}

/// The configuration of a stored receiver; none when it is no longer configured.
fn configured(state: &AppState, webhook_id: i64) -> Option<&WebhookConfig> {
    let i = state.webhook_ids.iter().position(|id| *id == webhook_id)?;
    state.config.webhooks.get(i)
}

/// One attempt: POST the signed event; Ok on a 2xx answer within the timeout.
async fn attempt(
    state: &AppState,
    client: &reqwest::Client,
    hook: &WebhookConfig,
    d: &Due,
) -> Result<(), String> {
    let event = events::find(state, d.event_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the event no longer exists")?;
    let body = payload(&EventJson::from(&event))?;
    let key = hook.key()?;
    let timestamp = crate::clock::now();
    let resp = client
        .post(hook.url.trim())
        .timeout(hook.timeout)
        .header("content-type", "application/json")
        .header("webhook-id", &d.message_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header(
            "webhook-signature",
            signature(&key, &d.message_id, timestamp, &body),
        )
        .body(body)
        .send()
        .await
        .map_err(|e| describe(e, hook.timeout))?;
    let status = resp.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("the receiver answered {status}"))
    }
}

/// A transport error in a few words, without the URL (it may carry a token).
fn describe(err: reqwest::Error, timeout: Duration) -> String {
    if err.is_timeout() {
        format!("no answer within {}", humantime::format_duration(timeout))
    } else if err.is_connect() {
        "could not connect to the receiver".into()
    } else {
        format!("request failed: {}", err.without_url())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_webhooks_example_signature() {
        // The example of the Standard Webhooks (Svix) documentation.
        let key = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            signature(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }
}
