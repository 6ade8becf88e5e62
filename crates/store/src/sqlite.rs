//! The embedded store: one SQLite file in WAL mode, with `synchronous = FULL` so that a
//! write the API acknowledged survives `kill -9` and power loss alike.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, Sqlite, SqlitePool, Transaction};
use tessera_core::domain::{Application, Realm};
use tessera_core::error::StoreError;
use tessera_core::store::{
    AppQuery, AuditQuery, AuditRecord, Change, ChangeEntry, RefreshFamily, RefreshUse, Revocation,
    Store, StoredKey, USAGE_KEPT_HOURS, UsageKey,
};

use crate::records::{
    ApplicationRow, alg_from_column, application_data, application_from_row, change_columns,
    change_from_columns, contains_pattern, realm_data, realm_from_row,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Where one-time values are claimed: its own connection with `synchronous =
    /// NORMAL`, so that a claim (one per signed credential or client assertion) costs
    /// a write to the WAL but no fsync, about a microsecond's worth of work instead of
    /// the millisecond an fsync takes here. A claim survives the process being killed
    /// (the WAL is in the kernel's hands); only a power loss may forget the last ones,
    /// and those values expire within their window (60 s for signed credentials, the
    /// assertion's `exp` at most an hour) anyway. The same file as `pool`.
    claims: SqlitePool,
}

impl SqliteStore {
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
        let store = Self { pool, claims };
        if migrate {
            let _only_us = migration_lock(Path::new(path)).await?;
            MIGRATOR
                .run(&store.pool)
                .await
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        } else {
            store.check_schema().await?;
        }
        Ok(store)
    }

    async fn check_schema(&self) -> Result<(), StoreError> {
        let exists: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations')",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)?;
        let applied: Vec<i64> = if exists {
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
                .fetch_all(&self.pool)
                .await
                .map_err(unavailable)?
        } else {
            Vec::new()
        };
        crate::schema_is_current(&MIGRATOR, &applied)
    }

    async fn begin(&self) -> Result<Transaction<'_, Sqlite>, StoreError> {
        self.pool.begin().await.map_err(unavailable)
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

fn unavailable(err: sqlx::Error) -> StoreError {
    StoreError::Unavailable(err.to_string())
}

/// Maps a unique-constraint violation to `Conflict`, anything else to `Unavailable`.
fn conflict_or_unavailable(what: String) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |err| match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what),
        _ => unavailable(err),
    }
}

async fn record(tx: &mut Transaction<'_, Sqlite>, change: &Change) -> Result<(), StoreError> {
    let (kind, realm_id, key) = change_columns(change);
    sqlx::query(
        "INSERT INTO changes (kind, realm_id, key, at) VALUES (?, ?, ?, CAST(strftime('%s','now') AS INTEGER))",
    )
    .bind(kind)
    .bind(realm_id)
    .bind(key)
    .execute(&mut **tx)
    .await
    .map_err(unavailable)?;
    Ok(())
}

fn realm_row(row: &sqlx::sqlite::SqliteRow) -> Result<Realm, StoreError> {
    realm_from_row(
        row.try_get("id").map_err(unavailable)?,
        row.try_get::<&str, _>("name").map_err(unavailable)?,
        row.try_get::<&str, _>("data").map_err(unavailable)?,
        row.try_get("created_at").map_err(unavailable)?,
    )
}

fn application_row(row: &sqlx::sqlite::SqliteRow) -> Result<Application, StoreError> {
    application_from_row(ApplicationRow {
        realm_id: row.try_get("realm_id").map_err(unavailable)?,
        client_id: row.try_get("client_id").map_err(unavailable)?,
        name: row.try_get("name").map_err(unavailable)?,
        data: row.try_get("data").map_err(unavailable)?,
        created_at: row.try_get("created_at").map_err(unavailable)?,
        updated_at: row.try_get("updated_at").map_err(unavailable)?,
    })
}

fn audit_row(row: &sqlx::sqlite::SqliteRow) -> Result<AuditRecord, StoreError> {
    Ok(AuditRecord {
        seq: row.try_get("seq").map_err(unavailable)?,
        at_ms: row.try_get("at_ms").map_err(unavailable)?,
        actor: row.try_get("actor").map_err(unavailable)?,
        action: row.try_get("action").map_err(unavailable)?,
        realm: row.try_get("realm").map_err(unavailable)?,
        client_id: row.try_get("client_id").map_err(unavailable)?,
        detail: row.try_get("detail").map_err(unavailable)?,
    })
}

