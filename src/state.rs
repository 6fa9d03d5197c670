//! Everything a request needs, passed explicitly (no globals), so tests can run many
//! servers side by side in one process.

use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::config::Config;
use crate::db::Db;
use crate::domain::attempts::limits::RateLimiter;
use crate::domain::passwords::Hasher;
use crate::geo::Geo;
use crate::mail::Mailer;

/// Cloned for every request (poem hands each one its own copy): one shared reference,
/// so a clone is a single count, not one per part.
#[derive(Clone)]
pub struct AppState(Arc<Parts>);

/// What an [`AppState`] holds; reached through it (`state.config`, `state.db`, …).
pub struct Parts {
    pub config: Arc<Config>,
    pub db: Db,
    pub geo: Arc<Geo>,
    pub hasher: Hasher,
    pub limiter: Arc<RateLimiter>,
    /// The one-time owner setup token while no owner exists (kept only in memory).
    pub setup_token: Arc<Mutex<Option<String>>>,
    /// None when email is off.
    pub mailer: Option<Mailer>,
    /// Wakes the outbox worker when a sign-in queued an alert.
    pub mail_wakeup: Arc<Notify>,
    /// Signs the "end this session" links in alert emails; kept in the database so
    /// links survive restarts.
    pub link_key: Arc<Vec<u8>>,
    pub metrics: Arc<crate::metrics::registry::Metrics>,
    /// The hourly budgets of "forgot your password?" requests.
    pub reset_limits: Arc<crate::domain::attempts::limits::ResetLimits>,
    /// The stored id of each `[[webhooks]]` entry, in the configuration's order.
    pub webhook_ids: Arc<Vec<i64>>,
    /// When each (session, application) refusal was last recorded as `access.denied`.
    pub denials: Arc<crate::domain::attempts::limits::Denials>,
    /// The OpenID Provider's signing keys (SPEC §20).
    pub oidc_keys: Arc<crate::domain::oidc::keyring::Keys>,
}

/// Whether the state serves requests, or runs one command beside (or without) the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runs {
    /// The server: the webhook receivers and the back-channel logout clients of its
    /// configuration are mirrored into the database (exactly them), where its workers and
    /// triggers read them.
    Server,
    /// A command: it adds what its configuration names and removes nothing (a command run
    /// with another configuration, or none, must not silence the server's webhooks or
    /// logout tokens).
    Command,
}

impl AppState {
    pub fn new(config: Config, db: Db, geo: Arc<Geo>, runs: Runs) -> crate::error::Result<Self> {
        let hasher = Hasher::new(&config.security.argon2)?
            .with_min_length(config.security.password_min_length);
        let rl = &config.security.login_rate_limit;
        let limiter = Arc::new(RateLimiter::new(rl.failures, rl.window.as_secs() as i64));
        let mailer = Mailer::from_config(&config.mail).map_err(crate::error::Error::Internal)?;
        let link_key = db.blocking(|c| {
            crate::db::alerts::secret(c, "alert_link_key", || {
                crate::domain::tokens::new_token().into_bytes()
            })
        })?;
        let prune = runs == Runs::Server;
        let webhook_ids = db.blocking(|c| sync_webhooks(c, &config.webhooks, prune))?;
        let oidc_keys = db.blocking(|c| crate::domain::oidc::keyring::Keys::open(c, &config))?;
        db.blocking(|c| sync_backchannel_clients(c, &config, prune))?;
        Ok(AppState(Arc::new(Parts {
            config: Arc::new(config),
            db,
            geo,
            hasher,
            limiter,
            setup_token: Arc::new(Mutex::new(None)),
            mailer,
            mail_wakeup: Arc::new(Notify::new()),
            link_key: Arc::new(link_key),
            metrics: Arc::new(crate::metrics::registry::Metrics::default()),
            reset_limits: Arc::new(Default::default()),
            webhook_ids: Arc::new(webhook_ids),
            denials: Arc::default(),
            oidc_keys: Arc::new(oidc_keys),
        })))
    }
}

impl std::ops::Deref for AppState {
    type Target = Parts;

    fn deref(&self) -> &Parts {
        &self.0
    }
}

impl AppState {
    /// `accounts.reset_ttl` in seconds.
    pub fn reset_ttl(&self) -> i64 {
        i64::try_from(self.config.accounts.reset_ttl.as_secs()).unwrap_or(i64::MAX)
    }
}

/// Makes the stored webhook receivers match the configuration; their ids, in its order.
fn sync_webhooks(
    c: &rusqlite::Connection,
    hooks: &[crate::config::WebhookConfig],
    prune: bool,
) -> Result<Vec<i64>, crate::db::DbError> {
    let configured: Vec<(String, String)> = hooks
        .iter()
        .map(|h| (h.url.trim().to_string(), h.patterns_json()))
        .collect();
    // Deferred: when nothing differs it only reads, and so starts on a read-only file.
    let tx = rusqlite::Transaction::new_unchecked(c, rusqlite::TransactionBehavior::Deferred)?;
    let ids = crate::db::webhooks::sync(&tx, &configured, prune)?;
    tx.commit()?;
    Ok(ids)
}

/// Mirrors the clients with a `backchannel_logout_uri` into the database, where the
/// triggers that queue logout tokens (SPEC §21) read them.
fn sync_backchannel_clients(
    c: &rusqlite::Connection,
    config: &Config,
    prune: bool,
) -> Result<(), crate::db::DbError> {
    let ids: Vec<String> = config
        .applications
        .iter()
        .filter_map(|a| a.oidc.as_ref())
        .filter(|o| !o.backchannel_logout_uri.trim().is_empty())
        .map(|o| o.client_id.clone())
        .collect();
    // Deferred: when nothing differs it only reads, and so starts on a read-only file.
    let tx = rusqlite::Transaction::new_unchecked(c, rusqlite::TransactionBehavior::Deferred)?;
    crate::db::oidc_logouts::sync_clients(&tx, &ids, prune)?;
    tx.commit()?;
    Ok(())
}
