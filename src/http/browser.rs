//! What browsers need of the API: CORS for the origins `http.cors_allowed_origins` names
//! (tower-http's layer; a preflight is answered before the scope gate, as it carries no
//! credentials), the origin patterns CORS and the realtime hub share, and the security
//! headers every response carries.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

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

/// The CORS layer, when any origin is allowed. Headers a browser client reads (the
/// request id, rate limits, ranges, the ETag) are exposed to it.
pub fn cors(settings: &HttpSettings) -> Option<CorsLayer> {
    if settings.cors_allowed_origins.is_empty() {
        return None;
    }
    let origins = settings.cors_allowed_origins.clone();
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::predicate(move |origin: &HeaderValue, _| {
            origin
                .to_str()
                .is_ok_and(|origin| origin_allowed(&origins, origin))
        })
    };
    let name = HeaderName::from_static;
    let request_id = name("x-request-id");
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([
                Method::GET,
                Method::HEAD,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::RANGE,
                header::IF_NONE_MATCH,
                header::IF_RANGE,
                name("idempotency-key"),
                request_id.clone(),
            ])
            .expose_headers([
                request_id,
                name("ratelimit"),
                name("ratelimit-policy"),
                header::RETRY_AFTER,
                header::ETAG,
                header::CONTENT_RANGE,
                header::CONTENT_DISPOSITION,
                header::LOCATION,
            ])
            .allow_credentials(settings.cors_allow_credentials)
            .max_age(Duration::from_secs(600)),
    )
}

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
