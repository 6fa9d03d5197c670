//! IP → location, from a City database in MaxMind DB format: the DB-IP IP to City Lite
//! database embedded in the binary (one file for IPv4, one for IPv6), or the file named by
//! `geoip.database`, reloaded when it changes (a bad new file is logged once and the
//! last good database stays in use).
//!
//! Two record layouts are read, told apart by the file's metadata ([`Layout`]): the
//! GeoIP2 one (MaxMind GeoLite2/GeoIP2 City, DB-IP's own City files) and the flat one of
//! the ip-location-db packages (`country_code, state1, state2, city, postcode, latitude,
//! longitude, timezone`), which the embedded files use.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, SystemTime};

use maxminddb::{Metadata, Mmap, Reader};
use serde::Deserialize;

use crate::model::{Coords, Location};

mod countries;
mod embedded;
pub use embedded::data_dir;

/// Opened once per process: the data never changes, and test processes start many
/// servers.
static EMBEDDED: OnceLock<Arc<Source>> = OnceLock::new();

/// How often the configured file is checked for changes.
const RELOAD_POLL: Duration = Duration::from_secs(2);

/// Public addresses any world-wide City database places in a country: a file that
/// locates none of those of its IP version is damaged.
const PROBES: [IpAddr; 6] = [
    IpAddr::V4(Ipv4Addr::new(81, 2, 69, 142)),
    IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8)),
    IpAddr::V4(Ipv4Addr::new(1, 1, 1, 1)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0x4860, 0x4860, 0, 0, 0, 0, 0x8888)),
    IpAddr::V6(Ipv6Addr::new(0x2606, 0x4700, 0x4700, 0, 0, 0, 0, 0x1111)),
    IpAddr::V6(Ipv6Addr::new(
        0x2a00, 0x1450, 0x4001, 0x0800, 0, 0, 0, 0x200e,
    )),
];

#[derive(Debug, thiserror::Error)]
pub enum GeoError {
    #[error("cannot read GeoIP database {path}: {detail}")]
    File { path: PathBuf, detail: String },
    #[error("embedded GeoIP database is damaged: {0}")]
    Embedded(String),
}

pub struct Geo {
    /// None for command-line tools, which never locate anyone.
    current: RwLock<Option<Arc<Source>>>,
    file: Option<PathBuf>,
}

/// How a database's records are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `country {iso_code, names}`, `city {names}`, `location {latitude, longitude,
    /// accuracy_radius}`: MaxMind GeoLite2/GeoIP2 City and DB-IP's City files.
    GeoIp2,
    /// ip-location-db's flat city records: `country_code`, `city`, `latitude`, `longitude`.
    Flat,
}

impl Layout {
    /// From the metadata's `database_type`: "GeoLite2-City", "GeoIP2-City",
    /// "DBIP-City-Lite" (GeoIP2 layout) or ip-location-db's "city ipv4" (flat).
    pub fn detect(database_type: &str) -> Result<Layout, String> {
        let kind = database_type.to_ascii_lowercase();
        if !kind.contains("city") {
            return Err(format!(
                "it is a {database_type} database, not a City database"
            ));
        }
        let geoip2 = ["geolite2", "geoip2", "dbip", "db-ip"];
        if geoip2.iter().any(|p| kind.starts_with(p)) {
            Ok(Layout::GeoIp2)
        } else {
            Ok(Layout::Flat)
        }
    }
}

/// One opened database file.
struct Db {
    data: Data,
    layout: Layout,
}

/// The embedded files are memory-mapped from their extracted copies. A file the operator
/// configures is read into memory: it may be rewritten in place, which a mapping would
/// see half-way.
enum Data {
    Memory(Reader<Vec<u8>>),
    Mapped(Reader<Mmap>),
}

impl Db {
    fn new(data: Data) -> Result<Db, String> {
        let layout = Layout::detect(&data.metadata().database_type)?;
        let db = Db { data, layout };
        db.check()?;
        Ok(db)
    }

    fn metadata(&self) -> &Metadata {
        self.data.metadata()
    }

