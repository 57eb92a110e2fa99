//! Realtime tokens: JWTs signed with HS256 using `app.secret` itself as the key, so the
//! user's own backend, in any language, can mint them with its JWT library and the shared
//! secret. (Signed download URLs use a key derived from the secret, so neither can pass
//! for the other.)
//!
//! Claims: `sub` (who the socket belongs to), `exp` (unix seconds; required), and
//! `channels`, the names or `*`-suffixed patterns the socket may subscribe to. `nbf` and
//! `iat` are honoured when present. Only `HS256` is accepted: a token naming any other
//! algorithm, `none` included, is refused before its signature is looked at.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use serde::{Deserialize, Serialize};

use super::channel;
use crate::config::Secret;

/// Seconds of clock difference allowed for `nbf` and `iat` between the minting backend and
/// this process.
const LEEWAY: i64 = 60;

/// What a token grants.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    /// Unix seconds. RFC 7519's NumericDate may have a fraction (PyJWT writes
    /// `time.time() + 3600`): it is rounded down, so the token never lives longer.
    #[serde(deserialize_with = "numeric_date::floor")]
    pub exp: i64,
    pub channels: Vec<String>,
    /// A fraction is rounded up, so the token is never valid sooner.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "numeric_date::ceil"
    )]
    pub iat: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "numeric_date::ceil"
    )]
    pub nbf: Option<i64>,
}

/// RFC 7519 NumericDate: seconds since the epoch, a whole number or not.
mod numeric_date {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer};

    /// Whole or fractional seconds, as JSON gives them.
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Seconds {
        Whole(i64),
        Fraction(f64),
    }

    fn seconds<'de, D: Deserializer<'de>>(
        deserializer: D,
        round: fn(f64) -> f64,
    ) -> Result<i64, D::Error> {
        match Seconds::deserialize(deserializer)? {
            Seconds::Whole(whole) => Ok(whole),
            // Beyond ±2^53 seconds no date is meant; refuse rather than saturate.
            Seconds::Fraction(f) if f.is_finite() && f.abs() < 9.0e15 => Ok(round(f) as i64),
            Seconds::Fraction(_) => Err(D::Error::custom("a NumericDate out of range")),
        }
    }

    pub fn floor<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
        seconds(deserializer, f64::floor)
    }

    pub fn ceil<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
        seconds(deserializer, f64::ceil).map(Some)
    }
}

impl Claims {
    /// Whether these claims cover `channel`.
    pub fn allows(&self, channel: &str) -> bool {
        self.channels.iter().any(|p| channel::matches(p, channel))
    }
}

/// Why a token was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not a JWT: {0}")]
    Malformed(&'static str),
    #[error("the token must be signed with HS256")]
    Algorithm,
    #[error("the token's signature is not valid")]
    Signature,
    #[error("the token expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
}

/// The key tokens are signed and checked with.
#[derive(Clone)]
pub struct TokenKey(hmac::Key);

impl TokenKey {
    pub fn new(secret: &Secret) -> Self {
        Self(hmac::Key::new(
            hmac::HMAC_SHA256,
            secret.expose().as_bytes(),
        ))
    }

    /// A signed token carrying `claims`.
    pub fn mint(&self, claims: &Claims) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialize"));
        let signed = format!("{header}.{payload}");
        let signature = URL_SAFE_NO_PAD.encode(hmac::sign(&self.0, signed.as_bytes()));
        format!("{signed}.{signature}")
    }

    /// The claims of `token` if it is well-formed, signed with this key (checked in
    /// constant time) and valid at `now` (unix seconds).
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed("it needs three dot-separated parts"));
        };
        let header: Header = decode_json(header, "the header is not base64url JSON")?;
        if header.alg != "HS256" {
            return Err(TokenError::Algorithm);
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| TokenError::Signature)?;
        let signed = &token[..header_len(token)];
        hmac::verify(&self.0, signed.as_bytes(), &signature).map_err(|_| TokenError::Signature)?;
        let claims: Claims = decode_json(
            payload,
            "the payload is not base64url JSON with sub, exp and channels",
        )?;
        if claims.exp <= now {
            return Err(TokenError::Expired);
        }
        if claims.nbf.is_some_and(|nbf| nbf > now + LEEWAY)
            || claims.iat.is_some_and(|iat| iat > now + LEEWAY)
        {
            return Err(TokenError::NotYetValid);
        }
        Ok(claims)
    }
}

/// The length of `header.payload`, the part the signature covers.
fn header_len(token: &str) -> usize {
    token.rfind('.').unwrap_or(token.len())
}

