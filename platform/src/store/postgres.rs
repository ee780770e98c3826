//! postgres adapter (being written).

use super::{Store, StoreError, StoreResult};

/// Opens the database the URL names, as a `Store`. Does not migrate.
pub async fn open(_url: &str) -> StoreResult<std::sync::Arc<dyn Store>> {
    Err(StoreError::Unavailable("the postgres adapter is being written".into()))
}
