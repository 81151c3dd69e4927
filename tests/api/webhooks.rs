//! Webhook signatures as the Standard Webhooks reference library
//! (`standardwebhooks` from PyPI, installed by `scripts/test.sh`) checks
//! them: every signature we make verifies, with one secret or two during a
//! rotation, and a changed body, id, timestamp or secret does not.

use secureai_domain::webhooks::signature::{WebhookSecret, sign, signature_header};
use secureai_tests::webhooks::verify_with_reference_library;
use serde_json::{Value, json};

#[test]
fn the_reference_library_accepts_our_signatures_and_nothing_else() {
    let now = chrono::Utc::now().timestamp();
    let old = WebhookSecret::from_random([3; 32]);
    let mut cases = Vec::new();
    let mut expected = Vec::new();
    for n in 0u8..20 {
        let mut bytes = [0u8; 32];
        bytes
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = n.wrapping_mul(31).wrapping_add(i as u8));
        let secret = WebhookSecret::from_random(bytes);
        let id = format!("msg_{n:04}");
        let body = json!({"type": "user.deactivated", "timestamp": "2026-12-04T03:00:00Z",
                          "data": {"user_id": format!("u-{n}"), "email": "zoë@example.com"}})
        .to_string();
        let signature = sign(&secret, &id, now, body.as_bytes());
        let case = |secret: &WebhookSecret, id: &str, ts: i64, body: &str, sig: &str| {
            json!({"secret": secret.expose(), "id": id, "timestamp": ts, "body": body,
                   "signature": sig})
        };
        cases.push(case(&secret, &id, now, &body, &signature));
        expected.push(true);
        // During a rotation both secrets sign; the receiver knows either.
        let both = signature_header(&[secret.clone(), old.clone()], &id, now, body.as_bytes());
        cases.push(case(&old, &id, now, &body, &both));
        expected.push(true);
        // Anything changed fails.
        cases.push(case(&secret, &id, now, &body.replace("u-", "v-"), &signature));
        cases.push(case(&secret, &format!("{id}x"), now, &body, &signature));
        cases.push(case(&secret, &id, now + 1, &body, &signature));
        cases.push(case(&old, &id, now, &body, &signature));
        expected.extend([false, false, false, false]);
    }
    assert_eq!(verify_with_reference_library(&Value::Array(cases)), expected);
}
