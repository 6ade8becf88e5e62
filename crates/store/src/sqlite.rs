//! The embedded store: one SQLite file in WAL mode, with `synchronous = FULL` so that a
//! write the API acknowledged survives `kill -9` and power loss alike.

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use tessera_core::error::StoreError;

use crate::dialect::Dialect;
use crate::sql::{SqlStore, unavailable};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// SQLite's dialect: one writer at a time, so no lock is needed for the change log to
/// be read in commit order, and nobody else to notify or to take turns with.
#[derive(Debug)]
pub struct Sqlite;

impl Dialect for Sqlite {
    type Db = sqlx::Sqlite;

    /// One node (with its CLI beside it): nothing to share with another.
    const IS_SHARED: bool = false;
    const CASELESS_LIKE: &'static str = "LIKE";
    const CHANGE_LOG_LOCK: Option<&'static str> = None;
    const INSERT_CHANGE: &'static str = "INSERT INTO changes (kind, realm_id, key, at) \
         VALUES ($1, $2, $3, CAST(strftime('%s','now') AS INTEGER))";
    const NOTIFY_CHANGE: Option<&'static str> = None;
    const LOCK_REALM: Option<&'static str> = None;
    const PURGE_LOCK: Option<&'static str> = None;
    const PURGE_UNLOCK: Option<&'static str> = None;
    /// All at once: the one writer is this process (or its CLI, which waits).
    const PURGE_BATCH: i64 = i64::MAX;
    const MIGRATIONS_TABLE_EXISTS: &'static str = "SELECT EXISTS (SELECT 1 FROM sqlite_master \
         WHERE type = 'table' AND name = '_sqlx_migrations')";

    fn migrator() -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }
}

/// The embedded store.
pub type SqliteStore = SqlStore<Sqlite>;

impl SqlStore<Sqlite> {
    /// Opens (creating if needed) the database at `url` (`sqlite://path` or a path) and
    /// applies migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, true).await
    }

    /// Opens the database at `url`; with `migrate`, applies the migrations first;
    /// without, refuses a schema that is behind this version.
    pub async fn open_with(url: &str, migrate: bool) -> Result<Self, StoreError> {
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        let path = path.split('?').next().unwrap_or(path);
        owner_only(Path::new(path))?;
        let options = SqliteConnectOptions::new().filename(Path::new(path));
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone())
            .await
            .map_err(unavailable)?;
        let in_memory = path.is_empty() || path == ":memory:" || url.contains("mode=memory");
        // Where one-time values are claimed: its own connection with `synchronous =
        // NORMAL`, so that a claim (one per signed credential or client assertion)
        // costs a write to the WAL but no fsync, about a microsecond's worth of work
        // instead of the millisecond an fsync takes here. A claim survives the process
        // being killed (the WAL is in the kernel's hands); only a power loss may forget
        // the last ones, and those values expire within their window (60 s for signed
        // credentials, the assertion's `exp` at most an hour) anyway. The same file.
        let claims = if in_memory {
            // Another connection would open another database.
            pool.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options.synchronous(SqliteSynchronous::Normal))
                .await
                .map_err(unavailable)?
        };
        let store = Self::new(pool, claims);
        if migrate {
            let _only_us = migration_lock(Path::new(path)).await?;
            MIGRATOR
                .run(store.pool())
                .await
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        } else {
            store.check_schema().await?;
        }
        Ok(store)
    }
}

/// Makes the database file owner-only before SQLite opens it, whatever the data
/// directory's mode: SQLite creates a missing file with the process's default mode
/// (0644 here), and gives its `-wal` and `-shm` files the database file's mode. Files
/// an older version left readable by others are tightened too.
fn owner_only(db: &Path) -> Result<(), StoreError> {
    let name = db.to_string_lossy();
    if name.is_empty() || name == ":memory:" || name.contains("mode=memory") {
        return Ok(());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let failed =
            |e: std::io::Error| StoreError::Unavailable(format!("cannot secure {name}: {e}"));
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(db)
            .map_err(failed)?;
        for suffix in ["", "-wal", "-shm", ".migrate-lock"] {
            let file = std::path::PathBuf::from(format!("{name}{suffix}"));
            match std::fs::metadata(&file) {
                Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
                    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
                        .map_err(failed)?;
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(failed(e)),
            }
        }
    }
    Ok(())
}

/// An exclusive lock on a file beside the database, held while migrations run.
/// SQLite gives the migrator no lock of its own, so two processes opening a new data
/// directory at once (a server starting, and a CLI command run beside it) would both
/// apply the first migration. `None` for an in-memory database.
async fn migration_lock(db: &Path) -> Result<Option<std::fs::File>, StoreError> {
    let name = db.to_string_lossy();
    if name.is_empty() || name == ":memory:" || name.contains("mode=memory") {
        return Ok(None);
    }
    let lock_path = std::path::PathBuf::from(format!("{name}.migrate-lock"));
    let failed = |e: std::io::Error| {
        StoreError::Unavailable(format!("cannot lock {}: {e}", lock_path.display()))
    };
    let mut options = std::fs::OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(&lock_path).map_err(failed)?;
    // Waiting for another process's migrations blocks: off the async threads.
    tokio::task::spawn_blocking(move || file.lock().map(|()| file))
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?
        .map(Some)
        .map_err(failed)
}
