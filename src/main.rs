//! The `doorman` command line: `serve` (the default) and the operator's tools.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use doorman::domain::audit::webhooks;
use doorman::domain::ops::operator;
use doorman::domain::people::users::{self, CreateUser};
use doorman::model::{Role, User, UserStatus};
use doorman::{AppState, Config, clock};

#[derive(Parser)]
#[command(
    name = "doorman",
    version,
    about = "See where everyone is signed in, and end any sign-in."
)]
struct Cli {
    /// Configuration file (default: ./doorman.toml when it exists).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage accounts.
    #[command(subcommand)]
    Account(AccountCommand),
    /// List or end sessions.
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// Inspect and retry sign-in alert emails.
    #[command(subcommand)]
    Alerts(AlertsCommand),
    /// Inspect and retry webhook deliveries.
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
    /// Copy the database to PATH while the server may be running (SQLite online backup).
    Backup { path: PathBuf },
    /// Replace the database with a backup (a `.sqlite3.zst` backup or a plain SQLite
    /// file). The server must be stopped; the replaced file is kept beside it.
    Restore { path: PathBuf },
    /// Check the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// The location database.
    #[command(subcommand)]
    Geoip(GeoipCommand),
    /// Doorman as an OpenID Provider.
    #[command(subcommand)]
    Oidc(OidcCommand),
}

#[derive(Subcommand)]
enum OidcCommand {
    /// Print a new client secret and the `client_secret_hash` to configure.
    Secret,
    /// Publish new signing keys; they sign after `oidc.key_publish_delay`.
    RotateKeys,
}

#[derive(Subcommand)]
enum GeoipCommand {
    /// Print what Doorman would record as the location of an IP address.
    Lookup { ip: String },
}

#[derive(Subcommand)]
enum AccountCommand {
    /// Set the email domains an account's admins may create or invite addresses in
    /// (none: any domain). The owner is not limited.
    Domains {
        /// The account's name.
        #[arg(long)]
        account: String,
        /// Domains such as example.com; give none to allow any.
        domains: Vec<String>,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user (and the account, if it does not exist).
    Add {
        #[arg(long)]
        email: String,
        #[arg(long)]
        account: String,
        #[arg(long, default_value = "user", value_parser = ["user", "admin", "owner"])]
        role: String,
        #[arg(long)]
        name: Option<String>,
        /// Read the password from standard input; otherwise one is generated and printed.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a user's password; every session of the user ends.
    Passwd {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable a user; every session of the user ends at once.
    Disable {
        #[arg(long)]
        email: String,
    },
}

#[derive(Subcommand)]
enum SessionsCommand {
    /// Active sessions, most recently active first.
    List {
        #[arg(long)]
        email: Option<String>,
    },
    /// End a session by its public id (which may start with `-`).
    End {
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
}

#[derive(Subcommand)]
enum AlertsCommand {
    /// The most recent alerts and their delivery status.
    List {
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Queue an alert for sending again now (a failed one, or one kept back).
    Retry { id: i64 },
}

#[derive(Subcommand)]
enum WebhooksCommand {
    /// The most recent deliveries and their status (pending, delivered, failed).
    List {
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Only those not delivered yet (pending or failed).
        #[arg(long)]
        undelivered: bool,
    },
    /// Queue a pending or failed delivery again now, with its attempts counted afresh.
    Retry { id: i64 },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate the configuration without starting.
    Check,
}

/// jemalloc instead of glibc's malloc: a session listing allocates and frees thousands
/// of small strings per request, and glibc spent a third of the request's CPU on that
/// (and kept per-thread arenas of freed memory); see bench/RESULTS.md.
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Some(Command::Oidc(OidcCommand::Secret))) {
        // Needs no configuration: it only makes a secret.
        let (secret, hash) = doorman::domain::oidc::new_client_secret();
        println!("client secret (give it to the application): {secret}");
        println!("client_secret_hash = \"{hash}\"");
        return ExitCode::SUCCESS;
    }
    let serving = matches!(cli.command, None | Some(Command::Serve));
    init_logging(if serving { "info" } else { "warn" });
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(err) => return fail(err),
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config),
        Command::Restore { path } => restore(&config, &path),
        Command::Geoip(GeoipCommand::Lookup { ip }) => geoip_lookup(&config, &ip),
        Command::Config(ConfigCommand::Check) => {
            println!("configuration is valid");
            println!("{config:#?}");
            ExitCode::SUCCESS
        }
        other => match doorman::open_tool_state(config) {
            Ok(state) => match run_tool(&state, other) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => fail(err),
            },
            Err(err) => fail(err),
        },
    }
}

fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn fail(err: impl std::fmt::Display) -> ExitCode {
    eprintln!("doorman: {err}");
    ExitCode::FAILURE
}

fn serve(config: Config) -> ExitCode {
    // Storage calls run at most eight at once (the pool, see `Db::run`) and argon2 is
    // CPU-bound: a few dozen blocking threads are plenty. Tokio's default of 512 lets a
    // burst leave dozens of idle threads and their malloc arenas behind.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(16)
        .build()
    {
        Ok(rt) => rt,
        Err(err) => return fail(err),
    };
    runtime.block_on(async move {
        let shutdown = shutdown_signal();
        let listen = config.server.listen;
        // Opening storage and the GeoIP database (unpacked on a first start) block: keep
        // them off the async workers.
        let state = match tokio::task::spawn_blocking(move || doorman::open_state(config)).await {
            Ok(Ok(s)) => s,
            Ok(Err(err)) => return fail(err),
            Err(err) => return fail(err),
        };
        let listener = match std::net::TcpListener::bind(listen) {
            Ok(l) => l,
            Err(err) => return fail(format!("cannot listen on {listen}: {err}")),
        };
        match doorman::serve(listener, state, shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => fail(err),
        }
    })
}

/// SIGTERM or Ctrl-C. The handlers are registered at once, before storage opens: a
/// SIGTERM during start-up then stops the server cleanly once it is up, instead of
/// killing the process with the default action.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        )
    };
    async move {
        #[cfg(unix)]
        match signals {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    }
}

/// Opens the location database only (the configured file, or the embedded one, unpacked
/// beside the SQLite database as `serve` would), never the SQLite database.
fn geoip_lookup(config: &Config, ip: &str) -> ExitCode {
    let Ok(addr) = ip.trim().parse::<std::net::IpAddr>() else {
        return fail(format!("`{ip}` is not an IPv4 or IPv6 address"));
    };
    let data_dir = doorman::geo::data_dir(&config.storage.path);
    let geo = match doorman::geo::Geo::open(&config.geoip.database, &data_dir) {
        Ok(g) => g,
        Err(err) => return fail(err),
    };
    let loc = geo.lookup(addr);
    let or_unknown = |v: &Option<String>| v.clone().unwrap_or_else(|| "Unknown".into());
    println!("ip: {}", addr.to_canonical());
    println!("country code: {}", or_unknown(&loc.country_code));
    println!("country: {}", or_unknown(&loc.country));
    println!("city: {}", or_unknown(&loc.city));
    if let Some(net) = config.network_of(addr) {
        println!("network: {}", net.name);
    }
    let built = clock::utc(i64::try_from(geo.build_epoch()).unwrap_or(0));
    println!(
        "database: {}, built {}",
        geo.name(),
        &built[..10.min(built.len())]
    );
    ExitCode::SUCCESS
}

/// Runs without opening the database: the file in place may be the damaged one.
fn restore(config: &Config, path: &std::path::Path) -> ExitCode {
    let database = &config.storage.path;
    match doorman::domain::ops::restore::restore(database, path) {
        Ok(done) => {
            println!(
                "restored {} from {} (schema version {})",
                database.display(),
                path.display(),
                done.schema_version
            );
            if let Some(kept) = done.kept {
                println!("the replaced database is kept as {}", kept.display());
            }
            ExitCode::SUCCESS
        }
        Err(err) => fail(format!("restore refused: {err}; nothing was replaced")),
    }
}

