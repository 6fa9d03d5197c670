//! Typed configuration: defaults, then `doorman.toml` (or `--config PATH`), then
//! `DOORMAN_<SECTION>__<KEY>` environment variables. Everything is validated once, at
//! start, and every problem is reported together so an operator fixes them in one go.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use ipnet::IpNet;
use serde::{Deserialize, Deserializer};

mod oidc;
mod webhooks;
pub use oidc::{OidcClient, OidcConfig, SigningAlg, redirect_uri_problem};
pub use webhooks::{WEBHOOK_TIMEOUT, WebhookConfig, shown_url};

/// The default of `security.password_min_length`.
pub const MIN_PASSWORD: usize = 10;
/// The longest password accepted: argon2 would take anything, but a megabyte
/// "password" is an attack.
pub const MAX_PASSWORD: usize = 1024;

/// Where the configuration file is looked for when `--config` is not given.
pub const DEFAULT_CONFIG_FILE: &str = "doorman.toml";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub sessions: SessionsConfig,
    pub security: SecurityConfig,
    pub accounts: AccountsConfig,
    pub geoip: GeoipConfig,
    pub mail: MailConfig,
    pub applications: Vec<Application>,
    /// Trusted networks (SPEC §14): named in the Location column, optionally silent.
    pub networks: Vec<Network>,
    pub alerts: AlertsConfig,
    pub bootstrap: BootstrapConfig,
    pub metrics: MetricsConfig,
    pub backup: BackupConfig,
    pub privacy: PrivacyConfig,
    pub webhooks: Vec<WebhookConfig>,
    /// Doorman as an OpenID Provider (SPEC §20).
    pub oidc: OidcConfig,
}

/// How long personal records are kept (docs/PRIVACY.md). The sweeper enforces these
/// every `sweep_interval`; ended sessions follow `sessions.retention`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrivacyConfig {
    #[serde(with = "humantime_serde")]
    pub sweep_interval: Duration,
    #[serde(with = "humantime_serde")]
    pub login_records_retention: Duration,
    /// For the security log (events older than this are deleted).
    #[serde(with = "humantime_serde")]
    pub events_retention: Duration,
    #[serde(with = "humantime_serde")]
    pub alerts_retention: Duration,
    /// Devices not seen for this long are forgotten.
    #[serde(with = "humantime_serde")]
    pub devices_retention: Duration,
    /// IPs in records older than this keep only their /24 (IPv4) or /48 (IPv6);
    /// empty (the default) keeps them whole.
    #[serde(deserialize_with = "optional_duration")]
    pub truncate_ips_after: Option<Duration>,
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        Self {
            sweep_interval: Duration::from_secs(60 * 60),
            login_records_retention: Duration::from_secs(180 * DAY),
            events_retention: Duration::from_secs(400 * DAY),
            alerts_retention: Duration::from_secs(90 * DAY),
            devices_retention: Duration::from_secs(400 * DAY),
            truncate_ips_after: None,
        }
    }
}

/// A humantime duration where the empty string means "never".
fn optional_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let raw = String::deserialize(d)?;
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    humantime::parse_duration(raw).map(Some).map_err(|e| {
        serde::de::Error::custom(format!(
            "`{raw}` is not a duration such as \"30d\" (or \"\" for never): {e}"
        ))
    })
}

/// Scheduled, compressed copies of the database (`doorman-<UTC time>.sqlite3.zst`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackupConfig {
    /// Where backups go; empty turns them off.
    pub dir: PathBuf,
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// How many backups are kept; older ones are deleted after each new one.
    pub keep: u32,
}

impl Default for BackupConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::new(),
            interval: Duration::from_secs(DAY),
            keep: 7,
        }
    }
}

impl BackupConfig {
    pub fn enabled(&self) -> bool {
        !self.dir.as_os_str().is_empty()
    }
}

/// Who may read `/metrics`: with a token, only `Authorization: Bearer <token>`; without,
/// only loopback peers. Everyone else gets 404.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    pub token: String,
    /// How long the gauges read from the database (active sessions, alerts) of one
    /// scrape serve the next ones, so that scrapes cost little however often they come.
    #[serde(with = "humantime_serde")]
    pub gauge_cache: Duration,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            token: String::new(),
            gauge_cache: Duration::from_secs(5),
        }
    }
}