fn decode_json<T: serde::de::DeserializeOwned>(
    part: &str,
    problem: &'static str,
) -> Result<T, TokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::Malformed(problem))?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed(problem))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn key() -> TokenKey {
        TokenKey::new(&Secret::new("a-secret-of-at-least-thirty-two-characters"))
    }

    fn claims() -> Claims {
        Claims {
            sub: "user-42".into(),
            exp: NOW + 60,
            channels: vec!["files".into(), "user.42.*".into()],
            iat: Some(NOW),
            nbf: None,
        }
    }

    #[test]
    fn a_minted_token_verifies_and_grants_its_channels() {
        let claims = key().verify(&key().mint(&claims()), NOW).unwrap();
        assert_eq!(claims, self::claims());
        assert!(claims.allows("files"));
        assert!(claims.allows("user.42.inbox"));
        assert!(!claims.allows("user.43.inbox"));
    }

    #[test]
    fn a_token_from_another_jwt_library_verifies() {
        // Made by hand with Python's hmac and base64, header and claims in another order:
        // {"typ":"JWT","alg":"HS256"} . {"channels":["files"],"exp":1800000060,"sub":"u1"}
        let token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJjaGFubmVscyI6WyJmaWxlcyJdLCJleHAiOjE4MDAwMDAwNjAsInN1YiI6InUxIn0.dEzY4elh_BpQpWvqbpz_NniwWMqm7ylYZHF-I5xtJ7o";
        match key().verify(token, NOW) {
            Ok(claims) => assert_eq!(claims.sub, "u1"),
            Err(error) => panic!("{error}"),
        }
    }

    /// Signs `payload` (claims as JSON text) the way any HS256 library would.
    fn signed(key: &TokenKey, payload: &str) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let tag = hmac::sign(&key.0, input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    #[test]
    fn fractional_numeric_dates_as_pyjwt_writes_them_are_accepted() {
        let key = key();
        let token = signed(
            &key,
            &format!(
                r#"{{"sub":"u1","channels":["files"],"exp":{}.75,"iat":{}.25,"nbf":{}.5}}"#,
                NOW + 60,
                NOW,
                NOW
            ),
        );
        let claims = key.verify(&token, NOW).unwrap();
        assert_eq!(
            (claims.exp, claims.iat, claims.nbf),
            (NOW + 60, Some(NOW + 1), Some(NOW + 1)),
            "exp rounds down, iat and nbf up"
        );
        let lapsed = signed(
            &key,
            &format!(r#"{{"sub":"u1","channels":[],"exp":{}.9}}"#, NOW),
        );
        assert_eq!(key.verify(&lapsed, NOW), Err(TokenError::Expired));
        let absurd = signed(&key, r#"{"sub":"u1","channels":[],"exp":1e300}"#);
        assert!(matches!(
            key.verify(&absurd, NOW),
            Err(TokenError::Malformed(_))
        ));
    }

    #[test]
    fn expired_tampered_and_foreign_tokens_are_refused() {
        let key = key();
        let expired = Claims {
            exp: NOW,
            ..claims()
        };
        assert_eq!(
            key.verify(&key.mint(&expired), NOW),
            Err(TokenError::Expired)
        );

        let token = key.mint(&claims());
        let (signed, _) = token.rsplit_once('.').unwrap();
        let widened = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&Claims {
                channels: vec!["*".into()],
                ..claims()
            })
            .unwrap(),
        );
        let header = signed.split('.').next().unwrap();
        let forged = format!("{header}.{widened}.{}", token.rsplit('.').next().unwrap());
        assert_eq!(key.verify(&forged, NOW), Err(TokenError::Signature));

        let other = TokenKey::new(&Secret::new("another-secret-of-thirty-two-characters!"));
        assert_eq!(
            key.verify(&other.mint(&claims()), NOW),
            Err(TokenError::Signature)
        );

        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
            signed.split('.').nth(1).unwrap()
        );
        assert_eq!(key.verify(&none, NOW), Err(TokenError::Algorithm));
        assert!(matches!(
            key.verify("garbage", NOW),
            Err(TokenError::Malformed(_))
        ));
        assert!(matches!(
            key.verify("a.b.c", NOW),
            Err(TokenError::Malformed(_))
        ));

        let early = Claims {
            nbf: Some(NOW + 3600),
            ..claims()
        };
        assert_eq!(
            key.verify(&key.mint(&early), NOW),
            Err(TokenError::NotYetValid)
        );
    }
}
