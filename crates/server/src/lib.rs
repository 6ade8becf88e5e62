//! Tessera's HTTP side: the public OAuth endpoints, the admin API, configuration, and
//! start-up. Only this crate knows HTTP.

mod admin;
mod admin_listener;
mod admin_state;
mod body;
pub mod config;
mod dashboard;
mod errors;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod limiter;
pub mod listener;
pub mod memory;
pub mod metrics;
pub mod openapi;
pub mod operations;
pub mod public;
mod request;
pub mod tls;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tessera_core::crypto::{MasterKey, SystemRandom};
use tessera_core::domain::PublicUrl;
use tessera_core::{Authority, ManageError, StoreError, SystemClock};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

pub use config::{Config, ConfigError, SecretString};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    KeyFile { path: PathBuf, message: String },
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("loading realms: {0}")]
    Load(#[from] ManageError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("server failed: {0}")]
    Serve(std::io::Error),
    #[error("TLS: {0}")]
    Tls(#[from] tls::TlsError),
}

/// Where the admin key came from, for the start-up message.
#[derive(Debug, Clone)]
pub enum AdminKeySource {
    Environment,
    File(PathBuf),
}

/// The data directory with its master key, created owner-only on first use.
pub fn master_key(config: &Config) -> Result<MasterKey, StartError> {
    let text = match &config.master_key {
        Some(key) => key.expose().to_owned(),
        None => {
            let path = config.data_dir.join("master.key");
            read_or_create_key(&config.data_dir, &path, || {
                MasterKey::generate_text(&SystemRandom)
            })?
        }
    };
    MasterKey::from_text(&text).ok_or_else(|| StartError::KeyFile {
        path: config.data_dir.join("master.key"),
        message: "the master key must be at least 32 characters".to_owned(),
    })
}

/// The admin key: `TESSERA_ADMIN_KEY`, or a generated one in an owner-only file.
pub fn admin_key(config: &Config) -> Result<(SecretString, AdminKeySource), StartError> {
    if let Some(key) = &config.admin_key {
        return Ok((key.clone(), AdminKeySource::Environment));
    }
    let path = config.data_dir.join("admin.key");
    let key = read_or_create_key(&config.data_dir, &path, || {
        tessera_core::crypto::random_token(&SystemRandom, 32)
    })?;
    Ok((SecretString::new(key), AdminKeySource::File(path)))
}

fn read_or_create_key(
    dir: &Path,
    path: &Path,
    generate: impl FnOnce() -> String,
) -> Result<String, StartError> {
    create_data_dir(dir)?;
    let key_error = |e: std::io::Error| StartError::KeyFile {
        path: path.to_owned(),
        message: e.to_string(),
    };
    match std::fs::read_to_string(path) {
        Ok(text) => {
            owner_only(path).map_err(key_error)?;
            return Ok(text.trim().to_owned());
        }
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(key_error(e)),
        Err(_) => {}
    }
    let key = generate();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(key.as_bytes()).map_err(key_error)?;
            file.sync_all().map_err(key_error)?;
            Ok(key)
        }
        // Another process (a CLI beside the server) wrote it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => std::fs::read_to_string(path)
            .map(|t| t.trim().to_owned())
            .map_err(key_error),
        Err(e) => Err(key_error(e)),
    }
}

/// Takes away what a key file written by hand (or by an older version) allowed the
/// group and others.
fn owner_only(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(path = %path.display(), "a key file was readable by others; it is owner-only now");
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))?;
        }
    }
    Ok(())
}

fn create_data_dir(dir: &Path) -> Result<(), StartError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|source| StartError::DataDir {
        path: dir.to_owned(),
        source,
    })
}

/// Opens the configured store and loads the authority from it (used by `serve` and by
/// every CLI command that works on the store directly).
pub async fn open_authority(
    config: &Config,
    public_url: PublicUrl,
) -> Result<Arc<Authority>, StartError> {
    let master = master_key(config)?;
    let url = config.effective_database_url();
    if config.database_url.is_none() {
        create_data_dir(&config.data_dir)?;
    }
    let store = tessera_store::open_with(&url, config.migrate_on_start).await?;
    let authority = Authority::open(
        store,
        master,
        public_url,
        Arc::new(SystemClock),
        Arc::new(SystemRandom),
    )
    .await?;
    Ok(Arc::new(authority))
}

