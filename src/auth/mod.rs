//! Authentication: who a caller is, from the credentials a request carries. Today that is
//! the admin token, the root key for bootstrap; scoped API keys (stored hashed, with their
//! scopes, expiry and revocation) and the short-lived signed tokens browsers get join here.
//!
//! It owns how credentials are read, compared and stored. It may import `config`, the
//! stores and `events`; never HTTP, a mode or the process state. The HTTP edge
//! (`http::auth`) asks it who a request's caller is and answers 401 or 403.

use crate::config::Secret;

/// Whether an `Authorization` header value carries the admin token; never when none is
/// configured, so a deployment without one refuses everyone rather than falling open.
pub fn is_admin(admin_token: Option<&Secret>, authorization: Option<&str>) -> bool {
    let Some(expected) = admin_token else {
        return false;
    };
    authorization
        .and_then(bearer_token)
        .is_some_and(|token| constant_time_eq(token.as_bytes(), expected.expose().as_bytes()))
}

/// The token of a `Bearer` authorization, scheme matched without regard to case.
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Compares without an early exit, so timing does not reveal how much of a guess matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_scheme_is_case_insensitive_and_others_are_refused() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer abc"), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer"), None);
    }

    #[test]
    fn tokens_compare_equal_only_when_identical() {
        assert!(constant_time_eq(b"secret-token", b"secret-token"));
        assert!(!constant_time_eq(b"secret-token", b"secret-tokem"));
        assert!(!constant_time_eq(b"secret", b"secret-token"));
    }

    #[test]
    fn without_a_configured_token_nobody_is_admin() {
        let token = Secret::new("a-long-enough-admin-token".to_owned());
        let header = Some("Bearer a-long-enough-admin-token");
        assert!(is_admin(Some(&token), header));
        assert!(!is_admin(None, header));
        assert!(!is_admin(Some(&token), None));
    }
}
