//! What remembering a one-time value costs per request (`cargo bench -p tessera-store
//! --bench one_time`): the in-memory replay cache alone (what SQLite did before it
//! remembered them across restarts), and `claim_once` on SQLite and PostgreSQL, one
//! caller at a time and with 16 concurrent callers (a loaded server). Medians of 5 runs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;
use std::time::Instant;

use tessera_core::replay::ReplayCache;
use tessera_core::store::Store;
use tessera_test_support::postgres::Schema;

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

    match Schema::create("tessera_bench").await {
        Ok(schema) => {
            let pg = tessera_store::open(schema.url()).await.unwrap();
            println!(
                "PostgreSQL claim_once, 1 caller   {:8.2} µs per value",
                per_claim(&pg, 1).await
            );
            println!(
                "PostgreSQL claim_once, {CALLERS} callers {:8.2} µs per value",
                per_claim(&pg, CALLERS).await
            );
        }
        Err(e) => println!("PostgreSQL not measured: {e}"),
    }
}
