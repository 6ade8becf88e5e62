//! The store written once: every query of [`Store`], over a [`Dialect`] that holds what
//! differs between SQLite and PostgreSQL. Generic, not dynamic: each backend is its own
//! monomorphised copy, with the dialect's statements as constants.

use std::marker::PhantomData;

use async_trait::async_trait;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Type};
use tessera_core::domain::{Application, Realm};
use tessera_core::error::StoreError;
use tessera_core::store::{
    AppQuery, AuditQuery, AuditRecord, Change, ChangeEntry, ChangeSignal, RefreshFamily,
    RefreshUse, Revocation, Store, StoredKey, USAGE_KEPT_HOURS, UsageKey,
};

use crate::dialect::{Dialect, RowsAffected};
use crate::records::{
    ApplicationRow, AuditEntryRow, AuditRow, ChangeRow, FamilyRow, KeyRow, RealmRow, RevocationRow,
    applications, audit_log, change_columns, contains_pattern, realms, refresh_families,
    revocations, signing_keys,
};

/// A store on the database `D` speaks: SQLite ([`crate::SqliteStore`]) or PostgreSQL
/// ([`crate::PostgresStore`]).
pub struct SqlStore<D: Dialect> {
    pool: Pool<D::Db>,
    /// Where one-time values are claimed: `pool` itself, or on SQLite a connection of
    /// its own (see `sqlite.rs`).
    claims: Pool<D::Db>,
    /// The one query with a dialect's fragment in it, put together once.
    application_page: String,
    dialect: PhantomData<D>,
}

impl<D: Dialect> Clone for SqlStore<D> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            claims: self.claims.clone(),
            application_page: self.application_page.clone(),
            dialect: PhantomData,
        }
    }
}

impl<D: Dialect> std::fmt::Debug for SqlStore<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore")
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

impl<D: Dialect> SqlStore<D> {
    pub(crate) fn new(pool: Pool<D::Db>, claims: Pool<D::Db>) -> Self {
        let like = D::CASELESS_LIKE;
        let application_page = format!(
            "SELECT {columns} FROM applications WHERE realm_id = $1 AND client_id > $2 \
             AND (CAST($3 AS TEXT) IS NULL \
             OR name {like} $3 ESCAPE '\\' OR client_id {like} $3 ESCAPE '\\') \
             ORDER BY client_id LIMIT $4",
            columns = applications!(columns),
        );
        Self {
            pool,
            claims,
            application_page,
            dialect: PhantomData,
        }
    }

    pub(crate) fn pool(&self) -> &Pool<D::Db> {
        &self.pool
    }
}

pub(crate) fn unavailable(err: sqlx::Error) -> StoreError {
    StoreError::Unavailable(err.to_string())
}

/// Maps a unique-constraint violation to `Conflict`, anything else to `Unavailable`.
fn conflict_or_unavailable(what: String) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |err| match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what),
        _ => unavailable(err),
    }
}

fn app_change(realm_id: &str, client_id: &str) -> Change {
    Change::Application {
        realm_id: realm_id.to_owned(),
        client_id: client_id.to_owned(),
    }
}

/// The store numbers the records (`seq`).
const INSERT_AUDIT: &str = concat!(
    "INSERT INTO audit_log (",
    audit_log!(columns),
    ") VALUES (",
    audit_log!(values),
    ")"
);

type Connection<D> = <<D as Dialect>::Db as Database>::Connection;
type Row<D> = <<D as Dialect>::Db as Database>::Row;

// The bounds below say what the shared queries need of a database: sqlx's traits for
// the types bound and read. Both of sqlx's drivers have them; the compiler checks each.
// Rust does not carry them over from one impl to the next, so they stand twice.

