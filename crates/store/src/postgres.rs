//! The store for several nodes: one PostgreSQL database that every `tessera serve`
//! shares, with its realms, applications, sealed signing keys, revocations, refresh
//! families and the replay memory of one-time client credentials.
//!
//! Two rules make many nodes behave as one. Writers append to the change log under a
//! transaction-level advisory lock held until commit, so that sequence order is commit
//! order and a node reading the log never steps past an entry it cannot see yet. And
//! only the node holding another advisory lock purges expired rows, in small batches.
//! Both locks are keyed by schema too, so that installations sharing a database (the
//! tests do) keep apart.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::Pool;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use tessera_core::error::StoreError;
use tessera_core::store::ChangeSignal;

use crate::dialect::Dialect;
use crate::sql::{SqlStore, unavailable};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Connections per node. PostgreSQL's default `max_connections` is 100; sixteen leaves
/// room for several nodes, the CLI and an operator's psql.
const MAX_CONNECTIONS: u32 = 16;
/// How long a caller waits for a free connection before the store counts as unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
const MAX_LIFETIME: Duration = Duration::from_secs(1800);

/// The notification channel of this schema's change log: schemas sharing a database
/// (the tests do) keep apart, and the name stays under PostgreSQL's 63 bytes.
macro_rules! change_channel {
    () => {
        "'tessera_changes_' || md5(current_schema())"
    };
}

/// PostgreSQL's dialect: the locks and the notification that make several nodes
/// behave as one.
#[derive(Debug)]
pub struct Postgres;

impl Dialect for Postgres {
    type Db = sqlx::Postgres;

    const IS_SHARED: bool = true;
    const CASELESS_LIKE: &'static str = "ILIKE";
    /// Keyed by schema too, like every lock here.
    const CHANGE_LOG_LOCK: Option<&'static str> = Some(
        "SELECT pg_advisory_xact_lock(hashtext('tessera changes'), hashtext(current_schema()))",
    );
    const INSERT_CHANGE: &'static str = "INSERT INTO changes (kind, realm_id, key, at) \
         VALUES ($1, $2, $3, EXTRACT(EPOCH FROM now())::BIGINT)";
    const NOTIFY_CHANGE: Option<&'static str> =
        Some(concat!("SELECT pg_notify(", change_channel!(), ", '')"));
    const LOCK_REALM: Option<&'static str> = Some("SELECT 1 FROM realms WHERE id = $1 FOR UPDATE");
    const PURGE_LOCK: Option<&'static str> =
        Some("SELECT pg_try_advisory_lock(hashtext('tessera purge'), hashtext(current_schema()))");
    const PURGE_UNLOCK: Option<&'static str> =
        Some("SELECT pg_advisory_unlock(hashtext('tessera purge'), hashtext(current_schema()))");
    const PURGE_BATCH: i64 = 500;
    const MIGRATIONS_TABLE_EXISTS: &'static str =
        "SELECT to_regclass('_sqlx_migrations') IS NOT NULL";

    fn migrator() -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }

    async fn change_signal(
        pool: &Pool<sqlx::Postgres>,
    ) -> Result<Option<Box<dyn ChangeSignal>>, StoreError> {
        let channel: String = sqlx::query_scalar(concat!("SELECT ", change_channel!()))
            .fetch_one(pool)
            .await
            .map_err(unavailable)?;
        let mut listener = PgListener::connect_with(pool).await.map_err(unavailable)?;
        listener.listen(&channel).await.map_err(unavailable)?;
        Ok(Some(Box::new(PgChangeSignal(listener))))
    }
}

/// The store for several nodes.
pub type PostgresStore = SqlStore<Postgres>;

impl SqlStore<Postgres> {
    /// Connects to the database at `url` (`postgres://…`). With `migrate`, applies the
    /// migrations first; without, refuses a schema that is behind this version.
    pub async fn open(url: &str, migrate: bool) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .min_connections(0)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .idle_timeout(IDLE_TIMEOUT)
            .max_lifetime(MAX_LIFETIME)
            .connect_with(connect_options(url)?)
            .await
            .map_err(unavailable)?;
        let store = Self::new(pool.clone(), pool);
        if migrate {
            store.migrate().await?;
        } else {
            store.check_schema().await?;
        }
        Ok(store)
    }

    /// Applies pending migrations. sqlx's migrator holds a PostgreSQL advisory lock
    /// (one per database) while it works, so nodes starting together take turns and
    /// the later ones find nothing left to do.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.pool().acquire().await.map_err(unavailable)?;
        // `run_direct` is `run` on a connection, minus a lifetime bound that would make
        // this future not `Send`.
        let result = MIGRATOR.run_direct(&mut *conn).await;
        // A run that failed half-way returns without releasing its session-level lock;
        // closing the connection releases it, where returning it to the pool would not.
        let _ = conn.close().await;
        result.map_err(|e| StoreError::Unavailable(format!("migrating the database: {e}")))
    }
}

/// Applies the migrations to the database at `url` (`tessera migrate`).
pub(crate) async fn migrate(url: &str) -> Result<(), StoreError> {
    PostgresStore::open(url, true).await.map(|_| ())
}

fn connect_options(url: &str) -> Result<PgConnectOptions, StoreError> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| StoreError::Unavailable(format!("database URL: {e}")))?;
    Ok(if options.get_application_name().is_none() {
        options.application_name("tessera")
    } else {
        options
    })
}

/// LISTEN on the change channel, over a connection of its own.
struct PgChangeSignal(PgListener);

#[async_trait]
impl ChangeSignal for PgChangeSignal {
    async fn wait(&mut self) -> Result<(), StoreError> {
        // `None` means the connection was lost and is being made again: notifications
        // may have been missed meanwhile, so it is a signal too.
        self.0.try_recv().await.map(|_| ()).map_err(unavailable)
    }
}
