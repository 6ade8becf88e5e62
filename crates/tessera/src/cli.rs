//! The command line: what each command and flag means.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "tessera",
    version,
    about = "OAuth 2.0 authorization server for machine-to-machine access"
)]
pub struct Cli {
    /// TOML settings file; `TESSERA_*` environment variables override it.
    #[arg(long, global = true, env = "TESSERA_CONFIG")]
    pub config: Option<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server in the foreground until SIGTERM or Ctrl-C.
    Serve,
    /// Apply pending database migrations, then exit (safe from several nodes at once).
    Migrate,
    /// Manage realms (isolated tenants).
    #[command(subcommand)]
    Realm(RealmCommand),
    /// Manage applications (OAuth clients) of a realm.
    #[command(subcommand)]
    App(AppCommand),
    /// Show the audit log of administrative changes, newest first.
    Audit {
        /// Only this realm's changes.
        #[arg(long)]
        realm: Option<String>,
        /// Only this application's changes.
        #[arg(long)]
        client_id: Option<String>,
        /// At most this many (1 to 1000).
        #[arg(long, default_value_t = tessera_server::operations::DEFAULT_PAGE)]
        limit: u32,
        /// Only entries older than this seq (the last one of the previous page).
        #[arg(long)]
        before: Option<i64>,
    },
    /// Fetch an access token from a token endpoint and print it (cached until shortly
    /// before it expires).
    Token(Box<TokenArgs>),
}

#[derive(Debug, Subcommand)]
pub enum RealmCommand {
    /// Create a realm.
    Create {
        name: String,
        #[command(flatten)]
        settings: RealmSettings,
    },
    /// List realms.
    List,
    /// Show one realm.
    Show { name: String },
    /// Change a realm's settings.
    Update {
        name: String,
        #[command(flatten)]
        settings: RealmSettings,
        /// Remove the realm's own public URL.
        #[arg(long, conflicts_with = "public_url")]
        clear_public_url: bool,
        /// Stop rotating keys on a schedule.
        #[arg(long, conflicts_with = "key_rotation")]
        no_key_rotation: bool,
    },
    /// Delete a realm with its applications.
    Delete { name: String },
    /// Add a new signing key: published in the JWKS at once, signing after a lead.
    /// The keys it replaces stay published until every token they signed expired.
    RotateKeys {
        name: String,
        /// Seconds until the new key signs (0: at once; every node switches within a second).
        #[arg(long, default_value_t = tessera_server::operations::DEFAULT_KEY_LEAD_SECS)]
        activate_in: u64,
    },
}

#[derive(Debug, Args)]
pub struct RealmSettings {
    /// A host name served by this realm at the root paths (repeatable).
    #[arg(long = "host")]
    pub hosts: Vec<String>,
    /// The realm's own issuer URL.
    #[arg(long)]
    pub public_url: Option<String>,
    /// Default token format: jwt or opaque.
    #[arg(long)]
    pub token_format: Option<String>,
    /// ES256, RS256 or EdDSA.
    #[arg(long)]
    pub signing_alg: Option<String>,
    /// Prefix of opaque tokens (default tsr_at_).
    #[arg(long)]
    pub token_prefix: Option<String>,
    /// How token_type is spelled: Bearer or bearer.
    #[arg(long)]
    pub token_type: Option<String>,
    /// Rotate signing keys on a schedule: seconds between rotations (at least 86400).
    #[arg(long)]
    pub key_rotation: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Create an application and print its client_id and client_secret (shown once).
    Create {
        #[command(flatten)]
        realm: RealmArg,
        #[arg(long)]
        name: String,
        /// Choose the client_id instead of generating one.
        #[arg(long)]
        client_id: Option<String>,
        #[command(flatten)]
        settings: AppSettings,
    },
    /// List the applications of a realm.
    List {
        #[command(flatten)]
        realm: RealmArg,
        /// At most this many (1 to 1000).
        #[arg(long, default_value_t = tessera_server::operations::DEFAULT_PAGE)]
        limit: u32,
        /// Start after this client_id (the last one of the previous page).
        #[arg(long)]
        after: Option<String>,
        /// Only those whose name or client_id contains this text (ignoring case).
        #[arg(long)]
        search: Option<String>,
    },
    /// Show one application.
    Show {
        client_id: String,
        #[command(flatten)]
        realm: RealmArg,
    },
    /// Change an application's settings.
    Update {
        client_id: String,
        #[command(flatten)]
        realm: RealmArg,
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        settings: AppSettings,
        /// Let the application get tokens again.
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        /// Stop the application and every token it holds.
        #[arg(long)]
        disable: bool,
        /// Remove the quota: no limit per minute or per day.
        #[arg(long, conflicts_with_all = ["quota_per_minute", "quota_per_day"])]
        no_quota: bool,
    },
    /// Delete an application; its tokens stop working.
    Delete {
        client_id: String,
        #[command(flatten)]
        realm: RealmArg,
    },
    /// Give the application a new secret.
    RotateSecret {
        client_id: String,
        #[command(flatten)]
        realm: RealmArg,
        /// Seconds the old secret keeps working (0: it stops now, with every token).
        #[arg(long, default_value_t = 0)]
        grace_period: u64,
    },
    /// Issue a token with a lifetime of your choosing.
    IssueToken {
        client_id: String,
        #[command(flatten)]
        realm: RealmArg,
        /// Lifetime in seconds (default: the application's).
        #[arg(long)]
        ttl: Option<u64>,
        /// Space-separated scopes (default: the application's default scopes).
        #[arg(long)]
        scopes: Option<String>,
    },
    /// Make every token the application holds stop working.
    RevokeTokens {
        client_id: String,
        #[command(flatten)]
        realm: RealmArg,
    },
}

