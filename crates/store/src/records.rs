//! The rows of each table and how domain values are written into them and read back,
//! shared by both backends. Reading goes through the domain's parsing constructors, so
//! a row that no longer parses is reported as corrupt instead of trusted.
//!
//! Each table is declared once, with [`table!`]: the row struct (read through a derived
//! `FromRow`), `bind`, which binds a row's values onto a query in the order of its
//! columns, and a macro named after the table that gives `sql.rs` the same columns to
//! write its statements with (`columns`, `values`, `set`, `next`). A new column is one
//! field at the end of its table's declaration, its value in the row's conversion from
//! and to the domain value beside it (or a new key in the JSON `data` column, which needs
//! no column at all), and a migration per database: no statement in `sql.rs` changes.
//! The test `a_table_declared_once_is_written_and_read_back` declares a table of its own
//! and writes and reads it through those generated pieces alone.

use serde::{Deserialize, Serialize};
use tessera_core::client_keys::{Jwks, PublicKeyPem};
use tessera_core::domain::{
    Application, ApplicationName, Audience, AuthMethod, ClientId, HostName, PublicUrl, Quota,
    Realm, RealmName, Role, ScopeSet, SecretHash, SigningAlg, TokenFormat, TokenPrefix, TokenTtl,
    TokenTypeSpelling,
};
use tessera_core::error::{FieldError, StoreError};
use tessera_core::store::{AuditRecord, Change, ChangeEntry, RefreshFamily, Revocation, StoredKey};

