//! What every `Store` must do. Each test takes a fresh backend.

use tessera_core::StoreError;
use tessera_core::domain::{
    Application, AuthMethod, ClientId, Realm, RealmName, ScopeSet, SecretHash, SigningAlg,
    TokenFormat, TokenPrefix, TokenTtl, TokenTypeSpelling,
};
use tessera_core::store::{Change, RefreshFamily, RefreshUse, Revocation, StoredKey};

use crate::Kind;

on_every_backend!(
    realms_round_trip_and_names_are_unique,
    applications_round_trip_and_go_with_their_realm,
    every_write_lands_in_the_change_log_in_order,
    revocations_expire_and_purge_keeps_the_sequence,
    refresh_families_rotate_once_and_reuse_revokes,
    retired_keys_stay_until_they_expire,
    one_time_values_are_claimed_once_by_a_shared_store,
    concurrent_writers_never_hide_a_change_from_a_reader,
    purge_empties_expired_state_in_batches,
    a_schema_left_behind_is_refused_until_migrated,
);

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
        retired_at: None,
        expires_at: None,
    }
}

fn app(realm_id: &str, client_id: &str) -> Application {
    Application {
        realm_id: realm_id.to_owned(),
        client_id: ClientId::parse("client_id", client_id).unwrap(),
        name: "app".to_owned(),
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
        audiences: vec!["https://api.example".to_owned()],
        roles: vec!["admin".to_owned()],
        tokens_valid_after_ms: 5,
        created_at: 1,
        updated_at: 2,
    }
}

async fn realms_round_trip_and_names_are_unique(kind: Kind) {
    let backend = kind.backend().await;
    let store = &backend.store;
    let r = realm("r1", "Arkane");
    store.insert_realm(&r, &key("k1", "r1")).await.unwrap();
    // Names are case-sensitive: "arkane" is another realm.
    store
        .insert_realm(&realm("r2", "arkane"), &key("k2", "r2"))
        .await
        .unwrap();
    let err = store
        .insert_realm(&realm("r3", "Arkane"), &key("k3", "r3"))
        .await;
    assert!(matches!(err, Err(StoreError::Conflict(_))), "{err:?}");
    assert_eq!(store.find_realm("r1").await.unwrap(), Some(r.clone()));
    let mut changed = r.clone();
    changed.token_type = TokenTypeSpelling::LowerBearer;
    assert!(store.update_realm(&changed).await.unwrap());
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
        .insert_realm(&realm("r1", "one"), &key("k1", "r1"))
        .await
        .unwrap();
    let a = app("r1", "client-a");
    store.insert_application(&a).await.unwrap();
    let dup = store.insert_application(&a).await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    assert_eq!(
        store.find_application("r1", "client-a").await.unwrap(),
        Some(a.clone())
    );
    let mut b = a.clone();
    b.enabled = false;
    b.name = "renamed".to_owned();
    assert!(store.update_application(&b).await.unwrap());
    assert_eq!(store.list_applications("r1").await.unwrap(), vec![b]);
    assert!(store.delete_realm("r1").await.unwrap());
    assert!(store.applications().await.unwrap().is_empty());
    assert!(store.signing_keys(None).await.unwrap().is_empty());
    assert!(!store.delete_application("r1", "client-a").await.unwrap());
}

async fn every_write_lands_in_the_change_log_in_order(kind: Kind) {
    let backend = kind.backend().await;
    let store = &backend.store;
    let start = store.last_change_seq().await.unwrap();
    store
        .insert_realm(&realm("r1", "one"), &key("k1", "r1"))
        .await
        .unwrap();
    store.insert_application(&app("r1", "c")).await.unwrap();
    store.insert_signing_key(&key("k2", "r1")).await.unwrap();
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
        .insert_realm(&realm("r1", "one"), &key("k1", "r1"))
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
        .insert_realm(&realm("r1", "one"), &key("k1", "r1"))
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

async fn retired_keys_stay_until_they_expire(kind: Kind) {
    let backend = kind.backend().await;
    let store = &backend.store;
    store
        .insert_realm(&realm("r1", "one"), &key("k1", "r1"))
        .await
        .unwrap();
    store.retire_signing_key("r1", "k1", 50, 100).await.unwrap();
    let keys = store.signing_keys(Some("r1")).await.unwrap();
    assert_eq!(
        keys.first().map(|k| (k.retired_at, k.expires_at)),
        Some((Some(50), Some(100)))
    );
    store.purge(99, 0).await.unwrap();
    assert_eq!(store.signing_keys(Some("r1")).await.unwrap().len(), 1);
    store.purge(100, 0).await.unwrap();
    assert!(store.signing_keys(Some("r1")).await.unwrap().is_empty());
}

async fn one_time_values_are_claimed_once_by_a_shared_store(kind: Kind) {
    let backend = kind.backend().await;
    let store = &backend.store;
    let key = [9u8; 32];
    if !store.is_shared() {
        // One node: its in-memory cache decides, and the store records nothing.
        assert_eq!(kind, Kind::Sqlite);
        assert!(store.claim_once(&key, 100, 0).await.unwrap());
        assert!(store.claim_once(&key, 100, 0).await.unwrap());
        return;
    }
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
        .insert_realm(&realm("r1", "one"), &key("k1", "r1"))
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
        .insert_realm(&realm("r1", "one"), &key("k1", "r1"))
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
    if store.is_shared() {
        assert!(!store.claim_once(&[2; 32], 1000, 500).await.unwrap());
    }
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
