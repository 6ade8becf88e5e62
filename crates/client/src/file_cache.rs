//! Tokens kept on disk between runs of a command-line program, one owner-only file per
//! (endpoint, client, scope, resources) and credentials, reused until shortly before
//! they expire.
//!
//! The file name is a digest of what identifies the token, the credentials' fingerprint
//! included, so that a token obtained with one secret is never handed to a caller who
//! presents another. A file that others can read, or that is not a plain file, is
//! ignored and replaced.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest::{SHA256, digest};
use serde::{Deserialize, Serialize};

use crate::token::{Token, TokenRequest};

/// The most a cached token is retired before its expiry.
const MAX_MARGIN: Duration = Duration::from_secs(60);

/// A directory of cached tokens.
#[derive(Debug, Clone)]
pub struct TokenFileCache {
    dir: PathBuf,
}

/// A token read from the cache.
#[derive(Debug, Clone)]
pub struct CachedToken {
    pub token: Token,
    /// Unix milliseconds.
    pub expires_at_ms: u64,
}

impl CachedToken {
    /// Whole seconds the token has left.
    pub fn expires_in(&self) -> u64 {
        self.expires_at_ms.saturating_sub(now_ms()) / 1000
    }
}

#[derive(Serialize, Deserialize)]
struct Entry {
    version: u32,
    endpoint: String,
    client_id: String,
    scope: String,
    obtained_at_ms: u64,
    expires_at_ms: u64,
    response: serde_json::Value,
}

