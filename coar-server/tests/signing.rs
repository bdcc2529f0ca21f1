//! What this server sends is signed (RFC 9421): the service description names its JWK Set,
//! `/keys` publishes it, each delivery verifies at the receiver with a key fetched from it,
//! one key is shared by every process on the database, and a rotation keeps the old key
//! published while the new one signs.

mod common;

use std::sync::{Arc, Mutex};

use axum::{Router, http::HeaderMap, routing::post};
use coar_ldn::signature::{Policy, Request, VerifyingKey, parse_jwk_set, verify_request};
use serde_json::{Value, json};

const TOKEN: &str = "the-admin-token-for-signing-tests";

/// A receiver that verifies each POST against `keys` and records the keyid or the reason.
async fn receiver(keys: Arc<Mutex<Vec<VerifyingKey>>>) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let inbox = format!("http://{}/inbox", listener.local_addr().unwrap());
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let (s, target) = (seen.clone(), inbox.clone());
    let router = Router::new().route(
        "/inbox",
        post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let (s, target, keys) = (s.clone(), target.clone(), keys.clone());
            async move {
                let now = chrono::Utc::now().timestamp();
                let req = Request {
                    method: "POST",
                    target_uri: &target,
                    headers: &headers,
                };
                let known = keys.lock().unwrap().clone();
                let outcome = verify_request(&req, &body, now, Policy::default(), |id| {
                    known.iter().find(|k| k.key_id() == id).cloned()
                });
                s.lock().unwrap().push(match outcome {
                    Ok(Some(v)) => v.key.key_id().to_owned(),
                    Ok(None) => "unsigned".into(),
                    Err(e) => format!("refused: {}", e.reason()),
                });
                axum::http::StatusCode::CREATED
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (inbox, seen)
}

async fn published(s: &common::Server) -> Vec<VerifyingKey> {
    let description: Value = s
        .client
        .get(s.url("/"))
        .header("accept", "application/ld+json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = description["jwks_uri"]
        .as_str()
        .expect("jwks_uri")
        .to_owned();
    let r = s.client.get(url).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "application/jwk-set+json");
    parse_jwk_set(&r.json::<Value>().await.unwrap()).unwrap()
}

async fn send(s: &common::Server, inbox: &str) {
    let mut doc: Value = serde_json::from_slice(
        &std::fs::read(common::fixture_path("spec/announce-review.json")).unwrap(),
    )
    .unwrap();
    doc["id"] = json!(coar_model::new_id());
    doc["target"]["inbox"] = json!(inbox);
    let r = s
        .client
        .post(s.url("/api/outbox"))
        .bearer_auth(TOKEN)
        .json(&doc)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
}

async fn delivered(seen: &Arc<Mutex<Vec<String>>>, count: usize) -> Vec<String> {
    for _ in 0..300 {
        if seen.lock().unwrap().len() >= count {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    seen.lock().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_are_signed_with_the_published_key_and_rotation_keeps_the_old_one() {
    let db = common::db::create(common::db::Kind::Sqlite).await.unwrap();
    let settings = [
        ("admin_token", TOKEN),
        ("workers", "1"),
        ("allow_private_targets", "true"),
    ];
    let keys: Arc<Mutex<Vec<VerifyingKey>>> = Arc::default();
    let (inbox, seen) = receiver(keys.clone()).await;

    // First start: a key is made; the receiver knows it from /keys.
    let s = common::start(&db.url, &settings).await;
    let first = published(&s).await;
    assert_eq!(first.len(), 1);
    assert_eq!(
        first[0].key_id(),
        first[0].thumbprint(),
        "keyid is the thumbprint"
    );
    *keys.lock().unwrap() = first.clone();
    send(&s, &inbox).await;
    assert_eq!(delivered(&seen, 1).await, [first[0].key_id()]);
    s.stop().await;

    // Another start on the same database signs with the same key.
    let again = common::start(&db.url, &settings).await;
    assert_eq!(published(&again).await, first);
    again.stop().await;

    // Rotation: the new key signs; the old stays published.
    let rotated = db
        .store
        .rotate_signing_key(coar_server::new_signing_key().unwrap())
        .await
        .unwrap();
    let s = common::start(&db.url, &settings).await;
    let both = published(&s).await;
    assert_eq!(
        both.iter().map(VerifyingKey::key_id).collect::<Vec<_>>(),
        [rotated.kid.as_str(), first[0].key_id()],
        "the key in use first, the retired one still published"
    );
    *keys.lock().unwrap() = both;
    send(&s, &inbox).await;
    assert_eq!(delivered(&seen, 2).await[1], rotated.kid);
    // A receiver that knows only the old key refuses what the new one signed.
    *keys.lock().unwrap() = first.clone();
    send(&s, &inbox).await;
    assert_eq!(delivered(&seen, 3).await[2], "refused: unknown-key");
    s.stop().await;
    common::db::drop_db(db).await;
}

/// `COAR_SIGNING_KEY_FILE`: the file's key signs and is the one published, under its
/// thumbprint; a file that holds no key stops the server at start-up, naming the setting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_file_is_the_key() {
    use coar_ldn::signature::{SigningKey, pkcs8_pem};
    let db = common::db::create(common::db::Kind::Sqlite).await.unwrap();
    let dir = std::env::temp_dir().join(format!("coar-signing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (key, pkcs8) = SigningKey::generate_ed25519("").unwrap();
    let file = dir.join("signing.pem");
    std::fs::write(&file, pkcs8_pem(&pkcs8)).unwrap();
    let path = file.display().to_string();
    let s = common::start(&db.url, &[("signing_key_file", path.as_str())]).await;
    let keys = published(&s).await;
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].key_id(), key.verifying_key().thumbprint());
    assert_eq!(s.app.signing_key().key_id(), keys[0].key_id());
    s.stop().await;
    std::fs::write(&file, "not a key").unwrap();
    let config = coar_server::Config::resolve(
        coar_server::config::Layer {
            database_url: Some(db.url.clone()),
            signing_key_file: Some(path.clone()),
            ..Default::default()
        },
        Default::default(),
        None,
    )
    .unwrap();
    let err = coar_server::Core::open(config, Default::default())
        .await
        .err()
        .expect("no key in the file");
    assert!(err.to_string().contains("signing_key_file"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
    common::db::drop_db(db).await;
}
