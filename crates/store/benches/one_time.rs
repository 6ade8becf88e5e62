//! What remembering a one-time value costs per request (`cargo bench -p tessera-store
//! --bench one_time`): the in-memory replay cache alone (what SQLite did before it
//! remembered them across restarts), and `claim_once` on SQLite and PostgreSQL, one
//! caller at a time and with 16 concurrent callers (a loaded server). Medians of 5 runs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;
use std::time::Instant;

use tessera_core::replay::ReplayCache;
use tessera_core::store::Store;

const PER_RUN: u32 = 4000;
const RUNS: usize = 5;
const CALLERS: u32 = 16;

fn key(phase: &str, run: usize, i: u32) -> [u8; 32] {
    ReplayCache::key_of(format!("{phase}:{run}:{i}:{}", std::process::id()).as_bytes())
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Microseconds per claim: `callers` tasks share `PER_RUN` claims.
async fn per_claim(store: &Arc<dyn Store>, callers: u32) -> f64 {
    let phase: &'static str = if callers == 1 { "one" } else { "many" };
    let mut runs = Vec::new();
    for run in 0..RUNS {
        let started = Instant::now();
        let tasks: Vec<_> = (0..callers)
            .map(|c| {
                let store = store.clone();
                tokio::spawn(async move {
                    for i in (c..PER_RUN).step_by(callers as usize) {
                        assert!(
                            store
                                .claim_once(&key(phase, run, i), 2_000_000_000, 0)
                                .await
                                .unwrap()
                        );
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        runs.push(started.elapsed().as_secs_f64() * 1e6 / f64::from(PER_RUN));
    }
    median(runs)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let cache = ReplayCache::default();
    let mut runs = Vec::new();
    for run in 0..RUNS {
        let started = Instant::now();
        for i in 0..PER_RUN {
            assert!(cache.claim_key(key("memory", run, i), 2_000_000_000, 0));
        }
        runs.push(started.elapsed().as_secs_f64() * 1e6 / f64::from(PER_RUN));
    }
    println!(
        "memory only (replay cache)        {:8.2} µs per value",
        median(runs)
    );

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let sqlite = tessera_store::open(&url).await.unwrap();
    println!(
        "SQLite claim_once, 1 caller       {:8.2} µs per value",
        per_claim(&sqlite, 1).await
    );
    println!(
        "SQLite claim_once, {CALLERS} callers     {:8.2} µs per value",
        per_claim(&sqlite, CALLERS).await
    );

    let postgres = std::env::var("TESSERA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let schema = format!("tessera_bench_{}", std::process::id());
    match sqlx_schema(&postgres, &schema, true).await {
        Ok(url) => {
            let pg = tessera_store::open(&url).await.unwrap();
            println!(
                "PostgreSQL claim_once, 1 caller   {:8.2} µs per value",
                per_claim(&pg, 1).await
            );
            println!(
                "PostgreSQL claim_once, {CALLERS} callers {:8.2} µs per value",
                per_claim(&pg, CALLERS).await
            );
            let _ = sqlx_schema(&postgres, &schema, false).await;
        }
        Err(e) => println!("PostgreSQL not measured: {e}"),
    }
}

/// Creates (or drops) a schema of the bench's own; returns the URL that uses it.
async fn sqlx_schema(server: &str, name: &str, create: bool) -> Result<String, String> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(server)
        .await
        .map_err(|e| e.to_string())?;
    let sql = if create {
        format!("CREATE SCHEMA {name}")
    } else {
        format!("DROP SCHEMA {name} CASCADE")
    };
    sqlx::query(&sql)
        .execute(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    let separator = if server.contains('?') { '&' } else { '?' };
    Ok(format!(
        "{server}{separator}options=-c%20search_path%3D{name}"
    ))
}
