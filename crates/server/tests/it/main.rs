//! HTTP integration tests of the Tessera server: every test starts its own server on
//! port 0 with a fresh data directory and talks to it over real sockets.

// Test code may stop at the first surprise, helpers included.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod admin;
mod bad_input;
mod connections;
mod dashboard;
mod dialects;
mod formats;
mod fuzz;
mod harness;
mod introspection;
mod lifecycle;
mod limits;
mod metadata;
mod quotas;
mod realms;
mod revocation;
mod schema_regressions;
mod scopes;
mod snapshots;
mod tls;
mod token;
mod verify;
