//! A Tessera server started in the test's own process.

use tempfile::TempDir;
use tessera_server::{Config, Running, SecretString};

/// A server on ephemeral loopback ports, with a data directory of its own that lives
/// as long as this value. Whoever holds it shuts the server down (`running.shutdown()`)
/// when the test is done.
pub struct Started {
    pub running: Running,
    pub data_dir: TempDir,
}

impl Started {
    /// `http://127.0.0.1:PORT` of the public listener.
    pub fn public_base(&self) -> String {
        format!("http://{}", self.running.public_addr)
    }

    /// `http://127.0.0.1:PORT` of the admin listener.
    pub fn admin_base(&self) -> String {
        format!("http://{}", self.running.admin_addr)
    }
}

/// Starts a server with the given admin and master keys (the master key at least 32
/// characters), both listeners on port 0 and a fresh data directory, after `tweak`
/// changed that configuration.
pub async fn start(admin_key: &str, master_key: &str, tweak: impl FnOnce(&mut Config)) -> Started {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config {
        listen: "127.0.0.1:0".parse().expect("address"),
        admin_listen: "127.0.0.1:0".parse().expect("address"),
        data_dir: data_dir.path().to_owned(),
        admin_key: Some(SecretString::new(admin_key.into())),
        master_key: Some(SecretString::new(master_key.into())),
        ..Config::default()
    };
    tweak(&mut config);
    let running = tessera_server::start(config).await.expect("server starts");
    Started { running, data_dir }
}
