//! Everything a request needs, passed explicitly (no globals), so tests can run many
//! servers side by side in one process.

use std::sync::{Arc, Mutex};

use crate::config::Config;
use crate::db::Db;
use crate::domain::passwords::Hasher;
use crate::domain::ratelimit::RateLimiter;
use crate::geo::Geo;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub geo: Arc<Geo>,
    pub hasher: Hasher,
    pub limiter: Arc<RateLimiter>,
    /// The one-time owner setup token while no owner exists (kept only in memory).
    pub setup_token: Arc<Mutex<Option<String>>>,
}

impl AppState {
    pub fn new(config: Config, db: Db, geo: Arc<Geo>) -> crate::error::Result<Self> {
        let hasher = Hasher::new(&config.security.argon2)?;
        let rl = &config.security.login_rate_limit;
        let limiter = Arc::new(RateLimiter::new(rl.failures, rl.window.as_secs() as i64));
        Ok(AppState {
            config: Arc::new(config),
            db,
            geo,
            hasher,
            limiter,
            setup_token: Arc::new(Mutex::new(None)),
        })
    }
}
