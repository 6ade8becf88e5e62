//! `tessera token`: fetch an access token from any token endpoint and print it, reusing
//! a cached one while it has life left.
//!
//! Settings come from flags, then the environment (`TESSERA_CLIENT_ID`,
//! `TESSERA_CLIENT_SECRET`, ...; clap reads both), then a profile of the client config
//! file. A profile's secret or key is used only for the profile's own client and token
//! URL, so that mixing sources never sends one client's secret to another endpoint.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::CommandFactory;
use clap::error::ErrorKind;
use serde::Deserialize;
use tessera_client::{
    AuthStyle, ClientCredentials, PrivateKey, RetryPolicy, Secret, Token, TokenFileCache,
    TokenRequest, http_client, unix_now_ms,
};

use crate::cli::{Cli, TokenArgs};

/// The client config file: named profiles.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientConfig {
    #[serde(default)]
    profiles: BTreeMap<String, Profile>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Profile {
    token_url: Option<String>,
    client_id: Option<String>,
    client_secret: Option<Secret>,
    private_key: Option<PathBuf>,
    auth: Option<String>,
    scope: Option<String>,
    #[serde(default)]
    resources: Vec<String>,
}

/// What the command works with once every source has been read.
struct Settings {
    token_url: String,
    client_id: String,
    secret: Option<Secret>,
    key: Option<PrivateKey>,
    style: AuthStyle,
    scope: String,
    resources: Vec<String>,
}

pub async fn run(args: TokenArgs, json: bool) -> anyhow::Result<()> {
    let settings = settings(&args)?;
    let credentials = ClientCredentials::new(
        &settings.client_id,
        settings.style,
        settings.secret,
        settings.key,
    )
    .map_err(|e| usage(&e.to_string()))?;
    let mut request = TokenRequest::parse(&settings.token_url, credentials)
        .map_err(|e| usage(&format!("--token-url: {e}")))?
        .scope(settings.scope);
    for resource in settings.resources {
        request = request.resource(resource);
    }

    let cache = if args.no_cache {
        None
    } else {
        args.cache_dir
            .clone()
            .or_else(|| TokenFileCache::default_dir(|name| std::env::var(name).ok()))
            .map(TokenFileCache::new)
    };
    if let Some(hit) = cache.as_ref().and_then(|c| c.load(&request)) {
        print(&hit.token, Some(hit.expires_in()), json);
        return Ok(());
    }

    let http = http_client()?;
    let obtained_at = unix_now_ms();
    let token = RetryPolicy::default()
        .run(&http, &request)
        .await
        .with_context(|| format!("no token from {}", request.endpoint()))?;
    if let Some(cache) = &cache
        && let Err(err) = cache.store(&request, &token, obtained_at)
    {
        eprintln!(
            "warning: cannot cache the token in {}: {err}",
            cache.dir().display()
        );
    }
    print(&token, None, json);
    Ok(())
}

/// The token alone, or with `--json` the whole response (`expires_in` counting from now
/// for a cached token).
fn print(token: &Token, expires_in_now: Option<u64>, json: bool) {
    if !json {
        println!("{}", token.access_token().expose());
        return;
    }
    let mut response = token.response().clone();
    if let (Some(left), Some(object)) = (expires_in_now, response.as_object_mut()) {
        object.insert("expires_in".into(), left.into());
    }
    match serde_json::to_string_pretty(&response) {
        Ok(text) => println!("{text}"),
        Err(err) => eprintln!("error: cannot render JSON: {err}"),
    }
}

