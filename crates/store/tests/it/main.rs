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
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::Connection;
use tessera_core::store::Store;

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
    _guard: Guard,
}

enum Guard {
    Dir(tempfile::TempDir),
    Schema { server: String, schema: String },
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

/// The PostgreSQL server the tests use: trust auth on loopback.
pub fn postgres_server() -> String {
    std::env::var("TESSERA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A name no other test (in this or another process) uses.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}_{}_{nanos}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

fn sqlite_database() -> Database {
    let dir = tempfile::tempdir().expect("temp dir");
    Database {
        url: format!("sqlite://{}", dir.path().join("t.db").display()),
        _guard: Guard::Dir(dir),
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

pub async fn connect_postgres(url: &str) -> sqlx::PgConnection {
    sqlx::PgConnection::connect(url).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL at {url} is needed for these tests ({e}); start it with \
             pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
        )
    })
}

async fn postgres_database() -> Database {
    let server = postgres_server();
    let schema = unique_name("tessera_test");
    let mut conn = connect_postgres(&server).await;
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let separator = if server.contains('?') { '&' } else { '?' };
    Database {
        url: format!("{server}{separator}options=-c%20search_path%3D{schema}"),
        _guard: Guard::Schema { server, schema },
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let Self::Schema { server, schema } = self else {
            return;
        };
        let (server, schema) = (server.clone(), schema.clone());
        // Drop cannot wait on the test's runtime; a thread with its own can.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let mut conn = connect_postgres(&server).await;
                sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                    .execute(&mut conn)
                    .await
                    .map(|_| ())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test schema {self:?}");
        }
    }
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Dir(dir) => write!(f, "{}", dir.path().display()),
            Self::Schema { schema, .. } => f.write_str(schema),
        }
    }
}
