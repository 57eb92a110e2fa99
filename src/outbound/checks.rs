//! What a caller may ask the outbound clients to send, checked where it is registered (an
//! `http` job's payload, a webhook endpoint) so that a bad target is refused at once: a
//! URL that is absolute http(s) without credentials, and headers that are valid and not
//! among those Switchyard sets itself. Each caller words the problem for its own field.

/// Why a URL cannot be called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UrlProblem {
    /// Not an absolute `http://` or `https://` URL with a host.
    NotHttp,
    /// A user name or password in it, which would travel in the clear to logs and proxies.
    Credentials,
}

/// What is wrong with `url` as an outbound target, if anything.
pub fn url_problem(url: &url::Url) -> Option<UrlProblem> {
    if !["http", "https"].contains(&url.scheme()) || url.host().is_none() {
        return Some(UrlProblem::NotHttp);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Some(UrlProblem::Credentials);
    }
    None
}

/// What is wrong with a header a caller sets, worded for a 422, if anything: it must be a
/// valid HTTP header and not one of `reserved` (lower-case names Switchyard sets).
pub fn header_problem(name: &str, value: &str, reserved: &[&str]) -> Option<&'static str> {
    if ureq::http::HeaderName::try_from(name).is_err()
        || ureq::http::HeaderValue::try_from(value).is_err()
    {
        return Some("is not a valid HTTP header");
    }
    if reserved.contains(&name.to_ascii_lowercase().as_str()) {
        return Some("is set by Switchyard and cannot be overridden");
    }
    None
}