/// Applies pending migrations to the configured store (`tessera migrate`) and returns
/// its URL, password hidden, to show.
pub async fn migrate(config: &Config) -> Result<String, StartError> {
    let url = config.effective_database_url();
    if config.database_url.is_none() {
        create_data_dir(&config.data_dir)?;
    }
    tessera_store::migrate(&url).await?;
    Ok(tessera_store::redacted_url(&url))
}

/// The public URL in effect: the configured one, or `http://{listen}` (`https://`
/// when the public listener speaks TLS).
pub fn public_url_for(config: &Config, bound: SocketAddr) -> PublicUrl {
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    match &config.public_url {
        Some(url) => url.clone(),
        None => PublicUrl::parse("public_url", &format!("{scheme}://{bound}"))
            .unwrap_or_else(|_| fallback_url()),
    }
}

fn fallback_url() -> PublicUrl {
    // "http://127.0.0.1" is a valid public URL by construction.
    #[allow(clippy::expect_used)]
    PublicUrl::parse("public_url", "http://127.0.0.1").expect("valid URL")
}

/// A running server: its addresses, and the means to stop it.
pub struct Running {
    pub public_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub public_url: PublicUrl,
    pub admin_key_source: AdminKeySource,
    /// The store's URL with its password hidden, to show.
    pub database_url: String,
    pub authority: Arc<Authority>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<Result<(), std::io::Error>>,
}

impl Running {
    /// Asks both listeners to stop taking connections; in-flight requests finish.
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
    }

    /// Waits until both listeners have stopped, then writes the usage counted since
    /// the last flush.
    pub async fn wait(mut self) -> Result<(), StartError> {
        while let Some(result) = self.tasks.join_next().await {
            match result {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(StartError::Serve(e)),
                Err(e) => return Err(StartError::Serve(std::io::Error::other(e))),
            }
        }
        flush_usage(&self.authority).await;
        Ok(())
    }
}

/// How often each process reads the change log: well inside the one second that
/// docs/contract.md §4 allows.
const SYNC_INTERVAL: Duration = Duration::from_millis(250);
const PURGE_INTERVAL: Duration = Duration::from_secs(300);
/// How often realms with a key rotation schedule are checked (a scheduled key is
/// published an hour before it signs, so a minute late is no harm) and usage counts
/// are flushed to the store.
const MINUTE: Duration = Duration::from_secs(60);
/// How long after losing the change notifications a node listens again.
const RELISTEN_AFTER: Duration = Duration::from_secs(60);
/// How long change-log entries are kept for processes that were briefly away.
const KEEP_CHANGES_SECS: i64 = 3600;

/// Binds both listeners, loads the store and serves until [`Running::shutdown`].
pub async fn start(config: Config) -> Result<Running, StartError> {
    let public_listener = bind(config.listen).await?;
    let admin_listener = bind(config.admin_listen).await?;
    let public_addr = public_listener.local_addr().map_err(StartError::Serve)?;
    let admin_addr = admin_listener.local_addr().map_err(StartError::Serve)?;
    let public_url = public_url_for(&config, public_addr);
    let (admin_key, admin_key_source) = admin_key(&config)?;
    // The admin listener speaks TLS with its own pair, or else with the public one's.
    let public_tls = config.tls.clone().map(tls::Tls::load).transpose()?;
    let admin_tls = match &config.admin_tls {
        Some(files) => Some(tls::Tls::load(files.clone())?),
        None => public_tls.clone(),
    };
    let authority = open_authority(&config, public_url.clone()).await?;

    let (stop, stopped) = watch::channel(false);
    let mut tasks = JoinSet::new();

    let metrics = Arc::new(metrics::Metrics::default());
    let public_state = Arc::new(public::PublicState {
        authority: authority.clone(),
        metrics: metrics.clone(),
        body_limit: config.body_limit,
        guard: Arc::new(limiter::AuthGuard::new(
            false,
            config.failed_auth_per_address,
            config.failed_auth_per_client,
            config.trusted_proxies.clone(),
            metrics.clone(),
        )),
    });
    let admin_state = Arc::new(admin_state::AdminState {
        authority: authority.clone(),
        admin_key,
        body_limit: config.body_limit,
        guard: Arc::new(limiter::AuthGuard::new(
            true,
            config.failed_admin_auth_per_address,
            0,
            config.trusted_proxies.clone(),
            metrics,
        )),
    });
    // One watcher per certificate pair (the admin listener may share the public one's).
    let own_admin_tls = config
        .admin_tls
        .is_some()
        .then_some(&admin_tls)
        .into_iter()
        .flatten();
    for tls in public_tls.iter().chain(own_admin_tls) {
        tls.watch(stopped.clone());
    }
    for (listener, router, limits, tls) in [
        (
            public_listener,
            public::router(public_state),
            config.public_connections.clone(),
            public_tls,
        ),
        (
            admin_listener,
            admin_listener::router(admin_state),
            config.admin_connections.clone(),
            admin_tls,
        ),
    ] {
        tasks.spawn(listener::serve(
            listener,
            router,
            limits,
            tls,
            config.shutdown_timeout,
            stopped.clone(),
        ));
    }
    spawn_maintenance(authority.clone(), stopped);

    Ok(Running {
        public_addr,
        admin_addr,
        public_url,
        admin_key_source,
        database_url: tessera_store::redacted_url(&config.effective_database_url()),
        authority,
        stop,
        tasks,
    })
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
}

