//! The lifecycle rules of docs/contract.md §4 and client assertions, on a real store
//! with a manual clock: expiry and replay windows are tested by moving the clock, never
//! by sleeping.

use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom as LcRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use tessera_core::client_auth::JWT_BEARER;
use tessera_core::crypto::{MasterKey, SystemRandom};
use tessera_core::domain::{AuthMethod, PublicUrl, Quota, ScopeSet, TokenTtl};
use tessera_core::store::AuditQuery;
use tessera_core::store::Store;
use tessera_core::{
    Actor, Audit, Authority, ClientAuth, Dialect, ManualClock, NewApplication, OAuthError,
    StateLimits, TokenRequest,
};

use crate::{Backend, Kind};

on_every_backend!(
    tokens_expire_by_the_clock,
    revoke_all_kills_a_token_of_the_same_millisecond,
    revoke_all_and_rotation_kill_earlier_tokens_only,
    another_process_sees_changes_after_sync,
    private_key_jwt_checks_every_claim_and_never_reuses_a_jti,
    a_used_assertion_is_refused_by_every_node_of_a_shared_store,
    refresh_tokens_rotate_across_nodes_and_reuse_revokes_the_family,
    keys_rotate_on_schedule_and_every_node_switches_at_the_same_second,
    a_wrong_secret_costs_the_same_work_for_a_known_and_an_unknown_client,
    quotas_refuse_with_retry_after_until_the_minute_or_day_rolls_over,
    refresh_grants_count_against_the_quota_and_a_refused_one_keeps_its_token,
    the_day_quota_counts_other_nodes_and_earlier_lives_through_the_store,
    past_the_bound_on_live_revocations_a_revocation_revokes_all_instead,
    past_the_bound_on_live_refresh_families_tokens_come_without_refresh_tokens,
    what_the_server_does_on_its_own_is_audited_as_system,
);

const NOW_MS: i64 = 1_800_000_000_000;

async fn authority_on(backend: &Backend, clock: Arc<ManualClock>) -> Authority {
    authority_over(backend.store.clone(), clock).await
}

/// An authority over its own connection to the store: another node.
async fn authority_over(store: Arc<dyn Store>, clock: Arc<ManualClock>) -> Authority {
    Authority::open(
        store,
        MasterKey::from_text("a master key of at least thirty-two characters").unwrap(),
        PublicUrl::parse("public_url", "https://auth.example").unwrap(),
        clock,
        Arc::new(SystemRandom),
    )
    .await
    .unwrap()
}

fn new_app(ttl: u64) -> NewApplication {
    NewApplication {
        name: "billing".to_owned(),
        scopes: ScopeSet::parse_list("scopes", &["read", "write"]).unwrap(),
        token_ttl: Some(TokenTtl::parse("token_ttl", ttl).unwrap()),
        enabled: true,
        ..NewApplication::default()
    }
}

fn basic(client_id: &str, secret: &str) -> TokenRequest {
    TokenRequest {
        grant_type: "client_credentials".to_owned(),
        scope: None,
        resources: Vec::new(),
        refresh_token: None,
        auth: ClientAuth::Basic {
            client_id: client_id.to_owned(),
            secret: secret.to_owned(),
        },
        dialect: Dialect::Standard,
    }
}

/// The clock does not move between the grant and the "revoke all": the token must
/// still die, and one granted right after in that millisecond must live.
async fn revoke_all_kills_a_token_of_the_same_millisecond(kind: Kind) {
    let backend = kind.backend().await;
    let clock = Arc::new(ManualClock::new(NOW_MS));
    let authority = authority_on(&backend, clock.clone()).await;
    let (app, secret) = authority
        .manage()
        .create_application(Audit::by(Actor::cli()), "default", new_app(600))
        .await
        .unwrap();
    let id = app.client_id.as_str();
    let realm = authority.realm("default").unwrap();
    let before = authority.grant(&realm, &basic(id, &secret)).await.unwrap();
    authority
        .manage()
        .revoke_tokens(Audit::by(Actor::cli()), "default", id)
        .await
        .unwrap();
    let after = authority.grant(&realm, &basic(id, &secret)).await.unwrap();
    assert!(
        authority.check(&realm, &before.access_token).is_none(),
        "same-ms token died"
    );
    assert!(
        authority.check(&realm, &after.access_token).is_some(),
        "new token lives"
    );
}

