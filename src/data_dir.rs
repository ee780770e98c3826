//! The data directory of the embedded default holds every message, the admin's password
//! hash and the master key, so only Tern's own user may enter it: it is created 0700, and
//! the SQLite database is created 0600 before SQLite opens it (SQLite gives its `-wal` and
//! `-shm` files the database file's mode), whatever the umask. A data dir that already
//! exists and is more open is left as the operator made it, with a warning at start.

use std::path::{Path, PathBuf};

/// The database file a `sqlite:` URL names, or `None` for an in-memory database.
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && !path.contains(":memory:")).then(|| PathBuf::from(path))
}

/// Creates `dir` (0700) if missing, warns if it exists and others may read it, and makes
/// the database at `db_file` and its companions private (0600).
pub fn prepare(dir: &Path, db_file: Option<&Path>) -> std::io::Result<()> {
    create_private_dir(dir)?;
    if let Some(db) = db_file {
        if let Some(parent) = db.parent().filter(|p| !p.as_os_str().is_empty()) {
            create_private_dir(parent)?;
        }
        make_private_file(db)?;
        for suffix in ["-wal", "-shm", "-journal"] {
            let mut companion = db.as_os_str().to_owned();
            companion.push(suffix);
            let companion = PathBuf::from(companion);
            if companion.exists() {
                make_private_file(&companion)?;
            }
        }
    }
    Ok(())
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if dir.is_dir() {
        let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                dir = %dir.display(),
                mode = format!("{mode:o}"),
                "the data directory can be read by other users; it holds every message: chmod 700 it"
            );
        }
        return Ok(());
    }
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    // The umask may have taken bits off the mode asked for; set exactly 0700.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

#[cfg(unix)]
fn make_private_file(file: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
    {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(not(unix))]
fn make_private_file(_file: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(
            sqlite_file("sqlite://./data/tern.db"),
            Some(PathBuf::from("./data/tern.db"))
        );
        assert_eq!(
            sqlite_file("sqlite:///var/lib/tern/x.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/tern/x.db"))
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("postgres://u@h/db"), None);
    }

    #[cfg(unix)]
    #[test]
    fn a_new_data_dir_and_database_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let db = dir.join("tern.db");
        prepare(&dir, Some(&db)).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&db), 0o600);
        // A companion left world-readable (by an older version) is made private.
        let wal = dir.join("tern.db-wal");
        std::fs::write(&wal, b"").unwrap();
        std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o644)).unwrap();
        prepare(&dir, Some(&db)).unwrap();
        assert_eq!(mode(&wal), 0o600);
    }
}
