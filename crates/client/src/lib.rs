//! The calling side of Tessera, usable with any OAuth 2.0 authorization server.
//!
//! For programs that call token-protected APIs:
//! - [`TokenRequest`]: one client-credentials request, with the client authenticated by
//!   Basic, form or JSON secret, a signed credential (RSA, dialect D1) or a
//!   `private_key_jwt` assertion ([`ClientCredentials`]);
//! - [`TokenSource`]: one shared token per (endpoint, client, scope), refreshed ahead of
//!   expiry, one request in flight however many tasks wait, transient failures retried;
//! - [`AuthorizedClient`]: reqwest with the bearer header added, retried once on 401;
//! - [`TokenFileCache`]: tokens kept on disk between runs of a command-line program.
//!
//! For APIs that receive tokens: [`resource::TokenVerifier`] and the tower layer
//! [`resource::BearerAuthLayer`].
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use tessera_client::{ClientCredentials, TokenRequest, TokenSource};
//!
//! let source = TokenSource::new()?;
//! let request = TokenRequest::parse(
//!     "https://auth.example.com/oauth2/token",
//!     ClientCredentials::basic("my-client", "my-secret"),
//! )?
//! .scope("read");
//! let token = source.token(&request).await?;
//! # let _ = token;
//! # Ok(())
//! # }
//! ```

mod authorized;
mod credentials;
mod file_cache;
mod keys;
pub mod resource;
mod secret;
mod source;
mod token;

pub use crate::authorized::{AuthorizedClient, AuthorizedError};
pub use crate::credentials::{AuthStyle, ClientCredentials, CredentialsError, JWT_BEARER};
pub use crate::file_cache::{CachedToken, TokenFileCache, unix_now_ms};
pub use crate::keys::{JwsAlg, KeyError, PrivateKey};
pub use crate::secret::Secret;
pub use crate::source::{RefreshPolicy, RetryPolicy, TokenSource, TokenSourceBuilder};
pub use crate::token::{
    Token, TokenError, TokenKey, TokenRequest, http_client, http_client_builder,
};
pub use jsonwebtoken::Algorithm;
