//! Tessera's domain: realms, applications, client authentication, token minting and
//! checking, and the lifecycle rules that invalidate tokens.
//!
//! This crate does no I/O of its own: the store, the clock and the random generator
//! come in from outside (see [`store::Store`], [`authority::Clock`], [`crypto::Random`]).

pub mod authority;
pub mod client_auth;
pub mod client_keys;
pub mod crypto;
pub mod directory;
pub mod domain;
pub mod error;
pub mod quota;
pub mod replay;
pub mod store;
pub mod tokens;
pub mod usage;

pub use authority::{
    Actor, Audit, Authority, Clock, ManualClock, NewApplication, NewRealm, SCHEDULED_KEY_LEAD_SECS,
    StateLimits, SystemClock,
};
pub use client_auth::ClientAuth;
pub use error::{FieldError, ManageError, OAuthError, StoreError};
pub use tokens::{Dialect, GrantedToken, TokenInfo, TokenRequest};
