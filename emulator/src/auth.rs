//! Checking the AAD bearer tokens that callers present to the emulated services.
//!
//! A token is good when this emulator signed it (only `/msi/token` issues AAD tokens), its issuer
//! is our tenant's v1 issuer, it is within its lifetime, it was not revoked through
//! `POST /_emulator/identity/expire`, and its `aud` is one the service accepts (its listener's
//! `audiences`, `crate::listeners`). Each service
//! turns an [`AuthFailure`] into its own 401 shape.

use serde_json::Value;

use crate::state::AppState;
use crate::tokens::{claim_i64, claim_str, now, same_audience, Claims};

/// AAD tolerates this much clock skew on `nbf`.
const NBF_SKEW_SECS: i64 = 300;

#[derive(Debug)]
pub enum AuthFailure {
    Missing,
    /// Not ours, malformed, or the wrong issuer.
    Invalid,
    Expired {
        exp: i64,
    },
    NotYetValid,
    WrongAudience(String),
    /// Revoked by the control API (stands in for an expired token the client still holds).
    Revoked {
        exp: i64,
    },
}

impl AuthFailure {
    /// Why a data plane refused the token, for its 401 text (`audience`: the one it wants).
    pub fn describe(&self, audience: &str) -> String {
        match self {
            AuthFailure::Missing => "the request has no credential".to_owned(),
            AuthFailure::WrongAudience(aud) => format!("the token's audience '{aud}' is not '{audience}'"),
            AuthFailure::Expired { .. } | AuthFailure::Revoked { .. } => "the token has expired".to_owned(),
            AuthFailure::Invalid | AuthFailure::NotYetValid => "the token is not valid".to_owned(),
        }
    }
}

pub fn check_aad(st: &AppState, token: Option<&str>, audiences: &[&str]) -> Result<Claims, AuthFailure> {
    let token = token.filter(|t| !t.is_empty()).ok_or(AuthFailure::Missing)?;
    let claims = st.signer.verify(token).map_err(|_| AuthFailure::Invalid)?;
    if claim_str(&claims, "iss") != Some(st.config.issuer().as_str()) {
        return Err(AuthFailure::Invalid);
    }
    let exp = claim_i64(&claims, "exp").ok_or(AuthFailure::Invalid)?;
    let now = now();
    if exp <= now {
        return Err(AuthFailure::Expired { exp });
    }
    if claim_i64(&claims, "nbf").is_some_and(|nbf| nbf > now + NBF_SKEW_SECS) {
        return Err(AuthFailure::NotYetValid);
    }
    let aud = claims.get("aud").and_then(Value::as_str).unwrap_or_default().to_owned();
    if !audiences.iter().any(|a| same_audience(a, &aud)) {
        return Err(AuthFailure::WrongAudience(aud));
    }
    if claim_str(&claims, "uti").is_some_and(|uti| st.identity.is_revoked(uti)) {
        return Err(AuthFailure::Revoked { exp });
    }
    Ok(claims)
}

/// `2026-11-27T10:00:00Z`-style UTC time for error messages.
pub fn utc(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}