fn read_password(from_stdin: bool) -> Result<(String, bool), String> {
    if from_stdin {
        let mut buf = String::new();
        std::io::stdin()
            .take(4096)
            .read_to_string(&mut buf)
            .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
        let pw = buf.trim_end_matches(['\r', '\n']).to_string();
        return Ok((pw, false));
    }
    Ok((doorman::domain::tokens::new_token()[..20].to_string(), true))
}

fn find_user(state: &AppState, email: &str) -> Result<User, String> {
    operator::find_user(state, email).map_err(|e| match e {
        doorman::error::Error::NotFound => format!("no user with email {email}"),
        other => other.to_string(),
    })
}

fn run_tool(state: &AppState, command: Command) -> Result<(), String> {
    match command {
        Command::User(UserCommand::Add {
            email,
            account,
            role,
            name,
            password_stdin,
        }) => add_user(state, email, account, &role, name, password_stdin),
        Command::User(UserCommand::Passwd {
            email,
            password_stdin,
        }) => change_password(state, &email, password_stdin),
        Command::User(UserCommand::Disable { email }) => {
            let user = find_user(state, &email)?;
            let ended = users::set_status_blocking(state, user.id, UserStatus::Disabled, None)
                .map_err(|e| e.to_string())?;
            println!("disabled {}; {ended} session(s) ended", user.email);
            Ok(())
        }
        Command::Account(AccountCommand::Domains { account, domains }) => {
            let set =
                operator::set_email_domains(state, &account, &domains).map_err(|e| match e {
                    doorman::error::Error::NotFound => format!("no account named {account}"),
                    other => other.to_string(),
                })?;
            if set.is_empty() {
                println!("{account}: admins may give addresses at any domain");
            } else {
                println!("{account}: admins may give addresses at {}", set.join(", "));
            }
            Ok(())
        }
        Command::Sessions(SessionsCommand::List { email }) => list_sessions(state, email),
        Command::Sessions(SessionsCommand::End { id }) => {
            if !operator::end_session(state, &id).map_err(|e| e.to_string())? {
                return Err(format!("no active session with id {id}"));
            }
            println!("session {id} ended");
            Ok(())
        }
        Command::Backup { path } => {
            operator::backup(state, &path).map_err(|e| e.to_string())?;
            println!("backed up to {}", path.display());
            Ok(())
        }
        Command::Webhooks(WebhooksCommand::List { limit, undelivered }) => {
            list_webhooks(state, limit, undelivered)
        }
        Command::Webhooks(WebhooksCommand::Retry { id }) => {
            if !webhooks::retry(state, id).map_err(|e| e.to_string())? {
                return Err(format!("no undelivered webhook delivery with id {id}"));
            }
            println!("delivery {id} queued; a running server sends it within seconds");
            Ok(())
        }
        Command::Alerts(AlertsCommand::List { limit }) => list_alerts(state, limit),
        Command::Alerts(AlertsCommand::Retry { id }) => {
            if state.mailer.is_none() {
                return Err("email is off: set mail.smtp_url first".into());
            }
            if !operator::retry_alert(state, id).map_err(|e| e.to_string())? {
                return Err(format!("no unsent alert with id {id}"));
            }
            println!("alert {id} queued; a running server sends it within seconds");
            Ok(())
        }
        Command::Oidc(OidcCommand::RotateKeys) => rotate_keys(state),
        Command::Serve
        | Command::Restore { .. }
        | Command::Config(_)
        | Command::Geoip(_)
        | Command::Oidc(OidcCommand::Secret) => Ok(()),
    }
}