impl TokenFileCache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// `$XDG_CACHE_HOME/tessera/tokens`, else `$HOME/.cache/tessera/tokens`.
    pub fn default_dir(env: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
        let non_empty = |name: &str| env(name).filter(|v| !v.is_empty());
        non_empty("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| non_empty("HOME").map(|home| Path::new(&home).join(".cache")))
            .map(|base| base.join("tessera").join("tokens"))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file that holds the token of `request`.
    pub fn path_for(&self, request: &TokenRequest) -> PathBuf {
        let key = request.cache_key();
        let mut material = Vec::new();
        for part in [&key.endpoint, &key.client_id, &key.scope] {
            material.extend_from_slice(part.as_bytes());
            material.push(0);
        }
        for resource in &key.resources {
            material.extend_from_slice(resource.as_bytes());
            material.push(0);
        }
        material.extend_from_slice(&key.credentials);
        let name: String = digest(&SHA256, &material)
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        self.dir.join(format!("{name}.json"))
    }

    /// The cached token for `request`, if there is one with more than a little life
    /// left (a tenth of its life, at most a minute).
    pub fn load(&self, request: &TokenRequest) -> Option<CachedToken> {
        let path = self.path_for(request);
        let metadata = fs::symlink_metadata(&path).ok()?;
        if !metadata.file_type().is_file() || !is_owner_only(&metadata) {
            return None;
        }
        let entry: Entry = serde_json::from_slice(&fs::read(&path).ok()?).ok()?;
        let lifetime = entry.expires_at_ms.saturating_sub(entry.obtained_at_ms);
        let margin = (lifetime / 10).min(u64::try_from(MAX_MARGIN.as_millis()).unwrap_or(0));
        if entry.version != 1 || now_ms().saturating_add(margin) >= entry.expires_at_ms {
            return None;
        }
        let token = Token::from_response(entry.response).ok()?;
        Some(CachedToken {
            token,
            expires_at_ms: entry.expires_at_ms,
        })
    }

    /// Keeps `token`, obtained for `request` at `obtained_at_ms` (unix milliseconds,
    /// taken before the request was sent), in an owner-only file. Expired files of
    /// other tokens are removed on the way.
    pub fn store(
        &self,
        request: &TokenRequest,
        token: &Token,
        obtained_at_ms: u64,
    ) -> io::Result<()> {
        let Some(expires_in) = token.expires_in() else {
            // Without a lifetime there is no telling when to stop reusing it.
            return Ok(());
        };
        create_private_dir(&self.dir)?;
        self.remove_expired();
        let key = request.cache_key();
        let entry = Entry {
            version: 1,
            endpoint: key.endpoint,
            client_id: key.client_id,
            scope: key.scope,
            obtained_at_ms,
            expires_at_ms: obtained_at_ms.saturating_add(expires_in.saturating_mul(1000)),
            response: token.response().clone(),
        };
        let text = serde_json::to_vec(&entry).map_err(io::Error::other)?;
        let path = self.path_for(request);
        let mut suffix = [0u8; 8];
        aws_lc_rs::rand::fill(&mut suffix).map_err(|_| io::Error::other("no randomness"))?;
        let temp = path.with_extension(format!("{}.tmp", u64::from_le_bytes(suffix)));
        let written = write_private(&temp, &text).and_then(|()| fs::rename(&temp, &path));
        if written.is_err() {
            let _ = fs::remove_file(&temp);
        }
        written
    }

    /// Removes the file of `request`'s token, if any.
    pub fn remove(&self, request: &TokenRequest) -> io::Result<()> {
        match fs::remove_file(self.path_for(request)) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
            _ => Ok(()),
        }
    }

    fn remove_expired(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        let now = now_ms();
        for file in entries.flatten() {
            let path = file.path();
            let is_ours = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.len() == 69 && n.ends_with(".json"));
            if !is_ours {
                continue;
            }
            let expired = fs::read(&path)
                .ok()
                .and_then(|bytes| serde_json::from_slice::<Entry>(&bytes).ok())
                .is_none_or(|entry| entry.expires_at_ms <= now);
            if expired {
                let _ = fs::remove_file(&path);
            }
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Unix milliseconds now, for [`TokenFileCache::store`].
pub fn unix_now_ms() -> u64 {
    now_ms()
}

#[cfg(unix)]
fn is_owner_only(metadata: &fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    metadata.permissions().mode() & 0o077 == 0
}

#[cfg(not(unix))]
fn is_owner_only(_metadata: &fs::Metadata) -> bool {
    true
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    // A directory made earlier by someone less careful is tightened.
    let mode = fs::metadata(dir)?.permissions().mode();
    if mode & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::ClientCredentials;

    fn request(secret: &str, scope: &str) -> TokenRequest {
        TokenRequest::parse(
            "https://as.example/oauth2/token",
            ClientCredentials::basic("svc", secret),
        )
        .unwrap()
        .scope(scope)
    }

    fn token(expires_in: u64) -> Token {
        Token::from_response(serde_json::json!({
            "access_token": "tok-123", "token_type": "Bearer", "expires_in": expires_in
        }))
        .unwrap()
    }

    #[test]
    fn a_stored_token_comes_back_for_the_same_request_only() {
        let dir = tempfile::tempdir().unwrap();
        let cache = TokenFileCache::new(dir.path().join("tokens"));
        let req = request("s1", "read write");
        assert!(cache.load(&req).is_none());
        cache.store(&req, &token(3600), now_ms()).unwrap();
        let hit = cache.load(&request("s1", "write read")).unwrap();
        assert_eq!(hit.token.access_token().expose(), "tok-123");
        assert!(hit.expires_in() > 3590);
        assert!(cache.load(&request("other-secret", "read write")).is_none());
        assert!(cache.load(&request("s1", "read")).is_none());

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let path = cache.path_for(&req);
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let dir_mode = fs::metadata(cache.dir()).unwrap().permissions().mode();
            assert_eq!(dir_mode & 0o777, 0o700);
            let text = fs::read_to_string(&path).unwrap();
            assert!(!text.contains("s1\""), "the secret is not stored");
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
            assert!(cache.load(&req).is_none(), "a readable file is ignored");
        }
    }

    #[test]
    fn tokens_near_their_end_are_not_reused_and_expired_files_go() {
        let dir = tempfile::tempdir().unwrap();
        let cache = TokenFileCache::new(dir.path());
        let req = request("s1", "");
        // Obtained 95 s ago, living 100 s: 5 s left, under the 10 s margin.
        cache.store(&req, &token(100), now_ms() - 95_000).unwrap();
        assert!(cache.load(&req).is_none());
        let other = request("s2", "");
        cache.store(&other, &token(10), now_ms() - 20_000).unwrap();
        cache.store(&req, &token(100), now_ms()).unwrap();
        assert!(
            !cache.path_for(&other).exists(),
            "the expired file was removed"
        );
        assert!(cache.load(&req).is_some());
        cache.remove(&req).unwrap();
        assert!(cache.load(&req).is_none());
    }
}
