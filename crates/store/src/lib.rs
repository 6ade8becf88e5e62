//! Storage backends for Tessera: implementations of [`tessera_core::store::Store`].
//!
//! SQLite is the embedded default; PostgreSQL is the store several nodes share. Both
//! pass the same conformance suite (`tests/it`).

mod dialect;
mod postgres;
mod records;
mod sql;
mod sqlite;

use std::sync::Arc;

use tessera_core::error::StoreError;
use tessera_core::store::Store;

pub use dialect::Dialect;
pub use postgres::{Postgres, PostgresStore};
pub use sql::SqlStore;
pub use sqlite::{Sqlite, SqliteStore};

/// Opens the store a database URL names, applying pending migrations:
/// `postgres://…` (or `postgresql://…`), else `sqlite://path` (or a bare path).
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    open_with(url, true).await
}

/// Opens the store a database URL names. Without `migrate`, a schema that is behind
/// this version is refused with a message that says to run `tessera migrate`.
pub async fn open_with(url: &str, migrate: bool) -> Result<Arc<dyn Store>, StoreError> {
    if is_postgres(url) {
        return Ok(Arc::new(PostgresStore::open(url, migrate).await?));
    }
    Ok(Arc::new(SqliteStore::open_with(url, migrate).await?))
}

/// Applies pending migrations to the database a URL names (`tessera migrate`). Safe to
/// run from several nodes at once: on PostgreSQL they take turns under an advisory lock.
pub async fn migrate(url: &str) -> Result<(), StoreError> {
    if is_postgres(url) {
        return postgres::migrate(url).await;
    }
    SqliteStore::open_with(url, true).await.map(|_| ())
}

/// The URL without its password, for messages and logs.
pub fn redacted_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        _ => url.to_owned(),
    }
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// `Ok` if every migration this version knows of has been applied.
fn schema_is_current(
    migrator: &sqlx::migrate::Migrator,
    applied: &[i64],
) -> Result<(), StoreError> {
    let missing = migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .filter(|m| !applied.contains(&m.version))
        .count();
    if missing == 0 {
        Ok(())
    } else {
        Err(StoreError::Unavailable(format!(
            "the database schema is {missing} migration(s) behind this version of Tessera; \
             run `tessera migrate` (or start with migrate_on_start = true)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::redacted_url;

    #[test]
    fn passwords_are_hidden_and_nothing_else_changes() {
        for (url, shown) in [
            (
                "postgres://tessera:s3cret@db.internal:5432/tessera?sslmode=disable",
                "postgres://tessera:***@db.internal:5432/tessera?sslmode=disable",
            ),
            (
                "postgres://tessera@db/tessera",
                "postgres://tessera@db/tessera",
            ),
            ("postgresql://u:p%40ss@h", "postgresql://u:***@h"),
            (
                "sqlite:///var/lib/tessera/t.db",
                "sqlite:///var/lib/tessera/t.db",
            ),
            ("./data/t.db", "./data/t.db"),
        ] {
            assert_eq!(redacted_url(url), shown, "{url}");
        }
    }
}
