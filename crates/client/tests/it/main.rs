//! The client library against real Tessera servers started in-process on port 0 (and,
//! where a test needs to forge tokens or fail on purpose, against small stand-ins).

// Test code may stop at the first surprise, helpers included.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod authorized;
mod fake_issuer;
mod resource;
mod server;
mod source;
