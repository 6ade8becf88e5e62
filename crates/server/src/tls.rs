//! TLS for a listener: the certificate chain and key from PEM files, TLS 1.2 and 1.3
//! only, and read again without a restart when the files change or on SIGHUP (a
//! renewed certificate is picked up by the next handshake; connections already open
//! keep theirs).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::watch;

/// The certificate files of one listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// The configuration handshakes use now, swapped whole when the files change.
pub struct Tls {
    files: TlsFiles,
    current: RwLock<Arc<ServerConfig>>,
    /// The files' modification times when they were last read.
    read_at: RwLock<(Option<SystemTime>, Option<SystemTime>)>,
}

/// How often the files' modification times are looked at.
const WATCH_INTERVAL: Duration = Duration::from_secs(2);

impl Tls {
    /// Reads the files; an error here stops the start, naming the file.
    pub fn load(files: TlsFiles) -> Result<Arc<Self>, TlsError> {
        let read_at = (modified(&files.cert), modified(&files.key));
        let config = server_config(&files)?;
        Ok(Arc::new(Self {
            files,
            current: RwLock::new(Arc::new(config)),
            read_at: RwLock::new(read_at),
        }))
    }

    /// The acceptor for the next handshake.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        let config = self
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        tokio_rustls::TlsAcceptor::from(config)
    }

    /// Reads the files again. A file that no longer reads keeps the configuration in
    /// use (and says why in the log): a half-written renewal must not stop the server.
    pub fn reload(&self) {
        let read_at = (modified(&self.files.cert), modified(&self.files.key));
        match server_config(&self.files) {
            Ok(config) => {
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(config);
                *self.read_at.write().unwrap_or_else(|e| e.into_inner()) = read_at;
                tracing::info!(cert = %self.files.cert.display(), "TLS certificate loaded");
            }
            Err(err) => {
                tracing::error!(error = %err, "TLS certificate not reloaded; the previous one stays in use");
            }
        }
    }

    fn changed(&self) -> bool {
        let now = (modified(&self.files.cert), modified(&self.files.key));
        *self.read_at.read().unwrap_or_else(|e| e.into_inner()) != now
    }

    /// Reloads when the files change (looked at every two seconds) or on SIGHUP,
    /// until `stopped`.
    pub fn watch(self: &Arc<Self>, mut stopped: watch::Receiver<bool>) {
        let tls = self.clone();
        tokio::spawn(async move {
            #[cfg(unix)]
            let mut hangup =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
            let mut tick = tokio::time::interval(WATCH_INTERVAL);
            loop {
                #[cfg(unix)]
                let hung_up = async {
                    match hangup.as_mut() {
                        Some(signal) => signal.recv().await,
                        None => std::future::pending().await,
                    }
                };
                #[cfg(not(unix))]
                let hung_up = std::future::pending::<Option<()>>();
                tokio::select! {
                    _ = stopped.changed() => return,
                    _ = hung_up => tls.reload(),
                    _ = tick.tick() => {
                        if tls.changed() {
                            tls.reload();
                        }
                    }
                }
            }
        });
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// TLS 1.2 and 1.3 with aws-lc-rs (named explicitly: another crate in the build may
/// bring rustls's other provider too, and then none is the default).
fn server_config(files: &TlsFiles) -> Result<ServerConfig, TlsError> {
    let invalid = |path: &Path, message: String| TlsError::Invalid {
        path: path.to_owned(),
        message,
    };
    let cert_pem = read(&files.cert)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(&files.cert, format!("not a PEM certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(invalid(&files.cert, "holds no certificate".to_owned()));
    }
    let key_pem = read(&files.key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| invalid(&files.key, format!("not a PEM private key: {e}")))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| invalid(&files.cert, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| invalid(&files.key, format!("does not fit the certificate: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