fn key_row(row: &sqlx::sqlite::SqliteRow) -> Result<StoredKey, StoreError> {
    Ok(StoredKey {
        kid: row.try_get("kid").map_err(unavailable)?,
        realm_id: row.try_get("realm_id").map_err(unavailable)?,
        alg: alg_from_column(row.try_get::<&str, _>("alg").map_err(unavailable)?)?,
        sealed_private: row.try_get("sealed_private").map_err(unavailable)?,
        created_at: row.try_get("created_at").map_err(unavailable)?,
        activates_at: row.try_get("activates_at").map_err(unavailable)?,
        retired_at: row.try_get("retired_at").map_err(unavailable)?,
        expires_at: row.try_get("expires_at").map_err(unavailable)?,
    })
}

fn revocation_row(row: &sqlx::sqlite::SqliteRow) -> Result<Revocation, StoreError> {
    Ok(Revocation {
        jti: row.try_get("jti").map_err(unavailable)?,
        realm_id: row.try_get("realm_id").map_err(unavailable)?,
        client_id: row.try_get("client_id").map_err(unavailable)?,
        expires_at: row.try_get("expires_at").map_err(unavailable)?,
    })
}

const APP_COLUMNS: &str = "realm_id, client_id, name, data, created_at, updated_at";
const KEY_COLUMNS: &str =
    "kid, realm_id, alg, sealed_private, created_at, activates_at, retired_at, expires_at";

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// One node (with its CLI beside it): nothing to share with another.
    fn is_shared(&self) -> bool {
        false
    }

    async fn realms(&self) -> Result<Vec<Realm>, StoreError> {
        let rows = sqlx::query("SELECT id, name, data, created_at FROM realms ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter().map(realm_row).collect()
    }

    async fn find_realm(&self, realm_id: &str) -> Result<Option<Realm>, StoreError> {
        let row = sqlx::query("SELECT id, name, data, created_at FROM realms WHERE id = ?")
            .bind(realm_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.as_ref().map(realm_row).transpose()
    }

    async fn insert_realm(&self, realm: &Realm, first_key: &StoredKey) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query("INSERT INTO realms (id, name, data, created_at) VALUES (?, ?, ?, ?)")
            .bind(&realm.id)
            .bind(realm.name.as_str())
            .bind(realm_data(realm)?)
            .bind(realm.created_at)
            .execute(&mut *tx)
            .await
            .map_err(conflict_or_unavailable(format!("realm {}", realm.name)))?;
        insert_key(&mut tx, first_key).await?;
        record(
            &mut tx,
            &Change::Realm {
                realm_id: realm.id.clone(),
            },
        )
        .await?;
        tx.commit().await.map_err(unavailable)
    }

    async fn update_realm(&self, realm: &Realm) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let done = sqlx::query("UPDATE realms SET name = ?, data = ? WHERE id = ?")
            .bind(realm.name.as_str())
            .bind(realm_data(realm)?)
            .bind(&realm.id)
            .execute(&mut *tx)
            .await
            .map_err(conflict_or_unavailable(format!("realm {}", realm.name)))?
            .rows_affected()
            > 0;
        record(
            &mut tx,
            &Change::Realm {
                realm_id: realm.id.clone(),
            },
        )
        .await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(done)
    }

    async fn delete_realm(&self, realm_id: &str) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let done = sqlx::query("DELETE FROM realms WHERE id = ?")
            .bind(realm_id)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?
            .rows_affected()
            > 0;
        record(
            &mut tx,
            &Change::Realm {
                realm_id: realm_id.to_owned(),
            },
        )
        .await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(done)
    }

    async fn applications(&self) -> Result<Vec<Application>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {APP_COLUMNS} FROM applications"))
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter().map(application_row).collect()
    }

    async fn list_applications(&self, realm_id: &str) -> Result<Vec<Application>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {APP_COLUMNS} FROM applications WHERE realm_id = ? ORDER BY client_id"
        ))
        .bind(realm_id)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(application_row).collect()
    }

    async fn application_page(
        &self,
        realm_id: &str,
        query: &AppQuery,
    ) -> Result<Vec<Application>, StoreError> {
        let pattern = query.search.as_deref().map(contains_pattern);
        let rows = sqlx::query(&format!(
            "SELECT {APP_COLUMNS} FROM applications WHERE realm_id = ? AND client_id > ? \
             AND (? IS NULL OR name LIKE ? ESCAPE '\\' OR client_id LIKE ? ESCAPE '\\') \
             ORDER BY client_id LIMIT ?"
        ))
        .bind(realm_id)
        .bind(query.after.as_deref().unwrap_or(""))
        .bind(pattern.as_deref())
        .bind(pattern.as_deref())
        .bind(pattern.as_deref())
        .bind(i64::from(query.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(application_row).collect()
    }

    async fn add_usage(&self, counts: &[(UsageKey, u64)]) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        for (key, tokens) in counts {
            sqlx::query(
                "INSERT INTO usage_hourly (realm_id, client_id, hour, tokens) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (realm_id, client_id, hour) DO UPDATE SET tokens = tokens + excluded.tokens",
            )
            .bind(&key.realm_id)
            .bind(&key.client_id)
            .bind(key.hour)
            .bind(i64::try_from(*tokens).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)
    }

    async fn usage(
        &self,
        realm_id: &str,
        client_id: &str,
        since_hour: i64,
    ) -> Result<Vec<(i64, u64)>, StoreError> {
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT hour, tokens FROM usage_hourly WHERE realm_id = ? AND client_id = ? AND hour >= ? \
             ORDER BY hour",
        )
        .bind(realm_id)
        .bind(client_id)
        .bind(since_hour)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(rows
            .into_iter()
            .map(|(hour, tokens)| (hour, u64::try_from(tokens).unwrap_or(0)))
            .collect())
    }

    async fn append_audit(&self, record: &AuditRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_log (at_ms, actor, action, realm, client_id, detail) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(record.at_ms)
        .bind(&record.actor)
        .bind(&record.action)
        .bind(&record.realm)
        .bind(record.client_id.as_deref())
        .bind(&record.detail)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, at_ms, actor, action, realm, client_id, detail FROM audit_log \
             WHERE seq < ? AND (? IS NULL OR realm = ?) AND (? IS NULL OR client_id = ?) \
             ORDER BY seq DESC LIMIT ?",
        )
        .bind(query.before.unwrap_or(i64::MAX))
        .bind(query.realm.as_deref())
        .bind(query.realm.as_deref())
        .bind(query.client_id.as_deref())
        .bind(query.client_id.as_deref())
        .bind(i64::from(query.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(audit_row).collect()
    }

    async fn find_application(
        &self,
        realm_id: &str,
        client_id: &str,
    ) -> Result<Option<Application>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {APP_COLUMNS} FROM applications WHERE realm_id = ? AND client_id = ?"
        ))
        .bind(realm_id)
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        row.as_ref().map(application_row).transpose()
    }

    async fn insert_application(&self, app: &Application) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query(&format!(
            "INSERT INTO applications ({APP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
        ))
        .bind(&app.realm_id)
        .bind(app.client_id.as_str())
        .bind(&app.name)
        .bind(application_data(app)?)
        .bind(app.created_at)
        .bind(app.updated_at)
        .execute(&mut *tx)
        .await
        .map_err(conflict_or_unavailable(format!(
            "application {}",
            app.client_id
        )))?;
        record(&mut tx, &app_change(&app.realm_id, app.client_id.as_str())).await?;
        tx.commit().await.map_err(unavailable)
    }

    async fn update_application(&self, app: &Application) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE applications SET name = ?, data = ?, updated_at = ? WHERE realm_id = ? AND client_id = ?",
        )
        .bind(&app.name)
        .bind(application_data(app)?)
        .bind(app.updated_at)
        .bind(&app.realm_id)
        .bind(app.client_id.as_str())
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?
        .rows_affected()
            > 0;
        record(&mut tx, &app_change(&app.realm_id, app.client_id.as_str())).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(done)
    }

    async fn delete_application(
        &self,
        realm_id: &str,
        client_id: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let done = sqlx::query("DELETE FROM applications WHERE realm_id = ? AND client_id = ?")
            .bind(realm_id)
            .bind(client_id)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?
            .rows_affected()
            > 0;
        record(&mut tx, &app_change(realm_id, client_id)).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(done)
    }

    async fn signing_keys(&self, realm_id: Option<&str>) -> Result<Vec<StoredKey>, StoreError> {
        let rows =
            match realm_id {
                Some(id) => sqlx::query(&format!(
                    "SELECT {KEY_COLUMNS} FROM signing_keys WHERE realm_id = ? ORDER BY created_at"
                ))
                .bind(id)
                .fetch_all(&self.pool)
                .await,
                None => {
                    sqlx::query(&format!(
                        "SELECT {KEY_COLUMNS} FROM signing_keys ORDER BY created_at"
                    ))
                    .fetch_all(&self.pool)
                    .await
                }
            }
            .map_err(unavailable)?;
        rows.iter().map(key_row).collect()
    }

    async fn rotate_signing_key(
        &self,
        key: &StoredKey,
        keep_old_until: i64,
        unless_since: Option<i64>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        // One statement checks and inserts, so a CLI and a server rotating at once
        // cannot both pass the check.
        let added = sqlx::query(&format!(
            "INSERT INTO signing_keys ({KEY_COLUMNS}) \
             SELECT ?, ?, ?, ?, ?, ?, ?, ? WHERE NOT EXISTS \
             (SELECT 1 FROM signing_keys WHERE realm_id = ? AND activates_at >= ?)"
        ))
        .bind(&key.kid)
        .bind(&key.realm_id)
        .bind(key.alg.as_str())
        .bind(&key.sealed_private)
        .bind(key.created_at)
        .bind(key.activates_at)
        .bind(key.retired_at)
        .bind(key.expires_at)
        .bind(&key.realm_id)
        .bind(unless_since.unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await
        .map_err(conflict_or_unavailable(format!("signing key {}", key.kid)))?
        .rows_affected()
            > 0;
        if !added {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE signing_keys SET retired_at = COALESCE(retired_at, ?), \
             expires_at = COALESCE(expires_at, ?) WHERE realm_id = ? AND kid <> ?",
        )
        .bind(key.activates_at)
        .bind(keep_old_until)
        .bind(&key.realm_id)
        .bind(&key.kid)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        record(
            &mut tx,
            &Change::Keys {
                realm_id: key.realm_id.clone(),
            },
        )
        .await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(true)
    }

    async fn revocations(&self, now_s: i64) -> Result<Vec<Revocation>, StoreError> {
        let rows = sqlx::query(
            "SELECT jti, realm_id, client_id, expires_at FROM revocations WHERE expires_at > ?",
        )
        .bind(now_s)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(revocation_row).collect()
    }

    async fn find_revocation(&self, jti: &str) -> Result<Option<Revocation>, StoreError> {
        let row = sqlx::query(
            "SELECT jti, realm_id, client_id, expires_at FROM revocations WHERE jti = ?",
        )
        .bind(jti)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        row.as_ref().map(revocation_row).transpose()
    }

    async fn insert_revocation(&self, revocation: &Revocation) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO revocations (jti, realm_id, client_id, expires_at) VALUES (?, ?, ?, ?) ON CONFLICT (jti) DO NOTHING",
        )
        .bind(&revocation.jti)
        .bind(&revocation.realm_id)
        .bind(&revocation.client_id)
        .bind(revocation.expires_at)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        record(
            &mut tx,
            &Change::Revocation {
                jti: revocation.jti.clone(),
            },
        )
        .await?;
        tx.commit().await.map_err(unavailable)
    }

    async fn insert_refresh_family(&self, family: &RefreshFamily) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO refresh_families (id, realm_id, client_id, generation, expires_at, revoked) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&family.id)
        .bind(&family.realm_id)
        .bind(&family.client_id)
        .bind(family.generation)
        .bind(family.expires_at)
        .bind(family.revoked)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn use_refresh_family(
        &self,
        id: &str,
        generation: i64,
        expires_at: i64,
        now_s: i64,
    ) -> Result<RefreshUse, StoreError> {
        let mut tx = self.begin().await?;
        let rotated = sqlx::query(
            "UPDATE refresh_families SET generation = generation + 1, expires_at = ? WHERE id = ? AND generation = ? AND revoked = 0 AND expires_at > ?",
        )
        .bind(expires_at)
        .bind(id)
        .bind(generation)
        .bind(now_s)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?
        .rows_affected()
            > 0;
        let outcome = if rotated {
            RefreshUse::Rotated
        } else {
            let row = sqlx::query(
                "SELECT generation, revoked, expires_at FROM refresh_families WHERE id = ?",
            )
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(unavailable)?;
            match row {
                Some(row) => {
                    let current: i64 = row.try_get("generation").map_err(unavailable)?;
                    let revoked: bool = row.try_get("revoked").map_err(unavailable)?;
                    let until: i64 = row.try_get("expires_at").map_err(unavailable)?;
                    if !revoked && until > now_s && current > generation {
                        sqlx::query("UPDATE refresh_families SET revoked = 1 WHERE id = ?")
                            .bind(id)
                            .execute(&mut *tx)
                            .await
                            .map_err(unavailable)?;
                        RefreshUse::Reused
                    } else {
                        RefreshUse::Dead
                    }
                }
                None => RefreshUse::Dead,
            }
        };
        tx.commit().await.map_err(unavailable)?;
        Ok(outcome)
    }

    async fn live_refresh_families(
        &self,
        realm_id: &str,
        client_id: &str,
        now_s: i64,
    ) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM refresh_families \
             WHERE realm_id = ? AND client_id = ? AND expires_at > ? AND revoked = 0",
        )
        .bind(realm_id)
        .bind(client_id)
        .bind(now_s)
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn revoke_refresh_family(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE refresh_families SET revoked = 1 WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(done.rows_affected() > 0)
    }

    /// On the claims connection (see [`SqliteStore::claims`]): the node's in-memory
    /// cache has refused the replays it saw; this keeps them refused after a restart.
    async fn claim_once(
        &self,
        key: &[u8; 32],
        expires_at: i64,
        now_s: i64,
    ) -> Result<bool, StoreError> {
        let claimed = sqlx::query(
            "INSERT INTO replay_claims (key, expires_at) VALUES (?, ?) \
             ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at \
             WHERE replay_claims.expires_at <= ? \
             RETURNING 1",
        )
        .bind(key.as_slice())
        .bind(expires_at)
        .bind(now_s)
        .fetch_optional(&self.claims)
        .await
        .map_err(unavailable)?;
        Ok(claimed.is_some())
    }

    async fn changes_since(&self, seq: i64, limit: i64) -> Result<Vec<ChangeEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, kind, realm_id, key FROM changes WHERE seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(seq)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|row| {
                Ok(ChangeEntry {
                    seq: row.try_get("seq").map_err(unavailable)?,
                    change: change_from_columns(
                        row.try_get::<&str, _>("kind").map_err(unavailable)?,
                        row.try_get("realm_id").map_err(unavailable)?,
                        row.try_get("key").map_err(unavailable)?,
                    )?,
                })
            })
            .collect()
    }

    async fn last_change_seq(&self) -> Result<i64, StoreError> {
        let seq: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM changes")
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(seq.unwrap_or(0))
    }

    async fn purge(&self, now_s: i64, changes_before_s: i64) -> Result<u64, StoreError> {
        let mut purged = 0;
        for (sql, bound) in [
            ("DELETE FROM revocations WHERE expires_at <= ?", now_s),
            ("DELETE FROM refresh_families WHERE expires_at <= ?", now_s),
            ("DELETE FROM replay_claims WHERE expires_at <= ?", now_s),
            (
                "DELETE FROM signing_keys WHERE expires_at IS NOT NULL AND expires_at <= ?",
                now_s,
            ),
            (
                "DELETE FROM usage_hourly WHERE hour < ?",
                now_s.div_euclid(3600) - USAGE_KEPT_HOURS,
            ),
            // Keep the newest entry whatever its age: it carries the sequence forward.
            (
                "DELETE FROM changes WHERE at < ? AND seq < (SELECT MAX(seq) FROM changes)",
                changes_before_s,
            ),
        ] {
            purged += sqlx::query(sql)
                .bind(bound)
                .execute(&self.pool)
                .await
                .map_err(unavailable)?
                .rows_affected();
        }
        Ok(purged)
    }
}

fn app_change(realm_id: &str, client_id: &str) -> Change {
    Change::Application {
        realm_id: realm_id.to_owned(),
        client_id: client_id.to_owned(),
    }
}

async fn insert_key(tx: &mut Transaction<'_, Sqlite>, key: &StoredKey) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "INSERT INTO signing_keys ({KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    ))
    .bind(&key.kid)
    .bind(&key.realm_id)
    .bind(key.alg.as_str())
    .bind(&key.sealed_private)
    .bind(key.created_at)
    .bind(key.activates_at)
    .bind(key.retired_at)
    .bind(key.expires_at)
    .execute(&mut **tx)
    .await
    .map_err(unavailable)?;
    Ok(())
}
