//! The storage contract, checked against every backend, and the authority's lifecycle
//! rules on top of a real store with a clock that moves only when told to.
//!
//! Every test runs twice, as `<test>::sqlite` and `<test>::postgres`: on a fresh SQLite
//! file, and in a fresh schema of the PostgreSQL database `TESSERA_TEST_POSTGRES_URL`
//! names (default `postgres://postgres@127.0.0.1:5432/test`), dropped afterwards.

// Test code may stop at the first surprise.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

/// Declares, for each async test function `name(kind: Kind)`, the module `name` with
/// one `#[tokio::test]` per backend.
macro_rules! on_every_backend {
    ($($test:ident),* $(,)?) => {
        $(
            mod $test {
                #[tokio::test]
                async fn sqlite() {
                    super::$test(crate::Kind::Sqlite).await;
                }

                #[tokio::test]
                async fn postgres() {
                    super::$test(crate::Kind::Postgres).await;
                }
            }
        )*
    };
}

mod authority;
mod conformance;
mod postgres;

use std::sync::Arc;

use sqlx::Connection;
use tessera_core::store::Store;
use tessera_test_support::postgres::Schema;
pub use tessera_test_support::postgres::connect as connect_postgres;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

impl Kind {
    /// A fresh, empty database of this kind: no tables yet.
    pub async fn database(self) -> Database {
        match self {
            Self::Sqlite => sqlite_database(),
            Self::Postgres => postgres_database().await,
        }
    }

    /// A fresh database of this kind, migrated and opened.
    pub async fn backend(self) -> Backend {
        let database = self.database().await;
        let store = tessera_store::open(&database.url)
            .await
            .unwrap_or_else(|e| panic!("open {}: {e}", database.url));
        Backend { store, database }
    }
}

/// A database that lives as long as this value: a temporary directory, or a schema
/// dropped on drop.
pub struct Database {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    _schema: Option<Schema>,
}

/// A migrated store on a fresh database.
pub struct Backend {
    pub store: Arc<dyn Store>,
    pub database: Database,
}

impl Backend {
    /// Another process's view of the same database.
    pub async fn reopen(&self) -> Arc<dyn Store> {
        tessera_store::open(&self.database.url).await.unwrap()
    }
}

fn sqlite_database() -> Database {
    let dir = tempfile::tempdir().expect("temp dir");
    Database {
        url: format!("sqlite://{}", dir.path().join("t.db").display()),
        _dir: Some(dir),
        _schema: None,
    }
}

/// How many migrations the database at `url` records as applied.
pub async fn applied_migrations(url: &str) -> i64 {
    const COUNT: &str = "SELECT COUNT(*) FROM _sqlx_migrations WHERE success";
    if url.starts_with("postgres") {
        let mut conn = connect_postgres(url).await;
        sqlx::query_scalar(COUNT)
            .fetch_one(&mut conn)
            .await
            .unwrap()
    } else {
        let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query_scalar(COUNT)
            .fetch_one(&mut conn)
            .await
            .unwrap()
    }
}

async fn postgres_database() -> Database {
    let schema = Schema::create("tessera_test")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    Database {
        url: schema.url().to_owned(),
        _dir: None,
        _schema: Some(schema),
    }
}
