//! A schema or a database of one test's own on the PostgreSQL server the suites use,
//! dropped when the test is done with it.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use sqlx::Connection;

/// The PostgreSQL server the suites use: `TESSERA_TEST_POSTGRES_URL`, by default the
/// database `test` with trust authentication on loopback.
pub fn server() -> String {
    std::env::var("TESSERA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A name no other test (in this or another process) uses.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}_{}_{nanos}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// A connection to `url`, or an error that says how to start PostgreSQL.
pub async fn try_connect(url: &str) -> Result<sqlx::PgConnection, String> {
    sqlx::PgConnection::connect(url).await.map_err(|e| {
        format!(
            "PostgreSQL at {url} is needed for these tests ({e}); start it with \
             pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
        )
    })
}

/// A connection to `url`; a test cannot go on without one.
pub async fn connect(url: &str) -> sqlx::PgConnection {
    try_connect(url).await.unwrap_or_else(|e| panic!("{e}"))
}

/// A schema of its own on [`server`], dropped (with what is in it) on drop.
#[derive(Debug)]
pub struct Schema {
    server: String,
    name: String,
    url: String,
}

impl Schema {
    /// A new, empty schema named after `prefix`.
    pub async fn create(prefix: &str) -> Result<Self, String> {
        let (server, name) = create_unique("SCHEMA", prefix).await?;
        let separator = if server.contains('?') { '&' } else { '?' };
        let url = format!("{server}{separator}options=-c%20search_path%3D{name}");
        Ok(Self { server, name, url })
    }

    /// A URL of the server whose connections use this schema.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        drop_in_background(self.server.clone(), sql);
    }
}

/// A database of its own on [`server`]'s cluster, dropped on drop together with any
/// connection still open to it.
#[derive(Debug)]
pub struct Database {
    server: String,
    name: String,
    url: String,
}

impl Database {
    /// A new, empty database named after `prefix`.
    pub async fn create(prefix: &str) -> Result<Self, String> {
        let (server, name) = create_unique("DATABASE", prefix).await?;
        let (base, query) = match server.split_once('?') {
            Some((base, query)) => (base, format!("?{query}")),
            None => (server.as_str(), String::new()),
        };
        let (host, _) = base
            .rsplit_once('/')
            .ok_or_else(|| format!("{server} does not name a database"))?;
        let url = format!("{host}/{name}{query}");
        Ok(Self { server, name, url })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        drop_in_background(self.server.clone(), sql);
    }
}

/// Creates a `SCHEMA` or `DATABASE` (`what`) named after `prefix` on [`server`];
/// returns the server's URL and the name.
async fn create_unique(what: &str, prefix: &str) -> Result<(String, String), String> {
    let server = server();
    let name = unique_name(prefix);
    let mut conn = try_connect(&server).await?;
    sqlx::query(&format!("CREATE {what} {name}"))
        .execute(&mut conn)
        .await
        .map_err(|e| format!("create {} {name}: {e}", what.to_lowercase()))?;
    let _ = conn.close().await;
    Ok((server, name))
}

/// Runs `sql` on `server` from a thread with a runtime of its own: `Drop` cannot wait on
/// the test's runtime. It is waited for five seconds at most: the test's own tasks live
/// on its runtime until the test returns, and one of them may hold a transaction that a
/// `DROP SCHEMA` would wait for while this thread blocks the runtime. After that the
/// test goes on, its runtime ends, its connections close, and the drop completes.
fn drop_in_background(server: String, sql: String) {
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let dropped = runtime.block_on(async {
            let mut conn = try_connect(&server).await?;
            sqlx::query(&sql)
                .execute(&mut conn)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        });
        if let Err(e) = dropped {
            eprintln!("{sql}: {e}");
        }
        let _ = done.send(());
    });
    let _ = finished.recv_timeout(Duration::from_secs(5));
}