    /// The location of `ip`; `None` when the file has no record for it.
    fn locate(&self, ip: IpAddr) -> Option<Location> {
        match self.layout {
            Layout::GeoIp2 => self.data.lookup::<GeoIp2Record<'_>>(ip).map(Into::into),
            Layout::Flat => self.data.lookup::<FlatRecord<'_>>(ip).map(Into::into),
        }
    }

    /// The metadata sits at the end of the file, so a file damaged in the middle still
    /// opens; swapped in, it would locate nobody.
    fn check(&self) -> Result<(), String> {
        let v4_only = self.metadata().ip_version == 4;
        let locates = |ip: &&IpAddr| self.locate(**ip).is_some_and(|l| l.country_code.is_some());
        let mut probes = PROBES.iter().filter(|ip| !(v4_only && ip.is_ipv6()));
        if probes.any(|ip| locates(&ip)) {
            Ok(())
        } else {
            Err("it locates none of the well-known test addresses; the file is damaged".into())
        }
    }
}

impl Data {
    fn metadata(&self) -> &Metadata {
        match self {
            Data::Memory(r) => &r.metadata,
            Data::Mapped(r) => &r.metadata,
        }
    }

    fn lookup<'a, T: Deserialize<'a>>(&'a self, ip: IpAddr) -> Option<T> {
        let found = match self {
            Data::Memory(r) => r.lookup(ip),
            Data::Mapped(r) => r.lookup(ip),
        };
        found.ok().flatten()
    }
}

/// The database in use: one file for both IP versions, or one per version.
struct Source {
    dbs: Vec<Db>,
    /// What the footer calls the data ("DB-IP Lite").
    name: String,
}

impl Source {
    fn locate(&self, ip: IpAddr) -> Location {
        let version = if ip.is_ipv4() { 4 } else { 6 };
        // An IPv6 file of the GeoIP2 kind also answers IPv4 (mapped into its tree); a
        // per-version file is asked only about its own version.
        let db = self
            .dbs
            .iter()
            .find(|d| d.metadata().ip_version == version)
            .or_else(|| self.dbs.iter().find(|d| d.metadata().ip_version == 6));
        db.and_then(|d| d.locate(ip)).unwrap_or_default()
    }

    /// The oldest build among the files.
    fn build_epoch(&self) -> u64 {
        self.dbs
            .iter()
            .map(|d| d.metadata().build_epoch)
            .min()
            .unwrap_or(0)
    }
}

#[derive(Deserialize)]
struct GeoIp2Record<'a> {
    #[serde(borrow)]
    country: Option<Place<'a>>,
    #[serde(borrow)]
    city: Option<Place<'a>>,
    location: Option<GeoIp2Location>,
}

#[derive(Deserialize)]
struct Place<'a> {
    iso_code: Option<&'a str>,
    #[serde(borrow)]
    names: Option<Names<'a>>,
}

#[derive(Deserialize)]
struct Names<'a> {
    en: Option<&'a str>,
}

#[derive(Deserialize)]
struct GeoIp2Location {
    latitude: Option<f64>,
    longitude: Option<f64>,
    accuracy_radius: Option<u32>,
}

#[derive(Deserialize)]
struct FlatRecord<'a> {
    country_code: Option<&'a str>,
    city: Option<&'a str>,
    latitude: Option<f64>,
    longitude: Option<f64>,
}

impl From<GeoIp2Record<'_>> for Location {
    fn from(r: GeoIp2Record<'_>) -> Location {
        let code = r.country.as_ref().and_then(|c| c.iso_code);
        let coords = r.location.and_then(|l| {
            Some(Coords {
                latitude: l.latitude?,
                longitude: l.longitude?,
                accuracy_km: l.accuracy_radius,
            })
        });
        located(code, english(&r.country), english(&r.city), coords)
    }
}

fn english<'a>(p: &Option<Place<'a>>) -> Option<&'a str> {
    p.as_ref()?.names.as_ref()?.en
}

