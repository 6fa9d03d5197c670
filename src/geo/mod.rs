//! IP → location, from a MaxMind-format City database: the GeoLite2 City database
//! embedded in the binary, or the file named by `geoip.database`, reloaded when it
//! changes (a bad new file is logged once and the last good database stays in use).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, SystemTime};

use maxminddb::{MaxMindDbError, Mmap, Reader};
use serde::Deserialize;

use crate::domain::model::Location;

mod embedded;
pub use embedded::data_dir;

/// Opened once per process: the data never changes, and test processes start many
/// servers.
static EMBEDDED: OnceLock<Arc<Source>> = OnceLock::new();

/// How often the configured file is checked for changes.
const RELOAD_POLL: Duration = Duration::from_secs(2);

/// Public addresses any world-wide City database places in a country (81.2.69.142 is
/// also in MaxMind's test databases): a file that locates none of them is damaged.
const PROBES: [IpAddr; 4] = [
    IpAddr::V4(Ipv4Addr::new(81, 2, 69, 142)),
    IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8)),
    IpAddr::V4(Ipv4Addr::new(1, 1, 1, 1)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0x4860, 0x4860, 0, 0, 0, 0, 0x8888)),
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

/// The embedded database is memory-mapped from its extracted file. A file the operator
/// configures is read into memory: it may be rewritten in place, which a mapping would
/// see half-way.
enum Source {
    Memory(Reader<Vec<u8>>),
    Mapped(Reader<Mmap>),
}

impl Source {
    fn lookup<'a>(&'a self, ip: IpAddr) -> Result<Option<Record<'a>>, MaxMindDbError> {
        match self {
            Source::Memory(r) => r.lookup(ip),
            Source::Mapped(r) => r.lookup(ip),
        }
    }

    fn build_epoch(&self) -> u64 {
        match self {
            Source::Memory(r) => r.metadata.build_epoch,
            Source::Mapped(r) => r.metadata.build_epoch,
        }
    }
}

#[derive(Deserialize)]
struct Record<'a> {
    #[serde(borrow)]
    country: Option<Place<'a>>,
    #[serde(borrow)]
    city: Option<Place<'a>>,
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
        let reader = read_file(path)?;
        Ok(Geo {
            current: RwLock::new(Some(Arc::new(Source::Memory(reader)))),
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
        if !is_public(ip) {
            return Location::default();
        }
        let Some(reader) = self.reader() else {
            return Location::default();
        };
        let Ok(Some(record)) = reader.lookup(ip) else {
            return Location::default();
        };
        let name = |p: &Option<Place<'_>>| {
            p.as_ref()
                .and_then(|p| p.names.as_ref())
                .and_then(|n| n.en)
                .map(str::to_string)
        };
        Location {
            country_code: record
                .country
                .as_ref()
                .and_then(|c| c.iso_code)
                .map(str::to_string),
            country: name(&record.country),
            city: name(&record.city),
        }
    }

    /// When the database in use was built (Unix seconds), for operators.
    pub fn build_epoch(&self) -> u64 {
        self.reader().map_or(0, |r| r.build_epoch())
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
                    Ok(Ok(reader)) => {
                        if let Ok(mut slot) = geo.current.write() {
                            *slot = Some(Arc::new(Source::Memory(reader)));
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

fn read_file(path: &Path) -> Result<Reader<Vec<u8>>, GeoError> {
    let err = |detail: String| GeoError::File {
        path: path.to_path_buf(),
        detail,
    };
    let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let reader = Reader::from_source(bytes).map_err(|e| err(e.to_string()))?;
    check_city(&reader).map_err(err)?;
    Ok(reader)
}

/// A file that parses but is not a City database would give no locations at all; and
/// the metadata sits at the end of the file, so a file damaged in the middle still
/// parses. Either, swapped in, would locate nobody.
fn check_city<S: AsRef<[u8]>>(reader: &Reader<S>) -> Result<(), String> {
    let kind = &reader.metadata.database_type;
    if !kind.contains("City") {
        return Err(format!("it is a {kind} database, not a City database"));
    }
    let locates = |ip: &IpAddr| {
        matches!(reader.lookup::<Record<'_>>(*ip),
            Ok(Some(r)) if r.country.as_ref().and_then(|c| c.iso_code).is_some())
    };
    if PROBES.iter().any(locates) {
        Ok(())
    } else {
        Err("it locates none of the well-known test addresses; the file is damaged".into())
    }
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
    fn embedded_database_locates_public_ips() {
        let dir = tempfile::tempdir().unwrap();
        let geo = Geo::open(Path::new(""), dir.path()).unwrap();
        // 81.2.69.142 is MaxMind's documented London test address.
        let loc = geo.lookup("81.2.69.142".parse().unwrap());
        assert_eq!(loc.country_code.as_deref(), Some("GB"));
        assert_eq!(loc.country.as_deref(), Some("United Kingdom"));
        assert!(geo.build_epoch() > 1_500_000_000);
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
        let good = zstd::stream::decode_all(embedded::EMBEDDED_ZST).unwrap();
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
