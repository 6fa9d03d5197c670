//! Back-channel logout delivery (SPEC §21): the worker of the logout outbox, shaped as
//! the webhooks worker. Each due logout gets a fresh logout token per attempt, POSTed
//! form-encoded; 200 or 204 is success, a redirect is not followed (a failure).
//!
//! Deliveries go out side by side, at most [`IN_FLIGHT`] at once and [`PER_CLIENT`] to
//! one application, each attempt bounded by [`TIMEOUT`]: a receiver that hangs holds
//! only its own slots, and nothing here runs on a request's path.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::domain::oidc::logout::{self, DueLogout};
use crate::state::AppState;

/// How often the outbox is looked at.
const POLL: Duration = Duration::from_millis(250);
/// How long a freed slot waits for others before the outbox is looked at again.
const GATHER: Duration = Duration::from_millis(10);
/// Attempts running at once.
const IN_FLIGHT: usize = 32;
/// Attempts running at once to one application.
const PER_CLIENT: usize = 8;
/// How long one attempt may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Delivery ids in flight, with their client.
type Busy = Arc<Mutex<HashMap<i64, String>>>;
/// Told when an attempt ends: its slot is free for the next due logout at once, not at
/// the next poll (a burst of ended sessions would otherwise go out [`PER_CLIENT`] per
/// client per [`POLL`]).
type Freed = Arc<tokio::sync::Notify>;
/// Where attempts send their outcome. One task records them, many to a transaction: a
/// burst of deliveries then holds one of the pool's connections and takes SQLite's one
/// writer once per batch, instead of one connection per attempt in flight waiting for
/// the writer, which would leave the session check waiting for a connection.
type Outcomes = tokio::sync::mpsc::UnboundedSender<(DueLogout, Result<(), String>)>;
/// Outcomes recorded in one transaction, at most.
const RECORD_BATCH: usize = 256;

pub fn spawn(state: AppState, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let any = state
        .config
        .applications
        .iter()
        .filter_map(|a| a.oidc.as_ref())
        .any(|o| !o.backchannel_logout_uri.trim().is_empty());
    if !any {
        return;
    }
    let client = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("Doorman-Logout/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(err) => {
            tracing::error!(%err, "back-channel logout is off: no HTTP client");
            return;
        }
    };
    let busy: Busy = Arc::default();
    let freed: Freed = Arc::default();
    let (outcomes, recorded) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(record(state.clone(), recorded, busy.clone(), freed.clone()));
    tokio::spawn(async move {
        loop {
            if let Err(err) = start_due(&state, &client, &busy, &outcomes).await {
                tracing::warn!(%err, "logout outbox unavailable");
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                // A moment more gathers the slots freed meanwhile: one look at the
                // outbox for them all.
                _ = freed.notified() => tokio::time::sleep(GATHER).await,
                _ = shutdown.changed() => return,
            }
        }
    });
}

/// Starts an attempt for each due logout not already in flight, within the limits.
async fn start_due(
    state: &AppState,
    client: &reqwest::Client,
    busy: &Busy,
    outcomes: &Outcomes,
) -> crate::error::Result<()> {
    let free = IN_FLIGHT.saturating_sub(busy.lock().map(|b| b.len()).unwrap_or(IN_FLIGHT));
    if free == 0 {
        return Ok(());
    }
    // More than the free slots: rows of a client at its limit are passed over.
    let due = logout::due(state, (free + IN_FLIGHT * 4) as i64).await?;
    for d in due {
        {
            let Ok(mut b) = busy.lock() else {
                return Ok(());
            };
            let of_client = b.values().filter(|c| **c == d.client_id).count();
            if b.len() >= IN_FLIGHT || of_client >= PER_CLIENT || b.contains_key(&d.id) {
                continue;
            }
            b.insert(d.id, d.client_id.clone());
        }
        let (st, cl, outcomes) = (state.clone(), client.clone(), outcomes.clone());
        tokio::spawn(async move {
            let id = d.id;
            // Its own task: a panic while building one delivery is that delivery's
            // failed attempt, not the worker's end.
            let (st2, d2) = (st.clone(), d.clone());
            let outcome = tokio::spawn(async move { attempt(&st2, &cl, &d2).await })
                .await
                .unwrap_or_else(|e| Err(format!("delivery failed unexpectedly: {e}")));
            match &outcome {
                Ok(()) => {
                    tracing::info!(logout = id, client_id = %d.client_id, "logout token delivered");
                }
                Err(error) => {
                    tracing::warn!(logout = id, client_id = %d.client_id, attempts = d.attempts + 1, %error, "logout token not delivered");
                }
            }
            // Still busy until recorded: the next look at the outbox must not send it again.
            let _ = outcomes.send((d, outcome));
        });
    }
    Ok(())
}

/// Records the outcomes of attempts as they come, many to a transaction, then frees
/// their slots.
async fn record(
    state: AppState,
    mut recorded: tokio::sync::mpsc::UnboundedReceiver<(DueLogout, Result<(), String>)>,
    busy: Busy,
    freed: Freed,
) {
    while let Some(first) = recorded.recv().await {
        let mut batch = vec![first];
        while batch.len() < RECORD_BATCH {
            match recorded.try_recv() {
                Ok(more) => batch.push(more),
                Err(_) => break,
            }
        }
        let ids: Vec<i64> = batch.iter().map(|(d, _)| d.id).collect();
        if let Err(err) = logout::record_outcomes(&state, batch).await {
            tracing::warn!(%err, logouts = ids.len(), "logout outcomes not recorded");
        }
        if let Ok(mut b) = busy.lock() {
            for id in &ids {
                b.remove(id);
            }
        }
        freed.notify_one();
    }
}

/// One attempt: POST a fresh logout token; Ok on 200 or 204 within the timeout.
async fn attempt(state: &AppState, client: &reqwest::Client, d: &DueLogout) -> Result<(), String> {
    let (uri, token) = logout::token(state, d)?;
    let resp = client
        .post(&uri)
        .timeout(TIMEOUT)
        .form(&[("logout_token", token.as_str())])
        .send()
        .await
        .map_err(describe)?;
    let status = resp.status();
    if matches!(status.as_u16(), 200 | 204) {
        return Ok(());
    }
    // The start of its answer says why (Back-Channel Logout 1.0 §2.8: an error JSON).
    let body = tokio::time::timeout(TIMEOUT, resp.text())
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let why: String = body.chars().filter(|c| !c.is_control()).take(200).collect();
    if why.trim().is_empty() {
        Err(format!("the application answered {status}"))
    } else {
        Err(format!("the application answered {status}: {}", why.trim()))
    }
}

/// A transport error in a few words, without the URL.
fn describe(err: reqwest::Error) -> String {
    if err.is_timeout() {
        format!("no answer within {}", humantime::format_duration(TIMEOUT))
    } else if err.is_connect() {
        "could not connect to the application".into()
    } else {
        format!("request failed: {}", err.without_url())
    }
}
