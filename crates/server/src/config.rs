//! Settings: one typed struct, read from an optional TOML file and then overlaid by
//! `TESSERA_*` environment variables, built once in `main` and passed down.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tessera_core::domain::PublicUrl;

use crate::limiter::IpNet;
use crate::listener::ConnectionLimits;
use crate::tls::TlsFiles;

/// A secret setting; never shown by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: String) -> Self {
        Self(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(redacted)")
    }
}

/// The settings as the TOML file spells them. Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    admin_listen: Option<String>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    public_url: Option<String>,
    admin_key: Option<String>,
    master_key: Option<String>,
    body_limit: Option<usize>,
    log: Option<String>,
    migrate_on_start: Option<bool>,
    header_timeout: Option<toml::Value>,
    body_timeout: Option<toml::Value>,
    idle_timeout: Option<toml::Value>,
    shutdown_timeout: Option<toml::Value>,
    max_connections: Option<toml::Value>,
    admin_max_connections: Option<toml::Value>,
    max_connections_per_address: Option<toml::Value>,
    failed_auth_per_address: Option<toml::Value>,
    failed_auth_per_client: Option<toml::Value>,
    failed_admin_auth_per_address: Option<toml::Value>,
    trusted_proxies: Option<Vec<String>>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    admin_tls_cert: Option<PathBuf>,
    admin_tls_key: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    pub data_dir: PathBuf,
    /// `None`: SQLite in the data directory.
    pub database_url: Option<String>,
    /// `None`: `http://{listen}` once the listener is bound.
    pub public_url: Option<PublicUrl>,
    pub admin_key: Option<SecretString>,
    pub master_key: Option<SecretString>,
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// A `tracing` filter such as `info` or `tessera=debug`.
    pub log: String,
    /// Apply pending database migrations when opening the store. Off, the store must
    /// already be up to date (`tessera migrate`), as when an operator migrates once
    /// before rolling out several nodes.
    pub migrate_on_start: bool,
    /// Timeouts and caps of the public listener's connections.
    pub public_connections: ConnectionLimits,
    /// The same for the admin listener: its own caps, so that a flood of the public
    /// listener never leaves the admin one without connections.
    pub admin_connections: ConnectionLimits,
    /// How long a stopping server lets in-flight requests finish.
    pub shutdown_timeout: Duration,
    /// Failed client authentications a source address may have per minute (and in a
    /// burst) on the public listener before it is answered 429; 0 turns it off.
    pub failed_auth_per_address: u32,
    /// The same per client id: only that id's wrong attempts get 429.
    pub failed_auth_per_client: u32,
    /// Wrong admin keys (API and dashboard sign-in) per source address per minute.
    pub failed_admin_auth_per_address: u32,
    /// Proxies whose `X-Forwarded-For` / `Forwarded` names the client's address.
    pub trusted_proxies: Vec<IpNet>,
    /// TLS on the public listener (and on the admin one, unless `admin_tls` is set).
    pub tls: Option<TlsFiles>,
    /// The admin listener's own certificate.
    pub admin_tls: Option<TlsFiles>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{key}: {message}")]
    Invalid { key: &'static str, message: String },
}

pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            public_url: None,
            admin_key: None,
            master_key: None,
            body_limit: DEFAULT_BODY_LIMIT,
            log: "info".to_owned(),
            migrate_on_start: true,
            public_connections: ConnectionLimits::default(),
            admin_connections: ConnectionLimits {
                max_connections: 1024,
                ..ConnectionLimits::default()
            },
            shutdown_timeout: Duration::from_secs(10),
            // An honest burst (a test suite, a misconfigured deployment: ~100 failures a
            // minute from one address across client ids, ~20 for one id) stays 401.
            failed_auth_per_address: 300,
            failed_auth_per_client: 60,
            failed_admin_auth_per_address: 30,
            trusted_proxies: Vec::new(),
            tls: None,
            admin_tls: None,
        }
    }
}

