//! What every `Store` must do. Each test takes a fresh backend.

use tessera_core::StoreError;
use tessera_core::domain::{
    Application, ApplicationName, Audience, AuthMethod, ClientId, Quota, Realm, RealmName, Role,
    ScopeSet, SecretHash, SigningAlg, TokenFormat, TokenPrefix, TokenTtl, TokenTypeSpelling,
};
use tessera_core::store::{
    AppQuery, AuditQuery, AuditRecord, Change, RefreshFamily, RefreshUse, Revocation, StoredKey,
    USAGE_KEPT_HOURS, UsageKey,
};

use crate::Kind;

on_every_backend!(
    realms_round_trip_and_names_are_unique,
    applications_round_trip_and_go_with_their_realm,
    every_write_lands_in_the_change_log_in_order,
    revocations_expire_and_purge_keeps_the_sequence,
    refresh_families_rotate_once_and_reuse_revokes,
    a_rotation_retires_old_keys_until_they_expire,
    one_time_values_are_claimed_once_by_a_shared_store,
    concurrent_writers_never_hide_a_change_from_a_reader,
    purge_empties_expired_state_in_batches,
    a_schema_left_behind_is_refused_until_migrated,
    concurrent_scheduled_rotations_add_one_key,
    applications_list_in_pages_and_by_search,
    the_audit_log_lists_newest_first_by_realm_and_application,
    usage_counts_add_up_per_hour_and_old_hours_are_purged,
    several_processes_migrating_a_new_database_at_once_take_turns,
    a_change_whose_audit_record_cannot_be_written_is_not_made,
);

/// The audit record a change is made with.
pub(crate) fn audit() -> AuditRecord {
    AuditRecord {
        seq: 0,
        at_ms: 1_000,
        actor: "cli".to_owned(),
        action: "test.change".to_owned(),
        realm: "one".to_owned(),
        client_id: None,
        detail: "{}".to_owned(),
    }
}

/// Every administrative change writes its audit record in its own transaction: where
/// the database refuses the record (here a trigger), the change is not made, and no
/// other node hears of it.
async fn a_change_whose_audit_record_cannot_be_written_is_not_made(kind: Kind) {
    let backend = kind.backend().await;
    let store = &backend.store;
    let r = realm("r1", "one");
    store
        .insert_realm(&r, &key("k1", "r1"), &audit())
        .await
        .unwrap();
    let a = app("r1", "client-a");
    store.insert_application(&a, &audit()).await.unwrap();
    let seq = store.last_change_seq().await.unwrap();
    let refuse = match kind {
        Kind::Sqlite => {
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log \
             BEGIN SELECT RAISE(ABORT, 'audit log refused'); END;"
        }
        Kind::Postgres => {
            "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'audit log refused'; END $$; \
             CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log \
             FOR EACH ROW EXECUTE FUNCTION refuse_audit();"
        }
    };
    match kind {
        Kind::Sqlite => {
            let mut conn =
                <sqlx::SqliteConnection as sqlx::Connection>::connect(&backend.database.url)
                    .await
                    .unwrap();
            sqlx::raw_sql(refuse).execute(&mut conn).await.unwrap();
        }
        Kind::Postgres => {
            let mut conn = crate::connect_postgres(&backend.database.url).await;
            sqlx::raw_sql(refuse).execute(&mut conn).await.unwrap();
        }
    }

    let b = app("r1", "client-b");
    assert!(store.insert_application(&b, &audit()).await.is_err());
    let mut renamed = a.clone();
    renamed.name = name("renamed");
    assert!(store.update_application(&renamed, &audit()).await.is_err());
    assert!(
        store
            .delete_application("r1", "client-a", &audit())
            .await
            .is_err()
    );
    let mut changed = r.clone();
    changed.token_type = TokenTypeSpelling::LowerBearer;
    let new_key = key("k2", "r1");
    let rotation = Some((&new_key, 10_000));
    assert!(
        store
            .update_realm(&changed, rotation, &audit())
            .await
            .is_err()
    );
    assert!(
        store
            .rotate_signing_key(&new_key, 10_000, None, &audit())
            .await
            .is_err()
    );
    assert!(store.delete_realm("r1", &audit()).await.is_err());
    assert!(
        store
            .insert_realm(&realm("r2", "two"), &key("k3", "r2"), &audit())
            .await
            .is_err()
    );
    let refused = AuditRecord {
        action: "test.act".to_owned(),
        ..audit()
    };
    assert!(store.append_audit(&refused).await.is_err());

    // Nothing changed, and the change log says nothing either.
    assert_eq!(store.find_realm("r1").await.unwrap(), Some(r));
    assert_eq!(store.find_realm("r2").await.unwrap(), None);
    assert_eq!(
        store.signing_keys(None).await.unwrap(),
        vec![key("k1", "r1")]
    );
    assert_eq!(store.list_applications("r1").await.unwrap(), vec![a]);
    assert_eq!(store.last_change_seq().await.unwrap(), seq);
    let query = AuditQuery {
        limit: 10,
        ..AuditQuery::default()
    };
    assert_eq!(store.audit(&query).await.unwrap().len(), 2);
}

