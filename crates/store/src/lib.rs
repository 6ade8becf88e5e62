//! Storage backends for Tessera: implementations of [`tessera_core::store::Store`].
//!
//! SQLite is the embedded default; every backend passes the same conformance suite
//! (`tests/it`).

mod records;
mod sqlite;

use std::sync::Arc;

use tessera_core::error::StoreError;
use tessera_core::store::Store;

pub use sqlite::SqliteStore;

/// Opens the store a database URL names: `sqlite://path` (or a bare path).
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Err(StoreError::Unavailable(
            "PostgreSQL support is not built into this version yet".into(),
        ));
    }
    Ok(Arc::new(SqliteStore::open(url).await?))
}
