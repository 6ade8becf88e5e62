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
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions, PgRow};
use sqlx::{PgPool, Postgres, Row, Transaction};
use tessera_core::domain::{Application, Realm};
use tessera_core::error::StoreError;
use tessera_core::store::{
    AppQuery, AuditQuery, AuditRecord, Change, ChangeEntry, ChangeSignal, RefreshFamily,
    RefreshUse, Revocation, Store, StoredKey, USAGE_KEPT_HOURS, UsageKey,
};

use crate::records::{
    ApplicationRow, alg_from_column, application_data, application_from_row, change_columns,
    change_from_columns, contains_pattern, realm_data, realm_from_row,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Connections per node. PostgreSQL's default `max_connections` is 100; sixteen leaves
/// room for several nodes, the CLI and an operator's psql.
const MAX_CONNECTIONS: u32 = 16;
/// How long a caller waits for a free connection before the store counts as unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
const MAX_LIFETIME: Duration = Duration::from_secs(1800);
/// Rows deleted per statement while purging: short statements, short locks.
const PURGE_BATCH: i64 = 500;

#[derive(Clone, Debug)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
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
        let store = Self { pool };
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
        let mut conn = self.pool.acquire().await.map_err(unavailable)?;
        // `run_direct` is `run` on a connection, minus a lifetime bound that would make
        // this future not `Send`.
        let result = MIGRATOR.run_direct(&mut *conn).await;
        // A run that failed half-way returns without releasing its session-level lock;
        // closing the connection releases it, where returning it to the pool would not.
        let _ = conn.close().await;
        result.map_err(|e| StoreError::Unavailable(format!("migrating the database: {e}")))
    }

    async fn check_schema(&self) -> Result<(), StoreError> {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
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

    async fn begin(&self) -> Result<Transaction<'_, Postgres>, StoreError> {
        self.pool.begin().await.map_err(unavailable)
    }

    async fn purge_locked(
        &self,
        conn: &mut PoolConnection<Postgres>,
        now_s: i64,
        changes_before_s: i64,
    ) -> Result<u64, StoreError> {
        let mut purged = 0;
        for (sql, bound) in [
            (
                "DELETE FROM revocations WHERE jti IN \
                 (SELECT jti FROM revocations WHERE expires_at <= $1 LIMIT $2)",
                now_s,
            ),
            (
                "DELETE FROM refresh_families WHERE id IN \
                 (SELECT id FROM refresh_families WHERE expires_at <= $1 LIMIT $2)",
                now_s,
            ),
            (
                "DELETE FROM replay_claims WHERE key IN \
                 (SELECT key FROM replay_claims WHERE expires_at <= $1 LIMIT $2)",
                now_s,
            ),
            (
                "DELETE FROM signing_keys WHERE kid IN \
                 (SELECT kid FROM signing_keys WHERE expires_at <= $1 LIMIT $2)",
                now_s,
            ),
            (
                "DELETE FROM usage_hourly WHERE (realm_id, client_id, hour) IN \
                 (SELECT realm_id, client_id, hour FROM usage_hourly WHERE hour < $1 LIMIT $2)",
                now_s.div_euclid(3600) - USAGE_KEPT_HOURS,
            ),
            // Keep the newest entry whatever its age: it carries the sequence forward.
            (
                "DELETE FROM changes WHERE seq IN \
                 (SELECT seq FROM changes WHERE at < $1 \
                  AND seq < (SELECT MAX(seq) FROM changes) ORDER BY seq LIMIT $2)",
                changes_before_s,
            ),
        ] {
            loop {
                let gone = sqlx::query(sql)
                    .bind(bound)
                    .bind(PURGE_BATCH)
                    .execute(&mut **conn)
                    .await
                    .map_err(unavailable)?
                    .rows_affected();
                purged += gone;
                if gone < PURGE_BATCH.unsigned_abs() {
                    break;
                }
            }
        }
        Ok(purged)
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

/// Appends to the change log; the last statement of every writing transaction, so
/// that the lock it takes is held only for the commit. Without the lock, a transaction
/// could take sequence number 10, another 11 and commit first, and a node reading 11
/// would move on and never read 10. An advisory lock rather than a table lock, so that
/// neither autovacuum nor the purge's deletes hold writers up.
async fn record(tx: &mut Transaction<'_, Postgres>, change: &Change) -> Result<(), StoreError> {
    let (kind, realm_id, key) = change_columns(change);
    sqlx::query(CHANGE_LOG_LOCK)
        .execute(&mut **tx)
        .await
        .map_err(unavailable)?;
    sqlx::query(
        "INSERT INTO changes (kind, realm_id, key, at) \
         VALUES ($1, $2, $3, EXTRACT(EPOCH FROM now())::BIGINT)",
    )
    .bind(kind)
    .bind(realm_id)
    .bind(key)
    .execute(&mut **tx)
    .await
    .map_err(unavailable)?;
    // Delivered at commit, and only then, to every node listening on this schema.
    sqlx::query(&format!("SELECT pg_notify({CHANGE_CHANNEL}, '')"))
        .execute(&mut **tx)
        .await
        .map_err(unavailable)?;
    Ok(())
}

/// The notification channel of this schema's change log: schemas sharing a database
/// (the tests do) keep apart, and the name stays under PostgreSQL's 63 bytes.
const CHANGE_CHANNEL: &str = "'tessera_changes_' || md5(current_schema())";

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

fn realm_row(row: &PgRow) -> Result<Realm, StoreError> {
    realm_from_row(
        row.try_get("id").map_err(unavailable)?,
        row.try_get::<&str, _>("name").map_err(unavailable)?,
        row.try_get::<&str, _>("data").map_err(unavailable)?,
        row.try_get("created_at").map_err(unavailable)?,
    )
}

fn application_row(row: &PgRow) -> Result<Application, StoreError> {
    application_from_row(ApplicationRow {
        realm_id: row.try_get("realm_id").map_err(unavailable)?,
        client_id: row.try_get("client_id").map_err(unavailable)?,
        name: row.try_get("name").map_err(unavailable)?,
        data: row.try_get("data").map_err(unavailable)?,
        created_at: row.try_get("created_at").map_err(unavailable)?,
        updated_at: row.try_get("updated_at").map_err(unavailable)?,
    })
}

fn audit_row(row: &PgRow) -> Result<AuditRecord, StoreError> {
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

fn key_row(row: &PgRow) -> Result<StoredKey, StoreError> {
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

fn revocation_row(row: &PgRow) -> Result<Revocation, StoreError> {
    Ok(Revocation {
        jti: row.try_get("jti").map_err(unavailable)?,
        realm_id: row.try_get("realm_id").map_err(unavailable)?,
        client_id: row.try_get("client_id").map_err(unavailable)?,
        expires_at: row.try_get("expires_at").map_err(unavailable)?,
    })
}

/// Taken by every writer before it appends to the change log; released at commit.
const CHANGE_LOG_LOCK: &str =
    "SELECT pg_advisory_xact_lock(hashtext('tessera changes'), hashtext(current_schema()))";
/// Held by the one node purging.
const PURGE_LOCK: &str =
    "SELECT pg_try_advisory_lock(hashtext('tessera purge'), hashtext(current_schema()))";
const PURGE_UNLOCK: &str =
    "SELECT pg_advisory_unlock(hashtext('tessera purge'), hashtext(current_schema()))";

const APP_COLUMNS: &str = "realm_id, client_id, name, data, created_at, updated_at";
const KEY_COLUMNS: &str =
    "kid, realm_id, alg, sealed_private, created_at, activates_at, retired_at, expires_at";

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    fn is_shared(&self) -> bool {
        true
    }

    async fn realms(&self) -> Result<Vec<Realm>, StoreError> {
        let rows = sqlx::query("SELECT id, name, data, created_at FROM realms ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter().map(realm_row).collect()
    }

    async fn find_realm(&self, realm_id: &str) -> Result<Option<Realm>, StoreError> {
        let row = sqlx::query("SELECT id, name, data, created_at FROM realms WHERE id = $1")
            .bind(realm_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.as_ref().map(realm_row).transpose()
    }

    async fn insert_realm(&self, realm: &Realm, first_key: &StoredKey) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query("INSERT INTO realms (id, name, data, created_at) VALUES ($1, $2, $3, $4)")
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
        let done = sqlx::query("UPDATE realms SET name = $1, data = $2 WHERE id = $3")
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
        let done = sqlx::query("DELETE FROM realms WHERE id = $1")
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
            "SELECT {APP_COLUMNS} FROM applications WHERE realm_id = $1 ORDER BY client_id"
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
            "SELECT {APP_COLUMNS} FROM applications WHERE realm_id = $1 AND client_id > $2 \
             AND ($3::TEXT IS NULL OR name ILIKE $3 OR client_id ILIKE $3) \
             ORDER BY client_id LIMIT $4"
        ))
        .bind(realm_id)
        .bind(query.after.as_deref().unwrap_or(""))
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
                "INSERT INTO usage_hourly (realm_id, client_id, hour, tokens) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (realm_id, client_id, hour) \
                 DO UPDATE SET tokens = usage_hourly.tokens + excluded.tokens",
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
            "SELECT hour, tokens FROM usage_hourly WHERE realm_id = $1 AND client_id = $2 \
             AND hour >= $3 ORDER BY hour",
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
             VALUES ($1, $2, $3, $4, $5, $6)",
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
             WHERE seq < $1 AND ($2::TEXT IS NULL OR realm = $2) \
             AND ($3::TEXT IS NULL OR client_id = $3) ORDER BY seq DESC LIMIT $4",
        )
        .bind(query.before.unwrap_or(i64::MAX))
        .bind(query.realm.as_deref())
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
            "SELECT {APP_COLUMNS} FROM applications WHERE realm_id = $1 AND client_id = $2"
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
            "INSERT INTO applications ({APP_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
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
            "UPDATE applications SET name = $1, data = $2, updated_at = $3 \
             WHERE realm_id = $4 AND client_id = $5",
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
        let done = sqlx::query("DELETE FROM applications WHERE realm_id = $1 AND client_id = $2")
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
        let rows = match realm_id {
            Some(id) => {
                sqlx::query(&format!(
                    "SELECT {KEY_COLUMNS} FROM signing_keys WHERE realm_id = $1 \
                     ORDER BY created_at, kid"
                ))
                .bind(id)
                .fetch_all(&self.pool)
                .await
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {KEY_COLUMNS} FROM signing_keys ORDER BY created_at, kid"
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
        // The realm's row first, so that two nodes rotating at once take turns and the
        // second sees the first one's key. Its row, not the change log's lock: every
        // writer of a realm (an update, a deletion and its cascade) locks the row before
        // the keys and the change log, and taking locks in the same order everywhere
        // is what keeps concurrent changes of one realm from deadlocking.
        let realm: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM realms WHERE id = $1 FOR UPDATE")
                .bind(&key.realm_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(unavailable)?;
        if realm.is_none() {
            // Deleted meanwhile: nothing to rotate.
            return Ok(false);
        }
        if let Some(since) = unless_since {
            let newer: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM signing_keys WHERE realm_id = $1 AND activates_at >= $2)",
            )
            .bind(&key.realm_id)
            .bind(since)
            .fetch_one(&mut *tx)
            .await
            .map_err(unavailable)?;
            if newer {
                return Ok(false);
            }
        }
        insert_key(&mut tx, key).await?;
        sqlx::query(
            "UPDATE signing_keys SET retired_at = COALESCE(retired_at, $1), \
             expires_at = COALESCE(expires_at, $2) WHERE realm_id = $3 AND kid <> $4",
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
            "SELECT jti, realm_id, client_id, expires_at FROM revocations WHERE expires_at > $1",
        )
        .bind(now_s)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(revocation_row).collect()
    }

    async fn find_revocation(&self, jti: &str) -> Result<Option<Revocation>, StoreError> {
        let row = sqlx::query(
            "SELECT jti, realm_id, client_id, expires_at FROM revocations WHERE jti = $1",
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
            "INSERT INTO revocations (jti, realm_id, client_id, expires_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (jti) DO NOTHING",
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
            "INSERT INTO refresh_families (id, realm_id, client_id, generation, expires_at, revoked) \
             VALUES ($1, $2, $3, $4, $5, $6)",
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
        // The row lock taken here makes two nodes presenting the same token take turns:
        // the second sees the generation the first moved on, and revokes the family.
        let row = sqlx::query(
            "SELECT generation, revoked, expires_at FROM refresh_families WHERE id = $1 FOR UPDATE",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(unavailable)?;
        let outcome = match row {
            None => RefreshUse::Dead,
            Some(row) => {
                let current: i64 = row.try_get("generation").map_err(unavailable)?;
                let revoked: bool = row.try_get("revoked").map_err(unavailable)?;
                let until: i64 = row.try_get("expires_at").map_err(unavailable)?;
                if revoked || until <= now_s {
                    RefreshUse::Dead
                } else if current == generation {
                    sqlx::query(
                        "UPDATE refresh_families SET generation = generation + 1, expires_at = $1 \
                         WHERE id = $2",
                    )
                    .bind(expires_at)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?;
                    RefreshUse::Rotated
                } else if current > generation {
                    sqlx::query("UPDATE refresh_families SET revoked = TRUE WHERE id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err(unavailable)?;
                    RefreshUse::Reused
                } else {
                    RefreshUse::Dead
                }
            }
        };
        tx.commit().await.map_err(unavailable)?;
        Ok(outcome)
    }

    /// One statement: the primary key decides between two nodes claiming at once, and
    /// an entry that has expired but not been purged yet may be claimed again.
    async fn live_refresh_families(
        &self,
        realm_id: &str,
        client_id: &str,
        now_s: i64,
    ) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM refresh_families \
             WHERE realm_id = $1 AND client_id = $2 AND expires_at > $3 AND revoked = FALSE",
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
        let done = sqlx::query("UPDATE refresh_families SET revoked = TRUE WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(done.rows_affected() > 0)
    }

    async fn claim_once(
        &self,
        key: &[u8; 32],
        expires_at: i64,
        now_s: i64,
    ) -> Result<bool, StoreError> {
        let claimed = sqlx::query(
            "INSERT INTO replay_claims (key, expires_at) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at \
             WHERE replay_claims.expires_at <= $3 \
             RETURNING 1",
        )
        .bind(key.as_slice())
        .bind(expires_at)
        .bind(now_s)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(claimed.is_some())
    }

    async fn change_signal(&self) -> Result<Option<Box<dyn ChangeSignal>>, StoreError> {
        let channel: String = sqlx::query_scalar(&format!("SELECT {CHANGE_CHANNEL}"))
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable)?;
        let mut listener = PgListener::connect_with(&self.pool)
            .await
            .map_err(unavailable)?;
        listener.listen(&channel).await.map_err(unavailable)?;
        Ok(Some(Box::new(PgChangeSignal(listener))))
    }

    async fn changes_since(&self, seq: i64, limit: i64) -> Result<Vec<ChangeEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, kind, realm_id, key FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2",
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

    /// Only the node holding the purge lock purges; the others return 0 at once. The
    /// lock is a session lock on one connection, released at the end, or with the
    /// connection itself if anything failed.
    async fn purge(&self, now_s: i64, changes_before_s: i64) -> Result<u64, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(unavailable)?;
        let locked: bool = sqlx::query_scalar(PURGE_LOCK)
            .fetch_one(&mut *conn)
            .await
            .map_err(unavailable)?;
        if !locked {
            return Ok(0);
        }
        let result = self.purge_locked(&mut conn, now_s, changes_before_s).await;
        let unlocked = sqlx::query(PURGE_UNLOCK).execute(&mut *conn).await;
        if unlocked.is_err() {
            let _ = conn.close().await;
        }
        result
    }
}

fn app_change(realm_id: &str, client_id: &str) -> Change {
    Change::Application {
        realm_id: realm_id.to_owned(),
        client_id: client_id.to_owned(),
    }
}

async fn insert_key(tx: &mut Transaction<'_, Postgres>, key: &StoredKey) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "INSERT INTO signing_keys ({KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
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
    .map_err(conflict_or_unavailable(format!("signing key {}", key.kid)))?;
    Ok(())
}
