//! Files and directories only their owner may read: the database holds password hashes
//! and the alert-link key, and its copies and the unpacked GeoIP file sit beside it.

use std::path::Path;

/// Opening options that create a file readable by its owner only (0600).
pub fn private_file(options: &mut std::fs::OpenOptions) -> &mut std::fs::OpenOptions {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(options, 0o600);
    options.create(true)
}

/// Creates a directory and its missing parents, those it creates open to the owner only
/// (0700).
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Creates `dir` if needed (0700) and proves a file can be written in it, by writing
/// and removing a small probe file.
pub fn check_writable_dir(dir: &Path) -> std::io::Result<()> {
    private_dir(dir)?;
    let probe = dir.join(format!(".doorman-probe-{}", std::process::id()));
    let written = private_file(std::fs::OpenOptions::new().write(true).truncate(true))
        .open(&probe)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"probe"));
    let removed = std::fs::remove_file(&probe);
    written.and(removed)
}

/// Makes the directory entries of `dir` durable (a rename in it survives a power cut).
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}
