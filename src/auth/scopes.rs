//! Scopes: what an API key may do, one resource and verb each (`jobs:read`,
//! `files:write`, ...), or `*` for everything. Each route declares the one scope it needs
//! in its OpenAPI operation (`security(("api_key" = ["jobs:write"]))`), which is where
//! the HTTP gate reads it from.

use std::fmt;

/// Every scope a key can hold, `*` last.
pub const ALL: &[&str] = &[
    "jobs:read",
    "jobs:write",
    "queues:read",
    "queues:write",
    "schedules:read",
    "schedules:write",
    "files:read",
    "files:write",
    "events:write",
    "webhooks:read",
    "webhooks:write",
    "audit:read",
    "realtime:publish",
    "realtime:token",
    "keys:read",
    "keys:write",
    "metrics:read",
    "databases:read",
    "databases:write",
    "*",
];

/// One scope, checked against [`ALL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope(&'static str);

/// Reading files: what a download outside the gate checks for itself.
pub const FILES_READ: Scope = Scope("files:read");
/// Reading queues: what the console's live stream checks for itself.
pub const QUEUES_READ: Scope = Scope("queues:read");
/// Reading metrics: what decides whether the live stream carries realtime figures.
pub const METRICS_READ: Scope = Scope("metrics:read");

impl Scope {
    /// The scope named `name`, if there is one.
    pub fn parse(name: &str) -> Option<Self> {
        ALL.iter().find(|s| **s == name).map(|s| Self(s))
    }

    pub fn as_str(self) -> &'static str {
        self.0
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// The scopes a caller holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scopes(Vec<Scope>);

/// A scope list that names something that is not a scope.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BadScopes {
    #[error("{0:?} is not a scope; scopes are {list}", list = ALL.join(", "))]
    Unknown(String),
    #[error("at least one scope is required")]
    Empty,
}

impl Scopes {
    /// Everything: the root token's.
    pub fn everything() -> Self {
        Self(vec![Scope("*")])
    }

    /// Parses names, each once, sorted; refuses an unknown one and an empty list.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, BadScopes> {
        let mut scopes = Vec::new();
        for name in names {
            let name = name.trim();
            if name.is_empty() {
                continue;
            }
            scopes.push(Scope::parse(name).ok_or_else(|| BadScopes::Unknown(name.to_owned()))?);
        }
        if scopes.is_empty() {
            return Err(BadScopes::Empty);
        }
        scopes.sort_unstable();
        scopes.dedup();
        Ok(Self(scopes))
    }

    /// Whether these scopes allow what `needed` allows.
    pub fn allows(&self, needed: Scope) -> bool {
        self.0.iter().any(|s| s.0 == "*" || *s == needed)
    }

    /// Whether these scopes allow every one of `other`: a key may only make keys with
    /// rights it has itself.
    pub fn covers(&self, other: &Scopes) -> bool {
        other.0.iter().all(|s| self.allows(*s))
    }

    pub fn names(&self) -> Vec<String> {
        self.0.iter().map(|s| s.0.to_owned()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_sorted_once_each_and_unknown_ones_are_named() {
        let scopes = Scopes::parse(["metrics:read", "jobs:read", "jobs:read"]).unwrap();
        assert_eq!(scopes.names(), ["jobs:read", "metrics:read"]);
        assert_eq!(
            Scopes::parse(["jobs:read", "jobs:delete"]),
            Err(BadScopes::Unknown("jobs:delete".into()))
        );
        assert_eq!(Scopes::parse([" ", ""]), Err(BadScopes::Empty));
    }

    #[test]
    fn a_star_allows_everything_and_a_scope_only_itself() {
        let star = Scopes::everything();
        let jobs = Scopes::parse(["jobs:read"]).unwrap();
        let read = Scope::parse("jobs:read").unwrap();
        let write = Scope::parse("jobs:write").unwrap();
        assert!(star.allows(write));
        assert!(jobs.allows(read));
        assert!(!jobs.allows(write));
        assert!(star.covers(&jobs));
        assert!(!jobs.covers(&star));
    }
}
