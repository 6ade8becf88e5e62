//! The storage contract, checked against every backend, and the authority's lifecycle
//! rules on top of a real store with a clock that moves only when told to.

// Test code may stop at the first surprise.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod authority;
mod conformance;

use std::sync::Arc;

use tessera_core::store::Store;

/// A fresh SQLite database in its own temporary directory.
pub struct Backend {
    pub store: Arc<dyn Store>,
    pub url: String,
    _dir: tempfile::TempDir,
}

pub async fn sqlite() -> Backend {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = tessera_store::open(&url).await.expect("open sqlite");
    Backend {
        store,
        url,
        _dir: dir,
    }
}