/// Several nodes starting together on PostgreSQL; on SQLite, a server starting while a
/// CLI command runs beside it. Each migration is applied once, and none fails.
async fn several_processes_migrating_a_new_database_at_once_take_turns(kind: Kind) {
    let database = kind.database().await;
    let nodes: Vec<_> = (0..4)
        .map(|_| {
            let url = database.url.clone();
            tokio::spawn(async move { tessera_store::migrate(&url).await })
        })
        .collect();
    for node in nodes {
        node.await.unwrap().unwrap();
    }
    let folder = match kind {
        Kind::Sqlite => "sqlite",
        Kind::Postgres => "postgres",
    };
    let files = std::fs::read_dir(format!(
        "{}/migrations/{folder}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
    .count();
    let applied = crate::applied_migrations(&database.url).await;
    assert_eq!(
        applied,
        i64::try_from(files).unwrap(),
        "each migration once"
    );
    tessera_store::open_with(&database.url, false)
        .await
        .unwrap()
        .ping()
        .await
        .unwrap();
}

pub(crate) fn realm(id: &str, name: &str) -> Realm {
    Realm {
        id: id.to_owned(),
        name: RealmName::parse("name", name).unwrap(),
        hosts: Vec::new(),
        public_url: None,
        token_format: TokenFormat::Jwt,
        signing_alg: SigningAlg::Es256,
        token_prefix: TokenPrefix::default(),
        previous_token_prefixes: vec![TokenPrefix::parse("p", "old_").unwrap()],
        token_type: TokenTypeSpelling::Bearer,
        credential_window_secs: 60,
        assertion_max_lifetime_secs: 3600,
        key_rotation_secs: Some(86_400),
        created_at: 1,
    }
}

pub(crate) fn key(kid: &str, realm_id: &str) -> StoredKey {
    StoredKey {
        kid: kid.to_owned(),
        realm_id: realm_id.to_owned(),
        alg: SigningAlg::Es256,
        sealed_private: vec![1, 2, 3],
        created_at: 1,
        activates_at: 1,
        retired_at: None,
        expires_at: None,
    }
}

fn name(name: &str) -> ApplicationName {
    ApplicationName::parse("name", name).unwrap()
}

fn app(realm_id: &str, client_id: &str) -> Application {
    Application {
        realm_id: realm_id.to_owned(),
        client_id: ClientId::parse("client_id", client_id).unwrap(),
        name: name("app"),
        enabled: true,
        secrets: vec![SecretHash {
            hash: [7; 32],
            expires_at: Some(99),
        }],
        scopes: ScopeSet::parse_list("scopes", &["read", "write"]).unwrap(),
        default_scopes: Some(ScopeSet::parse_list("d", &["read"]).unwrap()),
        scope_required: true,
        token_ttl: TokenTtl::parse("t", 900).unwrap(),
        token_format: Some(TokenFormat::Opaque),
        refresh_token_ttl: Some(TokenTtl::parse("r", 1800).unwrap()),
        auth_methods: vec![AuthMethod::ClientSecretBasic],
        public_key: None,
        jwks: None,
        audiences: Audience::parse_list("audiences", &["https://api.example"]).unwrap(),
        roles: Role::parse_list("roles", &["admin"]).unwrap(),
        quota: Quota::default(),
        tokens_valid_after_ms: 5,
        created_at: 1,
        updated_at: 2,
    }
}

async fn realms_round_trip_and_names_are_unique(kind: Kind) {
    let backend = kind.backend().await;
    let store = &backend.store;
    let r = realm("r1", "Arkane");
    store
        .insert_realm(&r, &key("k1", "r1"), &audit())
        .await
        .unwrap();
    // Names are case-sensitive: "arkane" is another realm.
    store
        .insert_realm(&realm("r2", "arkane"), &key("k2", "r2"), &audit())
        .await
        .unwrap();
    let err = store
        .insert_realm(&realm("r3", "Arkane"), &key("k3", "r3"), &audit())
        .await;
    assert!(matches!(err, Err(StoreError::Conflict(_))), "{err:?}");
    assert_eq!(store.find_realm("r1").await.unwrap(), Some(r.clone()));
    let mut changed = r.clone();
    changed.token_type = TokenTypeSpelling::LowerBearer;
    assert!(store.update_realm(&changed, None, &audit()).await.unwrap());
    assert_eq!(store.find_realm("r1").await.unwrap(), Some(changed));
    assert_eq!(store.realms().await.unwrap().len(), 2);
    assert_eq!(
        store.signing_keys(Some("r1")).await.unwrap(),
        vec![key("k1", "r1")]
    );
}

async fn applications_round_trip_and_go_with_their_realm(kind: Kind) {
    let backend = kind.backend().await;
    let store = &backend.store;
    store
        .insert_realm(&realm("r1", "one"), &key("k1", "r1"), &audit())
        .await
        .unwrap();
    let a = app("r1", "client-a");
    store.insert_application(&a, &audit()).await.unwrap();
    let dup = store.insert_application(&a, &audit()).await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    assert_eq!(
        store.find_application("r1", "client-a").await.unwrap(),
        Some(a.clone())
    );
    let mut b = a.clone();
    b.enabled = false;
    b.name = name("renamed");
    b.quota = Quota {
        per_minute: Some(5),
        per_day: None,
    };
    assert!(store.update_application(&b, &audit()).await.unwrap());
    assert_eq!(store.list_applications("r1").await.unwrap(), vec![b]);
    assert!(store.delete_realm("r1", &audit()).await.unwrap());
    assert!(store.applications().await.unwrap().is_empty());
    assert!(store.signing_keys(None).await.unwrap().is_empty());
    assert!(
        !store
            .delete_application("r1", "client-a", &audit())
            .await
            .unwrap()
    );
}

async fn every_write_lands_in_the_change_log_in_order(kind: Kind) {
    let backend = kind.backend().await;
    let store = &backend.store;
    let start = store.last_change_seq().await.unwrap();
    store
        .insert_realm(&realm("r1", "one"), &key("k1", "r1"), &audit())
        .await
        .unwrap();
    store
        .insert_application(&app("r1", "c"), &audit())
        .await
        .unwrap();
    assert!(
        store
            .rotate_signing_key(&key("k2", "r1"), 100, None, &audit())
            .await
            .unwrap()
    );
    store
        .insert_revocation(&Revocation {
            jti: "j1".into(),
            realm_id: "r1".into(),
            client_id: "c".into(),
            expires_at: 100,
        })
        .await
        .unwrap();
    let changes: Vec<_> = store
        .changes_since(start, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.change)
        .collect();
    assert_eq!(
        changes,
        vec![
            Change::Realm {
                realm_id: "r1".into()
            },
            Change::Application {
                realm_id: "r1".into(),
                client_id: "c".into()
            },
            Change::Keys {
                realm_id: "r1".into()
            },
            Change::Revocation { jti: "j1".into() },
        ]
    );
    let last = store.last_change_seq().await.unwrap();
    assert!(store.changes_since(last, 100).await.unwrap().is_empty());
}

async fn revocations_expire_and_purge_keeps_the_sequence(kind: Kind) {
    let backend = kind.backend().await;
    let store = &backend.store;
    store
        .insert_realm(&realm("r1", "one"), &key("k1", "r1"), &audit())
        .await
        .unwrap();
    for (jti, exp) in [("old", 10), ("live", 1000)] {
        let rev = Revocation {
            jti: jti.into(),
            realm_id: "r1".into(),
            client_id: "c".into(),
            expires_at: exp,
        };
        store.insert_revocation(&rev).await.unwrap();
        // Revoking twice is harmless.
        store.insert_revocation(&rev).await.unwrap();
    }
    let live: Vec<_> = store
        .revocations(500)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.jti)
        .collect();
    assert_eq!(live, vec!["live"]);
    let before = store.last_change_seq().await.unwrap();
    let purged = store.purge(500, i64::MAX).await.unwrap();
    assert!(purged >= 1);
    assert_eq!(store.find_revocation("old").await.unwrap(), None);
    assert!(store.find_revocation("live").await.unwrap().is_some());
    assert_eq!(
        store.last_change_seq().await.unwrap(),
        before,
        "the newest change stays"
    );
}

async fn refresh_families_rotate_once_and_reuse_revokes(kind: Kind) {
    let backend = kind.backend().await;
    let store = &backend.store;
    store
        .insert_realm(&realm("r1", "one"), &key("k1", "r1"), &audit())
        .await
        .unwrap();
    let family = RefreshFamily {
        id: "f1".into(),
        realm_id: "r1".into(),
        client_id: "c".into(),
        generation: 0,
        expires_at: 1000,
        revoked: false,
    };
    store.insert_refresh_family(&family).await.unwrap();
    assert_eq!(
        store.use_refresh_family("f1", 0, 2000, 10).await.unwrap(),
        RefreshUse::Rotated
    );
    assert_eq!(
        store.use_refresh_family("f1", 1, 2000, 10).await.unwrap(),
        RefreshUse::Rotated
    );
    // Generation 0 again: a leaked token. The family dies, the current one too.
    assert_eq!(
        store.use_refresh_family("f1", 0, 2000, 10).await.unwrap(),
        RefreshUse::Reused
    );
    assert_eq!(
        store.use_refresh_family("f1", 2, 2000, 10).await.unwrap(),
        RefreshUse::Dead
    );
    assert_eq!(
        store.use_refresh_family("nope", 0, 2000, 10).await.unwrap(),
        RefreshUse::Dead
    );
}

async fn a_rotation_retires_old_keys_until_they_expire(kind: Kind) {
    let backend = kind.backend().await;
    let store = &backend.store;
    store
        .insert_realm(&realm("r1", "one"), &key("k1", "r1"), &audit())
        .await
        .unwrap();
    let k2 = StoredKey {
        activates_at: 50,
        ..key("k2", "r1")
    };
    assert!(
        store
            .rotate_signing_key(&k2, 100, Some(40), &audit())
            .await
            .unwrap()
    );
    let keys = store.signing_keys(Some("r1")).await.unwrap();
    let periods: Vec<_> = keys
        .iter()
        .map(|k| (k.kid.as_str(), k.activates_at, k.retired_at, k.expires_at))
        .collect();
    assert_eq!(
        periods,
        vec![("k1", 1, Some(50), Some(100)), ("k2", 50, None, None)]
    );
    // A rotation "unless a key activates at 45 or later" finds k2 and adds nothing.
    let k3 = StoredKey {
        activates_at: 60,
        ..key("k3", "r1")
    };
    assert!(
        !store
            .rotate_signing_key(&k3, 200, Some(45), &audit())
            .await
            .unwrap()
    );
    assert_eq!(store.signing_keys(Some("r1")).await.unwrap().len(), 2);
    store.purge(99, 0).await.unwrap();
    assert_eq!(store.signing_keys(Some("r1")).await.unwrap().len(), 2);
    store.purge(100, 0).await.unwrap();
    let left: Vec<_> = store
        .signing_keys(Some("r1"))
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(left, vec!["k2".to_owned()]);
}

/// Two nodes rotating on schedule at the same moment: one key gets in.
async fn concurrent_scheduled_rotations_add_one_key(kind: Kind) {
    let backend = kind.backend().await;
    let other = backend.reopen().await;
    backend
        .store
        .insert_realm(&realm("r1", "one"), &key("k1", "r1"), &audit())
        .await
        .unwrap();
    for round in 0..5_i64 {
        let at = 100 * (round + 1);
        let ka = StoredKey {
            activates_at: at,
            ..key(&format!("a{round}"), "r1")
        };
        let kb = StoredKey {
            activates_at: at,
            ..key(&format!("b{round}"), "r1")
        };
        let record = audit();
        let (a, b) = tokio::join!(
            backend
                .store
                .rotate_signing_key(&ka, at + 1000, Some(at - 50), &record),
            other.rotate_signing_key(&kb, at + 1000, Some(at - 50), &record),
        );
        assert_eq!(
            u8::from(a.unwrap()) + u8::from(b.unwrap()),
            1,
            "round {round}"
        );
    }
    let keys = backend.store.signing_keys(Some("r1")).await.unwrap();
    assert_eq!(keys.len(), 6);
    assert_eq!(keys.iter().filter(|k| k.retired_at.is_none()).count(), 1);
}

async fn one_time_values_are_claimed_once_by_a_shared_store(kind: Kind) {
    let backend = kind.backend().await;
    let store = &backend.store;
    let key = [9u8; 32];
    // On both stores: a restarted process (a store opened again) or another node sees
    // the claim.
    let other = backend.reopen().await;
    assert!(store.claim_once(&key, 100, 10).await.unwrap());
    assert!(
        !other.claim_once(&key, 100, 10).await.unwrap(),
        "another node sees the claim"
    );
    assert!(!store.claim_once(&key, 100, 99).await.unwrap());
    assert!(store.claim_once(&[8; 32], 100, 10).await.unwrap());
    // Expired but not purged yet: the value may be used again, once.
    assert!(other.claim_once(&key, 300, 100).await.unwrap());
    assert!(!store.claim_once(&key, 300, 150).await.unwrap());

    // Claimed by many at once: exactly one wins.
    let racers: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.claim_once(&[7; 32], 100, 10).await.unwrap() })
        })
        .collect();
    let mut wins = 0;
    for racer in racers {
        wins += usize::from(racer.await.unwrap());
    }
    assert_eq!(wins, 1);
}

