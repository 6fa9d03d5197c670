//! Builds the benchmark's data set through Doorman's own storage code: 10 accounts,
//! 100,000 users, 1,000,000 active sessions (one user with 50), real User-Agents parsed
//! with `doorman::ua::parse` and public IPs located with the embedded GeoLite2 database.
//! `BENCH_SESSIONS` sets how many sessions (at least 1,000); there is one user for every
//! ten sessions, so each user keeps 1 to 19 sessions whatever the size, and a search such
//! as `user0424` finds the same 100 users in every data set of 425,000 sessions or more.
//!
//! ```sh
//! cargo run --release --example seed -- target/bench/doorman.sqlite3 target/bench/tokens.txt
//! ```
//!
//! Tokens are random and only their SHA-256 is stored, exactly as at sign-in; the ones the
//! load runs need are written to the tokens file, one per line: `size <sessions>
//! <events>` (what the data set holds), `password <pw>`, `owner <token>`, `fifty <token>`,
//! `signin <email>`, `hot <token>` and `pair <actor token> <victim public id> <victim
//! token>` (two sessions of one user: the actor ends the victim, whose token must be
//! refused at once).
//! `logout <public id>` names 1,000 sessions of distinct users, each holding a grant of
//! the two OpenID clients of bench/run.sh, for the "logout delivered" row.
//!
//! Then 10,000,000 security events (`BENCH_EVENTS` to change how many) over the last 13
//! days, through `db::events::insert` as the server writes them: sign-ins, ended
//! sessions, refused sign-ins, alerts, refused applications and user changes of random
//! users. `eventuser <id>` and `eventaccount <id>` name a user and an account to filter
//! by, and `eventcursor <id>` a cursor halfway down the log.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Instant;

use doorman::config::Argon2Config;
use doorman::db::events::NewEventRow;
use doorman::db::sessions::NewSession;
use doorman::db::users::NewUser;
use doorman::db::{self, Db, DbError};
use doorman::domain::passwords::Hasher;
use doorman::domain::tokens::{hash_token, new_device_id, new_public_id, new_token};
use doorman::geo::Geo;
use doorman::model::{AccountId, Device, EventType, Location, Role, UserId};

const ACCOUNTS: usize = 10;
/// Active sessions, unless `BENCH_SESSIONS` says otherwise.
const SESSIONS: usize = 1_000_000;
/// Sessions per user, on average.
const SESSIONS_PER_USER: usize = 10;
/// The fewest sessions `BENCH_SESSIONS` may ask for: enough for the named users.
const MIN_SESSIONS: usize = 1_000;
/// The user whose "My sessions" list is loaded: far more than anyone else (at most 19).
const FIFTY: usize = 50;
/// Tokens of sessions of distinct users, for load spread over many sessions.
const HOT: usize = 1_000;
/// Pairs of sessions of one user, for the termination check.
const PAIRS: usize = 1_000;
/// Users whose email is handed to the sign-in load.
const SIGNIN: usize = 200;
/// Sessions per transaction: big enough to amortise commits, small enough to keep the
/// WAL from growing to the size of the database.
const BATCH: usize = 100_000;
const PASSWORD: &str = "bench-password-42";
/// Security events, unless `BENCH_EVENTS` says otherwise.
const EVENTS: usize = 10_000_000;

const ACCOUNT_NAMES: [&str; ACCOUNTS] = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Stark",
    "Wayne",
    "Wonka",
    "Tyrell",
    "Cyberdyne",
];

/// A sample of what browsers and scripts really send.
const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36 Edg/119.0.2151.97",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (Windows NT 6.1; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/109.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:120.0) Gecko/20100101 Firefox/120.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120.0.6099.119 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPad; CPU OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 OPR/105.0.0.0",
    "Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.2; Trident/6.0)",
    "curl/8.5.0",
    "python-requests/2.31.0",
    "Go-http-client/1.1",
];

/// splitmix64: deterministic, so every run builds the same shape of data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A device of a user: its id, where it connects from, what it says it is.
struct DeviceInfo {
    id: String,
    ip: String,
    location: Location,
    ua: usize,
}

