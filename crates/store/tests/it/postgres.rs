//! What only a store shared by several nodes has to get right: one purger at a time.

use std::time::Duration;

use tessera_core::store::{Change, Revocation};

use crate::{Kind, connect_postgres};

#[tokio::test]
async fn only_the_node_holding_the_purge_lock_purges() {
    let backend = Kind::Postgres.backend().await;
    let store = &backend.store;
    store
        .insert_realm(
            &crate::conformance::realm("r1", "one"),
            &crate::conformance::key("k1", "r1"),
            &crate::conformance::audit(),
        )
        .await
        .unwrap();
    store
        .insert_revocation(&Revocation {
            jti: "old".into(),
            realm_id: "r1".into(),
            client_id: "c".into(),
            expires_at: 10,
        })
        .await
        .unwrap();
    // Another node, busy purging.
    let mut other = connect_postgres(&backend.database.url).await;
    sqlx::query("SELECT pg_advisory_lock(hashtext('tessera purge'), hashtext(current_schema()))")
        .execute(&mut other)
        .await
        .unwrap();
    assert_eq!(store.purge(500, 0).await.unwrap(), 0);
    assert!(store.find_revocation("old").await.unwrap().is_some());
    sqlx::query("SELECT pg_advisory_unlock(hashtext('tessera purge'), hashtext(current_schema()))")
        .execute(&mut other)
        .await
        .unwrap();
    assert!(store.purge(500, 0).await.unwrap() >= 1);
    assert!(store.find_revocation("old").await.unwrap().is_none());
    // The lock was given back: purging again is possible, here and elsewhere.
    let locked: bool = sqlx::query_scalar(
        "SELECT pg_try_advisory_lock(hashtext('tessera purge'), hashtext(current_schema()))",
    )
    .fetch_one(&mut other)
    .await
    .unwrap();
    assert!(locked, "the purging node released its lock");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_committed_late_is_not_stepped_over() {
    let backend = Kind::Postgres.backend().await;
    let store = backend.store.clone();
    store
        .insert_realm(
            &crate::conformance::realm("r1", "one"),
            &crate::conformance::key("k1", "r1"),
            &crate::conformance::audit(),
        )
        .await
        .unwrap();
    let cursor = store.last_change_seq().await.unwrap();
    // Another node's write, held open between appending to the log and committing.
    let mut other = connect_postgres(&backend.database.url).await;
    sqlx::query("BEGIN").execute(&mut other).await.unwrap();
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtext('tessera changes'), hashtext(current_schema()))",
    )
    .execute(&mut other)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO changes (kind, realm_id, key, at) VALUES ('revocation', '', 'slow', 0)",
    )
    .execute(&mut other)
    .await
    .unwrap();
    let writer = tokio::spawn(async move {
        store
            .insert_revocation(&Revocation {
                jti: "fast".into(),
                realm_id: "r1".into(),
                client_id: "c".into(),
                expires_at: i64::MAX,
            })
            .await
            .unwrap();
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // Had "fast" committed with the next sequence number, a node reading now would move
    // its cursor past "slow" and never see it.
    assert!(
        backend
            .store
            .changes_since(cursor, 100)
            .await
            .unwrap()
            .is_empty(),
        "a later change became visible before an earlier one"
    );
    assert!(!writer.is_finished(), "the writer waits for the log");
    sqlx::query("COMMIT").execute(&mut other).await.unwrap();
    writer.await.unwrap();
    let keys: Vec<_> = backend
        .store
        .changes_since(cursor, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.change)
        .collect();
    assert_eq!(
        keys,
        vec![
            Change::Revocation { jti: "slow".into() },
            Change::Revocation { jti: "fast".into() },
        ]
    );
}

#[tokio::test]
async fn a_write_on_one_node_wakes_the_others_at_once() {
    use crate::conformance::{key, realm};
    let backend = Kind::Postgres.backend().await;
    let other = backend.reopen().await;
    let mut signal = other
        .change_signal()
        .await
        .unwrap()
        .expect("PostgreSQL signals changes");
    // A schema next door writing does not wake this one.
    let neighbour = Kind::Postgres.backend().await;
    neighbour
        .store
        .insert_realm(
            &realm("n1", "next-door"),
            &key("nk", "n1"),
            &crate::conformance::audit(),
        )
        .await
        .unwrap();
    let quiet = tokio::time::timeout(Duration::from_millis(300), signal.wait()).await;
    assert!(quiet.is_err(), "woken by another schema's write");

    backend
        .store
        .insert_realm(
            &realm("r1", "one"),
            &key("k1", "r1"),
            &crate::conformance::audit(),
        )
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), signal.wait())
        .await
        .expect("woken by the write")
        .unwrap();
}

#[tokio::test]
async fn sqlite_has_no_change_signal_and_is_polled() {
    let backend = Kind::Sqlite.backend().await;
    assert!(backend.store.change_signal().await.unwrap().is_none());
}

/// Managed PostgreSQL services want TLS: `sslmode=require` in the URL is honoured.
#[tokio::test]
async fn the_store_speaks_tls_when_the_url_asks_for_it() {
    let database = Kind::Postgres.database().await;
    let mut conn = connect_postgres(&database.url).await;
    let ssl: String = sqlx::query_scalar("SHOW ssl")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    if ssl != "on" {
        eprintln!("skipped: this PostgreSQL server has ssl = {ssl}");
        return;
    }
    let url = format!("{}&sslmode=require", database.url);
    let store = tessera_store::open(&url).await.unwrap();
    store.ping().await.unwrap();
    let mut tls = connect_postgres(&url).await;
    let encrypted: bool =
        sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(&mut tls)
            .await
            .unwrap();
    assert!(encrypted);
}