async fn tokens_expire_by_the_clock(kind: Kind) {
    let backend = kind.backend().await;
    let clock = Arc::new(ManualClock::new(NOW_MS));
    let authority = authority_on(&backend, clock.clone()).await;
    let (app, secret) = authority
        .manage()
        .create_application(Audit::by(Actor::cli()), "default", new_app(60))
        .await
        .unwrap();
    let realm = authority.realm("default").unwrap();
    let token = authority
        .grant(&realm, &basic(app.client_id.as_str(), &secret))
        .await
        .unwrap();
    let info = authority.check(&realm, &token.access_token).unwrap();
    // `exp - iat` is exactly the lifetime, as `expires_in` says (as every peer writes it).
    assert_eq!(info.exp - info.iat, 60);
    assert_eq!(token.expires_in, 60);
    assert_eq!(info.iat, NOW_MS.div_euclid(1000));
    // Alive until exp (here a whole second after a whole-second issue time)...
    clock.advance_secs(59);
    assert!(authority.check(&realm, &token.access_token).is_some());
    // ...and never at or past it.
    clock.advance_secs(1);
    assert!(
        authority.check(&realm, &token.access_token).is_none(),
        "expired at exp"
    );
}

async fn revoke_all_and_rotation_kill_earlier_tokens_only(kind: Kind) {
    let backend = kind.backend().await;
    let clock = Arc::new(ManualClock::new(NOW_MS));
    let authority = authority_on(&backend, clock.clone()).await;
    let (app, secret) = authority
        .manage()
        .create_application(Audit::by(Actor::cli()), "default", new_app(600))
        .await
        .unwrap();
    let id = app.client_id.as_str();
    let realm = authority.realm("default").unwrap();
    let before = authority.grant(&realm, &basic(id, &secret)).await.unwrap();
    clock.advance_secs(1);
    authority
        .manage()
        .revoke_tokens(Audit::by(Actor::cli()), "default", id)
        .await
        .unwrap();
    let after = authority.grant(&realm, &basic(id, &secret)).await.unwrap();
    assert!(authority.check(&realm, &before.access_token).is_none());
    assert!(authority.check(&realm, &after.access_token).is_some());

    // Rotation with a grace period: both secrets work until the grace ends.
    clock.advance_secs(1);
    let (new_secret, until) = authority
        .manage()
        .rotate_secret(Audit::by(Actor::cli()), "default", id, 30)
        .await
        .unwrap();
    assert_eq!(until, Some(NOW_MS / 1000 + 2 + 30));
    assert!(authority.grant(&realm, &basic(id, &secret)).await.is_ok());
    assert!(
        authority.check(&realm, &after.access_token).is_some(),
        "grace keeps tokens"
    );
    clock.advance_secs(30);
    assert!(authority.grant(&realm, &basic(id, &secret)).await.is_err());
    let latest = authority
        .grant(&realm, &basic(id, &new_secret))
        .await
        .unwrap();

    // Rotation without grace: the old secret and every token die at once.
    clock.advance_secs(1);
    let (newest, _) = authority
        .manage()
        .rotate_secret(Audit::by(Actor::cli()), "default", id, 0)
        .await
        .unwrap();
    assert!(
        authority
            .grant(&realm, &basic(id, &new_secret))
            .await
            .is_err()
    );
    assert!(authority.check(&realm, &latest.access_token).is_none());
    assert!(authority.grant(&realm, &basic(id, &newest)).await.is_ok());
}

async fn another_process_sees_changes_after_sync(kind: Kind) {
    let backend = kind.backend().await;
    let clock = Arc::new(ManualClock::new(NOW_MS));
    let a = authority_on(&backend, clock.clone()).await;
    let b = authority_over(backend.reopen().await, clock.clone()).await;
    let (app, secret) = a
        .manage()
        .create_application(Audit::by(Actor::cli()), "default", new_app(600))
        .await
        .unwrap();
    let id = app.client_id.as_str();
    let realm_b = b.realm("default").unwrap();
    assert!(
        b.grant(&realm_b, &basic(id, &secret)).await.is_err(),
        "not synced yet"
    );
    assert!(b.sync().await.unwrap() >= 1);
    let token = b.grant(&realm_b, &basic(id, &secret)).await.unwrap();

    let realm_a = a.realm("default").unwrap();
    let auth = ClientAuth::Basic {
        client_id: id.to_owned(),
        secret: secret.clone(),
    };
    a.revoke(&realm_a, &auth, &token.access_token)
        .await
        .unwrap();
    assert!(b.check(&realm_b, &token.access_token).is_some());
    b.sync().await.unwrap();
    assert!(
        b.check(&realm_b, &token.access_token).is_none(),
        "revocation reached B"
    );

    a.manage()
        .delete_application(Audit::by(Actor::cli()), "default", id)
        .await
        .unwrap();
    b.sync().await.unwrap();
    assert!(
        b.grant(&realm_b, &basic(id, &secret)).await.is_err(),
        "deletion reached B"
    );
}

/// The `kid` in a JWT's header.
/// Sets the default realm's keys to rotate every day.
async fn rotate_daily(authority: &Authority) {
    authority
        .manage()
        .update_realm(Audit::by(Actor::cli()), "default", |realm| {
            realm.key_rotation_secs = Some(86_400);
            Ok(())
        })
        .await
        .unwrap();
}

