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