impl fmt::Debug for MetricsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let token = if self.token.is_empty() { "" } else { "***" };
        f.debug_struct("MetricsConfig")
            .field("token", &token)
            .field("gauge_cache", &self.gauge_cache)
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub public_url: String,
    pub trusted_proxies: Vec<Cidr>,
    pub cookie_domain: String,
    /// The identity header families a successful forward-auth answer carries.
    pub forward_auth_headers: Vec<HeaderFamily>,
}

/// A family of identity headers, named after the tool that made it usual.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum HeaderFamily {
    /// `X-Doorman-User`, `X-Doorman-Email`, `X-Doorman-Session`.
    #[serde(rename = "doorman")]
    Doorman,
    /// Authelia's `Remote-User`, `Remote-Email`, `Remote-Name`, `Remote-Groups`.
    #[serde(rename = "remote")]
    Remote,
    /// oauth2-proxy's `X-Auth-Request-User`, `-Email`, `-Groups`.
    #[serde(rename = "oauth2-proxy")]
    Oauth2Proxy,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: "http://localhost:8080".into(),
            trusted_proxies: Vec::new(),
            cookie_domain: String::new(),
            forward_auth_headers: vec![
                HeaderFamily::Doorman,
                HeaderFamily::Remote,
                HeaderFamily::Oauth2Proxy,
            ],
        }
    }
}

impl ServerConfig {
    /// Cookies get the `Secure` flag only when the public address is https, so a plain
    /// http install on localhost still works.
    pub fn secure_cookies(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    pub fn public_base(&self) -> &str {
        self.public_url.trim_end_matches('/')
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    pub path: PathBuf,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("data/doorman.sqlite3"),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionsConfig {
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub max_lifetime: Duration,
    #[serde(with = "humantime_serde")]
    pub touch_interval: Duration,
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
}

const DAY: u64 = 24 * 60 * 60;

impl Default for SessionsConfig {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(14 * DAY),
            max_lifetime: Duration::from_secs(30 * DAY),
            touch_interval: Duration::from_secs(60),
            retention: Duration::from_secs(90 * DAY),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityConfig {
    pub login_rate_limit: RateLimitConfig,
    pub argon2: Argon2Config,
    /// The shortest password accepted anywhere one is set (SPEC §11).
    pub password_min_length: usize,
    /// How long a sign-in or a "confirm it's you" lets sensitive actions go ahead.
    #[serde(with = "humantime_serde")]
    pub step_up_window: Duration,
    /// Everyone must have a second factor (they enrol right after the password).
    pub require_second_factor: bool,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        Self {
            login_rate_limit: RateLimitConfig::default(),
            argon2: Argon2Config::default(),
            step_up_window: Duration::from_secs(10 * 60),
            require_second_factor: false,
            password_min_length: MIN_PASSWORD,
        }
    }
}

/// Invitations and password resets (SPEC §11): how long their links work.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountsConfig {
    #[serde(with = "humantime_serde")]
    pub invite_ttl: Duration,
    #[serde(with = "humantime_serde")]
    pub reset_ttl: Duration,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        Self {
            invite_ttl: Duration::from_secs(7 * DAY),
            reset_ttl: Duration::from_secs(60 * 60),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Failed sign-ins allowed per email and per IP within `window`.
    pub failures: u32,
    #[serde(with = "humantime_serde")]
    pub window: Duration,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            failures: 10,
            window: Duration::from_secs(15 * 60),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Argon2Config {
    /// Memory in KiB.
    pub m: u32,
    pub t: u32,
    pub p: u32,
}

impl Default for Argon2Config {
    fn default() -> Self {
        Self {
            m: 19456,
            t: 2,
            p: 1,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GeoipConfig {
    /// Empty means the database embedded in the binary.
    pub database: PathBuf,
}

#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailConfig {
    pub smtp_url: String,
    pub from: String,
    /// How long one SMTP conversation (connect, greeting, send) may take before the
    /// attempt counts as failed and is retried later.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            smtp_url: String::new(),
            from: "Doorman <doorman@localhost>".into(),
            timeout: SMTP_TIMEOUT,
        }
    }
}

impl fmt::Debug for MailConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The SMTP URL may carry credentials.
        f.debug_struct("MailConfig")
            .field("smtp_url", &redact_url(&self.smtp_url))
            .field("from", &self.from)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Hides `user:pass@` in a URL.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}://***@{}", &url[..scheme_end], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

/// A trusted network: `name = "Office"`, `cidrs = ["203.0.113.0/24"]`, `alerts = false`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    pub name: String,
    pub cidrs: Vec<Cidr>,
    /// False: sign-ins from here never send a sign-in alert.
    #[serde(default = "yes")]
    pub alerts: bool,
}

fn yes() -> bool {
    true
}

/// The impossible-travel check (SPEC §14).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// Journeys shorter than this never count, whatever their speed.
    pub travel_min_km: f64,
    /// Faster than this between two sign-ins is an impossible journey.
    pub travel_max_kmh: f64,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            travel_min_km: 500.0,
            travel_max_kmh: 1000.0,
        }
    }
}

