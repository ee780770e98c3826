//! The in-memory file store: for tests and for engines built without configuration. Tern
//! serves its files through its own signed URLs.

use std::sync::Arc;

use super::port::{FileStore, FileStoreKind, ObjectFileStore};

pub fn open() -> Arc<dyn FileStore> {
    Arc::new(ObjectFileStore::new(
        FileStoreKind::Memory,
        Arc::new(object_store::memory::InMemory::new()),
        None,
        true,
    ))
}
