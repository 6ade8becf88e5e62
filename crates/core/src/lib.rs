//! Tessera's domain: realms, applications, client authentication, token minting and
//! checking, and the lifecycle rules that invalidate tokens.
//!
//! This crate does no I/O of its own: the store, the clock and the random generator
//! come in from outside (see [`store::Store`], [`authority::Clock`], [`crypto::Random`]).

pub mod authority;
pub mod crypto;
pub mod directory;
pub mod domain;
pub mod error;
pub mod store;

pub use authority::{
    Authority, ClientAuth, Clock, GrantedToken, ManualClock, NewApplication, NewRealm, SystemClock,
    TokenInfo, TokenRequest,
};
pub use error::{FieldError, ManageError, OAuthError, StoreError};