impl From<FlatRecord<'_>> for Location {
    fn from(r: FlatRecord<'_>) -> Location {
        let coords = match (r.latitude, r.longitude) {
            (Some(latitude), Some(longitude)) => Some(Coords {
                latitude,
                longitude,
                accuracy_km: None,
            }),
            _ => None,
        };
        located(r.country_code, None, r.city, coords)
    }
}

/// A location from what a record holds: the country's English name comes from its
/// ISO code (the same name whichever file is in use), else from the file.
fn located(
    code: Option<&str>,
    file_name: Option<&str>,
    city: Option<&str>,
    coords: Option<Coords>,
) -> Location {
    let code = code
        .filter(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_alphabetic()))
        .map(|c| c.to_ascii_uppercase());
    let country = code
        .as_deref()
        .and_then(country_name)
        .or(file_name)
        .map(str::to_string);
    Location {
        country,
        country_code: code,
        city: city.filter(|c| !c.is_empty()).map(str::to_string),
        coords,
        network: None,
    }
}

/// The English name of an ISO 3166-1 alpha-2 code ("JP" → "Japan").
pub fn country_name(code: &str) -> Option<&'static str> {
    let code = code.to_ascii_uppercase();
    countries::NAMES
        .binary_search_by(|(c, _)| (*c).cmp(code.as_str()))
        .ok()
        .map(|i| countries::NAMES[i].1)
}

impl Geo {
    /// `path` empty means the embedded database, extracted into `data_dir` (see
    /// [`data_dir`]) the first time.
    pub fn open(path: &Path, data_dir: &Path) -> Result<Self, GeoError> {
        if path.as_os_str().is_empty() {
            return Ok(Geo {
                current: RwLock::new(Some(embedded(data_dir)?)),
                file: None,
            });
        }
        let source = read_file(path)?;
        Ok(Geo {
            current: RwLock::new(Some(Arc::new(source))),
            file: Some(path.to_path_buf()),
        })
    }

    /// No database: every address is "Unknown". For the CLI tools, which only manage
    /// users and sessions and need not decompress the embedded database.
    pub fn disabled() -> Self {
        Geo {
            current: RwLock::new(None),
            file: None,
        }
    }

    fn reader(&self) -> Option<Arc<Source>> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn lookup(&self, ip: IpAddr) -> Location {
        let ip = ip.to_canonical();
        if !is_public(ip) {
            return Location::default();
        }
        match self.reader() {
            Some(source) => source.locate(ip),
            None => Location::default(),
        }
    }

    /// When the database in use was built (Unix seconds), for operators.
    pub fn build_epoch(&self) -> u64 {
        self.reader().map_or(0, |r| r.build_epoch())
    }

    /// What the database in use is called ("DB-IP Lite", or the configured file's type).
    pub fn name(&self) -> String {
        self.reader().map_or_else(String::new, |r| r.name.clone())
    }

    /// Watches the configured file and swaps in a new database when it changes.
    pub fn spawn_reloader(self: &Arc<Self>, shutdown: tokio::sync::watch::Receiver<bool>) {
        let Some(path) = self.file.clone() else {
            return;
        };
        let geo = Arc::clone(self);
        tokio::spawn(async move {
            let mut shutdown = shutdown;
            let mut seen = modified(&path);
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(RELOAD_POLL) => {}
                    _ = shutdown.changed() => return,
                }
                let now = modified(&path);
                if now == seen {
                    continue;
                }
                seen = now;
                let p = path.clone();
                match tokio::task::spawn_blocking(move || read_file(&p)).await {
                    Ok(Ok(source)) => {
                        if let Ok(mut slot) = geo.current.write() {
                            *slot = Some(Arc::new(source));
                        }
                        tracing::info!(path = %path.display(), "reloaded GeoIP database");
                    }
                    Ok(Err(err)) => {
                        // Logged once per change of the file: `seen` moved on.
                        tracing::error!(%err, "keeping the previous GeoIP database");
                    }
                    Err(err) => tracing::error!(%err, "GeoIP reload task failed"),
                }
            }
        });
    }
}

