//! S3 presigned POST: a form a browser posts a file with straight to the bucket, so the
//! bytes never pass through this process. The form's policy pins the object key, the
//! largest size and the expiry, and is signed with AWS Signature Version 4 under the
//! storage credentials (`object_store` presigns GET and PUT URLs, not POST policies).
//!
//! The policy is the store's check, not the only one: the row is made only by
//! `POST /api/v1/files/complete`, which looks at the object itself (its size, and its type
//! from its first bytes) before recording it, so a store that ignores policies (some
//! S3-compatible servers do) lets nothing through that a direct upload would refuse.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use ring::hmac;
use serde::Serialize;
use utoipa::ToSchema;

use crate::config::Secret;

/// What signs the forms: the bucket's address and credentials.
#[derive(Clone)]
pub struct PostSigner {
    /// Where the form posts: the bucket's URL.
    pub url: String,
    pub bucket: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: Secret,
}

/// A form to post a file to the bucket with: send every field, then the file as the last
/// field, named `file`, as `multipart/form-data`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PresignedPost {
    pub url: String,
    pub fields: BTreeMap<String, String>,
}

impl PostSigner {
    /// A form that stores at most `max_size` bytes under `key` until `expires`; with
    /// `content_type`, the object is stored with that type and no other.
    pub fn form(
        &self,
        key: &str,
        max_size: u64,
        content_type: Option<&str>,
        expires: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> PresignedPost {
        let day = now.format("%Y%m%d").to_string();
        let date = now.format("%Y%m%dT%H%M%SZ").to_string();
        let credential = format!(
            "{}/{day}/{}/s3/aws4_request",
            self.access_key_id, self.region
        );
        let mut fields = BTreeMap::from([
            ("key".to_owned(), key.to_owned()),
            ("x-amz-algorithm".to_owned(), "AWS4-HMAC-SHA256".to_owned()),
            ("x-amz-credential".to_owned(), credential),
            ("x-amz-date".to_owned(), date),
        ]);
        if let Some(content_type) = content_type {
            fields.insert("Content-Type".to_owned(), content_type.to_owned());
        }
        let mut conditions = vec![
            serde_json::json!({ "bucket": self.bucket }),
            serde_json::json!(["content-length-range", 0, max_size]),
        ];
        conditions.extend(
            fields
                .iter()
                .map(|(name, value)| serde_json::json!({ name: value })),
        );
        let policy = serde_json::json!({
            "expiration": expires.format("%Y-%m-%dT%H:%M:%S.000Z").to_string(),
            "conditions": conditions,
        });
        let policy = STANDARD.encode(policy.to_string());
        let signature = signature(&self.secret_access_key, &day, &self.region, &policy);
        fields.insert("policy".to_owned(), policy);
        fields.insert("x-amz-signature".to_owned(), signature);
        PresignedPost {
            url: self.url.clone(),
            fields,
        }
    }
}

/// SigV4 over a POST policy: the policy's base64 text signed with the key derived from
/// the secret, the day, the region and the `s3` service.
fn signature(secret: &Secret, day: &str, region: &str, policy: &str) -> String {
    let step = |key: &[u8], data: &str| {
        hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data.as_bytes())
    };
    let date_key = step(format!("AWS4{}", secret.expose()).as_bytes(), day);
    let region_key = step(date_key.as_ref(), region);
    let service_key = step(region_key.as_ref(), "s3");
    let signing_key = step(service_key.as_ref(), "aws4_request");
    step(signing_key.as_ref(), policy)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_matches_botocore_for_the_same_policy() {
        // Made by botocore's S3SigV4PostAuth (1.43) for this policy, day, region and secret.
        let policy = "eyJleHBpcmF0aW9uIjogIjIwMjYtMTItMDdUMDE6MzA6MDBaIiwgImNvbmRpdGlvbnMiOiBbeyJidWNrZXQiOiAibWVkaWEifSwgeyJrZXkiOiAiZmlsZXMvYXZhdGFycy94In0sIFsiY29udGVudC1sZW5ndGgtcmFuZ2UiLCAwLCAxMDI0XSwgeyJ4LWFtei1hbGdvcml0aG0iOiAiQVdTNC1ITUFDLVNIQTI1NiJ9LCB7IngtYW16LWNyZWRlbnRpYWwiOiAiQUtJREVYQU1QTEUvMjAyNjEyMDcvZXUtd2VzdC0xL3MzL2F3czRfcmVxdWVzdCJ9LCB7IngtYW16LWRhdGUiOiAiMjAyNjEyMDdUMDAwMzQxWiJ9XX0=";
        let secret = Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_owned());
        assert_eq!(
            signature(&secret, "20261207", "eu-west-1", policy),
            "cf8c43ed2abc321bce4e67b180727adabd8cacf2102729d19cedd3d2158c2873"
        );
    }

    #[test]
    fn the_policy_pins_the_key_the_size_and_every_field_sent() {
        let signer = PostSigner {
            url: "https://media.s3.eu-west-1.amazonaws.com".into(),
            bucket: "media".into(),
            region: "eu-west-1".into(),
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: Secret::new("secret".to_owned()),
        };
        let now = DateTime::from_timestamp(1_796_602_221, 0).unwrap();
        let expires = now + chrono::Duration::minutes(10);
        let form = signer.form("files/a/1", 1024, Some("image/png"), expires, now);
        let policy: serde_json::Value =
            serde_json::from_slice(&STANDARD.decode(&form.fields["policy"]).unwrap()).unwrap();
        let conditions = policy["conditions"].as_array().unwrap();
        assert!(conditions.contains(&serde_json::json!({ "key": "files/a/1" })));
        assert!(conditions.contains(&serde_json::json!(["content-length-range", 0, 1024])));
        assert!(conditions.contains(&serde_json::json!({ "Content-Type": "image/png" })));
        assert_eq!(
            policy["expiration"],
            expires.format("%Y-%m-%dT%H:%M:%S.000Z").to_string()
        );
        for (name, value) in &form.fields {
            if name != "policy" && name != "x-amz-signature" {
                assert!(conditions.contains(&serde_json::json!({ name: value })));
            }
        }
        assert_eq!(form.fields["x-amz-signature"].len(), 64);
    }
}
