//! Scheduled backups (`backup.dir`, `backup.interval`, `backup.keep`): online copies of
//! the live database, zstd-compressed, named `doorman-<UTC time>.sqlite3.zst`. Each is
//! written under a temporary name, decompressed again and checked with SQLite's
//! integrity check, and only then renamed into place, so a file with the final name is
//! always a good backup. Then the oldest are deleted down to `keep`.
//!
//! The first backup is taken at start when the newest in the directory is older than
//! `interval` (or there is none), then one every `interval`. A failure is logged and
//! counted, and the next attempt comes an `interval` later.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::clock;
use crate::config::BackupConfig;
use crate::db::{self, Db};
use crate::error::{Error, Result};
use crate::files::{private_dir, private_file, sync_dir};
use crate::model::Principal;
use crate::model::Role;
use crate::state::AppState;

use crate::model::BackupRecord;

const PREFIX: &str = "doorman-";
const SUFFIX: &str = ".sqlite3.zst";
/// Work files of a backup in progress start with this (hidden, never pruned as backups).
const TEMP_PREFIX: &str = ".doorman-backup-";
/// zstd's level 3 (its default): a few MB/s short of the fastest, a third smaller.
const ZSTD_LEVEL: i32 = 3;

/// `doorman-20261123T081500Z.sqlite3.zst`.
pub fn backup_name(at: i64) -> String {
    format!("{PREFIX}{}{SUFFIX}", clock::compact_utc(at))
}

/// When the backup of that name was taken; None for any other file.
pub fn parse_backup_name(name: &str) -> Option<i64> {
    clock::parse_compact_utc(name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?)
}

/// The backups in `dir`, newest first.
pub fn list_backups(dir: &Path) -> std::io::Result<Vec<(i64, PathBuf)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if let Some(at) = name.to_str().and_then(parse_backup_name) {
            found.push((at, entry.path()));
        }
    }
    found.sort_by_key(|b| std::cmp::Reverse(b.0));
    Ok(found)
}

/// The schedule, when `backup.dir` is set; it stops when `shutdown` changes.
pub fn spawn(state: AppState, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let cfg = state.config.backup.clone();
    if !cfg.enabled() {
        return;
    }
    tokio::spawn(async move {
        let newest = {
            let dir = cfg.dir.clone();
            tokio::task::spawn_blocking(move || list_backups(&dir))
                .await
                .ok()
                .and_then(|found| found.ok())
                .and_then(|found| found.first().map(|(at, _)| *at))
        };
        if let Some(at) = newest {
            state.metrics.backup_succeeded(at);
        }
        let age = newest.map_or(u64::MAX, |at| (clock::now() - at).max(0) as u64);
        let mut wait = cfg.interval.saturating_sub(Duration::from_secs(age));
        loop {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => return,
            }
            let _ = run_once(&state).await;
            wait = cfg.interval;
        }
    });
}

/// Takes one backup now, records the outcome in the metrics and the log, and returns
/// the new file.
pub async fn run_once(state: &AppState) -> Result<PathBuf> {
    let db = state.db.clone();
    let cfg = state.config.backup.clone();
    let now = clock::now();
    let result = tokio::task::spawn_blocking(move || take(&db, &cfg, now))
        .await
        .map_err(|e| Error::Internal(format!("backup task failed: {e}")))
        .and_then(|r| r);
    match &result {
        Ok(path) => {
            state.metrics.backup_succeeded(now);
            tracing::info!(file = %path.display(), "backup written and checked");
        }
        Err(err) => {
            state.metrics.backup_failed(now);
            tracing::warn!(%err, dir = %state.config.backup.dir.display(), "backup failed");
        }
    }
    result
}

/// The work files of one backup; removed when it is done, whatever happened.
struct WorkFiles {
    copy: PathBuf,
    packed: PathBuf,
    check: PathBuf,
}

impl WorkFiles {
    fn new(dir: &Path, stamp: &str) -> Self {
        let file = |what: &str| dir.join(format!("{TEMP_PREFIX}{stamp}.{what}.tmp"));
        WorkFiles {
            copy: file("copy"),
            packed: file("zst"),
            check: file("check"),
        }
    }
}

