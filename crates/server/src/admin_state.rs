//! What the admin listener's two front ends share: the admin API (`admin.rs`) and the
//! dashboard (`dashboard/`) both read it, and neither owns it.

use std::sync::Arc;

use tessera_core::Authority;

use crate::config::SecretString;
use crate::limiter::AuthGuard;

pub struct AdminState {
    pub authority: Arc<Authority>,
    pub admin_key: SecretString,
    pub body_limit: usize,
    /// Failed-authentication limits for the admin key (API and dashboard sign-in).
    pub guard: Arc<AuthGuard>,
}
