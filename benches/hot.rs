//! Microbenchmarks of what every request, or every sign-in, pays for: the session check,
//! User-Agent parsing, the GeoIP lookup and the "My sessions" listing query.
//!
//! `cargo bench --bench hot`. The load benchmark with real HTTP is `bench/run.sh`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use doorman::db::sessions::NewSession;
use doorman::db::users::NewUser;
use doorman::db::{self, Db};
use doorman::domain::signin::check::authenticate;
use doorman::domain::tokens::{hash_token, new_device_id, new_public_id, new_token};
use doorman::geo::Geo;
use doorman::model::{Location, Role, UserId};
use doorman::{AppState, Config};

const CHROME: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1";

/// A temporary database with 1,000 users of 10 sessions each (user 1 has 50), built
/// through the storage code. Returns the state, one token, and the 50-session user.
fn seeded(dir: &Path) -> (AppState, String, UserId) {
    let mut config = Config::default();
    config.storage.path = dir.join("hot.sqlite3");
    // The session check never hashes a password; keep the set-up quick.
    config.security.argon2.m = 1024;
    config.security.argon2.t = 1;
    let db = Db::open(&config.storage.path).unwrap();
    let geo = Arc::new(Geo::open(Path::new(""), dir).unwrap());
    let device = doorman::ua::parse(CHROME);
    let location = geo.lookup("81.2.69.142".parse().unwrap());
    let now = doorman::clock::now();
    let (token, fifty) = db
        .blocking(|c| -> Result<_, doorman::db::DbError> {
            let tx = c.transaction()?;
            let account = db::accounts::insert(&tx, "Acme", now)?;
            let mut kept = None;
            let mut fifty = None;
            for n in 0..1_000 {
                let email = format!("user{n:04}@acme.example");
                let user = db::users::insert(
                    &tx,
                    &NewUser {
                        account_id: account,
                        email: &email,
                        name: "User",
                        role: Role::User,
                        password_hash: "$argon2id$unused",
                        now,
                        invited: false,
                        email_verified: true,
                    },
                )?;
                let device_id = new_device_id();
                for _ in 0..if n == 1 { 50 } else { 10 } {
                    let token = new_token();
                    db::sessions::insert(
                        &tx,
                        &NewSession {
                            public_id: &new_public_id(),
                            token_hash: &hash_token(&token),
                            user_id: user,
                            account_id: account,
                            application: "web",
                            device_id: &device_id,
                            user_agent: CHROME,
                            device: &device,
                            ip: "81.2.69.142",
                            location: &location,
                            now,
                            expires_at: now + 86_400,
                            auth_methods: doorman::model::AuthMethods::PASSWORD,
                        },
                    )?;
                    if n == 500 {
                        kept = Some(token);
                    }
                }
                if n == 1 {
                    fifty = Some(user);
                }
            }
            tx.commit()?;
            Ok((kept.unwrap(), fifty.unwrap()))
        })
        .unwrap();
    let state = AppState::new(config, db, geo, doorman::Runs::Server).unwrap();
    (state, token, fifty)
}

fn hot(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let (state, token, fifty) = seeded(dir.path());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    c.bench_function("authenticate (valid bearer token)", |b| {
        b.iter(|| {
            rt.block_on(authenticate(&state, black_box(&token)))
                .unwrap()
        })
    });
    let unknown = new_token();
    c.bench_function("authenticate (unknown token)", |b| {
        b.iter(|| {
            rt.block_on(authenticate(&state, black_box(&unknown)))
                .is_err()
        })
    });
    c.bench_function("ua::parse (Chrome on macOS)", |b| {
        b.iter(|| doorman::ua::parse(black_box(CHROME)))
    });
    c.bench_function("ua::parse (Safari on iPhone)", |b| {
        b.iter(|| doorman::ua::parse(black_box(IPHONE)))
    });
    let london: IpAddr = "81.2.69.142".parse().unwrap();
    c.bench_function("geo lookup (public IPv4)", |b| {
        b.iter(|| -> Location { state.geo.lookup(black_box(london)) })
    });
    c.bench_function("list_active_for_user (50 sessions)", |b| {
        b.iter(|| {
            state
                .db
                .blocking(|c| -> Result<_, doorman::db::DbError> {
                    db::sessions::list_active_for_user(
                        c,
                        fifty,
                        "u1@acme.test",
                        "Acme",
                        doorman::clock::now(),
                        None,
                    )
                })
                .unwrap()
                .len()
        })
    });
}

criterion_group!(benches, hot);
criterion_main!(benches);