#[derive(Debug, Args)]
pub struct RealmArg {
    /// The realm (default: default).
    #[arg(long, default_value = "default")]
    pub realm: String,
}

#[derive(Debug, Args)]
pub struct AppSettings {
    /// Allowed scopes, space-separated ("read write").
    #[arg(long)]
    pub scopes: Option<String>,
    /// Scopes a request without `scope` gets (default: all allowed).
    #[arg(long)]
    pub default_scopes: Option<String>,
    /// Requests must name a scope.
    #[arg(long)]
    pub scope_required: Option<bool>,
    /// Access token lifetime in seconds.
    #[arg(long)]
    pub token_ttl: Option<u64>,
    /// jwt or opaque (default: the realm's).
    #[arg(long)]
    pub token_format: Option<String>,
    /// Refresh token lifetime in seconds (enables refresh tokens).
    #[arg(long)]
    pub refresh_token_ttl: Option<u64>,
    /// Allowed auth methods, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub auth_methods: Option<Vec<String>>,
    /// A file holding the application's public key (PEM).
    #[arg(long)]
    pub public_key: Option<PathBuf>,
    /// Audiences, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub audiences: Option<Vec<String>>,
    /// Roles shown in Keycloak-style tokens, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub roles: Option<Vec<String>>,
    /// At most this many tokens granted per minute (1 to 1000000000; on update, the
    /// day quota stays as it was).
    #[arg(long)]
    pub quota_per_minute: Option<u64>,
    /// At most this many tokens granted per UTC day (1 to 1000000000; on update, the
    /// minute quota stays as it was).
    #[arg(long)]
    pub quota_per_day: Option<u64>,
}

/// `tessera token`: flags win over `TESSERA_*` variables, which win over a profile.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The token endpoint, e.g. https://auth.example.com/oauth2/token.
    #[arg(long, env = "TESSERA_TOKEN_URL")]
    pub token_url: Option<String>,
    /// The client id.
    #[arg(long, env = "TESSERA_CLIENT_ID", allow_hyphen_values = true)]
    pub client_id: Option<String>,
    /// The client secret. Prefer the variable: other users can see arguments.
    #[arg(
        long,
        env = "TESSERA_CLIENT_SECRET",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    pub client_secret: Option<String>,
    /// A PEM private key file (RSA, P-256 or Ed25519), for signed-credential or
    /// private-key-jwt.
    #[arg(long, env = "TESSERA_PRIVATE_KEY")]
    pub private_key: Option<PathBuf>,
    /// How the client authenticates (default: basic with a secret, private-key-jwt
    /// with a key, signed-credential with both).
    #[arg(long, value_parser = ["basic", "post", "json", "signed-credential", "private-key-jwt"])]
    pub auth: Option<String>,
    /// Scopes to ask for, space-separated (repeatable; default: the client's).
    #[arg(long)]
    pub scope: Vec<String>,
    /// A resource (audience) to ask for, RFC 8707 (repeatable).
    #[arg(long)]
    pub resource: Vec<String>,
    /// A profile of the client config file holding the settings above.
    #[arg(long, env = "TESSERA_PROFILE")]
    pub profile: Option<String>,
    /// The client config file (default: ~/.config/tessera/client.toml).
    #[arg(long, env = "TESSERA_CLIENT_CONFIG")]
    pub client_config: Option<PathBuf>,
    /// Ask the server even if a cached token is still good, and cache nothing.
    #[arg(long)]
    pub no_cache: bool,
    /// Where tokens are cached (default: ~/.cache/tessera/tokens).
    #[arg(long, env = "TESSERA_TOKEN_CACHE")]
    pub cache_dir: Option<PathBuf>,
}
