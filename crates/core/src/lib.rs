//! Tessera's domain: realms, applications, client authentication, token minting and
//! checking, and the lifecycle rules that invalidate tokens.
//!
//! This crate does no I/O of its own: the store, the clock and the random generator
//! come in from outside (see [`store::Store`], [`shared::Clock`], [`crypto::Random`]).
//!
//! [`Authority`] is the one value the server holds; its parts are modules of their
//! own, each importing only from those below it (see `authority.rs`).

pub mod authority;
pub mod client_auth;
pub mod client_keys;
pub mod crypto;
pub mod directory;
pub mod domain;
pub mod error;
pub mod manage;
pub mod quota;
pub mod replay;
mod sessions;
pub mod shared;
pub mod store;
mod sync;
pub mod tokens;
pub mod usage;

pub use authority::Authority;
pub use client_auth::ClientAuth;
pub use error::{FieldError, ManageError, OAuthError, StoreError};
pub use manage::{NewApplication, NewRealm, SCHEDULED_KEY_LEAD_SECS};
pub use shared::{Actor, Audit, Clock, ManualClock, Offered, SystemClock};
pub use tokens::{Dialect, GrantedToken, StateLimits, TokenInfo, TokenRequest};