impl Config {
    /// Reads `file` (if given), then the environment through `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let from_file = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                toml::from_str::<FileConfig>(&text).map_err(|e| ConfigError::Parse {
                    path: path.to_owned(),
                    message: e.message().to_owned(),
                })?
            }
            None => FileConfig::default(),
        };
        let pick = |name: &str, file_value: Option<String>| env(name).or(file_value);
        let mut config = Self::default();
        if let Some(listen) = pick("TESSERA_LISTEN", from_file.listen) {
            config.listen = parse_addr("TESSERA_LISTEN / listen", &listen)?;
        }
        if let Some(listen) = pick("TESSERA_ADMIN_LISTEN", from_file.admin_listen) {
            config.admin_listen = parse_addr("TESSERA_ADMIN_LISTEN / admin_listen", &listen)?;
        }
        if let Some(dir) = env("TESSERA_DATA_DIR")
            .map(PathBuf::from)
            .or(from_file.data_dir)
        {
            if dir.as_os_str().is_empty() {
                return Err(invalid("TESSERA_DATA_DIR / data_dir", "must not be empty"));
            }
            config.data_dir = dir;
        }
        if let Some(url) = pick("TESSERA_DATABASE_URL", from_file.database_url) {
            let known = ["sqlite:", "postgres://", "postgresql://"];
            if !known.iter().any(|p| url.starts_with(p)) {
                return Err(invalid(
                    "TESSERA_DATABASE_URL / database_url",
                    "must start with sqlite:, postgres:// or postgresql://",
                ));
            }
            config.database_url = Some(url);
        }
        if let Some(url) = pick("TESSERA_PUBLIC_URL", from_file.public_url) {
            config.public_url = Some(
                PublicUrl::parse("public_url", &url)
                    .map_err(|e| invalid("TESSERA_PUBLIC_URL / public_url", e.message))?,
            );
        }
        if let Some(key) = pick("TESSERA_ADMIN_KEY", from_file.admin_key) {
            if key.len() < 16 {
                return Err(invalid(
                    "TESSERA_ADMIN_KEY / admin_key",
                    "must be at least 16 characters",
                ));
            }
            config.admin_key = Some(SecretString::new(key));
        }
        if let Some(key) = pick("TESSERA_MASTER_KEY", from_file.master_key) {
            if key.trim().len() < tessera_core::crypto::MasterKey::MIN_LEN {
                return Err(invalid(
                    "TESSERA_MASTER_KEY / master_key",
                    "must be at least 32 characters",
                ));
            }
            config.master_key = Some(SecretString::new(key));
        }
        if let Some(limit) = from_file.body_limit {
            if !(1024..=16 * 1024 * 1024).contains(&limit) {
                return Err(invalid("body_limit", "must be 1024 to 16777216 bytes"));
            }
            config.body_limit = limit;
        }
        if let Some(log) = pick("TESSERA_LOG", from_file.log) {
            config.log = log;
        }
        if let Some(text) = env("TESSERA_MIGRATE_ON_START") {
            config.migrate_on_start = parse_bool("TESSERA_MIGRATE_ON_START", &text)?;
        } else if let Some(migrate) = from_file.migrate_on_start {
            config.migrate_on_start = migrate;
        }
        let setting = |name: &str, file_value: Option<toml::Value>| {
            env(name).or_else(|| {
                file_value.map(|v| match v {
                    toml::Value::String(text) => text,
                    other => other.to_string(),
                })
            })
        };
        let duration = |key: &'static str, text: Option<String>| {
            text.map(|t| parse_duration(key, &t)).transpose()
        };
        // The three connection timeouts apply to both listeners alike.
        let timeouts: [(&str, &str, Option<toml::Value>, LimitField); 3] = [
            (
                "TESSERA_HEADER_TIMEOUT",
                "TESSERA_HEADER_TIMEOUT / header_timeout",
                from_file.header_timeout,
                |l| &mut l.header_timeout,
            ),
            (
                "TESSERA_BODY_TIMEOUT",
                "TESSERA_BODY_TIMEOUT / body_timeout",
                from_file.body_timeout,
                |l| &mut l.body_timeout,
            ),
            (
                "TESSERA_IDLE_TIMEOUT",
                "TESSERA_IDLE_TIMEOUT / idle_timeout",
                from_file.idle_timeout,
                |l| &mut l.idle_timeout,
            ),
        ];
        for (name, key, file_value, field) in timeouts {
            if let Some(value) = duration(key, setting(name, file_value))? {
                *field(&mut config.public_connections) = value;
                *field(&mut config.admin_connections) = value;
            }
        }
        if let Some(value) = duration(
            "TESSERA_SHUTDOWN_TIMEOUT / shutdown_timeout",
            setting("TESSERA_SHUTDOWN_TIMEOUT", from_file.shutdown_timeout),
        )? {
            config.shutdown_timeout = value;
        }
        if let Some(text) = setting("TESSERA_MAX_CONNECTIONS", from_file.max_connections) {
            config.public_connections.max_connections =
                parse_count("TESSERA_MAX_CONNECTIONS / max_connections", &text)?;
        }
        if let Some(text) = setting(
            "TESSERA_ADMIN_MAX_CONNECTIONS",
            from_file.admin_max_connections,
        ) {
            config.admin_connections.max_connections = parse_count(
                "TESSERA_ADMIN_MAX_CONNECTIONS / admin_max_connections",
                &text,
            )?;
        }
        if let Some(text) = setting(
            "TESSERA_MAX_CONNECTIONS_PER_ADDRESS",
            from_file.max_connections_per_address,
        ) {
            let cap = parse_count(
                "TESSERA_MAX_CONNECTIONS_PER_ADDRESS / max_connections_per_address",
                &text,
            )?;
            config.public_connections.max_connections_per_address = cap;
            config.admin_connections.max_connections_per_address = cap;
        }
        for (name, key, file_value, target) in [
            (
                "TESSERA_FAILED_AUTH_PER_ADDRESS",
                "TESSERA_FAILED_AUTH_PER_ADDRESS / failed_auth_per_address",
                from_file.failed_auth_per_address,
                &mut config.failed_auth_per_address,
            ),
            (
                "TESSERA_FAILED_AUTH_PER_CLIENT",
                "TESSERA_FAILED_AUTH_PER_CLIENT / failed_auth_per_client",
                from_file.failed_auth_per_client,
                &mut config.failed_auth_per_client,
            ),
            (
                "TESSERA_FAILED_ADMIN_AUTH_PER_ADDRESS",
                "TESSERA_FAILED_ADMIN_AUTH_PER_ADDRESS / failed_admin_auth_per_address",
                from_file.failed_admin_auth_per_address,
                &mut config.failed_admin_auth_per_address,
            ),
        ] {
            if let Some(text) = setting(name, file_value) {
                *target = match text.trim().parse::<u32>() {
                    Ok(n) if n <= 1_000_000 => n,
                    _ => {
                        return Err(invalid(
                            key,
                            format!("{text:?} is not a count per minute from 0 (off) to 1000000"),
                        ));
                    }
                };
            }
        }
        let proxies = env("TESSERA_TRUSTED_PROXIES")
            .map(|list| {
                list.split([',', ' '])
                    .filter(|p| !p.trim().is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .or(from_file.trusted_proxies);
        if let Some(proxies) = proxies {
            config.trusted_proxies = proxies
                .iter()
                .map(|p| {
                    IpNet::parse(p).ok_or_else(|| {
                        invalid(
                            "TESSERA_TRUSTED_PROXIES / trusted_proxies",
                            format!("{p:?} is not an address or network (e.g. 10.0.0.0/8)"),
                        )
                    })
                })
                .collect::<Result<_, _>>()?;
        }
        let path =
            |name: &str, file_value: Option<PathBuf>| env(name).map(PathBuf::from).or(file_value);
        config.tls = tls_pair(
            "TESSERA_TLS_CERT / tls_cert",
            path("TESSERA_TLS_CERT", from_file.tls_cert),
            path("TESSERA_TLS_KEY", from_file.tls_key),
        )?;
        config.admin_tls = tls_pair(
            "TESSERA_ADMIN_TLS_CERT / admin_tls_cert",
            path("TESSERA_ADMIN_TLS_CERT", from_file.admin_tls_cert),
            path("TESSERA_ADMIN_TLS_KEY", from_file.admin_tls_key),
        )?;
        Ok(config)
    }

    /// The database URL in effect: the configured one, or SQLite in the data directory.
    pub fn effective_database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("tessera.db").display()),
        }
    }
}

