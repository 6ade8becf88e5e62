//! Entry points for the fuzz targets in `fuzz/` (the `fuzzing` feature): thin wrappers
//! around the private parsing code, and nothing else. Not an API.

use axum::http::HeaderMap;
use axum::response::IntoResponse;
use tessera_core::{ClientAuth, OAuthError};

use crate::request::{self, Params};

/// The dashboard's form reader and its value readings, compiled a second time from the
/// file the dashboard uses: the dashboard keeps its modules private, and this way only
/// fuzzing builds see them.
#[allow(dead_code, clippy::duplicate_mod)]
#[path = "dashboard/form.rs"]
pub mod form;

/// A request body as the public endpoints read it.
pub struct Body<'a>(Params<'a>);

impl<'a> Body<'a> {
    /// [`Params::parse`]; on failure, the HTTP status the error answers with.
    pub fn parse(headers: &HeaderMap, body: &'a [u8]) -> Result<Self, u16> {
        Params::parse(headers, body)
            .map(Self)
            .map_err(|e| e.into_response().status().as_u16())
    }

    pub fn single(&self, name: &str) -> Result<Option<&str>, OAuthError> {
        self.0.single(name)
    }

    pub fn all(&self, name: &str) -> Vec<String> {
        self.0.all(name)
    }

    /// How the client authenticates, from the `Authorization` header and this body.
    pub fn client_auth(&self, headers: &HeaderMap) -> Result<ClientAuth, OAuthError> {
        request::client_auth(headers, &self.0)
    }
}

/// The bearer token of an `Authorization` header.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    request::bearer_token(headers)
}

/// Where the dashboard goes after signing in, given the `next` it was asked for.
pub fn sign_in_next(next: &str) -> &str {
    crate::dashboard::local_path(next)
}
