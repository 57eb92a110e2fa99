//! Types for configuration values that must never be printed: tokens, keys and URLs that
//! carry a password. Their `Debug`, `Display` and `Serialize` output is redacted, so a
//! `tracing` field, a panic message or `app config check` cannot leak them.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use url::Url;

const REDACTED: &str = "[redacted]";

/// A secret string, such as the admin token. Read it with [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value; use for secrets generated at run time (the `app dev` admin token).
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value itself. Call it only where the value is used, never to log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        string_like(deserializer).map(Self)
    }
}

/// A connection URL whose password (and any `password` query parameter) is a secret.
/// It displays as `postgres://user:***@host:5432/db`, which is safe to log.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(Url);

impl SecretUrl {
    /// Parses a URL, for settings built in code (tests, defaults).
    pub fn parse(raw: &str) -> Result<Self, url::ParseError> {
        Url::parse(raw).map(Self)
    }

    /// The full URL, password included. Pass it to the driver, never to a log.
    pub fn expose(&self) -> &str {
        self.0.as_str()
    }

    /// The parsed URL, for reading its scheme, host and port.
    pub fn url(&self) -> &Url {
        &self.0
    }

    /// The URL with its secrets masked.
    pub fn redacted(&self) -> String {
        let mut shown = self.0.clone();
        if shown.password().is_some() {
            // Only fails for URLs that cannot have a password, and this one has one.
            let _ = shown.set_password(Some("***"));
        }
        let secret_params = ["password", "sslpassword", "token"];
        if shown
            .query_pairs()
            .any(|(k, _)| secret_params.contains(&k.as_ref()))
        {
            let pairs: Vec<(String, String)> = shown
                .query_pairs()
                .map(|(k, v)| {
                    let v = if secret_params.contains(&k.as_ref()) {
                        "***".to_string()
                    } else {
                        v.into_owned()
                    };
                    (k.into_owned(), v)
                })
                .collect();
            shown.query_pairs_mut().clear().extend_pairs(pairs);
        }
        shown.to_string()
    }

    /// `host:port` for error messages, e.g. `could not reach Postgres at db.railway.internal:5432`.
    pub fn endpoint(&self) -> String {
        let host = match self.0.host() {
            Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
            Some(host) => host.to_string(),
            None => "(socket)".to_string(),
        };
        match self.0.port() {
            Some(port) => format!("{host}:{port}"),
            None => host,
        }
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Serialize for SecretUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.redacted())
    }
}

impl<'de> Deserialize<'de> for SecretUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = string_like(deserializer)?;
        // The parse error never includes the input, so the password cannot leak through it.
        Url::parse(&raw)
            .map(Self)
            .map_err(|e| serde::de::Error::custom(format!("not a valid URL ({e})")))
    }
}

/// A list of URLs, as `["a", "b"]` from a file or `a,b` from an environment variable;
/// an error names the entry's position, never its text.
pub(crate) fn url_list<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<SecretUrl>, D::Error> {
    super::list_or_csv(deserializer)?
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            Url::parse(raw).map(SecretUrl).map_err(|e| {
                serde::de::Error::custom(format!("entry {} is not a valid URL ({e})", i + 1))
            })
        })
        .collect()
}

/// Environment values arrive typed by figment's guess (`12345` becomes a number), but a
/// token made of digits is still a string.
fn string_like<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Str(String),
        Int(i64),
        UInt(u64),
        Float(f64),
        Bool(bool),
    }
    Ok(match Raw::deserialize(deserializer)? {
        Raw::Str(s) => s,
        Raw::Int(n) => n.to_string(),
        Raw::UInt(n) => n.to_string(),
        Raw::Float(n) => n.to_string(),
        Raw::Bool(b) => b.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_print_redacted_in_debug_display_and_serialize() {
        let s = Secret::new("hunter2-hunter2");
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"[redacted]\"");
        assert_eq!(s.expose(), "hunter2-hunter2");
    }

    #[test]
    fn urls_hide_their_password_and_password_parameters() {
        let u =
            SecretUrl::parse("postgres://app:pa55@db:5432/x?sslmode=require&password=p2").unwrap();
        let shown = format!("{u} {u:?}");
        assert!(!shown.contains("pa55") && !shown.contains("p2"), "{shown}");
        assert!(shown.contains("app:***@db:5432"), "{shown}");
        assert!(shown.contains("sslmode=require"), "{shown}");
        assert_eq!(u.endpoint(), "db:5432");
    }

    #[test]
    fn ipv6_endpoints_keep_their_brackets() {
        let u = SecretUrl::parse("redis://[::1]:6380").unwrap();
        assert_eq!(u.endpoint(), "[::1]:6380");
    }
}
