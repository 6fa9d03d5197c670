//! The GeoLite2 City database embedded in the binary, zstd-compressed.
//!
//! Decompressed once into a file beside the SQLite database and memory-mapped from there:
//! the kernel then keeps only the pages lookups touch, and may drop them under memory
//! pressure, where a decompressed copy in the heap would hold ~60 MB for the life of
//! the process. Later starts map the file already there and skip the decompression.
//! When the directory cannot be written (a read-only volume, a full disk), the database
//! is decompressed into memory instead.

use std::fs::{self, File, OpenOptions};
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use maxminddb::Reader;

use super::{GeoError, Source, check_city};

pub(super) static EMBEDDED_ZST: &[u8] = include_bytes!("../../geoip/GeoLite2-City.mmdb.zst");

/// Extracted files are named `geolite2-city-<size>-<checksum>.mmdb`.
const PREFIX: &str = "geolite2-city-";
/// An interrupted extraction leaves `.geolite2-city-….tmp`; removed once this old.
const STALE_TEMP: Duration = Duration::from_secs(3600);

/// The embedded database, mapped from a file in `dir` or, failing that, in memory.
pub(super) fn open(dir: &Path) -> Result<Source, GeoError> {
    let frame = Frame::read();
    match &frame {
        Some(frame) => match extracted(dir, frame) {
            Ok(reader) => return Ok(Source::Mapped(reader)),
            Err(err) => tracing::warn!(
                dir = %dir.display(),
                %err,
                "cannot keep the GeoIP database in a file; holding it in memory"
            ),
        },
        None => tracing::warn!("embedded GeoIP database has no size or checksum"),
    }
    in_memory(frame.map_or(0, |f| f.size)).map(Source::Memory)
}

/// What the zstd frame header and trailer say of the content, read without
/// decompressing: enough to name the extracted file so that a different database
/// (another release of Doorman) never reuses it.
pub(super) struct Frame {
    size: u64,
    checksum: u32,
}

impl Frame {
    pub(super) fn read() -> Option<Frame> {
        let size = zstd::zstd_safe::get_frame_content_size(EMBEDDED_ZST).ok()??;
        // Byte 4 is the frame header descriptor; bit 2 says a content checksum (the low
        // 32 bits of the content's XXH64) ends the frame.
        let has_checksum = EMBEDDED_ZST.get(4).is_some_and(|d| d & 0b100 != 0);
        let tail: [u8; 4] = EMBEDDED_ZST
            .get(EMBEDDED_ZST.len().checked_sub(4)?..)?
            .try_into()
            .ok()?;
        has_checksum.then(|| Frame {
            size,
            checksum: u32::from_le_bytes(tail),
        })
    }

    fn file_name(&self) -> String {
        format!("{PREFIX}{}-{:08x}.mmdb", self.size, self.checksum)
    }
}

/// Maps the extracted file, extracting it first when it is missing or damaged.
pub(super) fn extracted(dir: &Path, frame: &Frame) -> Result<Reader<maxminddb::Mmap>, String> {
    let path = dir.join(frame.file_name());
    if let Some(reader) = reuse(&path, frame) {
        return Ok(reader);
    }
    extract(dir, &path).map_err(|e| format!("{}: {e}", path.display()))?;
    remove_stale(dir, &path);
    let reader = Reader::open_mmap(&path).map_err(|e| e.to_string())?;
    check_city(&reader)?;
    Ok(reader)
}

/// The file left by an earlier start, if it is whole.
fn reuse(path: &Path, frame: &Frame) -> Option<Reader<maxminddb::Mmap>> {
    let len = fs::metadata(path).ok()?.len();
    if len != frame.size {
        return None;
    }
    let reader = Reader::open_mmap(path).ok()?;
    match check_city(&reader) {
        Ok(()) => Some(reader),
        Err(err) => {
            tracing::warn!(path = %path.display(), %err, "extracting the GeoIP database again");
            None
        }
    }
}