/// Declares a table: `name => Row { keys; columns }`, the columns that identify a row
/// (none for a log), a `;`, then the others, in the table's order. It makes:
///
/// - `Row`, with a field per column and a derived `sqlx::FromRow`;
/// - `Row::bind`, which binds every value of a row onto a query, in column order;
/// - `name!(columns)`: `"a, b, c"`; `name!(values)`: `"$1, $2, $3"`, a placeholder per
///   column; `name!(set)`: `"b = $2, c = $3"`, every column but the keys, from the same
///   placeholders (an `UPDATE ... WHERE` on the keys' `$1`...); `name!(next)`: the
///   number of the first placeholder after the row's (`4`), for a statement that binds
///   more than the row.
macro_rules! table {
    (
        $(#[$meta:meta])*
        $table:ident => $row:ident {
            $($key:ident: $key_ty:ty),* ;
            $($column:ident: $ty:ty),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(sqlx::FromRow)]
        pub(crate) struct $row {
            $($key: $key_ty,)*
            $($column: $ty,)+
        }

        impl $row {
            /// Binds the row's values onto `query`, in the order of the table's columns.
            pub(crate) fn bind<'q, DB: sqlx::Database>(
                &'q self,
                query: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>,
            ) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
            where
                $($key_ty: sqlx::Encode<'q, DB> + sqlx::Type<DB>,)*
                $($ty: sqlx::Encode<'q, DB> + sqlx::Type<DB>,)+
            {
                query $(.bind(&self.$key))* $(.bind(&self.$column))+
            }
        }

        macro_rules! $table {
            (columns) => {
                $crate::records::column_list!($($key)* $($column)+)
            };
            (values) => {
                $crate::records::placeholders!($($key)* $($column)+)
            };
            (set) => {
                $crate::records::assignments!([$($key)*] $($key)* $($column)+)
            };
            (next) => {
                $crate::records::next_placeholder!($($key)* $($column)+)
            };
        }
    };
}

/// `"a, b, c"` for columns `a b c`.
macro_rules! column_list {
    ($first:ident $($column:ident)*) => {
        concat!(stringify!($first) $(, ", ", stringify!($column))*)
    };
}

/// `"$1, $2, $3"` for three columns. (Up to 15 columns: the widest table has 8.)
macro_rules! placeholders {
    ($($column:ident)+) => {
        $crate::records::placeholders!(@ [] [1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16] $($column)+)
    };
    (@ [$($done:literal)*] [$n:literal $($more:literal)*] $column:ident $($rest:ident)*) => {
        $crate::records::placeholders!(@ [$($done)* $n] [$($more)*] $($rest)*)
    };
    (@ [$first:literal $($done:literal)*] [$($more:literal)*]) => {
        concat!("$", $first $(, ", $", $done)*)
    };
}

/// `"c = $3, d = $4"` for the columns after the keys `[a b]` of `a b c d`.
macro_rules! assignments {
    ([$($key:ident)*] $($column:ident)+) => {
        $crate::records::assignments!(@ [$($key)*] [] [1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16] $($column)+)
    };
    // A key: its number is passed over.
    (@ [$key:ident $($keys:ident)*] [$($done:tt)*] [$n:literal $($more:literal)*]
        $column:ident $($rest:ident)*) => {
        $crate::records::assignments!(@ [$($keys)*] [$($done)*] [$($more)*] $($rest)*)
    };
    (@ [] [$($done:tt)*] [$n:literal $($more:literal)*] $column:ident $($rest:ident)*) => {
        $crate::records::assignments!(@ [] [$($done)* ($column $n)] [$($more)*] $($rest)*)
    };
    (@ [] [($first:ident $n:literal) $(($column:ident $m:literal))*] [$($more:literal)*]) => {
        concat!(stringify!($first), " = $", $n $(, ", ", stringify!($column), " = $", $m)*)
    };
}

/// `4` for three columns: the number of the placeholder after the row's.
macro_rules! next_placeholder {
    ($($column:ident)+) => {
        $crate::records::next_placeholder!(@ [1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16] $($column)+)
    };
    (@ [$n:literal $($more:literal)*] $column:ident $($rest:ident)*) => {
        $crate::records::next_placeholder!(@ [$($more)*] $($rest)*)
    };
    (@ [$n:literal $($more:literal)*]) => {
        $n
    };
}

pub(crate) use {assignments, column_list, next_placeholder, placeholders};

table! {
    realms => RealmRow {
        id: String;
        name: String,
        data: String,
        created_at: i64,
    }
}

table! {
    applications => ApplicationRow {
        realm_id: String,
        client_id: String;
        name: String,
        data: String,
        created_at: i64,
        updated_at: i64,
    }
}

table! {
    /// `realm_id` is the second column: `sql.rs` refers to it as `$2`.
    signing_keys => KeyRow {
        kid: String;
        realm_id: String,
        alg: String,
        sealed_private: Vec<u8>,
        created_at: i64,
        activates_at: i64,
        retired_at: Option<i64>,
        expires_at: Option<i64>,
    }
}

table! {
    revocations => RevocationRow {
        jti: String;
        realm_id: String,
        client_id: String,
        expires_at: i64,
    }
}

table! {
    refresh_families => FamilyRow {
        id: String;
        realm_id: String,
        client_id: String,
        generation: i64,
        expires_at: i64,
        revoked: bool,
    }
}

table! {
    /// A record as written; the store numbers it (`seq`, see [`AuditRow`]).
    audit_log => AuditEntryRow {
        ;
        at_ms: i64,
        actor: String,
        action: String,
        realm: String,
        client_id: Option<String>,
        detail: String,
    }
}

// The tables' macros, for `sql.rs` to import by path (a `macro_rules!` has a path only
// once re-exported); clippy takes the re-export of a macro that a macro made for a no-op.
#[allow(clippy::single_component_path_imports)]
pub(crate) use {applications, audit_log, realms, refresh_families, revocations, signing_keys};

/// A record of the audit log as read: its number, and what was written.
#[derive(sqlx::FromRow)]
pub(crate) struct AuditRow {
    seq: i64,
    #[sqlx(flatten)]
    entry: AuditEntryRow,
}

impl RealmRow {
    pub(crate) fn of(realm: &Realm) -> Result<Self, StoreError> {
        Ok(Self {
            id: realm.id.clone(),
            name: realm.name.as_str().to_owned(),
            data: realm_data(realm)?,
            created_at: realm.created_at,
        })
    }

    pub(crate) fn parse(self) -> Result<Realm, StoreError> {
        realm_from_row(self.id, &self.name, &self.data, self.created_at)
    }
}

impl KeyRow {
    pub(crate) fn of(key: &StoredKey) -> Self {
        Self {
            kid: key.kid.clone(),
            realm_id: key.realm_id.clone(),
            alg: key.alg.as_str().to_owned(),
            sealed_private: key.sealed_private.clone(),
            created_at: key.created_at,
            activates_at: key.activates_at,
            retired_at: key.retired_at,
            expires_at: key.expires_at,
        }
    }

    pub(crate) fn parse(self) -> Result<StoredKey, StoreError> {
        Ok(StoredKey {
            kid: self.kid,
            realm_id: self.realm_id,
            alg: SigningAlg::parse("alg", &self.alg).map_err(corrupt_field)?,
            sealed_private: self.sealed_private,
            created_at: self.created_at,
            activates_at: self.activates_at,
            retired_at: self.retired_at,
            expires_at: self.expires_at,
        })
    }
}

impl RevocationRow {
    pub(crate) fn of(revocation: &Revocation) -> Self {
        Self {
            jti: revocation.jti.clone(),
            realm_id: revocation.realm_id.clone(),
            client_id: revocation.client_id.clone(),
            expires_at: revocation.expires_at,
        }
    }
}

impl From<RevocationRow> for Revocation {
    fn from(row: RevocationRow) -> Self {
        Self {
            jti: row.jti,
            realm_id: row.realm_id,
            client_id: row.client_id,
            expires_at: row.expires_at,
        }
    }
}

impl FamilyRow {
    pub(crate) fn of(family: &RefreshFamily) -> Self {
        Self {
            id: family.id.clone(),
            realm_id: family.realm_id.clone(),
            client_id: family.client_id.clone(),
            generation: family.generation,
            expires_at: family.expires_at,
            revoked: family.revoked,
        }
    }
}

impl AuditEntryRow {
    pub(crate) fn of(record: &AuditRecord) -> Self {
        Self {
            at_ms: record.at_ms,
            actor: record.actor.clone(),
            action: record.action.clone(),
            realm: record.realm.clone(),
            client_id: record.client_id.clone(),
            detail: record.detail.clone(),
        }
    }
}

impl From<AuditRow> for AuditRecord {
    fn from(row: AuditRow) -> Self {
        let AuditRow { seq, entry } = row;
        Self {
            seq,
            at_ms: entry.at_ms,
            actor: entry.actor,
            action: entry.action,
            realm: entry.realm,
            client_id: entry.client_id,
            detail: entry.detail,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ChangeRow {
    seq: i64,
    kind: String,
    realm_id: String,
    key: String,
}

impl ChangeRow {
    pub(crate) fn parse(self) -> Result<ChangeEntry, StoreError> {
        Ok(ChangeEntry {
            seq: self.seq,
            change: change_from_columns(&self.kind, self.realm_id, self.key)?,
        })
    }
}

#[derive(Serialize, Deserialize)]
pub(crate) struct RealmData {
    hosts: Vec<String>,
    public_url: Option<String>,
    token_format: String,
    signing_alg: String,
    token_prefix: String,
    #[serde(default)]
    previous_token_prefixes: Vec<String>,
    token_type: String,
    credential_window_secs: u64,
    assertion_max_lifetime_secs: u64,
    #[serde(default)]
    key_rotation_secs: Option<u64>,
}

fn realm_data(realm: &Realm) -> Result<String, StoreError> {
    let data = RealmData {
        hosts: realm.hosts.iter().map(|h| h.as_str().to_owned()).collect(),
        public_url: realm.public_url.as_ref().map(|u| u.as_str().to_owned()),
        token_format: realm.token_format.as_str().to_owned(),
        signing_alg: realm.signing_alg.as_str().to_owned(),
        token_prefix: realm.token_prefix.as_str().to_owned(),
        previous_token_prefixes: realm
            .previous_token_prefixes
            .iter()
            .map(|p| p.as_str().to_owned())
            .collect(),
        token_type: realm.token_type.as_str().to_owned(),
        credential_window_secs: realm.credential_window_secs,
        assertion_max_lifetime_secs: realm.assertion_max_lifetime_secs,
        key_rotation_secs: realm.key_rotation_secs,
    };
    serde_json::to_string(&data).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn realm_from_row(
    id: String,
    name: &str,
    data: &str,
    created_at: i64,
) -> Result<Realm, StoreError> {
    let data: RealmData = serde_json::from_str(data).map_err(corrupt)?;
    Ok(Realm {
        id,
        name: RealmName::parse("name", name).map_err(corrupt_field)?,
        hosts: data
            .hosts
            .iter()
            .map(|h| HostName::parse("hosts", h))
            .collect::<Result<_, _>>()
            .map_err(corrupt_field)?,
        public_url: data
            .public_url
            .as_deref()
            .map(|u| PublicUrl::parse("public_url", u))
            .transpose()
            .map_err(corrupt_field)?,
        token_format: TokenFormat::parse("token_format", &data.token_format)
            .map_err(corrupt_field)?,
        signing_alg: SigningAlg::parse("signing_alg", &data.signing_alg).map_err(corrupt_field)?,
        token_prefix: TokenPrefix::parse("token_prefix", &data.token_prefix)
            .map_err(corrupt_field)?,
        previous_token_prefixes: data
            .previous_token_prefixes
            .iter()
            .map(|p| TokenPrefix::parse("previous_token_prefixes", p))
            .collect::<Result<_, _>>()
            .map_err(corrupt_field)?,
        token_type: TokenTypeSpelling::parse("token_type", &data.token_type)
            .map_err(corrupt_field)?,
        credential_window_secs: data.credential_window_secs,
        assertion_max_lifetime_secs: data.assertion_max_lifetime_secs,
        key_rotation_secs: data.key_rotation_secs,
        created_at,
    })
}

#[derive(Serialize, Deserialize)]
struct SecretData {
    hash: String,
    expires_at: Option<i64>,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct ApplicationData {
    enabled: bool,
    secrets: Vec<SecretData>,
    scopes: Vec<String>,
    default_scopes: Option<Vec<String>>,
    scope_required: bool,
    token_ttl: u64,
    token_format: Option<String>,
    refresh_token_ttl: Option<u64>,
    auth_methods: Vec<String>,
    public_key: Option<String>,
    jwks: Option<serde_json::Value>,
    audiences: Vec<String>,
    #[serde(default)]
    roles: Vec<String>,
    /// Absent in rows written before quotas existed, and for an application without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    quota: Option<QuotaData>,
    tokens_valid_after_ms: i64,
}

#[derive(Serialize, Deserialize)]
struct QuotaData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    per_minute: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    per_day: Option<u64>,
}

fn application_data(app: &Application) -> Result<String, StoreError> {
    let data = ApplicationData {
        enabled: app.enabled,
        secrets: app
            .secrets
            .iter()
            .map(|s| SecretData {
                hash: hex(&s.hash),
                expires_at: s.expires_at,
            })
            .collect(),
        scopes: app.scopes.to_strings(),
        default_scopes: app.default_scopes.as_ref().map(ScopeSet::to_strings),
        scope_required: app.scope_required,
        token_ttl: app.token_ttl.secs(),
        token_format: app.token_format.map(|f| f.as_str().to_owned()),
        refresh_token_ttl: app.refresh_token_ttl.map(TokenTtl::secs),
        auth_methods: app
            .auth_methods
            .iter()
            .map(|m| m.as_str().to_owned())
            .collect(),
        public_key: app.public_key.as_ref().map(|k| k.as_str().to_owned()),
        jwks: app.jwks.as_ref().map(|j| j.document().clone()),
        audiences: app
            .audiences
            .iter()
            .map(|a| a.as_str().to_owned())
            .collect(),
        roles: app.roles.iter().map(|r| r.as_str().to_owned()).collect(),
        quota: (!app.quota.is_unlimited()).then(|| QuotaData {
            per_minute: app.quota.per_minute.map(u64::from),
            per_day: app.quota.per_day.map(u64::from),
        }),
        tokens_valid_after_ms: app.tokens_valid_after_ms,
    };
    serde_json::to_string(&data).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl ApplicationRow {
    pub(crate) fn of(app: &Application) -> Result<Self, StoreError> {
        Ok(Self {
            realm_id: app.realm_id.clone(),
            client_id: app.client_id.as_str().to_owned(),
            name: app.name.as_str().to_owned(),
            data: application_data(app)?,
            created_at: app.created_at,
            updated_at: app.updated_at,
        })
    }

    pub(crate) fn parse(self) -> Result<Application, StoreError> {
        application_from_row(self)
    }
}

/// Reads an application's row; a row that does not parse is an error naming the
/// application, so that whoever reads the log knows which one to repair.
fn application_from_row(row: ApplicationRow) -> Result<Application, StoreError> {
    let named = format!("application {} of realm {}", row.client_id, row.realm_id);
    read_application(row).map_err(|err| match err {
        StoreError::Corrupt(why) => StoreError::Corrupt(format!("{named}: {why}")),
        other => other,
    })
}

fn read_application(row: ApplicationRow) -> Result<Application, StoreError> {
    let data: ApplicationData = serde_json::from_str(&row.data).map_err(corrupt)?;
    Ok(Application {
        realm_id: row.realm_id,
        client_id: ClientId::parse("client_id", &row.client_id).map_err(corrupt_field)?,
        name: ApplicationName::parse("name", &row.name).map_err(corrupt_field)?,
        enabled: data.enabled,
        secrets: data
            .secrets
            .iter()
            .map(|s| {
                Ok(SecretHash {
                    hash: unhex(&s.hash)
                        .ok_or_else(|| StoreError::Corrupt("secret hash".into()))?,
                    expires_at: s.expires_at,
                })
            })
            .collect::<Result<_, StoreError>>()?,
        scopes: ScopeSet::parse_list("scopes", &data.scopes).map_err(corrupt_field)?,
        default_scopes: data
            .default_scopes
            .as_deref()
            .map(|d| ScopeSet::parse_list("default_scopes", d))
            .transpose()
            .map_err(corrupt_field)?,
        scope_required: data.scope_required,
        token_ttl: TokenTtl::parse("token_ttl", data.token_ttl).map_err(corrupt_field)?,
        token_format: data
            .token_format
            .as_deref()
            .map(|f| TokenFormat::parse("token_format", f))
            .transpose()
            .map_err(corrupt_field)?,
        refresh_token_ttl: data
            .refresh_token_ttl
            .map(|t| TokenTtl::parse("refresh_token_ttl", t))
            .transpose()
            .map_err(corrupt_field)?,
        auth_methods: data
            .auth_methods
            .iter()
            .map(|m| AuthMethod::parse("auth_methods", m))
            .collect::<Result<_, _>>()
            .map_err(corrupt_field)?,
        // A key or JWKS that no longer parses makes the row corrupt like any other
        // field, rather than leave the application with fewer keys than it registered.
        public_key: data
            .public_key
            .as_deref()
            .map(|pem| PublicKeyPem::parse("public_key", pem))
            .transpose()
            .map_err(corrupt_field)?,
        jwks: data
            .jwks
            .map(|jwks| Jwks::parse("jwks", jwks))
            .transpose()
            .map_err(corrupt_field)?,
        audiences: Audience::parse_list("audiences", &data.audiences).map_err(corrupt_field)?,
        roles: Role::parse_list("roles", &data.roles).map_err(corrupt_field)?,
        quota: match &data.quota {
            Some(q) => Quota::parse("quota", q.per_minute, q.per_day).map_err(corrupt_field)?,
            None => Quota::default(),
        },
        tokens_valid_after_ms: data.tokens_valid_after_ms,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

/// The `kind`, `realm_id` and `key` columns of a change-log row.
pub(crate) fn change_columns(change: &Change) -> (&'static str, &str, &str) {
    match change {
        Change::Realm { realm_id } => ("realm", realm_id, ""),
        Change::Application {
            realm_id,
            client_id,
        } => ("application", realm_id, client_id),
        Change::Keys { realm_id } => ("keys", realm_id, ""),
        Change::Revocation { jti } => ("revocation", "", jti),
    }
}

fn change_from_columns(kind: &str, realm_id: String, key: String) -> Result<Change, StoreError> {
    match kind {
        "realm" => Ok(Change::Realm { realm_id }),
        "application" => Ok(Change::Application {
            realm_id,
            client_id: key,
        }),
        "keys" => Ok(Change::Keys { realm_id }),
        "revocation" => Ok(Change::Revocation { jti: key }),
        other => Err(StoreError::Corrupt(format!("change kind {other}"))),
    }
}

fn corrupt(err: serde_json::Error) -> StoreError {
    StoreError::Corrupt(err.to_string())
}

fn corrupt_field(err: FieldError) -> StoreError {
    StoreError::Corrupt(err.to_string())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if text.len() != 64 {
        return None;
    }
    for (slot, pair) in out.iter_mut().zip(text.as_bytes().chunks(2)) {
        let pair = std::str::from_utf8(pair).ok()?;
        *slot = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

/// A `LIKE` pattern matching any text that contains `search` literally (escape `\`).
pub(crate) fn contains_pattern(search: &str) -> String {
    let mut pattern = String::with_capacity(search.len() + 2);
    pattern.push('%');
    for c in search.chars() {
        if matches!(c, '\\' | '%' | '_') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

#[cfg(test)]
mod tests {
    use super::*;

    table! {
        /// A table of this test's own, declared as any table is.
        #[derive(Debug, Clone, PartialEq)]
        widgets => WidgetRow {
            shop: String,
            id: String;
            name: String,
            blob: Vec<u8>,
            count: i64,
            note: Option<String>,
            gone: bool,
        }
    }

    /// Writes a row with the generated INSERT, changes it with the generated UPDATE and
    /// reads it back with the generated column list, on `$conn`: the statements `sql.rs`
    /// writes for a table, made from its declaration alone.
    macro_rules! round_trip {
        ($conn:expr, $create:literal) => {{
            let conn = $conn;
            sqlx::query($create).execute(&mut *conn).await.unwrap();
            let first = WidgetRow {
                shop: "s1".into(),
                id: "w1".into(),
                name: "first".into(),
                blob: vec![0, 1, 255],
                count: -3,
                note: None,
                gone: false,
            };
            first
                .bind(sqlx::query(concat!(
                    "INSERT INTO widgets (",
                    widgets!(columns),
                    ") VALUES (",
                    widgets!(values),
                    ")"
                )))
                .execute(&mut *conn)
                .await
                .unwrap();
            let changed = WidgetRow {
                name: "second".into(),
                note: Some("a note".into()),
                gone: true,
                ..first.clone()
            };
            let updated = changed
                .bind(sqlx::query(concat!(
                    "UPDATE widgets SET ",
                    widgets!(set),
                    " WHERE shop = $1 AND id = $2 AND count > $",
                    widgets!(next)
                )))
                .bind(-10_i64)
                .execute(&mut *conn)
                .await
                .unwrap();
            assert_eq!(updated.rows_affected(), 1);
            let read: Vec<WidgetRow> =
                sqlx::query_as(concat!("SELECT ", widgets!(columns), " FROM widgets"))
                    .fetch_all(&mut *conn)
                    .await
                    .unwrap();
            assert_eq!(read, vec![changed]);
        }};
    }

    #[test]
    fn a_declaration_makes_the_statements_pieces() {
        assert_eq!(widgets!(columns), "shop, id, name, blob, count, note, gone");
        assert_eq!(widgets!(values), "$1, $2, $3, $4, $5, $6, $7");
        assert_eq!(
            widgets!(set),
            "name = $3, blob = $4, count = $5, note = $6, gone = $7"
        );
        assert_eq!(widgets!(next), 8);
        assert_eq!(audit_log!(values), "$1, $2, $3, $4, $5, $6");
    }

    #[tokio::test]
    async fn a_table_declared_once_is_written_and_read_back() {
        let mut sqlite = <sqlx::SqliteConnection as sqlx::Connection>::connect("sqlite::memory:")
            .await
            .unwrap();
        round_trip!(
            &mut sqlite,
            "CREATE TABLE widgets (shop TEXT NOT NULL, id TEXT NOT NULL, name TEXT NOT NULL, \
             blob BLOB NOT NULL, count INTEGER NOT NULL, note TEXT, gone BOOLEAN NOT NULL, \
             PRIMARY KEY (shop, id))"
        );
        let schema = tessera_test_support::postgres::Schema::create("records")
            .await
            .unwrap();
        let mut postgres = tessera_test_support::postgres::connect(schema.url()).await;
        round_trip!(
            &mut postgres,
            "CREATE TABLE widgets (shop TEXT NOT NULL, id TEXT NOT NULL, name TEXT NOT NULL, \
             blob BYTEA NOT NULL, count BIGINT NOT NULL, note TEXT, gone BOOLEAN NOT NULL, \
             PRIMARY KEY (shop, id))"
        );
    }

    /// An application stored before quotas existed (no `quota` in its data) has none,
    /// and one without a quota is stored as before.
    #[test]
    fn an_application_without_a_quota_field_has_no_quota() {
        let data = r#"{"enabled":true,"secrets":[],"scopes":["read"],"default_scopes":null,
            "scope_required":false,"token_ttl":3600,"token_format":null,
            "refresh_token_ttl":null,"auth_methods":["client_secret_basic"],
            "public_key":null,"jwks":null,"audiences":[],"tokens_valid_after_ms":0}"#;
        let row = |data: String| ApplicationRow {
            realm_id: "r".into(),
            client_id: "c".into(),
            name: "n".into(),
            data,
            created_at: 0,
            updated_at: 0,
        };
        let mut app = application_from_row(row(data.to_owned())).unwrap();
        assert_eq!(app.quota, Quota::default());
        assert!(!application_data(&app).unwrap().contains("quota"));
        app.quota = Quota {
            per_minute: None,
            per_day: Some(7),
        };
        let written = application_data(&app).unwrap();
        assert!(written.contains(r#""quota":{"per_day":7}"#), "{written}");
        assert_eq!(application_from_row(row(written)).unwrap().quota, app.quota);
    }

    /// A stored JWKS or public key that no longer parses is not read as "no keys": the
    /// row is corrupt, and the error names the application and the field.
    #[test]
    fn unreadable_key_material_makes_the_row_corrupt() {
        for (field, value) in [
            ("jwks", r#"{"keys":"none"}"#),
            ("jwks", r#"{"keys":[{"kty":"RSA","n":"%%"}]}"#),
            (
                "public_key",
                r#""-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----""#,
            ),
            ("audiences", r#"["two words"]"#),
            ("roles", r#"[""]"#),
        ] {
            let mut data: serde_json::Value = serde_json::from_str(
                r#"{"enabled":true,"secrets":[],"scopes":["read"],"default_scopes":null,
                "scope_required":false,"token_ttl":3600,"token_format":null,
                "refresh_token_ttl":null,"auth_methods":["private_key_jwt"],
                "public_key":null,"jwks":null,"audiences":[],"tokens_valid_after_ms":0}"#,
            )
            .unwrap();
            data[field] = serde_json::from_str(value).unwrap();
            let data = data.to_string();
            let row = ApplicationRow {
                realm_id: "r1".into(),
                client_id: "billing".into(),
                name: "n".into(),
                data,
                created_at: 0,
                updated_at: 0,
            };
            match application_from_row(row) {
                Err(StoreError::Corrupt(why)) => {
                    assert!(
                        why.starts_with(&format!("application billing of realm r1: {field}: ")),
                        "{why}"
                    );
                }
                other => panic!("{field} {value}: {other:?}"),
            }
        }
    }
}
