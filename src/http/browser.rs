//! What browsers need of the API: CORS for the origins `http.cors_allowed_origins` names
//! ([`Cors`], which the edge applies; a preflight is answered before the scope gate, as it
//! carries no credentials), the origin patterns CORS and the realtime hub share, and the
//! security headers every response carries.

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::config::HttpSettings;

/// Whether `origin` is in `allowed` (empty allows any); `https://*.example.com` covers the
/// subdomains of `example.com`.
pub fn origin_allowed(allowed: &[String], origin: &str) -> bool {
    allowed.is_empty()
        || allowed.iter().any(|pattern| {
            if pattern.eq_ignore_ascii_case(origin) {
                return true;
            }
            let Some((scheme, host)) = pattern.split_once("://*.") else {
                return false;
            };
            let Some((origin_scheme, origin_host)) = origin.split_once("://") else {
                return false;
            };
            let suffix = format!(".{}", host.to_ascii_lowercase());
            origin_scheme.eq_ignore_ascii_case(scheme)
                && origin_host.to_ascii_lowercase().ends_with(&suffix)
        })
}

/// CORS for the origins `http.cors_allowed_origins` names, applied by the edge
/// ([`super::middleware`]). tower-http's layer was measured first: it built a header map
/// for every request, with or without an `Origin`, which cost about 3 µs a request (a
/// fifth of the cheapest route; bench/auth.sh). Here a request without `Origin` (every
/// server-to-server call) costs one header lookup, and an allowed one a few inserts of
/// values made once.
#[derive(Debug)]
pub struct Cors {
    origins: Vec<String>,
    /// `*` is among the origins: every origin is allowed.
    any: bool,
    credentials: bool,
    allow_methods: HeaderValue,
    allow_headers: HeaderValue,
    expose_headers: HeaderValue,
    max_age: HeaderValue,
}

/// Methods a page may use across origins.
const ALLOW_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE";
/// Request headers a page may send: credentials, bodies, ranges and idempotency.
const ALLOW_HEADERS: &str =
    "authorization, content-type, range, if-none-match, if-range, idempotency-key, x-request-id";
/// Response headers a page may read: the request id, rate limits, ranges, the ETag.
const EXPOSE_HEADERS: &str = "x-request-id, ratelimit, ratelimit-policy, retry-after, etag, \
     content-range, content-disposition, location";
/// How long a browser may keep a preflight's answer, in seconds.
const MAX_AGE_SECONDS: &str = "600";

impl Cors {
    /// The policy of `settings`; none when no origin is allowed.
    pub fn new(settings: &HttpSettings) -> Option<Self> {
        if settings.cors_allowed_origins.is_empty() {
            return None;
        }
        Some(Self {
            any: settings.cors_allowed_origins.iter().any(|o| o == "*"),
            origins: settings.cors_allowed_origins.clone(),
            credentials: settings.cors_allow_credentials,
            allow_methods: HeaderValue::from_static(ALLOW_METHODS),
            allow_headers: HeaderValue::from_static(ALLOW_HEADERS),
            expose_headers: HeaderValue::from_static(EXPOSE_HEADERS),
            max_age: HeaderValue::from_static(MAX_AGE_SECONDS),
        })
    }

    /// The request's `Origin` when it is allowed: what the answer echoes.
    pub fn allowed(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        let origin = headers.get(header::ORIGIN)?;
        let text = origin.to_str().ok()?;
        (self.any || origin_allowed(&self.origins, text)).then(|| origin.clone())
    }

    /// The answer to a preflight (`OPTIONS` with `Origin` and
    /// `Access-Control-Request-Method`), before any route or credential check: 204, with
    /// the CORS headers when the origin is allowed and without them (so the browser
    /// refuses) when not. Any other request is `None`.
    pub fn preflight(&self, method: &Method, headers: &HeaderMap) -> Option<Response> {
        if method != Method::OPTIONS
            || !headers.contains_key(header::ORIGIN)
            || !headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            return None;
        }
        let mut response = StatusCode::NO_CONTENT.into_response();
        let origin = self.allowed(headers);
        let answer = response.headers_mut();
        answer.insert(header::VARY, HeaderValue::from_static(PREFLIGHT_VARY));
        if let Some(origin) = origin {
            self.allow(origin, answer);
            answer.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                self.allow_methods.clone(),
            );
            answer.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                self.allow_headers.clone(),
            );
            answer.insert(header::ACCESS_CONTROL_MAX_AGE, self.max_age.clone());
        }
        Some(response)
    }

    /// Stamps an answer: `Vary: Origin` always (the answer depends on it), and for an
    /// allowed origin the headers that let the page read it.
    pub fn stamp(&self, origin: Option<HeaderValue>, headers: &mut HeaderMap) {
        headers.append(header::VARY, HeaderValue::from_static("origin"));
        if let Some(origin) = origin {
            self.allow(origin, headers);
            headers.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                self.expose_headers.clone(),
            );
        }
    }

    fn allow(&self, origin: HeaderValue, headers: &mut HeaderMap) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        if self.credentials {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
    }
}

/// What a preflight's answer depends on.
const PREFLIGHT_VARY: &str =
    "origin, access-control-request-method, access-control-request-headers";

/// Puts the security headers on a response, leaving any a route set itself: no MIME
/// sniffing, no referrer, no framing, a content policy that loads nothing (the API
/// serves data, not pages), and HSTS when the request came over HTTPS (by the proxy's
/// `X-Forwarded-Proto`; a browser ignores HSTS on a plain-HTTP answer anyway).
pub fn secure(headers: &mut HeaderMap, https: bool) {
    let mut set = |name: HeaderName, value: &'static str| {
        headers
            .entry(name)
            .or_insert_with(|| HeaderValue::from_static(value));
    };
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::REFERRER_POLICY, "no-referrer");
    set(header::X_FRAME_OPTIONS, "DENY");
    set(
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    );
    if https {
        set(
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        );
    }
}

/// Whether the proxy in front says the client came over HTTPS.
pub fn forwarded_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_match_exactly_or_by_subdomain_wildcard() {
        let allowed = vec![
            "https://app.example.com".to_owned(),
            "https://*.example.org".to_owned(),
        ];
        assert!(origin_allowed(&allowed, "https://app.example.com"));
        assert!(origin_allowed(&allowed, "https://a.b.example.org"));
        assert!(!origin_allowed(&allowed, "https://example.org"));
        assert!(!origin_allowed(&allowed, "http://a.example.org"));
        assert!(!origin_allowed(&allowed, "https://evil-example.org"));
        assert!(!origin_allowed(
            &allowed,
            "https://app.example.com.evil.net"
        ));
        assert!(origin_allowed(&[], "https://anything.test"));
    }

    #[test]
    fn security_headers_leave_a_routes_own_and_add_hsts_only_over_https() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("SAMEORIGIN"),
        );
        secure(&mut headers, false);
        assert_eq!(headers[header::X_FRAME_OPTIONS], "SAMEORIGIN");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert!(!headers.contains_key(header::STRICT_TRANSPORT_SECURITY));
        secure(&mut headers, true);
        assert!(headers.contains_key(header::STRICT_TRANSPORT_SECURITY));
        let mut forwarded = HeaderMap::new();
        forwarded.insert("x-forwarded-proto", HeaderValue::from_static("https, http"));
        assert!(forwarded_https(&forwarded));
        assert!(!forwarded_https(&HeaderMap::new()));
    }
}
