//! The inbox verifies senders' HTTP Message Signatures (RFC 9421): a valid one by a key of
//! the service the origin names is evidence its policy can require; one that is present
//! and wrong is a 401 naming why; the same signed request twice is a replay. Signed by our
//! own client, by another coar-notify server through its published key set, and by an
//! independent implementation (pyauth's http-message-signatures).

mod common;

use std::path::{Path, PathBuf};

use coar_ldn::signature::{SigningKey, content_digest, jwk_set, sign_request};
use serde_json::{Value, json};

const TOKEN: &str = "the-admin-token-for-signed-inbox-tests";
const ORIGIN: &str = "https://research-organisation.org/repository";
const CONTENT_TYPE: &str = "application/ld+json";

fn payload(origin: &str) -> Vec<u8> {
    let mut doc: Value = serde_json::from_slice(
        &std::fs::read(common::fixture_path("spec/request-review.json")).unwrap(),
    )
    .unwrap();
    doc["id"] = json!(coar_model::new_id());
    doc["origin"]["id"] = json!(origin);
    serde_json::to_vec(&doc).unwrap()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A request's headers, signed by `key` for `target` at `created`.
fn signed(key: &SigningKey, target: &str, body: &[u8], created: i64) -> Vec<(String, String)> {
    let mut headers = http::HeaderMap::new();
    headers.insert("content-type", CONTENT_TYPE.parse().unwrap());
    headers.insert("content-digest", content_digest(body).parse().unwrap());
    let req = coar_ldn::signature::Request {
        method: "POST",
        target_uri: target,
        headers: &headers,
    };
    let (input, signature) = sign_request(key, &req, "coar", created, Some(created + 300)).unwrap();
    vec![
        ("content-type".into(), CONTENT_TYPE.into()),
        ("content-digest".into(), content_digest(body)),
        ("signature-input".into(), input),
        ("signature".into(), signature),
    ]
}

async fn post(s: &common::Server, headers: &[(String, String)], body: &[u8]) -> (u16, Value) {
    let mut r = s.client.post(s.url("/inbox")).body(body.to_vec());
    for (k, v) in headers {
        r = r.header(k, v);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The newest stored notification.
async fn newest(s: &common::Server) -> Value {
    latest(s).await.expect("a notification")
}

/// The newest stored notification, if any.
async fn latest(s: &common::Server) -> Option<Value> {
    let list: Value = s
        .client
        .get(s.url("/api/notifications?limit=1"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = list["items"][0]["key"].as_i64()?;
    let record = s
        .client
        .get(s.url(&format!("/api/notifications/{key}")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["record"]
        .clone();
    Some(record)
}

async fn register(s: &common::Server, service: Value) -> Value {
    let r = s
        .client
        .post(s.url("/api/services"))
        .bearer_auth(TOKEN)
        .json(&service)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json().await.unwrap()
}

fn reason(problem: &Value) -> &str {
    problem["errors"][0]["rule"].as_str().unwrap_or_default()
}

server_test!(signatures_are_evidence_and_each_failure_is_named, |url| {
    let s = common::start(url, &[("admin_token", TOKEN), ("trust", "quarantine")]).await;
    let inbox = s.app.inbox_url();
    let (key, _) = SigningKey::generate_ed25519("repository-2026").unwrap();
    let registered = register(
        &s,
        json!({
            "name": "Repository",
            "id": ORIGIN,
            "inbox": "https://research-organisation.org/inbox/",
            "signature_policy": "signature-required",
            "keys": jwk_set([&key.verifying_key()]),
        }),
    )
    .await;
    assert_eq!(registered["signature_policy"], "signature-required");
    let thumbprint = key.verifying_key().thumbprint();
    assert_eq!(registered["keys"][0]["thumbprint"], thumbprint.as_str());

    // Valid: attributed, with the key recorded as its evidence.
    let body = payload(ORIGIN);
    let headers = signed(&key, &inbox, &body, now());
    let (status, _) = post(&s, &headers, &body).await;
    assert_eq!(status, 201);
    let record = newest(&s).await;
    assert_eq!(record["state"], "queued");
    assert_eq!(record["service"], registered["key"]);
    assert_eq!(record["signature_key"], thumbprint.as_str());

    // The same request again is a replay; the same notification signed anew is a resend.
    let (status, problem) = post(&s, &headers, &body).await;
    assert_eq!((status, reason(&problem)), (401, "signature.replayed"));
    let (status, _) = post(&s, &signed(&key, &inbox, &body, now()), &body).await;
    assert!((200..300).contains(&status), "an honest resend: {status}");

    // Each way a signature can be wrong, alone, from the registered origin.
    let body = payload(ORIGIN);
    let fresh = || signed(&key, &inbox, &body, now());
    let tampered_body = {
        let mut b = body.clone();
        let at = b.len() - 2;
        b.insert(at, b' ');
        b
    };
    let (status, problem) = post(&s, &fresh(), &tampered_body).await;
    assert_eq!(
        (status, reason(&problem)),
        (401, "signature.digest-mismatch")
    );
    let elsewhere = signed(&key, "https://other.example/inbox", &body, now());
    let (status, problem) = post(&s, &elsewhere, &body).await;
    assert_eq!((status, reason(&problem)), (401, "signature.bad-signature"));
    let old = signed(&key, &inbox, &body, now() - 600);
    let (status, problem) = post(&s, &old, &body).await;
    assert_eq!((status, reason(&problem)), (401, "signature.expired"));
    let (stranger, _) = SigningKey::generate_ed25519("someone-else").unwrap();
    let (status, problem) = post(&s, &signed(&stranger, &inbox, &body, now()), &body).await;
    assert_eq!((status, reason(&problem)), (401, "signature.unknown-key"));
    let mut wrong_alg = fresh();
    wrong_alg[2].1 = wrong_alg[2]
        .1
        .replace("alg=\"ed25519\"", "alg=\"rsa-pss-sha512\"");
    let (status, problem) = post(&s, &wrong_alg, &body).await;
    assert_eq!(
        (status, reason(&problem)),
        (401, "signature.wrong-algorithm")
    );
    assert!(
        problem["detail"].as_str().unwrap().contains("algorithm"),
        "{problem}"
    );
    // Nothing of those was stored.
    assert_ne!(newest(&s).await["notification_id"], json!(body_id(&body)));

    // Unsigned from the origin whose policy requires a signature: held, not attributed.
    let (status, _) = post(&s, &[("content-type".into(), CONTENT_TYPE.into())], &body).await;
    assert_eq!(status, 201);
    let record = newest(&s).await;
    assert_eq!(
        (record["state"].as_str(), &record["service"]),
        (Some("quarantined"), &Value::Null)
    );

    // A signature by a key no registered service could hold (the origin is not registered)
    // cannot be checked: the other rules decide, as for an unsigned one.
    let unknown = payload("https://unknown.example/service");
    let (status, _) = post(&s, &signed(&stranger, &inbox, &unknown, now()), &unknown).await;
    assert_eq!(status, 201);
    let record = newest(&s).await;
    assert_eq!(record["state"], "quarantined");
    assert_eq!(record["signature_key"], Value::Null);
    // A registered peer trusted by its address, not by signature, that signs anyway (every
    // coar-notify server does): its key cannot be checked, and its range decides.
    let ranged = "https://ranged.example/service";
    register(
        &s,
        json!({"name": "Ranged", "id": ranged, "cidrs": ["127.0.0.0/8"]}),
    )
    .await;
    let from_range = payload(ranged);
    let (status, _) = post(
        &s,
        &signed(&stranger, &inbox, &from_range, now()),
        &from_range,
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(newest(&s).await["state"], "queued");
    // The inbox is also at `/inbox/`: a sender that signed that URI is verified.
    let slash = payload(ORIGIN);
    let mut r = s.client.post(s.url("/inbox/")).body(slash.clone());
    for (k, v) in signed(&key, &format!("{inbox}/"), &slash, now()) {
        r = r.header(k, v);
    }
    assert_eq!(r.send().await.unwrap().status(), 201);
    assert_eq!(newest(&s).await["signature_key"], thumbprint.as_str());
    // A key-set URL anyone on the path could answer is refused.
    let r = s
        .client
        .post(s.url("/api/services"))
        .bearer_auth(TOKEN)
        .json(&json!({"name": "Plain", "id": "https://plain.example/", "key_set_url": "http://plain.example/keys"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // But one that is wrong whoever holds the key is still refused.
    let (status, problem) = post(
        &s,
        &signed(&stranger, &inbox, &unknown, now() - 600),
        &unknown,
    )
    .await;
    assert_eq!((status, reason(&problem)), (401, "signature.expired"));
    s.stop().await;
});

fn body_id(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Server A delivers to server B, which knows A only by its key-set URL: B fetches A's keys,
/// attributes what A signed, and fetches again when A's key changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_server_is_trusted_through_its_published_key_set() {
    let db_a = common::db::create(common::db::Kind::Sqlite).await.unwrap();
    let db_b = common::db::create(common::db::Kind::Sqlite).await.unwrap();
    let receiver = [
        ("admin_token", TOKEN),
        ("trust", "quarantine"),
        ("allow_private_targets", "true"),
    ];
    let sender = [
        ("admin_token", TOKEN),
        ("workers", "1"),
        ("allow_private_targets", "true"),
    ];
    let b = common::start(&db_b.url, &receiver).await;
    let a = common::start(&db_a.url, &sender).await;
    let description: Value = a
        .client
        .get(a.url("/"))
        .header("accept", "application/ld+json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key_set = description["jwks_uri"].as_str().unwrap().to_owned();
    let registered = register(
        &b,
        json!({
            "name": "Server A",
            "id": ORIGIN,
            "signature_policy": "signature-required",
            "key_set_url": key_set,
        }),
    )
    .await;
    assert_eq!(registered["key_set_url"], key_set.as_str());
    assert_eq!(
        registered["fetched_keys"][0]["kid"],
        a.app.signing_key().key_id(),
        "fetched when registered: {registered}"
    );

    let send = async |a: &common::Server| {
        let mut doc: Value = serde_json::from_slice(&payload(ORIGIN)).unwrap();
        doc["target"]["inbox"] = json!(b.app.inbox_url());
        let r = a
            .client
            .post(a.url("/api/outbox"))
            .bearer_auth(TOKEN)
            .json(&doc)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        body_id(&serde_json::to_vec(&doc).unwrap())
    };
    let arrived = async |id: String| {
        common::eventually("the delivery", async || {
            let record = latest(&b).await?;
            (record["notification_id"] == id.as_str()).then_some(record)
        })
        .await
    };
    let record = arrived(send(&a).await).await;
    assert_eq!(record["state"], "queued");
    assert_eq!(record["service"], registered["key"]);
    let first_key = a.app.signing_key().verifying_key().thumbprint();
    assert_eq!(record["signature_key"], first_key.as_str());

    // A rotates its key and restarts at the same URL: B does not know the new key, fetches
    // A's set again, and attributes.
    let at = a
        .base
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    a.stop().await;
    db_a.store
        .rotate_signing_key(coar_server::new_signing_key().unwrap())
        .await
        .unwrap();
    let mut again = sender.to_vec();
    again.push(("bind", at.as_str()));
    let a = common::start(&db_a.url, &again).await;
    let second_key = a.app.signing_key().verifying_key().thumbprint();
    assert_ne!(first_key, second_key);
    let record = arrived(send(&a).await).await;
    assert_eq!(record["service"], registered["key"]);
    assert_eq!(record["signature_key"], second_key.as_str());

    // The dashboard says how the sender proved itself, and which keys the service has.
    let session = common::http_session();
    common::sign_in(&b, &session, TOKEN).await;
    let page = |path: String| {
        let session = session.clone();
        let url = b.url(&path);
        async move {
            let html = session.get(url).send().await.unwrap().text().await.unwrap();
            common::unescape(&html)
        }
    };
    let message = page(format!("/admin/messages/{}", record["key"])).await;
    let kid = a.app.signing_key().key_id().to_owned();
    assert!(
        message.contains(&format!("HTTP Message Signature by its key {kid}")),
        "{message}"
    );
    let service = page(format!("/admin/services/{}", registered["key"])).await;
    assert!(
        service.contains(&kid) && service.contains(&key_set),
        "{service}"
    );
    assert!(
        service.contains("value=\"signature-required\" selected"),
        "{service}"
    );
    a.stop().await;
    b.stop().await;
    common::db::drop_db(db_a).await;
    common::db::drop_db(db_b).await;
}

/// The venv's Python with http-message-signatures, or `None` (said) outside CI.
fn python() -> Option<PathBuf> {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/ci-venv/bin/python");
    let ready = python.exists()
        && std::process::Command::new(&python)
            .args(["-c", "import http_message_signatures, requests"])
            .status()
            .is_ok_and(|s| s.success());
    if ready {
        return Some(python);
    }
    let message = "signed-inbox interop SKIPPED: target/ci-venv lacks http-message-signatures \
                   (.ci/run installs it)";
    assert!(
        std::env::var_os("CI").is_none(),
        "{message}; CI must run it"
    );
    eprintln!("{message}");
    None
}

/// pyauth's http-message-signatures signs (Ed25519 and RSA-PSS-SHA512); the inbox attributes
/// what it signed to the service holding its key, and refuses it replayed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_independent_signer_is_verified_by_the_inbox() {
    let Some(python) = python() else { return };
    let db = common::db::create(common::db::Kind::Sqlite).await.unwrap();
    let s = common::start(&db.url, &[("admin_token", TOKEN), ("trust", "reject")]).await;
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../coar-ldn/tests/interop_signatures.py");
    let dir = std::env::temp_dir().join(format!("coar-signed-inbox-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut service: Option<i64> = None;
    for alg in ["ed25519", "rsa-pss-sha512"] {
        let body = payload(ORIGIN);
        std::fs::write(dir.join("body.json"), &body).unwrap();
        let out = std::process::Command::new(&python)
            .arg(&script)
            .args(["sign", alg, &s.app.inbox_url()])
            .arg(dir.join("body.json"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let given: Value = serde_json::from_slice(&out.stdout).unwrap();
        let keys = json!({"keys": [given["jwk"]]});
        let key = match service {
            None => {
                let r = register(
                    &s,
                    json!({"name": "Python", "id": ORIGIN, "signature_policy": "signature-required", "keys": keys}),
                )
                .await;
                r["key"].as_i64().unwrap()
            }
            Some(k) => {
                let r = s
                    .client
                    .patch(s.url(&format!("/api/services/{k}")))
                    .bearer_auth(TOKEN)
                    .json(&json!({"keys": keys}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                k
            }
        };
        service = Some(key);
        let headers: Vec<(String, String)> = given["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p[0].as_str().unwrap().to_owned(),
                    p[1].as_str().unwrap().to_owned(),
                )
            })
            .filter(|(k, _)| !k.eq_ignore_ascii_case("content-length"))
            .collect();
        let (status, problem) = post(&s, &headers, &body).await;
        assert_eq!(status, 201, "{alg}: {problem}");
        let record = newest(&s).await;
        assert_eq!(record["service"], key, "{alg}");
        assert_eq!(record["state"], "queued");
        let (status, problem) = post(&s, &headers, &body).await;
        assert_eq!(
            (status, reason(&problem)),
            (401, "signature.replayed"),
            "{alg}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    s.stop().await;
    common::db::drop_db(db).await;
}

/// The example request in docs/security.md ("For peers") verifies with the JWK Set shown
/// after it, at its `created` time, and not with its body changed: the guide cannot go stale.
#[test]
fn the_peers_guide_example_verifies() {
    use coar_ldn::signature::{Policy, Request, parse_jwk_set, verify_request};
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/security.md"))
            .unwrap();
    let block = |marker: &str| {
        let after = &doc[doc.find(marker).expect(marker)..];
        let start = after.find("```").unwrap();
        let body = &after[start..];
        let body = &body[body.find('\n').unwrap() + 1..];
        body[..body.find("\n```").unwrap()].to_owned()
    };
    let request = block("<!-- signed-example:request -->");
    let keys =
        parse_jwk_set(&serde_json::from_str(&block("<!-- signed-example:jwks -->")).unwrap())
            .unwrap();
    let (head, body) = request.split_once("\n\n").unwrap();
    let mut lines = head.lines();
    let request_line = lines.next().unwrap();
    assert!(request_line.starts_with("POST /inbox/ "), "{request_line}");
    let mut headers = http::HeaderMap::new();
    for line in lines {
        let (name, value) = line.split_once(": ").unwrap();
        headers.append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    let host = headers["host"].to_str().unwrap().to_owned();
    let target = format!("https://{host}/inbox/");
    let req = Request {
        method: "POST",
        target_uri: &target,
        headers: &headers,
    };
    let input = headers["signature-input"].to_str().unwrap();
    let created: i64 = input.split(";created=").nth(1).unwrap()[..10]
        .parse()
        .unwrap();
    let resolve = |id: &str| keys.iter().find(|k| k.key_id() == id).cloned();
    let verified = verify_request(&req, body.as_bytes(), created, Policy::default(), resolve)
        .unwrap()
        .expect("signed");
    assert_eq!(verified.key.key_id(), "repository-2026-12");
    let tampered = body.replacen("Josiah", "Josiaj", 1);
    assert_eq!(
        verify_request(
            &req,
            tampered.as_bytes(),
            created,
            Policy::default(),
            resolve
        )
        .unwrap_err()
        .reason(),
        "digest-mismatch"
    );
}