fn rotate_keys(state: &AppState) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let made = rt
        .block_on(doorman::domain::oidc::keys::rotate(state))
        .map_err(|e| e.to_string())?;
    for (kid, alg, from) in made {
        println!(
            "new {alg} key {kid} published; it signs from {}",
            clock::utc(from)
        );
    }
    println!("a running server publishes the new keys within seconds");
    Ok(())
}

fn add_user(
    state: &AppState,
    email: String,
    account: String,
    role: &str,
    name: Option<String>,
    password_stdin: bool,
) -> Result<(), String> {
    let (password, generated) = read_password(password_stdin)?;
    let role = Role::parse(role).unwrap_or(Role::User);
    let name = name.unwrap_or_else(|| email.split('@').next().unwrap_or_default().to_string());
    let user = users::create_blocking(
        state,
        CreateUser {
            account,
            email,
            name,
            role,
            password: password.clone(),
        },
    )
    .map_err(|e| e.to_string())?;
    println!(
        "created {} ({}) in account {} with id {}",
        user.email, user.role, user.account_name, user.id
    );
    if generated {
        println!("password: {password}");
    }
    Ok(())
}

fn change_password(state: &AppState, email: &str, password_stdin: bool) -> Result<(), String> {
    let user = find_user(state, email)?;
    let (password, generated) = read_password(password_stdin)?;
    let ended =
        users::set_password_blocking(state, user.id, &password, None).map_err(|e| e.to_string())?;
    println!(
        "password changed for {}; {ended} session(s) ended",
        user.email
    );
    if generated {
        println!("password: {password}");
    }
    Ok(())
}

fn list_sessions(state: &AppState, email: Option<String>) -> Result<(), String> {
    let user = email
        .map(|e| find_user(state, &e))
        .transpose()?
        .map(|u| u.id);
    let list = operator::active_sessions(state, user).map_err(|e| e.to_string())?;
    println!(
        "{:<24} {:<32} {:<12} {:<40} {:<16} LAST ACTIVE (UTC)",
        "ID", "USER", "APP", "DEVICE", "IP"
    );
    for s in &list {
        println!(
            "{:<24} {:<32} {:<12} {:<40} {:<16} {}",
            s.id,
            s.user_email,
            s.application,
            s.device.label(),
            s.ip,
            clock::utc(s.last_active_at)
        );
    }
    println!("{} active session(s)", list.len());
    Ok(())
}

fn list_webhooks(state: &AppState, limit: i64, undelivered: bool) -> Result<(), String> {
    let rows = webhooks::recent(state, undelivered, limit).map_err(|e| e.to_string())?;
    println!(
        "{:<8} {:<10} {:<24} {:<6} {:<24} {:<36} {:<40} LAST ERROR",
        "ID", "STATUS", "EVENT", "TRIES", "CREATED (UTC)", "WEBHOOK-ID", "URL"
    );
    for d in &rows {
        println!(
            "{:<8} {:<10} {:<24} {:<6} {:<24} {:<36} {:<40} {}",
            d.id,
            d.status,
            d.event_type.as_deref().unwrap_or("(deleted)"),
            d.attempts,
            clock::utc(d.created_at),
            d.message_id,
            doorman::config::shown_url(&d.url),
            d.last_error.as_deref().unwrap_or("")
        );
    }
    println!("{} deliveries", rows.len());
    Ok(())
}

fn list_alerts(state: &AppState, limit: i64) -> Result<(), String> {
    let rows = operator::recent_alerts(state, limit).map_err(|e| e.to_string())?;
    println!(
        "{:<8} {:<10} {:<24} {:<8} {:<24} LAST ERROR",
        "ID", "STATUS", "REASONS", "TRIES", "CREATED (UTC)"
    );
    for a in &rows {
        println!(
            "{:<8} {:<10} {:<24} {:<8} {:<24} {}",
            a.id,
            a.status,
            a.reasons,
            a.attempts,
            clock::utc(a.created_at),
            a.last_error.as_deref().unwrap_or("")
        );
    }
    println!("{} alert(s)", rows.len());
    Ok(())
}