async fn concurrent_writers_never_hide_a_change_from_a_reader(kind: Kind) {
    const WRITERS: usize = 6;
    const EACH: usize = 15;
    let backend = kind.backend().await;
    let store = backend.store.clone();
    store
        .insert_realm(&realm("r1", "one"), &key("k1", "r1"), &audit())
        .await
        .unwrap();
    let reader = backend.reopen().await;
    let mut cursor = reader.last_change_seq().await.unwrap();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..EACH {
                    let revocation = Revocation {
                        jti: format!("w{w}-{i}"),
                        realm_id: "r1".into(),
                        client_id: "c".into(),
                        expires_at: i64::MAX,
                    };
                    store.insert_revocation(&revocation).await.unwrap();
                }
            })
        })
        .collect();
    // Read the log as a node does, moving the cursor to the last entry seen: an entry
    // committed after a later one was read would be stepped over for good.
    let mut seen = std::collections::BTreeSet::new();
    let mut read = |entries: Vec<tessera_core::store::ChangeEntry>, cursor: &mut i64| {
        for entry in entries {
            assert!(entry.seq > *cursor);
            *cursor = entry.seq;
            if let Change::Revocation { jti } = entry.change {
                seen.insert(jti);
            }
        }
    };
    while !writers.iter().all(tokio::task::JoinHandle::is_finished) {
        read(
            reader.changes_since(cursor, 1000).await.unwrap(),
            &mut cursor,
        );
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    for writer in writers {
        writer.await.unwrap();
    }
    read(
        reader.changes_since(cursor, 1000).await.unwrap(),
        &mut cursor,
    );
    assert_eq!(seen.len(), WRITERS * EACH, "a reader missed a change");
}