/// A protected application: where it is, and who may use it. Empty lists allow
/// everyone signed in; several lists must all allow.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Application {
    pub name: String,
    pub url: String,
    /// Account names whose people may use it.
    #[serde(default)]
    pub allow_accounts: Vec<String>,
    /// `user`, `admin` or `owner`; a role satisfies the roles below it (`owner`
    /// satisfies `admin`).
    #[serde(default)]
    pub allow_roles: Vec<String>,
    /// Email globs (`*` any run of characters, `?` one), compared case-insensitively.
    #[serde(default)]
    pub allow_emails: Vec<String>,
    /// Only sessions signed in with a second factor.
    #[serde(default)]
    pub require_second_factor: bool,
    /// Match the path prefix without regard to case (for applications that serve
    /// `/Admin` as `/admin`); off by default, as paths are case-sensitive.
    #[serde(default)]
    pub path_case_insensitive: bool,
    /// The application signs people in with Doorman's OpenID Provider (SPEC §20).
    #[serde(default)]
    pub oidc: Option<OidcClient>,
    /// `url`, parsed and normalised once (every forward-auth request is matched against
    /// it); a cache, filled on first use: leave it to `Default`.
    #[serde(skip)]
    pub parsed: std::sync::OnceLock<Option<crate::address::Address>>,
}

impl Application {
    fn base(&self) -> Option<&crate::address::Address> {
        self.parsed
            .get_or_init(|| crate::address::normalise(&self.url))
            .as_ref()
    }

    /// Whether any rule limits who may use it.
    pub fn has_rules(&self) -> bool {
        !self.allow_accounts.is_empty()
            || !self.allow_roles.is_empty()
            || !self.allow_emails.is_empty()
            || self.require_second_factor
    }

    /// How long a prefix of `path` this application's path is, on a segment boundary
    /// (`/admin` holds `/admin`, `/admin/x` and `/admin;x`, not `/administrator`).
    fn prefix_of(&self, host: &str, path: &str) -> Option<usize> {
        let base = self.base()?;
        if base.host != host {
            return None;
        }
        let prefix = base.path.trim_end_matches('/');
        let head = path.get(..prefix.len())?;
        let same = if self.path_case_insensitive {
            head.eq_ignore_ascii_case(prefix)
        } else {
            head == prefix
        };
        let rest = &path[prefix.len()..];
        (same && (rest.is_empty() || rest.starts_with(['/', ';']))).then_some(prefix.len())
    }
}

#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BootstrapConfig {
    pub email: String,
    pub password: String,
    /// The account the bootstrap owner belongs to.
    pub account: String,
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        Self {
            email: String::new(),
            password: String::new(),
            account: "Default".into(),
        }
    }
}

impl fmt::Debug for BootstrapConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BootstrapConfig")
            .field("email", &self.email)
            .field("password", &"***")
            .field("account", &self.account)
            .finish()
    }
}

/// A trusted proxy: a CIDR (`10.0.0.0/8`) or a single address (`192.0.2.1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr(pub IpNet);

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        parse_cidr(&raw).map(Cidr).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "`{raw}` is not a CIDR or IP address (e.g. 10.0.0.0/8 or 192.0.2.1)"
            ))
        })
    }
}

fn parse_cidr(raw: &str) -> Option<IpNet> {
    let raw = raw.trim();
    raw.parse::<IpNet>()
        .ok()
        .or_else(|| raw.parse::<IpAddr>().ok().map(IpNet::from))
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} does not exist")]
    Missing(PathBuf),
    #[error("invalid configuration: {0}")]
    Parse(String),
    #[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
    Invalid(Vec<String>),
}