fn parse_addr(key: &'static str, value: &str) -> Result<SocketAddr, ConfigError> {
    value.parse().map_err(|_| {
        invalid(
            key,
            format!("{value:?} is not host:port (e.g. 127.0.0.1:8080)"),
        )
    })
}

/// One of a listener's connection timeouts, to set.
type LimitField = fn(&mut ConnectionLimits) -> &mut Duration;

/// A certificate and its key, both or neither.
fn tls_pair(
    key: &'static str,
    cert: Option<PathBuf>,
    private_key: Option<PathBuf>,
) -> Result<Option<TlsFiles>, ConfigError> {
    match (cert, private_key) {
        (Some(cert), Some(key)) => Ok(Some(TlsFiles { cert, key })),
        (None, None) => Ok(None),
        _ => Err(invalid(
            key,
            "give both the certificate and the key file, or neither",
        )),
    }
}

/// A duration: a number of seconds (`5`, `0.5`) or with a unit (`500ms`, `5s`, `2m`),
/// from 1 ms to a day.
fn parse_duration(key: &'static str, value: &str) -> Result<Duration, ConfigError> {
    let text = value.trim();
    let (number, scale) = if let Some(ms) = text.strip_suffix("ms") {
        (ms, 0.001)
    } else if let Some(s) = text.strip_suffix('s') {
        (s, 1.0)
    } else if let Some(m) = text.strip_suffix('m') {
        (m, 60.0)
    } else {
        (text, 1.0)
    };
    let secs = number.trim().parse::<f64>().ok().map(|n| n * scale);
    match secs {
        Some(secs) if (0.001..=86_400.0).contains(&secs) => Ok(Duration::from_secs_f64(secs)),
        _ => Err(invalid(
            key,
            format!("{value:?} is not a duration from 1ms to 1 day (e.g. 5s, 500ms, 2m)"),
        )),
    }
}