fn modified(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

fn embedded(data_dir: &Path) -> Result<Arc<Source>, GeoError> {
    if let Some(source) = EMBEDDED.get() {
        return Ok(source.clone());
    }
    let source = embedded::open(data_dir)?;
    Ok(EMBEDDED.get_or_init(|| Arc::new(source)).clone())
}

fn read_file(path: &Path) -> Result<Source, GeoError> {
    let err = |detail: String| GeoError::File {
        path: path.to_path_buf(),
        detail,
    };
    let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let reader = Reader::from_source(bytes).map_err(|e| err(e.to_string()))?;
    let name = reader.metadata.database_type.clone();
    let db = Db::new(Data::Memory(reader)).map_err(err)?;
    Ok(Source {
        dbs: vec![db],
        name,
    })
}

/// Private, loopback, link-local and other non-routable addresses have no location.
fn is_public(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] == 0x2001 && s[1] == 0x0db8))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_database_locates_ipv4_and_ipv6() {
        let dir = tempfile::tempdir().unwrap();
        let geo = Geo::open(Path::new(""), dir.path()).unwrap();
        for ip in [
            "8.8.8.8",
            "81.2.69.142",
            "2001:4860:4860::8888",
            "2a00:1450:4001:800::200e",
        ] {
            let loc = geo.lookup(ip.parse().unwrap());
            let code = loc.country_code.clone().expect(ip);
            assert_eq!(loc.country.as_deref(), country_name(&code), "{ip}");
            assert!(loc.coords.is_some(), "{ip} has coordinates");
        }
        // An IPv4-mapped IPv6 address is the IPv4 address.
        assert_eq!(
            geo.lookup("::ffff:8.8.8.8".parse().unwrap()),
            geo.lookup("8.8.8.8".parse().unwrap())
        );
        assert!(geo.build_epoch() > 1_700_000_000);
        assert_eq!(geo.name(), "DB-IP Lite");
    }

    #[test]
    fn layouts_from_metadata() {
        assert_eq!(Layout::detect("GeoLite2-City"), Ok(Layout::GeoIp2));
        assert_eq!(Layout::detect("GeoIP2-City"), Ok(Layout::GeoIp2));
        assert_eq!(Layout::detect("DBIP-City-Lite"), Ok(Layout::GeoIp2));
        assert_eq!(Layout::detect("city ipv4"), Ok(Layout::Flat));
        assert!(Layout::detect("GeoLite2-ASN").is_err());
    }

    #[test]
    fn country_names_by_code() {
        assert_eq!(country_name("jp"), Some("Japan"));
        assert_eq!(country_name("GB"), Some("United Kingdom"));
        assert_eq!(country_name("ZZ"), None);
        assert!(
            countries::NAMES.windows(2).all(|w| w[0].0 < w[1].0),
            "sorted"
        );
    }

    #[test]
    fn private_and_loopback_are_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let geo = Geo::open(Path::new(""), dir.path()).unwrap();
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.1.1",
            "::1",
            "fd00::1",
            "100.64.0.1",
        ] {
            assert_eq!(geo.lookup(ip.parse().unwrap()), Location::default(), "{ip}");
        }
    }

    #[test]
    fn file_damaged_inside_is_refused() {
        let good = zstd::stream::decode_all(embedded::BLOBS[0].zst).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("city.mmdb");
        std::fs::write(&path, &good).unwrap();
        assert!(Geo::open(&path, dir.path()).is_ok());
        // Metadata intact at the end, search tree and data zeroed.
        let mut bad = good;
        let n = bad.len();
        bad[..n * 9 / 10].fill(0);
        std::fs::write(&path, &bad).unwrap();
        let err = Geo::open(&path, dir.path()).err().unwrap().to_string();
        assert!(err.contains("damaged"), "{err}");
    }

    #[test]
    fn unreadable_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.mmdb");
        std::fs::write(&path, b"not a database").unwrap();
        let err = Geo::open(&path, dir.path()).err().unwrap().to_string();
        assert!(err.contains("bad.mmdb"), "{err}");
    }
}
