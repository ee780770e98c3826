//! The embedded default: files in a directory (by default `files/` under the data dir),
//! created with mode 0700. Tern serves them through its own HMAC-signed URLs.

use std::path::Path;
use std::sync::Arc;

use super::port::{FileStore, FileStoreError, FileStoreKind, ObjectFileStore};

pub fn open(dir: &Path) -> Result<Arc<dyn FileStore>, FileStoreError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| FileStoreError::Config(format!("cannot create the files directory {}: {e}", dir.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    let fs = object_store::local::LocalFileSystem::new_with_prefix(dir)
        .map_err(|e| FileStoreError::Config(format!("cannot use {} for files: {e}", dir.display())))?
        // Deleting the last object of a directory removes the empty directories above it.
        .with_automatic_cleanup(true);
    Ok(Arc::new(ObjectFileStore::new(
        FileStoreKind::Local,
        Arc::new(fs),
        None,
        false,
    )))
}