fn settings(args: &TokenArgs) -> anyhow::Result<Settings> {
    let profile = match &args.profile {
        Some(name) => load_profile(args.client_config.as_deref(), name)?,
        None => Profile::default(),
    };
    let token_url = args
        .token_url
        .clone()
        .or_else(|| profile.token_url.clone())
        .ok_or_else(|| usage("--token-url (or TESSERA_TOKEN_URL, or a profile) is required"))?;
    let client_id = args
        .client_id
        .clone()
        .or_else(|| profile.client_id.clone())
        .ok_or_else(|| usage("--client-id (or TESSERA_CLIENT_ID, or a profile) is required"))?;
    // The profile's credentials belong to the profile's client at the profile's server.
    let profile_applies = profile.client_id.as_deref() == Some(client_id.as_str())
        && profile.token_url.as_deref() == Some(token_url.as_str());
    let secret = args.client_secret.clone().map(Secret::new).or_else(|| {
        profile_applies
            .then(|| profile.client_secret.clone())
            .flatten()
    });
    let key_path = args.private_key.clone().or_else(|| {
        profile_applies
            .then(|| profile.private_key.clone())
            .flatten()
    });
    let key = key_path.as_deref().map(read_private_key).transpose()?;
    let style = match args.auth.as_deref().or(profile.auth.as_deref()) {
        Some(name) => name
            .parse::<AuthStyle>()
            .map_err(|e| usage(&format!("--auth: {e}")))?,
        None => match (&secret, &key) {
            (Some(_), Some(_)) => AuthStyle::SignedCredential,
            (None, Some(_)) => AuthStyle::PrivateKeyJwt,
            _ => AuthStyle::Basic,
        },
    };
    let scope = if args.scope.is_empty() {
        profile.scope.clone().unwrap_or_default()
    } else {
        args.scope.join(" ")
    };
    let resources = if args.resource.is_empty() {
        profile.resources.clone()
    } else {
        args.resource.clone()
    };
    Ok(Settings {
        token_url,
        client_id,
        secret,
        key,
        style,
        scope,
        resources,
    })
}

/// `~/.config/tessera/client.toml` (or `$XDG_CONFIG_HOME/tessera/client.toml`).
fn default_config_path() -> Option<PathBuf> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    var("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|home| Path::new(&home).join(".config")))
        .map(|base| base.join("tessera").join("client.toml"))
}

fn load_profile(path: Option<&Path>, name: &str) -> anyhow::Result<Profile> {
    let path = match path {
        Some(path) => path.to_owned(),
        None => default_config_path()
            .ok_or_else(|| usage("--client-config is required: no HOME to find it in"))?,
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read the client config {}", path.display()))?;
    let mut config: ClientConfig = toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("client config {}: {}", path.display(), e.message()))?;
    let profile = config.profiles.remove(name).ok_or_else(|| {
        let known: Vec<&str> = config.profiles.keys().map(String::as_str).collect();
        usage(&format!(
            "no profile {name:?} in {} (it has: {})",
            path.display(),
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        ))
    })?;
    if profile.client_secret.is_some() && !is_owner_only(&path)? {
        bail!(
            "{} holds a client secret and others can read it: chmod 600 it",
            path.display()
        );
    }
    Ok(profile)
}

fn read_private_key(path: &Path) -> anyhow::Result<PrivateKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the private key {}", path.display()))?;
    PrivateKey::from_pem(&text).with_context(|| format!("private key {}", path.display()))
}

#[cfg(unix)]
fn is_owner_only(path: &Path) -> anyhow::Result<bool> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .permissions()
        .mode();
    Ok(mode & 0o077 == 0)
}

#[cfg(not(unix))]
fn is_owner_only(_path: &Path) -> anyhow::Result<bool> {
    Ok(true)
}

/// A usage error: clap prints it with the usage line and the process exits 2, as for
/// any other bad argument.
fn usage(message: &str) -> anyhow::Error {
    let mut cli = Cli::command();
    // Built, so that the subcommand's usage line reads `tessera token ...`.
    cli.build();
    match cli.find_subcommand_mut("token") {
        Some(token) => token
            .error(ErrorKind::MissingRequiredArgument, message)
            .exit(),
        None => cli
            .error(ErrorKind::MissingRequiredArgument, message)
            .exit(),
    }
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profile")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}