impl Drop for WorkFiles {
    fn drop(&mut self) {
        for path in [&self.copy, &self.packed, &self.check] {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn io(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.display().to_string();
    let what = what.to_string();
    move |e| Error::Internal(format!("{what} {path}: {e}"))
}

/// One backup, on the calling (blocking) thread.
fn take(db: &Db, cfg: &BackupConfig, now: i64) -> Result<PathBuf> {
    let dir = &cfg.dir;
    private_dir(dir).map_err(io("cannot create", dir))?;
    remove_stale_work_files(dir);
    let work = WorkFiles::new(dir, &clock::compact_utc(now));
    db.backup(&work.copy)?;
    compress(&work.copy, &work.packed)?;
    let _ = std::fs::remove_file(&work.copy);
    check_backup(&work.packed, &work.check)?;
    let target = dir.join(backup_name(now));
    std::fs::rename(&work.packed, &target).map_err(io("cannot rename to", &target))?;
    sync_dir(dir).map_err(io("cannot sync", dir))?;
    prune(dir, cfg.keep as usize)?;
    Ok(target)
}

/// Work files a crash left behind (a backup in progress is never interrupted otherwise).
fn remove_stale_work_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(TEMP_PREFIX) && name.ends_with(".tmp") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// A new file, 0600, that must not exist yet.
fn create_private(path: &Path) -> Result<File> {
    private_file(OpenOptions::new().write(true).create_new(true))
        .open(path)
        .map_err(io("cannot create", path))
}

fn compress(from: &Path, to: &Path) -> Result<()> {
    let input = File::open(from).map_err(io("cannot read", from))?;
    let mut output = BufWriter::new(create_private(to)?);
    zstd::stream::copy_encode(BufReader::new(input), &mut output, ZSTD_LEVEL)
        .map_err(io("cannot compress into", to))?;
    let file = output
        .into_inner()
        .map_err(|e| Error::Internal(format!("cannot write {}: {e}", to.display())))?;
    file.sync_all().map_err(io("cannot sync", to))
}

/// Unpacks a `.zst` file into a new 0600 file.
pub(crate) fn decompress(from: &Path, to: &Path) -> Result<()> {
    let input = File::open(from).map_err(io("cannot read", from))?;
    let mut output = BufWriter::new(create_private(to)?);
    zstd::stream::copy_decode(BufReader::new(input), &mut output).map_err(|e| {
        Error::invalid(
            "not_a_backup",
            format!("{} cannot be decompressed: {e}", from.display()),
        )
    })?;
    output.flush().map_err(io("cannot write", to))
}

/// Unpacks the compressed backup into `scratch` and runs SQLite's integrity check on it.
fn check_backup(packed: &Path, scratch: &Path) -> Result<()> {
    decompress(packed, scratch)?;
    let verdict = db::backup::integrity_check(scratch)?;
    let _ = std::fs::remove_file(scratch);
    if verdict != "ok" {
        return Err(Error::Internal(format!(
            "the new backup fails SQLite's integrity check: {verdict}"
        )));
    }
    Ok(())
}

/// Deletes all but the newest `keep` backups.
fn prune(dir: &Path, keep: usize) -> Result<()> {
    let all = list_backups(dir).map_err(io("cannot list", dir))?;
    for (_, old) in all.iter().skip(keep) {
        std::fs::remove_file(old).map_err(io("cannot delete", old))?;
        tracing::info!(file = %old.display(), "old backup deleted");
    }
    Ok(())
}

/// How the backups are going, for the owner only and only when backups are on.
pub fn status(state: &AppState, who: &Principal) -> Option<BackupRecord> {
    (who.role == Role::Owner && state.config.backup.enabled())
        .then(|| state.metrics.backup_record())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_others_are_ignored() {
        let at = 1_795_421_700;
        assert_eq!(backup_name(at), "doorman-20261123T081500Z.sqlite3.zst");
        assert_eq!(parse_backup_name(&backup_name(at)), Some(at));
        assert_eq!(parse_backup_name("doorman-20261123T081500Z.sqlite3"), None);
        assert_eq!(
            parse_backup_name(".doorman-backup-20261123T081500Z.zst.tmp"),
            None
        );
        assert_eq!(parse_backup_name("doorman-latest.sqlite3.zst"), None);
    }
}