/// Decompresses into a temporary file and renames it into place, so that no process
/// ever maps a half-written file. A file another process has mapped stays valid when
/// the new one replaces it: the old one lives on until it is unmapped.
fn extract(dir: &Path, path: &Path) -> std::io::Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or(PREFIX);
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let file = crate::files::private_file(OpenOptions::new().write(true).truncate(true))
            .open(&temp)?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        zstd::stream::copy_decode(EMBEDDED_ZST, &mut out)?;
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
fn remove_stale(dir: &Path, keep: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let temp_prefix = format!(".{PREFIX}");
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let old_release = name.starts_with(PREFIX) && name.ends_with(".mmdb") && path != keep;
        let old_temp = name.starts_with(&temp_prefix)
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
/// one by doubling would briefly hold twice the ~60 MB and raise the peak memory.
fn in_memory(size: u64) -> Result<Reader<Vec<u8>>, GeoError> {
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    zstd::stream::copy_decode(EMBEDDED_ZST, &mut bytes)
        .map_err(|e| GeoError::Embedded(e.to_string()))?;
    Reader::from_source(bytes).map_err(|e| GeoError::Embedded(e.to_string()))
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

    fn lookup_gb(reader: &Reader<maxminddb::Mmap>) -> Option<String> {
        let r: super::super::Record<'_> = reader.lookup("81.2.69.142".parse().ok()?).ok()??;
        r.country?.iso_code.map(str::to_string)
    }

    #[test]
    fn shipped_frame_names_its_size_and_checksum() {
        let frame = Frame::read().expect("the embedded frame must carry its size and checksum");
        assert!(frame.size > 10_000_000, "{}", frame.size);
        assert!(frame.file_name().starts_with(PREFIX));
    }

    #[test]
    fn extracted_once_then_reused_and_replaced_when_damaged() {
        let dir = tempfile::tempdir().unwrap();
        let frame = Frame::read().unwrap();
        // A file of an older release and an abandoned temporary file.
        let old = dir.path().join(format!("{PREFIX}123-00000000.mmdb"));
        fs::write(&old, b"old").unwrap();
        let abandoned = dir.path().join(format!(".{PREFIX}x.mmdb.1.tmp"));
        let f = File::create(&abandoned).unwrap();
        f.set_modified(SystemTime::now() - 2 * STALE_TEMP).unwrap();
        let fresh = dir.path().join(format!(".{PREFIX}y.mmdb.2.tmp"));
        fs::write(&fresh, b"in progress").unwrap();

        let first = extracted(dir.path(), &frame).unwrap();
        assert_eq!(lookup_gb(&first).as_deref(), Some("GB"));
        let path = dir.path().join(frame.file_name());
        let inode = fs::metadata(&path).unwrap().ino();
        assert_eq!(fs::metadata(&path).unwrap().len(), frame.size);
        assert!(!old.exists() && !abandoned.exists(), "stale files removed");
        assert!(
            fresh.exists(),
            "another process's extraction in progress is left alone"
        );

        // The next start maps the same file: not written again.
        let second = extracted(dir.path(), &frame).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().ino(), inode);
        assert_eq!(lookup_gb(&second).as_deref(), Some("GB"));

        // Damaged in the middle (same length): extracted again, beside the mapped one.
        let mut bytes = fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[..n * 9 / 10].fill(0);
        fs::write(dir.path().join("damaged"), &bytes).unwrap();
        fs::rename(dir.path().join("damaged"), &path).unwrap();
        let third = extracted(dir.path(), &frame).unwrap();
        assert_eq!(lookup_gb(&third).as_deref(), Some("GB"));
        assert_eq!(
            lookup_gb(&first).as_deref(),
            Some("GB"),
            "old mapping still valid"
        );
    }

    #[test]
    fn unwritable_directory_falls_back_to_memory() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-dir");
        assert!(extracted(&missing, &Frame::read().unwrap()).is_err());
        let source = open(&missing).unwrap();
        assert!(matches!(source, Source::Memory(_)));
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