impl Config {
    /// Loads the layered configuration. `explicit` is `--config PATH`: it must exist;
    /// the default `doorman.toml` is optional.
    pub fn load(explicit: Option<&Path>) -> Result<Self, ConfigError> {
        let file = match explicit {
            Some(path) if !path.exists() => return Err(ConfigError::Missing(path.into())),
            Some(path) => path.to_path_buf(),
            None => PathBuf::from(DEFAULT_CONFIG_FILE),
        };
        let figment = Figment::new()
            .merge(Toml::file(file))
            .merge(Env::prefixed("DOORMAN_").split("__"));
        Self::from_figment(figment)
    }

    pub fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let config: Config = figment.extract().map_err(|err| {
            let all: Vec<String> = err.into_iter().map(|e| e.to_string()).collect();
            ConfigError::Parse(all.join("; "))
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what types alone cannot: ranges, URLs, names.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        let url = &self.server.public_url;
        if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() < 10 {
            problems.push(format!(
                "server.public_url: `{url}` must be an absolute http:// or https:// URL"
            ));
        }
        let domain = &self.server.cookie_domain;
        if domain.contains(|c: char| c.is_whitespace() || c == ';' || c == ',' || c == '/') {
            problems.push(format!(
                "server.cookie_domain: `{domain}` is not a domain name"
            ));
        }
        let s = &self.sessions;
        for (key, value) in [
            ("sessions.idle_timeout", s.idle_timeout),
            ("sessions.max_lifetime", s.max_lifetime),
            ("sessions.touch_interval", s.touch_interval),
            ("sessions.retention", s.retention),
            ("mail.timeout", self.mail.timeout),
            ("backup.interval", self.backup.interval),
            ("privacy.sweep_interval", self.privacy.sweep_interval),
            ("accounts.invite_ttl", self.accounts.invite_ttl),
            ("accounts.reset_ttl", self.accounts.reset_ttl),
            (
                "privacy.login_records_retention",
                self.privacy.login_records_retention,
            ),
            ("privacy.events_retention", self.privacy.events_retention),
            ("privacy.alerts_retention", self.privacy.alerts_retention),
            ("privacy.devices_retention", self.privacy.devices_retention),
            (
                "privacy.truncate_ips_after",
                self.privacy.truncate_ips_after.unwrap_or(Duration::MAX),
            ),
            (
                "security.login_rate_limit.window",
                self.security.login_rate_limit.window,
            ),
            ("security.step_up_window", self.security.step_up_window),
        ] {
            if value.is_zero() {
                problems.push(format!("{key}: must be longer than zero"));
            }
        }
        if s.touch_interval >= s.idle_timeout && !s.idle_timeout.is_zero() {
            problems
                .push("sessions.touch_interval: must be shorter than sessions.idle_timeout".into());
        }
        let min = self.security.password_min_length;
        if !(8..=MAX_PASSWORD).contains(&min) {
            problems.push(format!(
                "security.password_min_length: {min} must be between 8 and {}",
                MAX_PASSWORD
            ));
        }
        if self.security.login_rate_limit.failures == 0 {
            problems.push("security.login_rate_limit.failures: must be at least 1".into());
        }
        let a = &self.security.argon2;
        if let Err(err) = argon2::Params::new(a.m, a.t, a.p, None) {
            problems.push(format!("security.argon2: {err}"));
        }
        self.validate_applications(&mut problems);
        self.validate_networks(&mut problems);
        problems.extend(check_backup(&self.backup));
        problems.extend(check_mail(&self.mail));
        problems.extend(webhooks::check_webhooks(&self.webhooks));
        problems.extend(oidc::check_clients(&self.applications, &self.oidc));
        let b = &self.bootstrap;
        if b.email.is_empty() != b.password.is_empty() {
            problems.push("bootstrap.email and bootstrap.password: set both or neither".into());
        }
        if !b.email.is_empty() && !b.email.contains('@') {
            problems.push(format!(
                "bootstrap.email: `{}` is not an email address",
                b.email
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    fn validate_networks(&self, problems: &mut Vec<String>) {
        let mut seen = std::collections::HashSet::new();
        for (i, net) in self.networks.iter().enumerate() {
            let name = net.name.trim();
            if name.is_empty() || name.chars().count() > 64 || name != net.name {
                problems.push(format!(
                    "networks[{i}].name: must be 1 to 64 characters, without surrounding spaces"
                ));
            } else if !seen.insert(name.to_lowercase()) {
                problems.push(format!("networks[{i}].name: `{name}` is used twice"));
            }
            if net.cidrs.is_empty() {
                problems.push(format!("networks[{i}].cidrs: give at least one CIDR"));
            }
        }
        let a = &self.alerts;
        if !(a.travel_min_km.is_finite() && a.travel_min_km >= 0.0) {
            problems.push("alerts.travel_min_km: must be a number of kilometres, 0 or more".into());
        }
        if !(a.travel_max_kmh.is_finite() && a.travel_max_kmh > 0.0) {
            problems.push("alerts.travel_max_kmh: must be a speed above 0".into());
        }
    }

    /// The first trusted network that holds `ip`.
    pub fn network_of(&self, ip: IpAddr) -> Option<&Network> {
        let ip = ip.to_canonical();
        self.networks
            .iter()
            .find(|n| n.cidrs.iter().any(|c| c.0.contains(&ip)))
    }

    fn validate_applications(&self, problems: &mut Vec<String>) {
        let mut seen = std::collections::HashSet::new();
        for (i, app) in self.applications.iter().enumerate() {
            let name = app.name.trim();
            if name.is_empty() || name.len() > 64 {
                problems.push(format!(
                    "applications[{i}].name: must be 1 to 64 characters"
                ));
            } else if name == "web" || name == "api" {
                problems.push(format!("applications[{i}].name: `{name}` is reserved"));
            } else if !seen.insert(name.to_lowercase()) {
                problems.push(format!("applications[{i}].name: `{name}` is used twice"));
            }
            let url = &app.url;
            let host = url
                .strip_prefix("https://")
                .or_else(|| url.strip_prefix("http://"))
                .unwrap_or("");
            if host.is_empty()
                || host.starts_with('/')
                || url::Url::parse(url).is_err()
                || crate::address::normalise(url).is_none()
            {
                problems.push(format!(
                    "applications[{i}].url: `{url}` must be an absolute http:// or https:// URL"
                ));
            }
            for role in &app.allow_roles {
                if !matches!(role.as_str(), "user" | "admin" | "owner") {
                    problems.push(format!(
                        "applications[{i}].allow_roles: `{role}` is not a role (user, admin, owner)"
                    ));
                }
            }
            for (key, list) in [
                ("allow_accounts", &app.allow_accounts),
                ("allow_emails", &app.allow_emails),
            ] {
                if list.iter().any(|v| v.trim().is_empty()) {
                    problems.push(format!("applications[{i}].{key}: an entry is empty"));
                }
            }
        }
    }

    /// The configured application a return address belongs to, if any, and the address
    /// as it is to be followed. The address is normalised first (dot segments, repeated
    /// slashes, percent-encoded unreserved characters), so `https://wiki.example.com/app/../x`
    /// is not under an application at `/app`; then it must have the application's origin
    /// (scheme, host and port: the sign-in page sends the browser there) and lie under
    /// its path on a segment boundary. The longest matching path wins. An address whose
    /// path hides a separator (`%2F`, `%5C`, `%00`), which a server behind might decode,
    /// belongs to nobody.
    pub fn application_for(&self, rd: &str) -> Option<(&Application, String)> {
        let target = crate::address::normalise(rd)?;
        let app = self.application_at(&target)?;
        let base = app.base()?;
        (base.url.origin() == target.url.origin()).then(|| (app, target.url.to_string()))
    }

    /// The application a normalised address belongs to (SPEC §19): the same host (the
    /// scheme and the port do not make another application) and the longest path prefix
    /// on a segment boundary.
    pub fn application_at(&self, target: &crate::address::Address) -> Option<&Application> {
        self.applications
            .iter()
            .filter_map(|app| Some((app, app.prefix_of(&target.host, &target.path)?)))
            .max_by_key(|(_, len)| *len)
            .map(|(app, _)| app)
    }

    /// Whether any application has rules: then an address that cannot be matched
    /// safely is refused rather than let through (SPEC §19, fail closed).
    pub fn any_rules(&self) -> bool {
        self.applications.iter().any(Application::has_rules)
    }

    pub fn application_named(&self, name: &str) -> Option<&Application> {
        self.applications.iter().find(|app| app.name == name)
    }

    /// The application whose OpenID client id is `client_id`, and its client.
    pub fn oidc_client(&self, client_id: &str) -> Option<(&Application, &OidcClient)> {
        self.applications.iter().find_map(|app| {
            let c = app.oidc.as_ref()?;
            (c.client_id == client_id).then_some((app, c))
        })
    }
}

/// `backup.keep`, and that `backup.dir` (when set) can be created and written: a backup
/// that would fail every night is refused at start instead.
fn check_backup(cfg: &BackupConfig) -> Vec<String> {
    let mut problems = Vec::new();
    if cfg.keep == 0 {
        problems.push("backup.keep: must be at least 1".into());
    }
    if cfg.enabled()
        && let Err(err) = crate::files::check_writable_dir(&cfg.dir)
    {
        problems.push(format!(
            "backup.dir: `{}` cannot be created or written: {err}",
            cfg.dir.display()
        ));
    }
    problems
}

/// How long one SMTP conversation may take by default (`mail.timeout`).
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Checks the mail settings without connecting (used by config validation).
fn check_mail(cfg: &MailConfig) -> Vec<String> {
    let mut problems = Vec::new();
    if let Err(e) = cfg.from.parse::<lettre::message::Mailbox>() {
        problems.push(format!("mail.from: `{}` is not a mailbox ({e})", cfg.from));
    }
    if !cfg.smtp_url.is_empty() {
        let url = &cfg.smtp_url;
        if !(url.starts_with("smtp://") || url.starts_with("smtps://")) {
            problems.push(format!(
                "mail.smtp_url: `{}` must start with smtp:// or smtps://",
                redact_url(url)
            ));
        } else if let Err(e) = lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(url) {
            problems.push(format!("mail.smtp_url: `{}`: {e}", redact_url(url)));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::providers::Serialized;

    fn from_toml(text: &str) -> Result<Config, ConfigError> {
        Config::from_figment(Figment::new().merge(Toml::string(text)))
    }

    #[test]
    fn defaults_match_the_spec() {
        let c = from_toml("").unwrap();
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.sessions.idle_timeout, Duration::from_secs(14 * DAY));
        assert_eq!(c.sessions.touch_interval, Duration::from_secs(60));
        assert_eq!(c.security.argon2.m, 19456);
        assert_eq!(c.storage.path, PathBuf::from("data/doorman.sqlite3"));
    }

    #[test]
    fn unknown_key_is_named() {
        let err = from_toml("[server]\nlisten_port = 3\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("listen_port"), "{err}");
    }

    #[test]
    fn bad_duration_is_named() {
        let err = from_toml("[sessions]\nidle_timeout = \"soon\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("idle_timeout"), "{err}");
    }

    #[test]
    fn all_problems_reported_together() {
        let err = from_toml("[server]\npublic_url = \"ftp://x\"\n[sessions]\nretention = \"0s\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("server.public_url") && err.contains("sessions.retention"),
            "{err}"
        );
    }

    #[test]
    fn trusted_proxies_accept_cidr_and_ip() {
        let c = from_toml("[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"192.0.2.1\"]\n").unwrap();
        assert_eq!(c.server.trusted_proxies.len(), 2);
        let err = from_toml("[server]\ntrusted_proxies = [\"nope\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("trusted_proxies") && err.contains("nope"),
            "{err}"
        );
    }

    #[test]
    fn application_matching_has_no_open_redirect() {
        let c = Config::from_figment(Figment::new().merge(Serialized::default(
            "applications",
            vec![serde_json::json!({"name": "Grafana", "url": "https://grafana.example.com"})],
        )))
        .unwrap();
        assert!(
            c.application_for("https://grafana.example.com/d/1?x=2")
                .is_some()
        );
        assert!(c.application_for("https://grafana.example.com").is_some());
        assert!(
            c.application_for("https://grafana.example.com.evil.net/")
                .is_none()
        );
        assert!(
            c.application_for("https://evil.net/https://grafana.example.com")
                .is_none()
        );
    }

    #[test]
    fn return_addresses_are_normalised_before_they_are_matched() {
        let c = Config::from_figment(Figment::new().merge(Serialized::default(
            "applications",
            vec![
                serde_json::json!({"name": "App", "url": "https://wiki.example.com/app"}),
                serde_json::json!({"name": "Admin", "url": "https://wiki.example.com/app/admin/"}),
            ],
        )))
        .unwrap();
        let name = |rd: &str| c.application_for(rd).map(|(a, _)| a.name.clone());
        assert_eq!(name("https://wiki.example.com/app/../../../x"), None);
        assert_eq!(name("https://wiki.example.com/app/%2e%2e/x"), None);
        assert_eq!(name("https://wiki.example.com/app/.%2E/x"), None);
        assert_eq!(name("https://wiki.example.com/app\\..\\x"), None);
        assert_eq!(name("https://wiki.example.com/app/..%2Fx"), None);
        assert_eq!(name("https://wiki.example.com/application"), None);
        assert_eq!(name("https://user@wiki.example.com/app/"), None);
        assert_eq!(
            name("https://WIKI.example.com/app/./x").as_deref(),
            Some("App")
        );
        assert_eq!(
            name("https://wiki.example.com/app/admin/x").as_deref(),
            Some("Admin")
        );
        assert_eq!(
            name("https://wiki.example.com/app/b/../admin").as_deref(),
            Some("Admin")
        );
        let (_, followed) = c
            .application_for("https://wiki.example.com/app/a/./b/../c?q=1")
            .unwrap();
        assert_eq!(followed, "https://wiki.example.com/app/a/c?q=1");
    }

    #[test]
    fn mail_timeout_defaults_parses_and_must_be_positive() {
        assert_eq!(from_toml("").unwrap().mail.timeout, Duration::from_secs(10));
        let c = from_toml("[mail]\ntimeout = \"2s\"\n").unwrap();
        assert_eq!(c.mail.timeout, Duration::from_secs(2));
        let err = from_toml("[mail]\ntimeout = \"0s\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("mail.timeout"), "{err}");
        let err = from_toml("[mail]\ntimeout = \"soon\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("timeout"), "{err}");
    }

    #[test]
    fn backup_defaults_and_limits() {
        let c = from_toml("").unwrap();
        assert!(!c.backup.enabled());
        assert_eq!(c.backup.interval, Duration::from_secs(DAY));
        assert_eq!(c.backup.keep, 7);
        let err = from_toml("[backup]\ninterval = \"0s\"\nkeep = 0\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("backup.interval") && err.contains("backup.keep"),
            "{err}"
        );
        let err = from_toml("[backup]\nevery = \"1h\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("every"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let bad = file.join("backups");
        let err = from_toml(&format!(
            "[backup]\ndir = {:?}\n",
            bad.display().to_string()
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("backup.dir"), "{err}");
        let good = dir.path().join("a/b");
        let c = from_toml(&format!(
            "[backup]\ndir = {:?}\n",
            good.display().to_string()
        ))
        .unwrap();
        assert!(c.backup.enabled() && good.is_dir());
    }

    #[test]
    fn privacy_defaults_and_limits() {
        let c = from_toml("").unwrap();
        assert_eq!(c.privacy.sweep_interval, Duration::from_secs(3600));
        assert_eq!(
            c.privacy.login_records_retention,
            Duration::from_secs(180 * DAY)
        );
        assert_eq!(c.privacy.events_retention, Duration::from_secs(400 * DAY));
        assert_eq!(c.privacy.alerts_retention, Duration::from_secs(90 * DAY));
        assert_eq!(c.privacy.devices_retention, Duration::from_secs(400 * DAY));
        assert_eq!(c.privacy.truncate_ips_after, None);
        let c = from_toml("[privacy]\ntruncate_ips_after = \"\"\n").unwrap();
        assert_eq!(c.privacy.truncate_ips_after, None);
        let c = from_toml("[privacy]\ntruncate_ips_after = \"30d\"\n").unwrap();
        assert_eq!(
            c.privacy.truncate_ips_after,
            Some(Duration::from_secs(30 * DAY))
        );
        for bad in [
            "[privacy]\ntruncate_ips_after = \"soon\"\n",
            "[privacy]\nalerts_retention = \"0s\"\n",
            "[privacy]\nlogin_records_retention = \"x\"\n",
            "[privacy]\nkeep_forever = true\n",
        ] {
            let err = from_toml(bad).unwrap_err().to_string();
            let key = bad.split('\n').nth(1).unwrap().split(' ').next().unwrap();
            assert!(err.contains(key), "{bad}: {err}");
        }
        let err = from_toml("[privacy]\ntruncate_ips_after = \"0s\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("privacy.truncate_ips_after"), "{err}");
    }

    #[test]
    fn smtp_credentials_are_hidden() {
        assert_eq!(redact_url("smtp://u:secret@mail:25"), "smtp://***@mail:25");
        let m = MailConfig {
            smtp_url: "smtps://u:secret@mail".into(),
            ..Default::default()
        };
        assert!(!format!("{m:?}").contains("secret"));
    }
}