fn kid_of(jwt: &str) -> String {
    let header = jwt.split('.').next().unwrap();
    let header: serde_json::Value = serde_json::from_slice(&B64.decode(header).unwrap()).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

async fn keys_rotate_on_schedule_and_every_node_switches_at_the_same_second(kind: Kind) {
    let backend = kind.backend().await;
    let clock = Arc::new(ManualClock::new(NOW_MS));
    let a = authority_on(&backend, clock.clone()).await;
    let b = authority_over(backend.reopen().await, clock.clone()).await;
    rotate_daily(&a).await;
    let (app, secret) = a
        .manage()
        .create_application(Audit::by(Actor::cli()), "default", new_app(7200))
        .await
        .unwrap();
    b.sync().await.unwrap();
    let id = app.client_id.as_str();
    let first = kid_of(
        &a.grant(&a.realm("default").unwrap(), &basic(id, &secret))
            .await
            .unwrap()
            .access_token,
    );
    assert!(
        a.manage().rotate_due_keys().await.unwrap().is_empty(),
        "not due yet"
    );

    // An hour before the day is up, both nodes find the rotation due; one key gets in.
    clock.advance_secs(86_400 - tessera_core::SCHEDULED_KEY_LEAD_SECS);
    let (by_a, by_b) = tokio::join!(a.manage().rotate_due_keys(), b.manage().rotate_due_keys());
    assert_eq!(by_a.unwrap().len() + by_b.unwrap().len(), 1);
    a.sync().await.unwrap();
    b.sync().await.unwrap();
    let (realm_a, realm_b) = (a.realm("default").unwrap(), b.realm("default").unwrap());
    assert_eq!(realm_a.keys.keys().len(), 2, "the new key is published");
    assert_eq!(realm_a.keys.jwks, realm_b.keys.jwks);
    let before = a.grant(&realm_a, &basic(id, &secret)).await.unwrap();
    assert_eq!(kid_of(&before.access_token), first, "but does not sign yet");
    let on_b = b.grant(&realm_b, &basic(id, &secret)).await.unwrap();
    assert_eq!(kid_of(&on_b.access_token), first);

    // At the hour, both sign with the new key; the old one's tokens still verify.
    clock.advance_secs(tessera_core::SCHEDULED_KEY_LEAD_SECS);
    let after_a = a.grant(&realm_a, &basic(id, &secret)).await.unwrap();
    let after_b = b.grant(&realm_b, &basic(id, &secret)).await.unwrap();
    let second = kid_of(&after_a.access_token);
    assert_ne!(second, first);
    assert_eq!(kid_of(&after_b.access_token), second);
    assert!(b.check(&realm_b, &before.access_token).is_some());
    assert!(a.check(&realm_a, &after_b.access_token).is_some());
    assert!(
        a.manage().rotate_due_keys().await.unwrap().is_empty(),
        "done for a day"
    );
}

/// The default realm, a scheduled rotation (once, whichever node makes it) and the
/// purge of expired keys are changes like any other: each has its audit record.
async fn what_the_server_does_on_its_own_is_audited_as_system(kind: Kind) {
    let backend = kind.backend().await;
    let clock = Arc::new(ManualClock::new(NOW_MS));
    let a = authority_on(&backend, clock.clone()).await;
    let b = authority_over(backend.reopen().await, clock.clone()).await;
    let log = async || -> Vec<(String, String)> {
        let query = AuditQuery {
            limit: 100,
            ..AuditQuery::default()
        };
        let records = backend.store.audit(&query).await.unwrap();
        records
            .into_iter()
            .map(|r| (r.actor, r.action))
            .rev()
            .collect()
    };
    let pair = |actor: &str, action: &str| (actor.to_owned(), action.to_owned());
    assert_eq!(log().await, [pair("system", "realm.create")]);
    rotate_daily(&a).await;
    clock.advance_secs(86_400 - tessera_core::SCHEDULED_KEY_LEAD_SECS);
    let (by_a, by_b) = tokio::join!(a.manage().rotate_due_keys(), b.manage().rotate_due_keys());
    assert_eq!(by_a.unwrap().len() + by_b.unwrap().len(), 1);
    // Long after, the first key has expired and is purged.
    clock.advance_secs(2 * 365 * 86_400);
    let purged = backend.store.purge(a.now_s(), 0).await.unwrap();
    assert!(purged >= 1);
    assert_eq!(
        log().await,
        [
            pair("system", "realm.create"),
            pair("cli", "realm.update"),
            pair("system", "realm.rotate_keys"),
            pair("system", "realm.purge_keys"),
        ]
    );
    let newest = backend
        .store
        .audit(&AuditQuery {
            limit: 1,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(newest[0].realm, "default");
    assert!(newest[0].detail.contains("expired"), "{}", newest[0].detail);
}

/// A signed ES256 client assertion with the given claims.
fn assertion(pair: &EcdsaKeyPair, alg: &str, claims: serde_json::Value) -> String {
    let header = B64.encode(serde_json::json!({"alg": alg, "typ": "JWT"}).to_string());
    let body = B64.encode(claims.to_string());
    let input = format!("{header}.{body}");
    let sig = pair.sign(&LcRandom::new(), input.as_bytes()).unwrap();
    format!("{input}.{}", B64.encode(sig.as_ref()))
}

fn pem_of(pair: &EcdsaKeyPair) -> String {
    use aws_lc_rs::encoding::AsDer;
    let der = pair.public_key().as_der().unwrap();
    tessera_test_support::pem("PUBLIC KEY", der.as_ref())
}

async fn private_key_jwt_checks_every_claim_and_never_reuses_a_jti(kind: Kind) {
    let backend = kind.backend().await;
    let clock = Arc::new(ManualClock::new(NOW_MS));
    let authority = authority_on(&backend, clock.clone()).await;
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let mut new = new_app(600);
    new.auth_methods = Some(vec![AuthMethod::PrivateKeyJwt]);
    new.public_key = Some(pem_of(&pair));
    let (app, _) = authority
        .manage()
        .create_application(Audit::by(Actor::cli()), "default", new)
        .await
        .unwrap();
    let id = app.client_id.as_str();
    let realm = authority.realm("default").unwrap();
    let now = NOW_MS / 1000;
    let claims = |jti: &str, aud: &str, exp: i64| serde_json::json!({"iss": id, "sub": id, "aud": aud, "jti": jti, "exp": exp, "iat": now});
    let token_endpoint = "https://auth.example/oauth2/token";
    let try_auth = async |jwt: String| {
        authority
            .authenticate(
                &realm,
                &ClientAuth::Assertion {
                    client_id: None,
                    assertion_type: JWT_BEARER.to_owned(),
                    assertion: jwt,
                },
            )
            .await
    };
    assert!(
        try_auth(assertion(
            &pair,
            "ES256",
            claims("j1", token_endpoint, now + 60)
        ))
        .await
        .is_ok()
    );
    let reused = try_auth(assertion(
        &pair,
        "ES256",
        claims("j1", token_endpoint, now + 60),
    ))
    .await;
    assert_eq!(reused.unwrap_err().code(), "invalid_client");
    assert!(
        try_auth(assertion(
            &pair,
            "ES256",
            claims("j2", "https://auth.example", now + 60)
        ))
        .await
        .is_ok()
    );
    for (why, jwt) in [
        (
            "wrong aud",
            assertion(
                &pair,
                "ES256",
                claims("j3", "https://other.example/token", now + 60),
            ),
        ),
        (
            "expired",
            assertion(&pair, "ES256", claims("j4", token_endpoint, now - 1)),
        ),
        (
            "lives too long",
            assertion(&pair, "ES256", claims("j5", token_endpoint, now + 7200)),
        ),
        (
            "alg none",
            assertion(&pair, "none", claims("j6", token_endpoint, now + 60)),
        ),
        (
            "HS256",
            assertion(&pair, "HS256", claims("j7", token_endpoint, now + 60)),
        ),
        ("garbage", "a.b.c".to_owned()),
    ] {
        let err = try_auth(jwt).await.unwrap_err();
        assert_eq!(err.code(), "invalid_client", "{why}");
    }
    // `aud`: the issuer or the token endpoint, as a string or a one-element list; a list
    // naming anyone else too, or another endpoint, is refused
    // (draft-ietf-oauth-rfc7523bis).
    let with_aud = |jti: &str, aud: serde_json::Value| {
        assertion(
            &pair,
            "ES256",
            serde_json::json!({"iss": id, "sub": id, "aud": aud, "jti": jti, "exp": now + 60, "iat": now}),
        )
    };
    for (jti, aud, accepted) in [
        ("a1", serde_json::json!([token_endpoint]), true),
        ("a2", serde_json::json!(["https://auth.example"]), true),
        (
            "a3",
            serde_json::json!([token_endpoint, "https://evil.example/token"]),
            false,
        ),
        (
            "a4",
            serde_json::json!(["https://evil.example", "https://auth.example"]),
            false,
        ),
        ("a5", serde_json::json!([]), false),
        (
            "a6",
            serde_json::json!("https://auth.example/oauth2/introspect"),
            false,
        ),
        (
            "a7",
            serde_json::json!("https://auth.example/oauth2/token/extra"),
            false,
        ),
        (
            "a8",
            serde_json::json!("https://auth.example.evil/oauth2/token"),
            false,
        ),
        ("a9", serde_json::json!(7), false),
    ] {
        let outcome = try_auth(with_aud(jti, aud.clone())).await;
        assert_eq!(outcome.is_ok(), accepted, "aud {aud}");
    }
    let other = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let forged = try_auth(assertion(
        &other,
        "ES256",
        claims("j8", token_endpoint, now + 60),
    ))
    .await;
    assert_eq!(forged.unwrap_err().code(), "invalid_client");
    // A used jti may come back only after it expired.
    clock.advance_secs(120);
    let later = NOW_MS / 1000 + 120;
    assert!(
        try_auth(assertion(
            &pair,
            "ES256",
            claims("j1", token_endpoint, later + 60)
        ))
        .await
        .is_ok()
    );
}

async fn a_used_assertion_is_refused_by_every_node_of_a_shared_store(kind: Kind) {
    let backend = kind.backend().await;
    let clock = Arc::new(ManualClock::new(NOW_MS));
    let a = authority_on(&backend, clock.clone()).await;
    let b = authority_over(backend.reopen().await, clock.clone()).await;
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let mut new = new_app(600);
    new.auth_methods = Some(vec![AuthMethod::PrivateKeyJwt]);
    new.public_key = Some(pem_of(&pair));
    let (app, _) = a
        .manage()
        .create_application(Audit::by(Actor::cli()), "default", new)
        .await
        .unwrap();
    b.sync().await.unwrap();
    let id = app.client_id.as_str();
    let (realm_a, realm_b) = (a.realm("default").unwrap(), b.realm("default").unwrap());
    let now = NOW_MS / 1000;
    let signed = |jti: &str| ClientAuth::Assertion {
        client_id: None,
        assertion_type: JWT_BEARER.to_owned(),
        assertion: assertion(
            &pair,
            "ES256",
            serde_json::json!({"iss": id, "sub": id, "aud": "https://auth.example/oauth2/token",
                "jti": jti, "exp": now + 60, "iat": now}),
        ),
    };
    let grant = |auth: ClientAuth| TokenRequest {
        auth,
        ..basic(id, "")
    };
    // Each entry point that authenticates: token, introspection, revocation.
    let once = signed("once");
    a.grant(&realm_a, &grant(once.clone())).await.unwrap();
    let on_b = [
        b.grant(&realm_b, &grant(once.clone())).await.map(|_| ()),
        b.introspect(&realm_b, &once, "x").await.map(|_| ()),
        b.revoke(&realm_b, &once, "x").await,
    ];
    // Both stores remember the value (SQLite for a restarted process, PostgreSQL for
    // every node too), so B refuses it at once.
    for (outcome, accepted) in on_b.into_iter().zip([false, false, false]) {
        match outcome {
            Ok(()) => assert!(accepted),
            Err(err) => {
                assert!(!accepted);
                assert_eq!(err.code(), "invalid_client");
            }
        }
    }
    // The other way round, and a node's own memory still answers first.
    let twice = signed("twice");
    b.introspect(&realm_b, &twice, "x").await.unwrap();
    assert_eq!(
        b.introspect(&realm_b, &twice, "x")
            .await
            .unwrap_err()
            .code(),
        "invalid_client"
    );
    let on_a = a.introspect(&realm_a, &twice, "x").await;
    assert!(on_a.is_err());
}

async fn refresh_tokens_rotate_across_nodes_and_reuse_revokes_the_family(kind: Kind) {
    let backend = kind.backend().await;
    let clock = Arc::new(ManualClock::new(NOW_MS));
    let a = authority_on(&backend, clock.clone()).await;
    let b = authority_over(backend.reopen().await, clock.clone()).await;
    let mut new = new_app(600);
    new.refresh_token_ttl = Some(TokenTtl::parse("refresh_token_ttl", 3600).unwrap());
    let (app, secret) = a
        .manage()
        .create_application(Audit::by(Actor::cli()), "default", new)
        .await
        .unwrap();
    b.sync().await.unwrap();
    let id = app.client_id.as_str();
    let (realm_a, realm_b) = (a.realm("default").unwrap(), b.realm("default").unwrap());
    let refresh = |token: &str| TokenRequest {
        grant_type: "refresh_token".to_owned(),
        refresh_token: Some(token.to_owned()),
        ..basic(id, &secret)
    };
    let first = a.grant(&realm_a, &basic(id, &secret)).await.unwrap();
    let rt0 = first.refresh_token.unwrap();
    let second = b.grant(&realm_b, &refresh(&rt0)).await.unwrap();
    assert!(
        a.check(&realm_a, &second.access_token).is_some(),
        "B's token is good on A"
    );
    let rt1 = second.refresh_token.unwrap();
    // rt0 again, on A: the chain leaked, and dies on every node.
    let reused = a.grant(&realm_a, &refresh(&rt0)).await.unwrap_err();
    assert_eq!(reused.code(), "invalid_grant");
    let dead = b.grant(&realm_b, &refresh(&rt1)).await.unwrap_err();
    assert_eq!(dead.code(), "invalid_grant");
}

/// A clock that counts how often it is read.
struct CountingClock {
    inner: ManualClock,
    reads: std::sync::atomic::AtomicUsize,
}

impl tessera_core::Clock for CountingClock {
    fn now_ms(&self) -> i64 {
        self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.now_ms()
    }
}

/// A wrong secret must not answer faster for an unknown client id than for a known one,
/// or the answer time tells which ids exist. Timing is measured in `bench/` (never in a
/// test, on a shared machine); here the work itself is compared: checking a secret
/// reads the clock once (which of the stored secrets are still alive), so both paths
/// must read it the same number of times, the unknown id's against a decoy hash.
async fn a_wrong_secret_costs_the_same_work_for_a_known_and_an_unknown_client(kind: Kind) {
    use std::sync::atomic::Ordering;
    let backend = kind.backend().await;
    let clock = Arc::new(CountingClock {
        inner: ManualClock::new(NOW_MS),
        reads: std::sync::atomic::AtomicUsize::new(0),
    });
    let authority = Authority::open(
        backend.store.clone(),
        MasterKey::from_text("a master key of at least thirty-two characters").unwrap(),
        PublicUrl::parse("public_url", "https://auth.example").unwrap(),
        clock.clone(),
        Arc::new(SystemRandom),
    )
    .await
    .unwrap();
    let (app, secret) = authority
        .manage()
        .create_application(Audit::by(Actor::cli()), "default", new_app(60))
        .await
        .unwrap();
    let realm = authority.realm("default").unwrap();
    let id = app.client_id.as_str();
    let mut reads = Vec::new();
    for auth in [
        ClientAuth::Basic {
            client_id: id.to_owned(),
            secret: "wrong".to_owned(),
        },
        ClientAuth::Basic {
            client_id: "nobody".to_owned(),
            secret: "wrong".to_owned(),
        },
        ClientAuth::Post {
            client_id: id.to_owned(),
            secret: "wrong".to_owned(),
        },
        ClientAuth::Post {
            client_id: "nobody".to_owned(),
            secret: "wrong".to_owned(),
        },
    ] {
        let before = clock.reads.load(Ordering::SeqCst);
        let err = authority.authenticate(&realm, &auth).await.unwrap_err();
        assert_eq!(err.code(), "invalid_client");
        assert_eq!(err.description(), "client authentication failed");
        reads.push(clock.reads.load(Ordering::SeqCst) - before);
    }
    assert_eq!(reads[0], reads[1], "Basic: known vs unknown client id");
    assert_eq!(reads[2], reads[3], "post: known vs unknown client id");
    assert!(reads[0] > 0, "a secret was checked at all");
    // The right secret still works.
    authority
        .authenticate(
            &realm,
            &ClientAuth::Basic {
                client_id: id.to_owned(),
                secret,
            },
        )
        .await
        .unwrap();
}

fn quota(per_minute: Option<u32>, per_day: Option<u32>) -> Quota {
    Quota {
        per_minute,
        per_day,
    }
}

/// The seconds a refusal asks the client to wait, or a panic if it is not one.
fn retry_after(result: Result<tessera_core::GrantedToken, OAuthError>) -> u64 {
    match result {
        Err(OAuthError::QuotaExceeded { retry_after_s, .. }) => retry_after_s,
        other => panic!("expected quota_exceeded, got {other:?}"),
    }
}

/// NOW_MS is 08:00:00 UTC, on a whole minute.
const SECS_TO_MIDNIGHT: u64 = 16 * 3600;

async fn quotas_refuse_with_retry_after_until_the_minute_or_day_rolls_over(kind: Kind) {
    let backend = kind.backend().await;
    let clock = Arc::new(ManualClock::new(NOW_MS));
    let authority = authority_on(&backend, clock.clone()).await;
    let mut new = new_app(600);
    new.quota = quota(Some(2), Some(5));
    let (app, secret) = authority
        .manage()
        .create_application(Audit::by(Actor::cli()), "default", new)
        .await
        .unwrap();
    let id = app.client_id.as_str();
    let realm = authority.realm("default").unwrap();
    let grant = || async { authority.grant(&realm, &basic(id, &secret)).await };
    grant().await.unwrap();
    grant().await.unwrap();
    assert_eq!(retry_after(grant().await), 60, "until the next minute");
    clock.advance_secs(10);
    let refused = grant().await.unwrap_err();
    assert_eq!(refused.code(), "quota_exceeded");
    assert!(
        refused.description().contains("2 tokens per minute"),
        "{refused:?}"
    );
    assert_eq!(retry_after(Err(refused)), 50);
    // An administrator's token is neither refused nor counted.
    for _ in 0..3 {
        authority
            .manage()
            .issue_token(Audit::by(Actor::cli()), "default", id, None, None)
            .await
            .unwrap();
    }
    clock.advance_secs(50);
    grant().await.unwrap();
    grant().await.unwrap();
    assert_eq!(retry_after(grant().await), 60);
    clock.advance_secs(60);
    grant().await.unwrap();
    // Five today: the day is used up, and the next minute does not help.
    assert_eq!(retry_after(grant().await), SECS_TO_MIDNIGHT - 120);
    clock.advance_secs(60);
    assert_eq!(retry_after(grant().await), SECS_TO_MIDNIGHT - 180);
    // Counts are kept across a flush; the next UTC day starts afresh.
    authority.flush_usage().await.unwrap();
    assert_eq!(retry_after(grant().await), SECS_TO_MIDNIGHT - 180);
    clock.advance_secs(i64::try_from(SECS_TO_MIDNIGHT).unwrap() - 180);
    grant().await.unwrap();
    // Clearing the quota lifts it at once.
    authority
        .manage()
        .update_application(Audit::by(Actor::cli()), "default", id, |app| {
            app.quota = Quota::default();
            Ok(())
        })
        .await
        .unwrap();
    for _ in 0..5 {
        grant().await.unwrap();
    }
}

async fn refresh_grants_count_against_the_quota_and_a_refused_one_keeps_its_token(kind: Kind) {
    let backend = kind.backend().await;
    let clock = Arc::new(ManualClock::new(NOW_MS));
    let authority = authority_on(&backend, clock.clone()).await;
    let mut new = new_app(600);
    new.refresh_token_ttl = Some(TokenTtl::parse("refresh_token_ttl", 3600).unwrap());
    new.quota = quota(Some(2), None);
    let (app, secret) = authority
        .manage()
        .create_application(Audit::by(Actor::cli()), "default", new)
        .await
        .unwrap();
    let id = app.client_id.as_str();
    let realm = authority.realm("default").unwrap();
    let refresh = |token: &str| TokenRequest {
        grant_type: "refresh_token".to_owned(),
        refresh_token: Some(token.to_owned()),
        ..basic(id, &secret)
    };
    let first = authority.grant(&realm, &basic(id, &secret)).await.unwrap();
    let second = authority
        .grant(&realm, &refresh(&first.refresh_token.unwrap()))
        .await
        .unwrap();
    let rt1 = second.refresh_token.unwrap();
    assert_eq!(
        retry_after(authority.grant(&realm, &refresh(&rt1)).await),
        60
    );
    // The refused refresh did not use the token up.
    clock.advance_secs(60);
    let third = authority.grant(&realm, &refresh(&rt1)).await.unwrap();
    // A failed refresh (a reused token) gives its count back.
    let reused = authority.grant(&realm, &refresh(&rt1)).await.unwrap_err();
    assert_eq!(reused.code(), "invalid_grant");
    assert!(third.refresh_token.is_some());
    authority.grant(&realm, &basic(id, &secret)).await.unwrap();
    assert_eq!(
        retry_after(authority.grant(&realm, &basic(id, &secret)).await),
        60
    );
}

/// Node B learns from the store's usage what node A issued today, once A flushed and B
/// read (both once a minute in a server); a node started later does too.
async fn the_day_quota_counts_other_nodes_and_earlier_lives_through_the_store(kind: Kind) {
    let backend = kind.backend().await;
    let clock = Arc::new(ManualClock::new(NOW_MS));
    let a = authority_on(&backend, clock.clone()).await;
    let b = authority_over(backend.reopen().await, clock.clone()).await;
    let mut new = new_app(600);
    new.quota = quota(None, Some(6));
    let (app, secret) = a
        .manage()
        .create_application(Audit::by(Actor::cli()), "default", new)
        .await
        .unwrap();
    b.sync().await.unwrap();
    let id = app.client_id.as_str();
    let (realm_a, realm_b) = (a.realm("default").unwrap(), b.realm("default").unwrap());
    for _ in 0..3 {
        a.grant(&realm_a, &basic(id, &secret)).await.unwrap();
    }
    // An administrator's token on A is not A's to count, but B cannot tell it apart.
    a.manage()
        .issue_token(Audit::by(Actor::cli()), "default", id, None, None)
        .await
        .unwrap();
    a.flush_usage().await.unwrap();
    // A's own flush does not make it count its tokens twice: 3 more make 6.
    for _ in 0..3 {
        a.grant(&realm_a, &basic(id, &secret)).await.unwrap();
    }
    assert_eq!(
        retry_after(a.grant(&realm_a, &basic(id, &secret)).await),
        SECS_TO_MIDNIGHT
    );
    // B sees A's first 3 grants and its administrator's token, not yet A's last 3:
    // that lag is the tolerance of the day quota across nodes.
    b.flush_usage().await.unwrap();
    for _ in 0..2 {
        b.grant(&realm_b, &basic(id, &secret)).await.unwrap();
    }
    assert_eq!(
        retry_after(b.grant(&realm_b, &basic(id, &secret)).await),
        SECS_TO_MIDNIGHT
    );
    // A restarted node reads what it issued before.
    a.flush_usage().await.unwrap();
    let c = authority_over(backend.reopen().await, clock.clone()).await;
    c.flush_usage().await.unwrap();
    let realm_c = c.realm("default").unwrap();
    assert_eq!(
        retry_after(c.grant(&realm_c, &basic(id, &secret)).await),
        SECS_TO_MIDNIGHT
    );
}

/// With a bound of 3 live revocations per application, the fourth single-token
/// revocation ends every token issued so far instead of adding a row; once revoked
/// tokens expire, revocations are rows again.
async fn past_the_bound_on_live_revocations_a_revocation_revokes_all_instead(kind: Kind) {
    let backend = kind.backend().await;
    let clock = Arc::new(ManualClock::new(NOW_MS));
    let limits = StateLimits {
        live_revocations_per_app: 3,
        ..StateLimits::default()
    };
    let authority = authority_on(&backend, clock.clone())
        .await
        .with_state_limits(limits);
    let (app, secret) = authority
        .manage()
        .create_application(Audit::by(Actor::cli()), "default", new_app(60))
        .await
        .unwrap();
    let (other, other_secret) = authority
        .manage()
        .create_application(Audit::by(Actor::cli()), "default", new_app(60))
        .await
        .unwrap();
    let id = app.client_id.as_str();
    let realm = authority.realm("default").unwrap();
    let auth = basic(id, &secret).auth;
    let mut tokens = Vec::new();
    for _ in 0..5 {
        tokens.push(
            authority
                .grant(&realm, &basic(id, &secret))
                .await
                .unwrap()
                .access_token,
        );
    }
    let bystander = authority
        .grant(&realm, &basic(other.client_id.as_str(), &other_secret))
        .await
        .unwrap()
        .access_token;
    for token in &tokens[..3] {
        authority.revoke(&realm, &auth, token).await.unwrap();
    }
    assert_eq!(backend.store.revocations(0).await.unwrap().len(), 3);
    assert!(authority.check(&realm, &tokens[4]).is_some());
    authority.revoke(&realm, &auth, &tokens[3]).await.unwrap();
    assert!(authority.check(&realm, &tokens[3]).is_none(), "revoked");
    assert!(
        authority.check(&realm, &tokens[4]).is_none(),
        "revoked with it"
    );
    assert!(
        authority.check(&realm, &bystander).is_some(),
        "other apps untouched"
    );
    assert_eq!(
        backend.store.revocations(0).await.unwrap().len(),
        3,
        "no row added"
    );
    let audit = authority
        .manage()
        .audit(&tessera_core::store::AuditQuery {
            before: None,
            realm: None,
            client_id: Some(id.to_owned()),
            limit: 10,
        })
        .await
        .unwrap();
    assert!(
        audit
            .iter()
            .any(|r| r.detail.contains("live revocation limit"))
    );
    // New tokens work; once the revoked ones expired, a revocation is a row again.
    clock.advance_secs(61);
    authority.sync().await.unwrap();
    let fresh = authority.grant(&realm, &basic(id, &secret)).await.unwrap();
    let kept = authority.grant(&realm, &basic(id, &secret)).await.unwrap();
    authority
        .revoke(&realm, &auth, &fresh.access_token)
        .await
        .unwrap();
    assert!(authority.check(&realm, &fresh.access_token).is_none());
    assert!(authority.check(&realm, &kept.access_token).is_some());
}

/// With a bound of 2 live refresh families per application, the third
/// client-credentials grant gets an access token without a refresh token (and writes no
/// family); refreshing still works, and a family revoked or expired makes room again
/// once the count is read from the store (at most a minute later).
async fn past_the_bound_on_live_refresh_families_tokens_come_without_refresh_tokens(kind: Kind) {
    let backend = kind.backend().await;
    let clock = Arc::new(ManualClock::new(NOW_MS));
    let limits = StateLimits {
        live_refresh_families_per_app: 2,
        ..StateLimits::default()
    };
    let authority = authority_on(&backend, clock.clone())
        .await
        .with_state_limits(limits);
    let mut new = new_app(600);
    new.refresh_token_ttl = Some(TokenTtl::parse("refresh_token_ttl", 3600).unwrap());
    let (app, secret) = authority
        .manage()
        .create_application(Audit::by(Actor::cli()), "default", new)
        .await
        .unwrap();
    let id = app.client_id.as_str();
    let realm = authority.realm("default").unwrap();
    let grant = || async { authority.grant(&realm, &basic(id, &secret)).await.unwrap() };
    let first = grant().await.refresh_token.unwrap();
    let second = grant().await.refresh_token.unwrap();
    let third = grant().await;
    assert!(authority.check(&realm, &third.access_token).is_some());
    assert_eq!(third.refresh_token, None, "no third family");
    assert_eq!(
        backend
            .store
            .live_refresh_families(&realm.realm.id, id, NOW_MS.div_euclid(1000))
            .await
            .unwrap(),
        2
    );
    let refreshed = authority
        .grant(
            &realm,
            &TokenRequest {
                grant_type: "refresh_token".to_owned(),
                refresh_token: Some(second),
                ..basic(id, &secret)
            },
        )
        .await
        .unwrap();
    assert!(refreshed.refresh_token.is_some(), "a family goes on");
    authority
        .revoke(&realm, &basic(id, &secret).auth, &first)
        .await
        .unwrap();
    assert_eq!(grant().await.refresh_token, None, "counted a minute ago");
    clock.advance_secs(60);
    assert!(grant().await.refresh_token.is_some(), "room again");
    assert_eq!(grant().await.refresh_token, None);
}
