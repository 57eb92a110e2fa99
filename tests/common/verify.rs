//! Checks webhook deliveries with the official Standard Webhooks library for Python (PyPI
//! `standardwebhooks`, run by `tests/support/verify_webhooks.py`): an implementation
//! independent of the code under test.

use serde_json::{Value, json};

use super::target::Received;

/// What the independent library says of each (secret, request): whether it verifies.
/// Also asserts that the library reproduces the specification's published test vector.
pub fn verify(cases: &[(&str, &Received)]) -> Vec<bool> {
    let cases: Vec<Value> = cases
        .iter()
        .map(|(secret, request)| {
            let headers: serde_json::Map<String, Value> = request
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            json!({
                "secret": secret,
                "headers": headers,
                "body": String::from_utf8(request.body.clone()).unwrap(),
            })
        })
        .collect();
    let output = super::python_support(
        "verify_webhooks.py",
        json!({ "cases": cases }).to_string().as_bytes(),
    );
    assert!(
        output.status.success(),
        "the verifier failed (is standardwebhooks installed?)"
    );
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        answer["vector"], true,
        "the library reproduces the published test vector"
    );
    answer["verified"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_bool().unwrap())
        .collect()
}