/// Wakes `woken` whenever the store signals a change (PostgreSQL LISTEN/NOTIFY). A
/// task of its own, so that a wait is never cut off halfway by the maintenance loop.
/// Stores without a signal end it at once; a lost signal is listened for again a
/// minute later, with polling covering the gap.
fn spawn_listener(
    authority: Arc<Authority>,
    woken: Arc<Notify>,
    mut stopped: watch::Receiver<bool>,
) {
    tokio::spawn(async move {
        loop {
            match authority.change_signal().await {
                Ok(None) => return,
                Ok(Some(mut signal)) => loop {
                    tokio::select! {
                        _ = stopped.changed() => return,
                        woke = signal.wait() => match woke {
                            Ok(()) => woken.notify_one(),
                            Err(err) => {
                                tracing::warn!(error = %err, "change notifications lost; polling");
                                break;
                            }
                        },
                    }
                },
                Err(err) => tracing::warn!(error = %err, "cannot listen for changes; polling"),
            }
            tokio::select! {
                _ = stopped.changed() => return,
                _ = tokio::time::sleep(RELISTEN_AFTER) => {}
            }
        }
    });
}

async fn flush_usage(authority: &Authority) {
    if let Err(err) = authority.flush_usage().await {
        tracing::warn!(error = %err, "could not flush usage counts; kept for the next try");
    }
}

async fn rotate_due_keys(authority: &Authority) {
    match authority.manage().rotate_due_keys().await {
        Ok(realms) => {
            for realm in realms {
                tracing::info!(%realm, "rotated signing keys on schedule");
            }
        }
        Err(err) => tracing::warn!(error = %err, "scheduled key rotation failed"),
    }
}

/// Keeps the caches in step with the change log, rotates keys due by schedule, and
/// purges expired state.
fn spawn_maintenance(authority: Arc<Authority>, mut stopped: watch::Receiver<bool>) {
    tokio::spawn(async move {
        let mut sync = tokio::time::interval(SYNC_INTERVAL);
        sync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut purge = tokio::time::interval(PURGE_INTERVAL);
        let mut minute = tokio::time::interval(MINUTE);
        let woken = Arc::new(Notify::new());
        spawn_listener(authority.clone(), woken.clone(), stopped.clone());
        loop {
            tokio::select! {
                _ = stopped.changed() => break,
                _ = sync.tick() => {
                    if let Err(err) = authority.sync().await {
                        tracing::warn!(error = %err, "could not read the change log");
                    }
                }
                () = woken.notified() => {
                    if let Err(err) = authority.sync().await {
                        tracing::warn!(error = %err, "could not read the change log");
                    }
                }
                _ = minute.tick() => {
                    rotate_due_keys(&authority).await;
                    flush_usage(&authority).await;
                }
                _ = purge.tick() => {
                    match authority.purge(KEEP_CHANGES_SECS).await {
                        Ok(0) => {}
                        Ok(n) => tracing::debug!(rows = n, "purged expired state"),
                        Err(err) => tracing::warn!(error = %err, "purge failed"),
                    }
                }
            }
        }
    });
}
