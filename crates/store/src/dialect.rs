//! What differs between the databases, and nothing else: a few statements, whether
//! nodes share the database, and the change signal. Opening the pool and migrating are
//! each backend's own (`sqlite.rs`, `postgres.rs`); every other query is written once,
//! in `sql.rs`, with `$1`-style placeholders, which SQLite reads too.

use std::future::Future;

use sqlx::{Database, Pool};
use tessera_core::error::StoreError;
use tessera_core::store::ChangeSignal;

pub trait Dialect: Send + Sync + 'static {
    type Db: Database<QueryResult: RowsAffected>;

    /// Whether other nodes may serve from this database too.
    const IS_SHARED: bool;

    /// A `LIKE` that ignores ASCII case, with `\` as its escape.
    const CASELESS_LIKE: &'static str;

    /// Taken by a writer before it appends to the change log, held until commit.
    const CHANGE_LOG_LOCK: Option<&'static str>;
    /// Appends `($1 kind, $2 realm_id, $3 key)` to the change log, stamped with the
    /// database's clock (unix seconds).
    const INSERT_CHANGE: &'static str;
    /// Run after the append, in the same transaction: tells the other nodes at commit.
    const NOTIFY_CHANGE: Option<&'static str>;

    /// Locks the row of realm `$1` before its keys change, so that writers of one realm
    /// take turns (and take their locks in one order).
    const LOCK_REALM: Option<&'static str>;

    /// Taken (`true` if it was free) before purging, on the connection that purges,
    /// and given back after, so that one node at a time purges.
    const PURGE_LOCK: Option<&'static str>;
    const PURGE_UNLOCK: Option<&'static str>;
    /// Rows deleted per statement while purging.
    const PURGE_BATCH: i64;

    /// The migrations this version of Tessera knows of.
    fn migrator() -> &'static sqlx::migrate::Migrator;

    /// `true` once the migrator's own table exists.
    const MIGRATIONS_TABLE_EXISTS: &'static str;

    /// A signal that the change log may have grown (see `Store::change_signal`).
    fn change_signal(
        pool: &Pool<Self::Db>,
    ) -> impl Future<Output = Result<Option<Box<dyn ChangeSignal>>, StoreError>> + Send {
        let _ = pool;
        async { Ok(None) }
    }
}

/// How many rows a statement changed: each driver's result type has it, under no
/// common trait.
pub trait RowsAffected {
    fn rows_affected(&self) -> u64;
}

impl RowsAffected for sqlx::sqlite::SqliteQueryResult {
    fn rows_affected(&self) -> u64 {
        self.rows_affected()
    }
}

impl RowsAffected for sqlx::postgres::PgQueryResult {
    fn rows_affected(&self) -> u64 {
        self.rows_affected()
    }
}
