//! The console's page and assets, compiled into the binary: build.rs joins the scripts,
//! gzips each asset once and names it by a hash of its contents, so an asset is served
//! as stored, with `Content-Encoding: gzip`, and cached for a year (`immutable`); a new
//! build changes the names the page asks for. The page itself is never cached, so a
//! deploy reaches every browser at its next load. A client that does not take gzip gets
//! the asset decompressed.

use std::io::Read;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::http::problem::ApiError;

include!(concat!(env!("OUT_DIR"), "/console_assets.rs"));

/// Where the assets are served from.
pub const ASSETS_PATH: &str = "/console/assets/{name}";

/// What the page may load: its own scripts, style and API, nothing inline, nothing from
/// elsewhere, and never inside a frame.
const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// `GET /console`: the page.
pub async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, PAGE_POLICY),
        ],
        PAGE,
    )
        .into_response()
}

/// What the reference page may load: the viewer, its inline styles (a web component's),
/// and the API document and "try it" calls on this origin.
const DOCS_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     connect-src 'self'; img-src 'self' data:; font-src 'self' data:; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// `GET /docs`: the API reference, the OpenAPI document rendered by RapiDoc (bundled),
/// with a "try it" that takes a token.
pub async fn docs() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, DOCS_POLICY),
        ],
        DOCS_PAGE,
    )
        .into_response()
}

/// `GET /console/assets/{name}`: a hashed asset.
pub async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Result<Response, ApiError> {
    let Some((_, content_type, gzip, length)) = ASSETS.iter().find(|(n, ..)| *n == name) else {
        return Err(ApiError::NotFound(format!("no console asset {name:?}")));
    };
    let mut response = if takes_gzip(&headers) {
        let mut response = gzip.into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        response
    } else {
        let mut plain = Vec::with_capacity(*length);
        flate2::read::GzDecoder::new(*gzip)
            .read_to_end(&mut plain)
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("a console asset is corrupt: {e}")))?;
        plain.into_response()
    };
    let answer = response.headers_mut();
    answer.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    answer.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    answer.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    *response.status_mut() = StatusCode::OK;
    Ok(response)
}

/// Whether `Accept-Encoding` takes gzip (and does not refuse it with `q=0`).
fn takes_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepting(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_str(value).unwrap(),
        );
        headers
    }

    #[test]
    fn gzip_is_taken_unless_refused() {
        assert!(takes_gzip(&accepting("gzip, deflate, br")));
        assert!(takes_gzip(&accepting("br;q=1.0, gzip;q=0.8")));
        assert!(takes_gzip(&accepting("*")));
        assert!(!takes_gzip(&accepting("gzip;q=0")));
        assert!(!takes_gzip(&accepting("identity")));
        assert!(!takes_gzip(&HeaderMap::new()));
    }

    #[test]
    fn the_pages_name_every_asset_by_its_hash() {
        assert_eq!(ASSETS.len(), 3);
        for (name, ..) in ASSETS {
            let path = format!("/console/assets/{name}");
            assert!(PAGE.contains(&path) || DOCS_PAGE.contains(&path), "{name}");
        }
    }
}