/// A count from 1 to a million.
fn parse_count(key: &'static str, value: &str) -> Result<usize, ConfigError> {
    match value.trim().parse::<usize>() {
        Ok(n) if (1..=1_000_000).contains(&n) => Ok(n),
        _ => Err(invalid(
            key,
            format!("{value:?} is not a whole number from 1 to 1000000"),
        )),
    }
}

fn parse_bool(key: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(invalid(key, format!("{value:?} is not true or false"))),
    }
}

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn defaults_need_nothing() {
        let config = Config::load(None, |_| None).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.admin_listen.to_string(), "127.0.0.1:8081");
        assert!(config.effective_database_url().ends_with("data/tessera.db"));
    }

    #[test]
    fn environment_overrides_file_and_bad_values_name_their_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tessera.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\npublic_url = \"https://a.example/\"\n",
        )
        .unwrap();
        let config =
            Config::load(Some(&path), env_of(&[("TESSERA_LISTEN", "0.0.0.0:9100")])).unwrap();
        assert_eq!(config.listen.to_string(), "0.0.0.0:9100");
        assert_eq!(config.public_url.unwrap().as_str(), "https://a.example");

        let err = Config::load(None, env_of(&[("TESSERA_LISTEN", "nope")])).unwrap_err();
        assert!(err.to_string().starts_with("TESSERA_LISTEN"), "{err}");
        let err = Config::load(None, env_of(&[("TESSERA_MASTER_KEY", "short")])).unwrap_err();
        assert!(err.to_string().contains("TESSERA_MASTER_KEY"), "{err}");

        std::fs::write(&path, "lisen = \"x\"\n").unwrap();
        let err = Config::load(Some(&path), |_| None).unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
    }

    #[test]
    fn connection_settings_take_units_and_name_their_key_when_wrong() {
        let config = Config::load(
            None,
            env_of(&[
                ("TESSERA_HEADER_TIMEOUT", "500ms"),
                ("TESSERA_IDLE_TIMEOUT", "2m"),
                ("TESSERA_SHUTDOWN_TIMEOUT", "1.5"),
                ("TESSERA_MAX_CONNECTIONS_PER_ADDRESS", "64"),
            ]),
        )
        .unwrap();
        for limits in [&config.public_connections, &config.admin_connections] {
            assert_eq!(limits.header_timeout, Duration::from_millis(500));
            assert_eq!(limits.idle_timeout, Duration::from_secs(120));
            assert_eq!(limits.body_timeout, Duration::from_secs(5));
            assert_eq!(limits.max_connections_per_address, 64);
        }
        assert_eq!(config.shutdown_timeout, Duration::from_millis(1500));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tessera.toml");
        std::fs::write(
            &path,
            "body_timeout = 2\nmax_connections = 100\nadmin_max_connections = \"7\"\n",
        )
        .unwrap();
        let config = Config::load(Some(&path), |_| None).unwrap();
        assert_eq!(
            config.public_connections.body_timeout,
            Duration::from_secs(2)
        );
        assert_eq!(config.public_connections.max_connections, 100);
        assert_eq!(config.admin_connections.max_connections, 7);
        for (name, value) in [
            ("TESSERA_BODY_TIMEOUT", "0"),
            ("TESSERA_BODY_TIMEOUT", "5 hours"),
            ("TESSERA_MAX_CONNECTIONS", "0"),
            ("TESSERA_MAX_CONNECTIONS", "-3"),
        ] {
            let env = move |n: &str| (n == name).then(|| value.to_owned());
            let err = Config::load(None, env).unwrap_err();
            assert!(err.to_string().starts_with(name), "{err}");
        }
    }

    #[test]
    fn migrations_run_at_start_unless_told_not_to() {
        assert!(Config::load(None, |_| None).unwrap().migrate_on_start);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tessera.toml");
        std::fs::write(&path, "migrate_on_start = false\n").unwrap();
        assert!(
            !Config::load(Some(&path), |_| None)
                .unwrap()
                .migrate_on_start
        );
        let on = env_of(&[("TESSERA_MIGRATE_ON_START", "true")]);
        assert!(Config::load(Some(&path), on).unwrap().migrate_on_start);
        let off = env_of(&[("TESSERA_MIGRATE_ON_START", "false")]);
        assert!(!Config::load(None, off).unwrap().migrate_on_start);
        let bad = env_of(&[("TESSERA_MIGRATE_ON_START", "maybe")]);
        let err = Config::load(None, bad).unwrap_err();
        assert!(
            err.to_string().contains("TESSERA_MIGRATE_ON_START"),
            "{err}"
        );
    }
}