async fn purge_empties_expired_state_in_batches(kind: Kind) {
    let backend = kind.backend().await;
    let store = &backend.store;
    store
        .insert_realm(&realm("r1", "one"), &key("k1", "r1"), &audit())
        .await
        .unwrap();
    // More than one purge batch of revocations.
    let expired = 620;
    for (i, exp) in (0..expired).map(|i| (i, 10)).chain([(expired, 1000)]) {
        store
            .insert_revocation(&Revocation {
                jti: format!("j{i}"),
                realm_id: "r1".into(),
                client_id: "c".into(),
                expires_at: exp,
            })
            .await
            .unwrap();
    }
    for (id, exp) in [("f-old", 10), ("f-older", 5), ("f-live", 1000)] {
        store
            .insert_refresh_family(&RefreshFamily {
                id: id.into(),
                realm_id: "r1".into(),
                client_id: "c".into(),
                generation: 0,
                expires_at: exp,
                revoked: false,
            })
            .await
            .unwrap();
    }
    for (k, exp) in [(1u8, 10), (2, 1000)] {
        assert!(store.claim_once(&[k; 32], exp, 0).await.unwrap());
    }
    let purged = store.purge(500, 0).await.unwrap();
    assert!(purged >= 622, "purged {purged}");
    assert_eq!(
        store.purge(500, 0).await.unwrap(),
        0,
        "nothing expired is left"
    );
    let live: Vec<_> = store
        .revocations(0)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.jti)
        .collect();
    assert_eq!(live, vec![format!("j{expired}")]);
    assert_eq!(
        store
            .use_refresh_family("f-live", 0, 2000, 500)
            .await
            .unwrap(),
        RefreshUse::Rotated
    );
    assert!(!store.claim_once(&[2; 32], 1000, 500).await.unwrap());
}