struct UserInfo {
    id: UserId,
    account: AccountId,
    email: String,
    devices: Vec<DeviceInfo>,
    sessions: usize,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        eprintln!("usage: seed <database path> <tokens file>");
        std::process::exit(2);
    }
    if let Err(err) = run(Path::new(&args[1]), Path::new(&args[2])) {
        eprintln!("seed: {err}");
        std::process::exit(1);
    }
}

/// A count from the environment, or its default.
fn knob(name: &str, default: usize) -> Result<usize, String> {
    match std::env::var(name) {
        Ok(v) => v
            .replace(['_', ','], "")
            .parse()
            .map_err(|_| format!("{name} must be a whole number, not `{v}`")),
        Err(_) => Ok(default),
    }
}

fn run(path: &Path, tokens_path: &Path) -> Result<(), String> {
    let started = Instant::now();
    let sessions = knob("BENCH_SESSIONS", SESSIONS)?;
    if sessions < MIN_SESSIONS {
        return Err(format!("BENCH_SESSIONS must be at least {MIN_SESSIONS}"));
    }
    let events = knob("BENCH_EVENTS", EVENTS)?;
    for suffix in ["", "-wal", "-shm"] {
        let mut p = PathBuf::from(path).into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
    let db = Db::open(path).map_err(|e| e.to_string())?;
    let geo = Geo::open(Path::new(""), &doorman::geo::data_dir(path)).map_err(|e| e.to_string())?;
    let hasher = Hasher::new(&Argon2Config::default()).map_err(|e| e.to_string())?;
    // One real argon2id hash, shared by every user: hashing 100,000 would take an hour.
    let hash = hasher.hash_now(PASSWORD).map_err(|e| e.to_string())?;
    let devices: Vec<Device> = USER_AGENTS
        .iter()
        .map(|ua| doorman::ua::parse(ua))
        .collect();
    let mut rng = Rng(0x00d0_0e5a_11ce);
    let mut out = String::new();
    let _ = writeln!(out, "size {sessions} {events}");
    let _ = writeln!(out, "password {PASSWORD}");

    let now = doorman::clock::now();
    let users = db
        .blocking(|c| -> Result<_, doorman::db::DbError> {
            bulk_cache(c)?;
            let tx = c.transaction()?;
            let users = insert_users(&tx, &hash, &geo, &mut rng, now, sessions)?;
            tx.commit()?;
            Ok(users)
        })
        .map_err(|e| e.to_string())?;
    eprintln!(
        "seed: {} accounts, {} users, {} devices in {:.1?}",
        ACCOUNTS,
        users.len(),
        users.iter().map(|u| u.devices.len()).sum::<usize>(),
        started.elapsed()
    );

    // Sessions in the order they were created, users interleaved, as in real life.
    let mut plan: Vec<(i64, u32)> = Vec::with_capacity(sessions);
    for (i, u) in users.iter().enumerate() {
        for _ in 0..u.sessions {
            // Created within the last 13 days, so none has reached the 14-day idle limit.
            let age = rng.below(13 * 86_400) as i64;
            plan.push((now - age, i as u32));
        }
    }
    plan.sort_unstable();

    // Which sessions' tokens to keep: a few named ones, then `wanted` counters per user.
    let owner = 0usize;
    let fifty = 1usize;
    let mut keep_owner = true;
    let mut keep_fifty = true;
    let mut hot_users: Vec<usize> = Vec::new();
    let mut pair_users: Vec<usize> = Vec::new();
    for (i, u) in users.iter().enumerate().skip(2) {
        if hot_users.len() < HOT && i % 97 == 0 {
            hot_users.push(i);
        } else if pair_users.len() < PAIRS && i % 89 == 0 && u.sessions >= 2 {
            pair_users.push(i);
        }
    }
    let mut want = vec![0u8; users.len()];
    for &i in &hot_users {
        want[i] = 1;
    }
    for &i in &pair_users {
        want[i] = 2;
    }
    let mut pairs: Vec<Vec<(String, String)>> = vec![Vec::new(); users.len()];
    let mut hot = Vec::new();

    let mut inserted = 0usize;
    for chunk in plan.chunks(BATCH) {
        let kept = db
            .blocking(|c| -> Result<_, doorman::db::DbError> {
                bulk_cache(c)?;
                let tx = c.transaction()?;
                let mut kept = Vec::new();
                for &(created, ui) in chunk {
                    let ui = ui as usize;
                    let u = &users[ui];
                    let d = &u.devices[rng.below(u.devices.len())];
                    let token = new_token();
                    let public_id = new_public_id();
                    let application = if d.ua >= USER_AGENTS.len() - 3 {
                        "api"
                    } else {
                        "web"
                    };
                    db::sessions::insert(
                        &tx,
                        &NewSession {
                            public_id: &public_id,
                            token_hash: &hash_token(&token),
                            user_id: u.id,
                            account_id: u.account,
                            application,
                            device_id: &d.id,
                            user_agent: USER_AGENTS[d.ua],
                            device: &devices[d.ua],
                            ip: &d.ip,
                            location: &d.location,
                            now: created,
                            expires_at: created + 14 * 86_400,
                            auth_methods: doorman::model::AuthMethods::PASSWORD,
                        },
                    )?;
                    let named = (ui == owner && keep_owner) || (ui == fifty && keep_fifty);
                    if named || want[ui] > 0 {
                        kept.push((ui, token, public_id));
                        if ui == owner {
                            keep_owner = false;
                        } else if ui == fifty {
                            keep_fifty = false;
                        } else {
                            want[ui] -= 1;
                        }
                    }
                }
                tx.commit()?;
                Ok::<_, DbError>(kept)
            })
            .map_err(|e| e.to_string())?;
        for (ui, token, public_id) in kept {
            if ui == owner {
                let _ = writeln!(out, "owner {token}");
            } else if ui == fifty {
                let _ = writeln!(out, "fifty {token}");
            } else if hot_users.binary_search(&ui).is_ok() {
                hot.push(token);
            } else {
                pairs[ui].push((token, public_id));
            }
        }
        inserted += chunk.len();
        eprintln!("seed: {inserted} sessions ({:.1?})", started.elapsed());
    }
    for token in hot {
        let _ = writeln!(out, "hot {token}");
    }
    for p in pairs.iter().filter(|p| p.len() == 2) {
        let _ = writeln!(out, "pair {} {} {}", p[0].0, p[1].1, p[1].0);
    }
    for u in users
        .iter()
        .skip(2)
        .step_by((users.len() / SIGNIN).max(1))
        .take(SIGNIN)
    {
        let _ = writeln!(out, "signin {}", u.email);
    }
    seed_logout_grants(&db, &users, now, &mut out)?;

    insert_events(&db, &users, &devices, &mut rng, now, events, &mut out)?;
    eprintln!("seed: {events} events ({:.1?})", started.elapsed());

    db.blocking(|c| -> Result<_, doorman::db::DbError> {
        c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA optimize;")?;
        let active = db::sessions::count_active(c, doorman::clock::now())?;
        eprintln!("seed: {active} active sessions");
        Ok(())
    })
    .map_err(|e| e.to_string())?;

    let mut file = std::fs::File::create(tokens_path)
        .map_err(|e| format!("cannot write {}: {e}", tokens_path.display()))?;
    file.write_all(out.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", tokens_path.display()))?;
    eprintln!("seed: done in {:.1?}", started.elapsed());
    Ok(())
}

// ---- back-channel logout (the "logout delivered" row) ---------------------------------

/// Sessions signed in to both OpenID clients, each of a distinct user.
const LOGOUT_SESSIONS: usize = 1_000;
/// The two clients, as bench/run.sh registers them (each with a `backchannel_logout_uri`).
const LOGOUT_CLIENTS: [(&str, &str); 2] = [("bench-a", "Bench A"), ("bench-b", "Bench B")];

/// One session of each of [`LOGOUT_SESSIONS`] users (none whose tokens the loads use)
/// gets a grant of each client, through `db::oidc_grants::insert_grant` as a sign-in to
/// them writes it. `logout <public id>` lines name them: the owner ends them.
fn seed_logout_grants(
    db: &Db,
    users: &[UserInfo],
    now: i64,
    out: &mut String,
) -> Result<(), String> {
    // Not the owner, the fifty, the admins, nor the users of `hot` and `pair` lines.
    let eligible: Vec<&UserInfo> = users
        .iter()
        .enumerate()
        .filter(|(i, _)| *i >= 2 + 2 * ACCOUNTS && i % 97 != 0 && i % 89 != 0)
        .map(|(_, u)| u)
        .collect();
    let step = (eligible.len() / LOGOUT_SESSIONS).max(1);
    let chosen: Vec<&UserInfo> = eligible
        .into_iter()
        .step_by(step)
        .take(LOGOUT_SESSIONS)
        .collect();
    let sids = db
        .blocking(|c| -> Result<_, DbError> {
            let tx = c.transaction()?;
            let mut sids = Vec::with_capacity(chosen.len());
            for u in &chosen {
                let listed =
                    db::sessions::list_active_for_user(&tx, u.id, &u.email, "", now, Some(1))?;
                let Some(s) = listed.first() else { continue };
                for (client_id, application) in LOGOUT_CLIENTS {
                    db::oidc_grants::insert_grant(
                        &tx,
                        &db::oidc_grants::NewGrant {
                            session_pk: s.pk,
                            user_id: u.id,
                            client_id,
                            application,
                            sid: &s.id.0,
                            scopes: "openid email",
                            now,
                        },
                    )?;
                }
                sids.push(s.id.0.clone());
            }
            tx.commit()?;
            Ok(sids)
        })
        .map_err(|e| e.to_string())?;
    for sid in &sids {
        let _ = writeln!(out, "logout {sid}");
    }
    eprintln!(
        "seed: {} sessions signed in to two OpenID clients",
        sids.len()
    );
    Ok(())
}

/// `n` events over the last 13 days, oldest first, in transactions of [`BATCH`].
fn insert_events(
    db: &Db,
    users: &[UserInfo],
    devices: &[Device],
    rng: &mut Rng,
    now: i64,
    n: usize,
    out: &mut String,
) -> Result<(), String> {
    // (type, weight in a thousand)
    const MIX: [(EventType, usize); 9] = [
        (EventType::SessionCreated, 380),
        (EventType::SessionEnded, 300),
        (EventType::LoginFailed, 150),
        (EventType::AlertQueued, 60),
        (EventType::AlertSent, 50),
        (EventType::AccessDenied, 30),
        (EventType::UserPasswordChanged, 20),
        (EventType::UserRoleChanged, 5),
        (EventType::UserCreated, 5),
    ];
    let span = 13 * 86_400i64;
    let start = now - span;
    let mut done = 0usize;
    while done < n {
        let batch = BATCH.min(n - done);
        db.blocking(|c| -> Result<_, DbError> {
            bulk_cache(c)?;
            let tx = c.transaction()?;
            for i in done..done + batch {
                let at = start + (i as i64 * span) / n as i64;
                let mut pick = rng.below(1000);
                let kind = MIX
                    .iter()
                    .find(|(_, w)| {
                        let hit = pick < *w;
                        pick = pick.saturating_sub(*w);
                        hit
                    })
                    .map_or(EventType::SessionCreated, |(t, _)| *t);
                let u = &users[rng.below(users.len())];
                let d = &u.devices[rng.below(u.devices.len())];
                let session = new_public_id();
                let details = match kind {
                    EventType::SessionEnded => format!(r#"{{"reason":"logout","by":{}}}"#, u.id.0),
                    EventType::LoginFailed => {
                        format!(r#"{{"email":"{}","reason":"wrong_password"}}"#, u.email)
                    }
                    EventType::SessionCreated => r#"{"application":"web"}"#.to_string(),
                    _ => "{}".to_string(),
                };
                db::events::insert(
                    &tx,
                    &NewEventRow {
                        at,
                        kind,
                        actor: Some(u.id),
                        user: Some(u.id),
                        account: Some(u.account),
                        session_id: (kind != EventType::LoginFailed).then_some(session.as_str()),
                        ip: &d.ip,
                        location: &d.location,
                        device: &devices[d.ua],
                        details: &details,
                    },
                )?;
            }
            tx.commit()?;
            Ok(())
        })
        .map_err(|e| e.to_string())?;
        done += batch;
        eprintln!("seed: {done} events");
    }
    let _ = writeln!(out, "eventuser {}", users[users.len() / 2].id.0);
    let _ = writeln!(out, "eventaccount {}", users[users.len() / 2].account.0);
    let _ = writeln!(out, "eventcursor {}", n / 2);
    Ok(())
}

/// A bigger page cache for the bulk load only (this connection, this process): the
/// session indexes are keyed by random hashes, and every insert touches a random page.
fn bulk_cache(c: &rusqlite::Connection) -> Result<(), DbError> {
    c.execute_batch("PRAGMA cache_size = -1048576;")?;
    Ok(())
}

/// Accounts, users (user 0 is the owner, user 1 has 50 sessions) and their devices: one
/// user per [`SESSIONS_PER_USER`] of `sessions`.
fn insert_users(
    c: &rusqlite::Connection,
    hash: &str,
    geo: &Geo,
    rng: &mut Rng,
    now: i64,
    sessions: usize,
) -> Result<Vec<UserInfo>, DbError> {
    let mut accounts = Vec::with_capacity(ACCOUNTS);
    for name in ACCOUNT_NAMES {
        accounts.push(db::accounts::insert(c, name, now - 400 * 86_400)?);
    }
    let user_count = sessions / SESSIONS_PER_USER;
    // 1 to 19 sessions each (10 on average), then trimmed to exactly `sessions` in all.
    let mut counts: Vec<usize> = (0..user_count).map(|_| 1 + rng.below(19)).collect();
    counts[0] = 1;
    counts[1] = FIFTY;
    let mut total: usize = counts.iter().sum();
    let mut i = 2;
    while total != sessions {
        if total > sessions && counts[i] > 1 {
            counts[i] -= 1;
            total -= 1;
        } else if total < sessions && counts[i] < 19 {
            counts[i] += 1;
            total += 1;
        }
        i = if i + 1 == user_count { 2 } else { i + 1 };
    }

    let mut users = Vec::with_capacity(user_count);
    for (n, &sessions) in counts.iter().enumerate() {
        let a = n % ACCOUNTS;
        let domain = ACCOUNT_NAMES[a].to_lowercase();
        let (email, role) = match n {
            0 => ("owner@bench.example".to_string(), Role::Owner),
            1 => (format!("fifty@{domain}.example"), Role::User),
            _ if n < 2 + 2 * ACCOUNTS => (format!("admin{n:06}@{domain}.example"), Role::Admin),
            _ => (format!("user{n:06}@{domain}.example"), Role::User),
        };
        let name = format!("User {n}");
        let id = db::users::insert(
            c,
            &NewUser {
                account_id: accounts[a],
                email: &email,
                name: &name,
                role,
                password_hash: hash,
                now: now - 200 * 86_400,
                invited: false,
                email_verified: true,
            },
        )?;
        let mut devices = Vec::new();
        for _ in 0..(1 + rng.below(3)).min(sessions) {
            let ip = public_ipv4(rng);
            let device = DeviceInfo {
                id: new_device_id(),
                ip: ip.to_string(),
                location: geo.lookup(IpAddr::V4(ip)),
                ua: rng.below(USER_AGENTS.len()),
            };
            db::devices::upsert(c, id, &device.id, now - 13 * 86_400)?;
            devices.push(device);
        }
        users.push(UserInfo {
            id,
            account: accounts[a],
            email,
            devices,
            sessions,
        });
    }
    Ok(users)
}

/// A random address outside the private, reserved and multicast ranges.
fn public_ipv4(rng: &mut Rng) -> Ipv4Addr {
    loop {
        let ip = Ipv4Addr::from(rng.next() as u32);
        let o = ip.octets();
        let reserved = ip.is_private()
            || ip.is_loopback()
            || ip.is_link_local()
            || ip.is_documentation()
            || o[0] == 0
            || (o[0] == 100 && (o[1] & 0xc0) == 64)
            || o[0] >= 224;
        if !reserved {
            return ip;
        }
    }
}
