//! Authentication: who a caller is, from the credentials a request carries: the admin
//! token (the root key for bootstrap, which `app.admin_token_enabled = false` turns off)
//! or a scoped API key ([`keys`]), each allowed what its [`scopes`] say; or an upload
//! token ([`crate::storage::grants`]), which holds no scope and opens only the routes
//! that name it.
//!
//! It owns how credentials are read, compared and stored. It may import `config`, the
//! stores and `events`; never HTTP, a mode or the process state. The HTTP edge
//! (`http::auth`) asks it who a request's caller is and answers 401 or 403.

pub mod keys;
pub mod scopes;
pub mod sessions;

use scopes::{Scope, Scopes};

use crate::config::Secret;

/// Whether a bearer token is the admin token; never when none is configured, so a
/// deployment without one refuses everyone rather than falling open.
pub fn is_root(admin_token: Option<&Secret>, token: &str) -> bool {
    admin_token
        .is_some_and(|expected| constant_time_eq(token.as_bytes(), expected.expose().as_bytes()))
}

/// Who a request's caller is.
#[derive(Clone, Debug)]
pub enum Caller {
    /// The admin token: every scope.
    Root,
    Key(keys::KeyCaller),
    /// An upload token: no scope; only the upload routes take it.
    Upload(crate::storage::grants::Grant),
}

impl Caller {
    pub fn allows(&self, scope: Scope) -> bool {
        match self {
            Self::Root => true,
            Self::Key(key) => key.scopes.allows(scope),
            Self::Upload(_) => false,
        }
    }

    pub fn scopes(&self) -> Scopes {
        match self {
            Self::Root => Scopes::everything(),
            Self::Key(key) => key.scopes.clone(),
            Self::Upload(_) => Scopes::default(),
        }
    }

    /// Whose request budget this caller spends: `root`, `key:<id>` or `upload:<token id>`.
    pub fn budget(&self) -> String {
        match self {
            Self::Root => "root".to_owned(),
            Self::Key(key) => format!("key:{}", key.id),
            Self::Upload(grant) => grant.actor(),
        }
    }

    /// How audit rows name this caller: `admin`, `key:<prefix>` or `upload:<token id>`.
    pub fn actor(&self) -> String {
        match self {
            Self::Root => "admin".to_owned(),
            Self::Key(key) => format!("key:{}", key.prefix),
            Self::Upload(grant) => grant.actor(),
        }
    }
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
    fn without_a_configured_token_nobody_is_root() {
        let token = Secret::new("a-long-enough-admin-token".to_owned());
        assert!(is_root(Some(&token), "a-long-enough-admin-token"));
        assert!(!is_root(None, "a-long-enough-admin-token"));
        assert!(!is_root(Some(&token), "a-long-enough-admin-tokeN"));
    }
}