async fn a_schema_left_behind_is_refused_until_migrated(kind: Kind) {
    let database = kind.database().await;
    match tessera_store::open_with(&database.url, false).await {
        Err(err) => assert!(err.to_string().contains("tessera migrate"), "{err}"),
        Ok(_) => panic!("an empty database was opened without migrating"),
    }
    tessera_store::migrate(&database.url).await.unwrap();
    // Migrating an up-to-date database changes nothing.
    tessera_store::migrate(&database.url).await.unwrap();
    let store = tessera_store::open_with(&database.url, false)
        .await
        .unwrap();
    store.ping().await.unwrap();
    assert_eq!(store.last_change_seq().await.unwrap(), 0);
}

async fn applications_list_in_pages_and_by_search(kind: Kind) {
    let backend = kind.backend().await;
    let store = &backend.store;
    store
        .insert_realm(&realm("r1", "one"), &key("k1", "r1"), &audit())
        .await
        .unwrap();
    store
        .insert_realm(&realm("r2", "two"), &key("k2", "r2"), &audit())
        .await
        .unwrap();
    let names = [
        ("c1", "Billing"),
        ("c2", "reports"),
        ("c3", "billing-eu"),
        ("c4", "100% off"),
        ("c5", "under_score"),
    ];
    for (id, name) in names {
        let mut a = app("r1", id);
        a.name = self::name(name);
        store.insert_application(&a, &audit()).await.unwrap();
    }
    store
        .insert_application(&app("r2", "c0"), &audit())
        .await
        .unwrap();
    let page = async |after: Option<&str>, search: Option<&str>, limit: u32| -> Vec<String> {
        let query = AppQuery {
            after: after.map(str::to_owned),
            search: search.map(str::to_owned),
            limit,
        };
        store
            .application_page("r1", &query)
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.client_id.to_string())
            .collect()
    };
    assert_eq!(page(None, None, 2).await, ["c1", "c2"]);
    assert_eq!(page(Some("c2"), None, 2).await, ["c3", "c4"]);
    assert_eq!(page(Some("c4"), None, 2).await, ["c5"]);
    assert!(page(Some("c5"), None, 2).await.is_empty());
    assert_eq!(page(None, Some("BILL"), 10).await, ["c1", "c3"]);
    assert_eq!(page(Some("c1"), Some("bill"), 10).await, ["c3"]);
    assert_eq!(page(None, Some("c2"), 10).await, ["c2"], "by client_id too");
    // LIKE's wildcards are plain characters in a search.
    assert_eq!(page(None, Some("%"), 10).await, ["c4"]);
    assert_eq!(page(None, Some("_"), 10).await, ["c5"]);
    assert!(page(None, Some("nothing"), 10).await.is_empty());
}

