//! The load benchmark's two yardsticks for the session check (bench/run.sh starts them
//! beside Doorman and loads all three with the same wrk settings, in interleaved rounds):
//!
//! - `reference constant ADDR`: a poem server answering every request with an empty 200,
//!   the framework's own floor on this machine.
//! - `reference bare ADDR DB`: a poem server whose one route, `GET /auth/verify`, takes the
//!   `Authorization: Bearer` token, hashes it as Doorman does (`hash_token`, SHA-256),
//!   looks the hash up with `SELECT 1 FROM sessions WHERE token_hash = ?1` in the seeded
//!   file and answers 200 or 401: the least a database-backed session check can do.
//!
//! Both run as Doorman's `serve` does, so that the ratios measure Doorman's own work: the
//! same allocator (jemalloc), the same tokio multi-thread runtime (a worker per core, at
//! most 16 blocking threads), the same acceptor. The bare check uses a pool like
//! Doorman's storage (r2d2 of eight connections opened with the same pragmas, one permit
//! per connection) and runs its read as Doorman's `Db::read_or_block` does: at once on the
//! async worker when a connection is idle, on the blocking pool otherwise.
//!
//! ```sh
//! cargo run --release --example reference -- bare 127.0.0.1:18082 target/bench/doorman.sqlite3
//! ```

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use doorman::domain::tokens::hash_token;
use poem::http::{StatusCode, header};
use poem::listener::TcpAcceptor;
use poem::web::Data;
use poem::{EndpointExt, Request, Route, Server, get, handler};
use r2d2::Pool;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::Connection;
use tokio::sync::Semaphore;

/// As Doorman's binary: see src/main.rs.
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Doorman's pool size (src/db/mod.rs).
const POOL_SIZE: u32 = 8;

const USAGE: &str = "usage: reference constant ADDR | reference bare ADDR DB";

enum Mode {
    Constant,
    Bare(String),
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let mode = match (args.get(1).map(String::as_str), args.len()) {
        (Some("constant"), 3) => Mode::Constant,
        (Some("bare"), 4) => Mode::Bare(args[3].clone()),
        _ => return fail(USAGE),
    };
    let Ok(addr) = args[2].parse::<SocketAddr>() else {
        return fail(&format!(
            "`{}` is not an address such as 127.0.0.1:18081",
            args[2]
        ));
    };
    // Doorman's `serve`: tokio's defaults (one worker per core), at most 16 blocking threads.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(16)
        .build()
    {
        Ok(rt) => rt,
        Err(err) => return fail(&err.to_string()),
    };
    match runtime.block_on(serve(addr, mode)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(&err),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("reference: {message}");
    ExitCode::FAILURE
}

/// Listens as Doorman does (a std listener handed to poem's acceptor) and serves until
/// the process is ended.
async fn serve(addr: SocketAddr, mode: Mode) -> Result<(), String> {
    let listener =
        std::net::TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let acceptor = TcpAcceptor::from_std(listener).map_err(|e| e.to_string())?;
    let server = Server::new_with_acceptor(acceptor);
    let served = match mode {
        Mode::Constant => server.run(constant).await,
        Mode::Bare(path) => {
            let bare = Bare::open(Path::new(&path))?;
            server
                .run(Route::new().at("/auth/verify", get(verify)).data(bare))
                .await
        }
    };
    served.map_err(|e| e.to_string())
}

#[handler]
fn constant() -> StatusCode {
    StatusCode::OK
}

/// The pool and its permits, as Doorman's `Db`.
#[derive(Clone)]
struct Bare {
    pool: Pool<SqliteConnectionManager>,
    permits: Arc<Semaphore>,
}

/// Doorman's per-connection settings (src/db/mod.rs `init_connection`).
fn init_connection(c: &mut Connection) -> rusqlite::Result<()> {
    c.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
    c.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;",
    )?;
    c.busy_timeout(Duration::from_secs(5))
}

impl Bare {
    fn open(path: &Path) -> Result<Self, String> {
        if !path.is_file() {
            return Err(format!("no database at {}", path.display()));
        }
        let manager = SqliteConnectionManager::file(path).with_init(init_connection);
        let pool = Pool::builder()
            .max_size(POOL_SIZE)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(10))
            .build(manager)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        Ok(Bare {
            pool,
            permits: Arc::new(Semaphore::new(POOL_SIZE as usize)),
        })
    }

    /// Whether a session has this token hash: inline when a connection is idle, else on
    /// the blocking pool (Doorman's `Db::read_or_block`).
    async fn known(&self, hash: [u8; 32]) -> Result<bool, String> {
        if let Ok(_permit) = self.permits.try_acquire()
            && let Some(conn) = self.pool.try_get()
        {
            return lookup(&conn, &hash);
        }
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let conn = pool.get().map_err(|e| e.to_string())?;
            lookup(&conn, &hash)
        })
        .await
        .map_err(|e| e.to_string())?
    }
}

fn lookup(c: &Connection, hash: &[u8; 32]) -> Result<bool, String> {
    let mut stmt = c
        .prepare_cached("SELECT 1 FROM sessions WHERE token_hash = ?1")
        .map_err(|e| e.to_string())?;
    stmt.exists([&hash[..]]).map_err(|e| e.to_string())
}

#[handler]
async fn verify(req: &Request, bare: Data<&Bare>) -> StatusCode {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    // Doorman refuses these before hashing (src/domain/signin/check.rs).
    if token.is_empty() || token.len() > 128 {
        return StatusCode::UNAUTHORIZED;
    }
    match bare.known(hash_token(token)).await {
        Ok(true) => StatusCode::OK,
        Ok(false) => StatusCode::UNAUTHORIZED,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}
