//! Doorman: see where everyone is signed in, end any sign-in.
//!
//! `build_app` assembles the HTTP application from an [`AppState`]; `serve` runs it on a
//! listener until a shutdown signal. `main.rs` and the tests both go through these.
//!
//! # The map
//!
//! ```text
//! main.rs      the CLI: calls lib and domain/ only
//! lib.rs       build_app, serve, open_state: the wiring
//! state.rs     AppState { config, db, geo, hasher, limiter, mailer, metrics, … }, passed
//! config.rs    typed configuration, validated once at start
//! clock.rs     now() and every time format (RFC 3339, UTC, "5 minutes ago")
//! error.rs     the domain's one error type
//! http/        what both skins stand on: cookies and the one token extractor, CSRF, the
//!              error → status/body mapping, the headers every answer carries, /metrics
//! web/         the pages (maud): one module per page; shared pieces in components/, the
//!              PageSession / AdminPage extractors in extract.rs, the one SettingsPage
//!              list (menu and tabs) in nav.rs
//! api/         the JSON API (poem-openapi)
//! oidc/        the OpenID Provider's endpoints (SPEC §20): a third skin over domain/oidc
//! domain/      the rules, in rooms whose imports point down:
//!                ops/ → people/, access, sessions → signin/ → factors/ →
//!                attempts/, alerts/ → audit/ → permissions, tokens, place, passwords
//! model/       the nouns every layer shares (ids, Session, User, Device, Location, roles,
//!              ClientInfo, Principal, Authed); imports nothing of the crate but clock
//! db/          SQLite: the pool, `run` / `read_or_block`, migrations, one module per
//!              table (SQL only), the database's lock, backup checks; imports model
//! mail/        the SMTP transport, the outbox worker, one function per email
//! webhooks/    the webhook outbox worker and the Standard Webhooks signature
//! metrics/     the in-memory counters `/metrics` reads
//! geo/ ua.rs client_ip.rs   leaf services: where and what a request is
//! paths.rs     every page path (pages route them; emails, the API and domain link to them)
//! address.rs   an address normalised as it is matched against applications
//! files.rs     files only their owner reads (the database, its copies, GeoIP)
//! ```
//!
//! # The rules (checked by `tests/layering.rs`)
//!
//! - `web/` and `api/` are two skins over `domain/` and `http/`: they never import
//!   each other, and a rule (who may end which session) exists once, in `domain/`.
//! - Only `domain/` (and the wiring here and in `state.rs`) imports `db/`; SQL is
//!   written in `db/` only.
//! - Page modules do not import each other; what several pages share is in
//!   `web/components/`, `web/extract.rs` and `web/nav.rs`.
//! - Leaf services (clock, GeoIP, User-Agent, client address, password hasher, tokens,
//!   rate limiter) do not take `AppState`: they are given what they need.
//! - `model/` imports nothing of the crate but `clock`; storage (`db/`) and the leaf
//!   services (geo, config, metrics, client_ip, ua, paths) never import `domain/`.
//! - The rooms of `domain/` import downward only, and nothing in `src/` imports in a
//!   circle.
//! - Modules are `pub` only where the tests or the benchmarks use them.

pub mod address;
pub mod client_ip;
pub mod clock;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod geo;
pub mod model;
pub mod ua;

pub(crate) mod api;
pub(crate) mod backchannel;
pub(crate) mod files;
pub(crate) mod http;
pub(crate) mod mail;
pub(crate) mod metrics;
pub(crate) mod oidc;
pub(crate) mod paths;
pub(crate) mod state;
pub(crate) mod web;
pub(crate) mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use poem::listener::{Acceptor, TcpAcceptor};
use poem::middleware::CatchPanic;
use poem::{Endpoint, EndpointExt, Route, Server};

pub use config::Config;
pub use state::{AppState, Runs};

pub fn build_app(state: AppState) -> impl Endpoint {
    let every = http::headers::EveryRequest::new(&state);
    let routes = api::mount(oidc::mount(Route::new()))
        .at("/oauth2/start", web::forward_auth::oauth2_start)
        .at("/oauth2/sign_in", web::forward_auth::oauth2_start)
        .at(paths::DENIED, web::forward_auth::denied)
        .at("/healthz", api::health::healthz)
        .at("/metrics", http::metrics::metrics)
        .nest(
            "/",
            web::routes()
                .catch_error(|_: poem::error::NotFoundError| async { web::not_found_page() }),
        )
        .data(state.clone());
    let routes = api::ReadsFirst::new(routes, state.clone());
    web::forward_auth::VerdictsFirst::new(routes, state)
        .with(CatchPanic::new())
        .with(every)
}

/// Opens storage only, for command-line tools: they never locate an address, so the
/// GeoIP database is not loaded.
pub fn open_tool_state(config: Config) -> Result<AppState, String> {
    let db = db::Db::open(&config.storage.path).map_err(|e| e.to_string())?;
    AppState::new(config, db, Arc::new(geo::Geo::disabled()), Runs::Command)
        .map_err(|e| e.to_string())
}

/// Opens storage and the GeoIP database as the configuration says. Errors are plain
/// text: at start-up the only thing to do with them is print and exit.
pub fn open_state(config: Config) -> Result<AppState, String> {
    let db = db::Db::open(&config.storage.path).map_err(|e| e.to_string())?;
    let data_dir = geo::data_dir(&config.storage.path);
    let geo = geo::Geo::open(&config.geoip.database, &data_dir).map_err(|e| e.to_string())?;
    let geo = Arc::new(geo);
    AppState::new(config, db, geo, Runs::Server).map_err(|e| e.to_string())
}

/// Serves on an already-bound listener until `shutdown` resolves, with the background
/// tasks (sweeper, mail worker, GeoIP reloader, backups) running alongside. The
/// database's lock is held shared meanwhile, so `doorman restore` refuses to run.
pub async fn serve(
    listener: std::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let _lock = db::lock::lock_shared(&state.config.storage.path)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    listener.set_nonblocking(true)?;
    let acceptor = TcpAcceptor::from_std(listener)?;
    let local = acceptor.local_addr();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    domain::ops::sweeper::spawn(state.clone(), stop_rx.clone());
    mail::worker::spawn(state.clone(), stop_rx.clone());
    webhooks::spawn(state.clone(), stop_rx.clone());
    backchannel::spawn(state.clone(), stop_rx.clone());
    domain::ops::backup::spawn(state.clone(), stop_rx.clone());
    state.geo.spawn_reloader(stop_rx);
    if let Some(token) = domain::ops::bootstrap::first_start(&state).await {
        // Printed, not logged: it is a one-time secret meant for the operator's eyes.
        let base = state.config.server.public_base();
        eprintln!(
            "No owner exists yet. Create one at: {base}{}?token={token}",
            paths::SETUP
        );
    }
    tracing::info!(addr = ?local.first().map(|a| a.to_string()), "listening");
    let app = build_app(state);
    let result = Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(app, shutdown, Some(Duration::from_secs(10)))
        .await;
    let _ = stop_tx.send(true);
    result
}