impl<D: Dialect> SqlStore<D>
where
    for<'c> &'c mut Connection<D>: Executor<'c, Database = D::Db>,
    for<'q> <D::Db as Database>::Arguments<'q>: IntoArguments<'q, D::Db>,
    for<'q> &'q str: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> &'q [u8]: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> i64: Encode<'q, D::Db> + Decode<'q, D::Db> + Type<D::Db>,
    for<'q> bool: Encode<'q, D::Db> + Decode<'q, D::Db> + Type<D::Db>,
    for<'q> Option<i64>: Encode<'q, D::Db> + Decode<'q, D::Db>,
    for<'q> Option<&'q str>: Encode<'q, D::Db>,
    for<'q> String: Encode<'q, D::Db> + Decode<'q, D::Db> + Type<D::Db>,
    for<'q> Option<String>: Encode<'q, D::Db> + Decode<'q, D::Db>,
    for<'q> Vec<u8>: Encode<'q, D::Db> + Decode<'q, D::Db> + Type<D::Db>,
    for<'r> &'r str: ColumnIndex<Row<D>>,
    usize: ColumnIndex<Row<D>>,
{
    async fn begin(&self) -> Result<sqlx::Transaction<'static, D::Db>, StoreError> {
        self.pool.begin().await.map_err(unavailable)
    }

    /// Ends a transaction that changed nothing (no such row; a rotation another node
    /// made first): rolled back at once, rather than when its connection is next used,
    /// so that it holds no lock meanwhile.
    async fn nothing_done(tx: sqlx::Transaction<'static, D::Db>) -> Result<bool, StoreError> {
        tx.rollback().await.map_err(unavailable)?;
        Ok(false)
    }

    /// Writes a change's audit record, in the change's transaction: if it cannot be
    /// written, the change is not made either.
    async fn write_audit(conn: &mut Connection<D>, audit: &AuditRecord) -> Result<(), StoreError> {
        let row = AuditEntryRow::of(audit);
        row.bind(sqlx::query(INSERT_AUDIT))
            .execute(conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Appends to the change log; the last statement of every writing transaction, so
    /// that a lock the dialect takes is held only for the commit. On PostgreSQL,
    /// without that lock a transaction could take sequence number 10, another 11 and
    /// commit first, and a node reading 11 would move on and never read 10. An advisory
    /// lock rather than a table lock, so that neither autovacuum nor the purge's
    /// deletes hold writers up.
    async fn record(conn: &mut Connection<D>, change: &Change) -> Result<(), StoreError> {
        let (kind, realm_id, key) = change_columns(change);
        if let Some(lock) = D::CHANGE_LOG_LOCK {
            sqlx::query(lock)
                .execute(&mut *conn)
                .await
                .map_err(unavailable)?;
        }
        sqlx::query(D::INSERT_CHANGE)
            .bind(kind)
            .bind(realm_id)
            .bind(key)
            .execute(&mut *conn)
            .await
            .map_err(unavailable)?;
        if let Some(notify) = D::NOTIFY_CHANGE {
            // Delivered at commit, and only then, to every node listening.
            sqlx::query(notify)
                .execute(&mut *conn)
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }

    async fn insert_key(conn: &mut Connection<D>, key: &StoredKey) -> Result<(), StoreError> {
        let row = KeyRow::of(key);
        row.bind(sqlx::query(concat!(
            "INSERT INTO signing_keys (",
            signing_keys!(columns),
            ") VALUES (",
            signing_keys!(values),
            ")"
        )))
        .execute(conn)
        .await
        .map_err(conflict_or_unavailable(format!("signing key {}", key.kid)))?;
        Ok(())
    }

    /// Adds `key` to its realm and retires the others (see `Store::rotate_signing_key`);
    /// `false`, and nothing written, if a key activating since `unless_since` exists or
    /// the realm is gone.
    async fn rotate_in(
        conn: &mut Connection<D>,
        key: &StoredKey,
        keep_old_until: i64,
        unless_since: Option<i64>,
    ) -> Result<bool, StoreError> {
        if let Some(lock) = D::LOCK_REALM {
            // The realm's row first (PostgreSQL), so that two nodes rotating at once
            // take turns and the second sees the first one's key. Its row, not the
            // change log's lock: every writer of a realm (an update, a deletion and its
            // cascade) locks the row before the keys and the change log, and taking
            // locks in the same order everywhere is what keeps concurrent changes of
            // one realm from deadlocking.
            sqlx::query(lock)
                .bind(key.realm_id.as_str())
                .execute(&mut *conn)
                .await
                .map_err(unavailable)?;
        }
        // One statement checks and inserts, so that a CLI and a server rotating at once
        // on SQLite cannot both pass the check; nothing is added to a realm deleted
        // meanwhile.
        // `$2` is the row's realm_id.
        let row = KeyRow::of(key);
        let added = row
            .bind(sqlx::query(concat!(
                "INSERT INTO signing_keys (",
                signing_keys!(columns),
                ") SELECT ",
                signing_keys!(values),
                " WHERE EXISTS (SELECT 1 FROM realms WHERE id = $2) AND NOT EXISTS \
                 (SELECT 1 FROM signing_keys WHERE realm_id = $2 AND activates_at >= $",
                signing_keys!(next),
                ")"
            )))
            .bind(unless_since.unwrap_or(i64::MAX))
            .execute(&mut *conn)
            .await
            .map_err(conflict_or_unavailable(format!("signing key {}", key.kid)))?
            .rows_affected()
            > 0;
        if !added {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE signing_keys SET retired_at = COALESCE(retired_at, $1), \
             expires_at = COALESCE(expires_at, $2) WHERE realm_id = $3 AND kid <> $4",
        )
        .bind(key.activates_at)
        .bind(keep_old_until)
        .bind(key.realm_id.as_str())
        .bind(key.kid.as_str())
        .execute(&mut *conn)
        .await
        .map_err(unavailable)?;
        Ok(true)
    }

    /// Deletes the signing keys that expired by `now_s`, a realm at a time: each realm's
    /// row locked first (as a rotation does), its keys deleted and an audit record of
    /// them written (actor `system`), in one transaction. A realm has a handful of keys.
    async fn purge_keys(conn: &mut Connection<D>, now_s: i64) -> Result<u64, StoreError> {
        let expired: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT r.id, r.name, k.kid FROM signing_keys k JOIN realms r ON r.id = k.realm_id \
             WHERE k.expires_at <= $1 ORDER BY r.id, k.kid",
        )
        .bind(now_s)
        .fetch_all(&mut *conn)
        .await
        .map_err(unavailable)?;
        let mut purged = 0;
        for keys in expired.chunk_by(|a, b| a.0 == b.0) {
            let Some((realm_id, realm, _)) = keys.first() else {
                continue;
            };
            let mut tx = sqlx::Connection::begin(&mut *conn)
                .await
                .map_err(unavailable)?;
            if let Some(lock) = D::LOCK_REALM {
                sqlx::query(lock)
                    .bind(realm_id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?;
            }
            let mut gone = Vec::with_capacity(keys.len());
            for (_, _, kid) in keys {
                let deleted =
                    sqlx::query("DELETE FROM signing_keys WHERE kid = $1 AND expires_at <= $2")
                        .bind(kid.as_str())
                        .bind(now_s)
                        .execute(&mut *tx)
                        .await
                        .map_err(unavailable)?
                        .rows_affected();
                if deleted > 0 {
                    gone.push(kid.as_str());
                }
            }
            if !gone.is_empty() {
                let audit = AuditRecord {
                    seq: 0,
                    at_ms: now_s.saturating_mul(1000),
                    actor: "system".to_owned(),
                    action: "realm.purge_keys".to_owned(),
                    realm: realm.clone(),
                    client_id: None,
                    detail: serde_json::json!({ "expired": gone }).to_string(),
                };
                Self::write_audit(&mut tx, &audit).await?;
            }
            tx.commit().await.map_err(unavailable)?;
            purged += u64::try_from(gone.len()).unwrap_or(u64::MAX);
        }
        Ok(purged)
    }

    /// Purges in batches of `D::PURGE_BATCH` rows: short statements, short locks.
    async fn purge_expired(
        conn: &mut Connection<D>,
        now_s: i64,
        changes_before_s: i64,
    ) -> Result<u64, StoreError> {
        let mut purged = Self::purge_keys(conn, now_s).await?;
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
                    .bind(D::PURGE_BATCH)
                    .execute(&mut *conn)
                    .await
                    .map_err(unavailable)?
                    .rows_affected();
                purged += gone;
                if gone < D::PURGE_BATCH.unsigned_abs() {
                    break;
                }
            }
        }
        Ok(purged)
    }

    /// `Ok` if every migration this version knows of has been applied.
    pub(crate) async fn check_schema(&self) -> Result<(), StoreError> {
        let exists: bool = sqlx::query_scalar(D::MIGRATIONS_TABLE_EXISTS)
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
        crate::schema_is_current(D::migrator(), &applied)
    }
}

