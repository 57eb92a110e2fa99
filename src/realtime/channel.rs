//! Channel names and the patterns a token's `channels` claim may hold.
//!
//! A name is 1 to 128 characters of letters, digits and `.`, `_`, `-`, `:`, `@`
//! (`files`, `jobs.0190b7c2-…`, `user.42.messages`). A pattern is a name, a name ending in
//! `*` (matching every channel that starts with what comes before it), or `*` alone.

/// The longest channel name.
pub const MAX_LEN: usize = 128;

/// Why a channel name was refused.
pub fn check(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_LEN {
        return Err(format!(
            "a channel name is 1 to {MAX_LEN} characters, not {}",
            name.len()
        ));
    }
    match name.chars().find(|&c| !allowed(c)) {
        Some(c) => Err(format!(
            "channel {name:?} has {c:?}; names use letters, digits and . _ - : @"
        )),
        None => Ok(()),
    }
}

fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '@')
}

/// Whether `pattern` (from a token's claims) covers `channel`.
pub fn matches(pattern: &str, channel: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => channel.starts_with(prefix),
        None => pattern == channel,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_short_and_made_of_safe_characters() {
        for good in ["files", "jobs.0190b7c2-aa", "user.42.messages", "a:b@c_d"] {
            assert!(check(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "with space",
            "star*",
            "slash/",
            "é",
            &"x".repeat(MAX_LEN + 1),
        ] {
            assert!(check(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_trailing_star_matches_by_prefix_and_anything_else_exactly() {
        assert!(matches("files", "files"));
        assert!(!matches("files", "files.x"));
        assert!(matches("user.42.*", "user.42.messages"));
        assert!(!matches("user.42.*", "user.420.messages"));
        assert!(!matches("user.42.*", "user.42"));
        assert!(matches("*", "anything"));
    }
}