async fn the_audit_log_lists_newest_first_by_realm_and_application(kind: Kind) {
    let backend = kind.backend().await;
    let store = &backend.store;
    let entry = |n: i64, realm: &str, client: Option<&str>| AuditRecord {
        seq: 0,
        at_ms: 1000 + n,
        actor: "admin-key".to_owned(),
        action: format!("action.{n}"),
        realm: realm.to_owned(),
        client_id: client.map(str::to_owned),
        detail: format!(r#"{{"n":{n}}}"#),
    };
    for n in 0..6 {
        let client = (n % 2 == 0).then_some("c1");
        let realm = if n < 4 { "one" } else { "two" };
        store.append_audit(&entry(n, realm, client)).await.unwrap();
    }
    let list = async |query: AuditQuery| -> Vec<String> {
        store
            .audit(&query)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.action)
            .collect()
    };
    let all = store
        .audit(&AuditQuery {
            limit: 3,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|r| r.action.as_str()).collect::<Vec<_>>(),
        ["action.5", "action.4", "action.3"]
    );
    assert_eq!(all[0].detail, r#"{"n":5}"#);
    assert_eq!(all[0].at_ms, 1005);
    let older = list(AuditQuery {
        before: Some(all[2].seq),
        limit: 10,
        ..AuditQuery::default()
    })
    .await;
    assert_eq!(older, ["action.2", "action.1", "action.0"]);
    let of_realm = list(AuditQuery {
        realm: Some("one".to_owned()),
        client_id: Some("c1".to_owned()),
        limit: 10,
        ..AuditQuery::default()
    })
    .await;
    assert_eq!(of_realm, ["action.2", "action.0"]);
}

async fn usage_counts_add_up_per_hour_and_old_hours_are_purged(kind: Kind) {
    let backend = kind.backend().await;
    let store = &backend.store;
    let key = |client: &str, hour: i64| UsageKey {
        realm_id: "r1".to_owned(),
        client_id: client.to_owned(),
        hour,
    };
    let now_hour = 500_000;
    store
        .add_usage(&[(key("a", now_hour - 1), 3), (key("a", now_hour), 2)])
        .await
        .unwrap();
    // Another node's flush of the same hours adds to them.
    store
        .add_usage(&[(key("a", now_hour), 5), (key("b", now_hour), 7)])
        .await
        .unwrap();
    store.add_usage(&[]).await.unwrap();
    assert_eq!(
        store.usage("r1", "a", now_hour - 10).await.unwrap(),
        vec![(now_hour - 1, 3), (now_hour, 7)]
    );
    assert_eq!(
        store.usage("r1", "a", now_hour).await.unwrap(),
        vec![(now_hour, 7)]
    );
    assert_eq!(
        store.usage("r1", "b", 0).await.unwrap(),
        vec![(now_hour, 7)]
    );
    let later = (now_hour + USAGE_KEPT_HOURS) * 3600;
    store.purge(later, 0).await.unwrap();
    assert_eq!(
        store.usage("r1", "a", 0).await.unwrap(),
        vec![(now_hour, 7)],
        "kept for USAGE_KEPT_HOURS"
    );
    store.purge(later + 3600, 0).await.unwrap();
    assert!(store.usage("r1", "a", 0).await.unwrap().is_empty());
}