#[async_trait]
impl<D: Dialect> Store for SqlStore<D>
where
    for<'c> &'c mut Connection<D>: Executor<'c, Database = D::Db>,
    for<'q> <D::Db as Database>::Arguments<'q>: IntoArguments<'q, D::Db>,
    for<'q> &'q str: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> &'q [u8]: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> i64: Encode<'q, D::Db> + Decode<'q, D::Db> + Type<D::Db>,
    for<'q> bool: Encode<'q, D::Db> + Decode<'q, D::Db> + Type<D::Db>,
    for<'q> Option<i64>: Encode<'q, D::Db> + Decode<'q, D::Db>,
    for<'q> Option<&'q str>: Encode<'q, D::Db>,
    for<'q> String: Encode<'q, D::Db> + Decode<'q, D::Db> + Type<D::Db>,
    for<'q> Option<String>: Encode<'q, D::Db> + Decode<'q, D::Db>,
    for<'q> Vec<u8>: Encode<'q, D::Db> + Decode<'q, D::Db> + Type<D::Db>,
    for<'r> &'r str: ColumnIndex<Row<D>>,
    usize: ColumnIndex<Row<D>>,
{
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    fn is_shared(&self) -> bool {
        D::IS_SHARED
    }

    async fn realms(&self) -> Result<Vec<Realm>, StoreError> {
        sqlx::query_as::<_, RealmRow>(concat!(
            "SELECT ",
            realms!(columns),
            " FROM realms ORDER BY name"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?
        .into_iter()
        .map(RealmRow::parse)
        .collect()
    }

    async fn find_realm(&self, realm_id: &str) -> Result<Option<Realm>, StoreError> {
        sqlx::query_as::<_, RealmRow>(concat!(
            "SELECT ",
            realms!(columns),
            " FROM realms WHERE id = $1"
        ))
        .bind(realm_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?
        .map(RealmRow::parse)
        .transpose()
    }

    async fn insert_realm(
        &self,
        realm: &Realm,
        first_key: &StoredKey,
        audit: &AuditRecord,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let row = RealmRow::of(realm)?;
        row.bind(sqlx::query(concat!(
            "INSERT INTO realms (",
            realms!(columns),
            ") VALUES (",
            realms!(values),
            ")"
        )))
        .execute(&mut *tx)
        .await
        .map_err(conflict_or_unavailable(format!("realm {}", realm.name)))?;
        Self::insert_key(&mut tx, first_key).await?;
        Self::write_audit(&mut tx, audit).await?;
        let change = Change::Realm {
            realm_id: realm.id.clone(),
        };
        Self::record(&mut tx, &change).await?;
        tx.commit().await.map_err(unavailable)
    }

    async fn update_realm(
        &self,
        realm: &Realm,
        rotation: Option<(&StoredKey, i64)>,
        audit: &AuditRecord,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let row = RealmRow::of(realm)?;
        let done = row
            .bind(sqlx::query(concat!(
                "UPDATE realms SET ",
                realms!(set),
                " WHERE id = $1"
            )))
            .execute(&mut *tx)
            .await
            .map_err(conflict_or_unavailable(format!("realm {}", realm.name)))?
            .rows_affected()
            > 0;
        if !done {
            return Self::nothing_done(tx).await;
        }
        if let Some((key, keep_old_until)) = rotation {
            Self::rotate_in(&mut tx, key, keep_old_until, None).await?;
        }
        Self::write_audit(&mut tx, audit).await?;
        if rotation.is_some() {
            let keys = Change::Keys {
                realm_id: realm.id.clone(),
            };
            Self::record(&mut tx, &keys).await?;
        }
        let change = Change::Realm {
            realm_id: realm.id.clone(),
        };
        Self::record(&mut tx, &change).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(true)
    }

    async fn delete_realm(&self, realm_id: &str, audit: &AuditRecord) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let done = sqlx::query("DELETE FROM realms WHERE id = $1")
            .bind(realm_id)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?
            .rows_affected()
            > 0;
        if !done {
            return Self::nothing_done(tx).await;
        }
        Self::write_audit(&mut tx, audit).await?;
        let change = Change::Realm {
            realm_id: realm_id.to_owned(),
        };
        Self::record(&mut tx, &change).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(true)
    }

    async fn applications(&self) -> Result<Vec<Application>, StoreError> {
        sqlx::query_as::<_, ApplicationRow>(concat!(
            "SELECT ",
            applications!(columns),
            " FROM applications"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?
        .into_iter()
        .map(ApplicationRow::parse)
        .collect()
    }

    async fn list_applications(&self, realm_id: &str) -> Result<Vec<Application>, StoreError> {
        sqlx::query_as::<_, ApplicationRow>(concat!(
            "SELECT ",
            applications!(columns),
            " FROM applications WHERE realm_id = $1 ORDER BY client_id"
        ))
        .bind(realm_id)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?
        .into_iter()
        .map(ApplicationRow::parse)
        .collect()
    }

    async fn find_application(
        &self,
        realm_id: &str,
        client_id: &str,
    ) -> Result<Option<Application>, StoreError> {
        sqlx::query_as::<_, ApplicationRow>(concat!(
            "SELECT ",
            applications!(columns),
            " FROM applications WHERE realm_id = $1 AND client_id = $2"
        ))
        .bind(realm_id)
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?
        .map(ApplicationRow::parse)
        .transpose()
    }

    async fn insert_application(
        &self,
        app: &Application,
        audit: &AuditRecord,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let row = ApplicationRow::of(app)?;
        row.bind(sqlx::query(concat!(
            "INSERT INTO applications (",
            applications!(columns),
            ") VALUES (",
            applications!(values),
            ")"
        )))
        .execute(&mut *tx)
        .await
        .map_err(conflict_or_unavailable(format!(
            "application {}",
            app.client_id
        )))?;
        Self::write_audit(&mut tx, audit).await?;
        let change = app_change(&app.realm_id, app.client_id.as_str());
        Self::record(&mut tx, &change).await?;
        tx.commit().await.map_err(unavailable)
    }

    async fn update_application(
        &self,
        app: &Application,
        audit: &AuditRecord,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let row = ApplicationRow::of(app)?;
        let done = row
            .bind(sqlx::query(concat!(
                "UPDATE applications SET ",
                applications!(set),
                " WHERE realm_id = $1 AND client_id = $2"
            )))
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?
            .rows_affected()
            > 0;
        if !done {
            return Self::nothing_done(tx).await;
        }
        Self::write_audit(&mut tx, audit).await?;
        let change = app_change(&app.realm_id, app.client_id.as_str());
        Self::record(&mut tx, &change).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(true)
    }

    async fn delete_application(
        &self,
        realm_id: &str,
        client_id: &str,
        audit: &AuditRecord,
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
        if !done {
            return Self::nothing_done(tx).await;
        }
        Self::write_audit(&mut tx, audit).await?;
        Self::record(&mut tx, &app_change(realm_id, client_id)).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(true)
    }

    async fn application_page(
        &self,
        realm_id: &str,
        query: &AppQuery,
    ) -> Result<Vec<Application>, StoreError> {
        let pattern = query.search.as_deref().map(contains_pattern);
        sqlx::query_as::<_, ApplicationRow>(&self.application_page)
            .bind(realm_id)
            .bind(query.after.as_deref().unwrap_or(""))
            .bind(pattern.as_deref())
            .bind(i64::from(query.limit))
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(ApplicationRow::parse)
            .collect()
    }

    /// Oldest first, and by `kid` among keys made in the same second, so that every
    /// node lists the same keys in the same order.
    async fn signing_keys(&self, realm_id: Option<&str>) -> Result<Vec<StoredKey>, StoreError> {
        sqlx::query_as::<_, KeyRow>(concat!(
            "SELECT ",
            signing_keys!(columns),
            " FROM signing_keys WHERE CAST($1 AS TEXT) IS NULL OR realm_id = $1 \
             ORDER BY created_at, kid"
        ))
        .bind(realm_id)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?
        .into_iter()
        .map(KeyRow::parse)
        .collect()
    }

    async fn rotate_signing_key(
        &self,
        key: &StoredKey,
        keep_old_until: i64,
        unless_since: Option<i64>,
        audit: &AuditRecord,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        if !Self::rotate_in(&mut tx, key, keep_old_until, unless_since).await? {
            return Self::nothing_done(tx).await;
        }
        Self::write_audit(&mut tx, audit).await?;
        let change = Change::Keys {
            realm_id: key.realm_id.clone(),
        };
        Self::record(&mut tx, &change).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(true)
    }

    async fn revocations(&self, now_s: i64) -> Result<Vec<Revocation>, StoreError> {
        let rows = sqlx::query_as::<_, RevocationRow>(concat!(
            "SELECT ",
            revocations!(columns),
            " FROM revocations WHERE expires_at > $1"
        ))
        .bind(now_s)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(rows.into_iter().map(Revocation::from).collect())
    }

    async fn find_revocation(&self, jti: &str) -> Result<Option<Revocation>, StoreError> {
        let row = sqlx::query_as::<_, RevocationRow>(concat!(
            "SELECT ",
            revocations!(columns),
            " FROM revocations WHERE jti = $1"
        ))
        .bind(jti)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(row.map(Revocation::from))
    }

    async fn insert_revocation(&self, revocation: &Revocation) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let row = RevocationRow::of(revocation);
        row.bind(sqlx::query(concat!(
            "INSERT INTO revocations (",
            revocations!(columns),
            ") VALUES (",
            revocations!(values),
            ") ON CONFLICT (jti) DO NOTHING"
        )))
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        let change = Change::Revocation {
            jti: revocation.jti.clone(),
        };
        Self::record(&mut tx, &change).await?;
        tx.commit().await.map_err(unavailable)
    }

    async fn insert_refresh_family(&self, family: &RefreshFamily) -> Result<(), StoreError> {
        let row = FamilyRow::of(family);
        row.bind(sqlx::query(concat!(
            "INSERT INTO refresh_families (",
            refresh_families!(columns),
            ") VALUES (",
            refresh_families!(values),
            ")"
        )))
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    /// The current generation moves on in one statement, which takes the row's lock:
    /// two nodes presenting the same token take turns, and the second, finding the
    /// generation moved on, revokes the family.
    async fn use_refresh_family(
        &self,
        id: &str,
        generation: i64,
        expires_at: i64,
        now_s: i64,
    ) -> Result<RefreshUse, StoreError> {
        let mut tx = self.begin().await?;
        let rotated = sqlx::query(
            "UPDATE refresh_families SET generation = generation + 1, expires_at = $1 \
             WHERE id = $2 AND generation = $3 AND NOT revoked AND expires_at > $4",
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
            let family: Option<(i64, bool, i64)> = sqlx::query_as(
                "SELECT generation, revoked, expires_at FROM refresh_families WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(unavailable)?;
            match family {
                Some((current, false, until)) if until > now_s && current > generation => {
                    sqlx::query("UPDATE refresh_families SET revoked = TRUE WHERE id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err(unavailable)?;
                    RefreshUse::Reused
                }
                _ => RefreshUse::Dead,
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
             WHERE realm_id = $1 AND client_id = $2 AND expires_at > $3 AND NOT revoked",
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

    /// One statement: the primary key decides between two nodes claiming at once, and
    /// an entry that has expired but not been purged yet may be claimed again. On the
    /// claims pool (on SQLite a connection of its own, see `sqlite.rs`): the node's in-memory cache has refused
    /// the replays it saw; this keeps them refused after a restart and on other nodes.
    async fn claim_once(
        &self,
        key: &[u8; 32],
        expires_at: i64,
        now_s: i64,
    ) -> Result<bool, StoreError> {
        let claimed = sqlx::query(
            "INSERT INTO replay_claims (key, expires_at) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at \
             WHERE replay_claims.expires_at <= $3 \
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

    async fn append_audit(&self, record: &AuditRecord) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(unavailable)?;
        Self::write_audit(&mut conn, record).await
    }

    async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query_as::<_, AuditRow>(concat!(
            "SELECT seq, ",
            audit_log!(columns),
            " FROM audit_log WHERE seq < $1 AND (CAST($2 AS TEXT) IS NULL OR realm = $2) \
             AND (CAST($3 AS TEXT) IS NULL OR client_id = $3) ORDER BY seq DESC LIMIT $4"
        ))
        .bind(query.before.unwrap_or(i64::MAX))
        .bind(query.realm.as_deref())
        .bind(query.client_id.as_deref())
        .bind(i64::from(query.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(rows.into_iter().map(AuditRecord::from).collect())
    }

    async fn add_usage(&self, counts: &[(UsageKey, u64)]) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        for (key, tokens) in counts {
            sqlx::query(
                "INSERT INTO usage_hourly (realm_id, client_id, hour, tokens) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (realm_id, client_id, hour) \
                 DO UPDATE SET tokens = usage_hourly.tokens + excluded.tokens",
            )
            .bind(key.realm_id.as_str())
            .bind(key.client_id.as_str())
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
            "SELECT hour, tokens FROM usage_hourly \
             WHERE realm_id = $1 AND client_id = $2 AND hour >= $3 ORDER BY hour",
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

    async fn change_signal(&self) -> Result<Option<Box<dyn ChangeSignal>>, StoreError> {
        D::change_signal(&self.pool).await
    }

    async fn changes_since(&self, seq: i64, limit: i64) -> Result<Vec<ChangeEntry>, StoreError> {
        sqlx::query_as::<_, ChangeRow>(
            "SELECT seq, kind, realm_id, key FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(seq)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?
        .into_iter()
        .map(ChangeRow::parse)
        .collect()
    }

    async fn last_change_seq(&self) -> Result<i64, StoreError> {
        let seq: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM changes")
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(seq.unwrap_or(0))
    }

    /// Where several nodes share the database, only the one holding the purge lock
    /// purges; the others return 0 at once. The lock is a session lock on this one
    /// connection, released at the end, or with the connection itself if anything
    /// failed.
    async fn purge(&self, now_s: i64, changes_before_s: i64) -> Result<u64, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(unavailable)?;
        if let Some(lock) = D::PURGE_LOCK {
            let locked: bool = sqlx::query_scalar(lock)
                .fetch_one(&mut *conn)
                .await
                .map_err(unavailable)?;
            if !locked {
                return Ok(0);
            }
        }
        let result = Self::purge_expired(&mut conn, now_s, changes_before_s).await;
        if let Some(unlock) = D::PURGE_UNLOCK
            && sqlx::query(unlock).execute(&mut *conn).await.is_err()
        {
            let _ = conn.close().await;
        }
        result
    }
}
