//! The trust boundary: what a hostile sender or a hostile target can do to the server, over
//! real HTTP. Each of these once broke it.

mod common;

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use axum::{
    Router,
    http::{HeaderMap, StatusCode as AxumStatus},
    routing,
};
use coar_model::{Notification, Pattern};
use coar_store::{Direction, Filter, State};
use common::{Server, eventually};
use reqwest::StatusCode;
use serde_json::{Value, json};

const TOKEN: &str = "the-admin-token-for-tests";

fn request_review() -> Value {
    serde_json::from_slice(
        &std::fs::read(common::fixture_path("spec/request-review.json")).unwrap(),
    )
    .unwrap()
}

fn with_id(mut v: Value, n: usize) -> Value {
    v["id"] = json!(format!("urn:uuid:00000000-0000-4000-8000-{n:012}"));
    v
}

async fn post(s: &Server, content_type: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
    s.client
        .post(s.url("/inbox"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn text(s: &Server, path: &str) -> String {
    s.client
        .get(s.url(path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The store key of a notification from the `Location` the inbox answered with.
fn key_of(r: &reqwest::Response) -> i64 {
    r.headers()["location"]
        .to_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

async fn healthz(s: &Server) -> StatusCode {
    s.client
        .get(s.url("/healthz"))
        .send()
        .await
        .unwrap()
        .status()
}

/// A small inbox on loopback: answers each POST with what `answer` says for the call's
/// number, and records the bodies.
async fn target(
    answer: impl Fn(usize) -> (AxumStatus, HeaderMap) + Clone + Send + Sync + 'static,
) -> (String, Arc<std::sync::Mutex<Vec<Value>>>) {
    let got = Arc::new(std::sync::Mutex::new(Vec::new()));
    let calls = Arc::new(AtomicUsize::new(0));
    let g = got.clone();
    let router = Router::new().route(
        "/inbox",
        routing::post(move |body: String| {
            let (g, calls, answer) = (g.clone(), calls.clone(), answer.clone());
            async move {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                g.lock()
                    .unwrap()
                    .push(serde_json::from_str(&body).unwrap_or(Value::Null));
                answer(n)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/inbox", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (url, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bodies_get_a_problem_naming_the_budget_even_from_untrusted_senders() {
    let db = common::db::create(common::db::Kind::Sqlite).await.unwrap();
    let s = common::start(&db.url, &[("trust", "reject")]).await;
    // One node of many literals referenced from 1 800 places: 54 KB that once asked for
    // gigabytes.
    let mut fan_out = String::from("<urn:hub> ");
    for i in 0..100 {
        fan_out.push_str(&format!("<urn:p:{i}> \"{}\" ; ", "x".repeat(30)));
    }
    fan_out.push_str("<urn:p:end> 1 .\n");
    for _ in 0..1800 {
        fan_out.push_str("<urn:s> <urn:p> <urn:hub> .\n");
    }
    let r = post(&s, "text/turtle", fan_out).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["title"], "Over budget", "{p}");
    assert_eq!(p["errors"][0]["budget"], "output", "{p}");
    // A 140 KB chain of nested blank nodes once aborted the process at once.
    let deep = format!(
        "<urn:s> <urn:p> {}1{} .",
        "[<urn:p> ".repeat(15_000),
        "]".repeat(15_000)
    );
    let r = post(&s, "text/turtle", deep).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["errors"][0]["budget"], "depth", "{p}");
    // Repeated member names: what we validate must be what every reader of the stored
    // body reads.
    let dup = br#"{"@context": ["https://www.w3.org/ns/activitystreams", "https://coar-notify.net"], "id": "urn:uuid:1", "type": "Announce", "object": {"id": "https://a.example/", "id": "https://b.example/"}}"#;
    let r = post(&s, "application/ld+json", dup.to_vec()).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["title"], "Duplicate member name", "{p}");
    assert_eq!(p["errors"][0]["pointer"], "/object/id", "{p}");
    assert_eq!(healthz(&s).await, StatusCode::OK);
    s.stop().await;
    common::db::drop_db(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absurd_retry_after_is_clamped_and_the_worker_goes_on() {
    let db = common::db::create(common::db::Kind::Sqlite).await.unwrap();
    let s = common::start(
        &db.url,
        &[
            ("trust", "accept"),
            ("workers", "1"),
            ("allow_private_targets", "true"),
            ("admin_token", TOKEN),
            ("retry_base", "100ms"),
        ],
    )
    .await;
    let (hostile, _) = target(|_| {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "10000000000000".parse().unwrap());
        (AxumStatus::SERVICE_UNAVAILABLE, h)
    })
    .await;
    let (fine, got) = target(|_| (AxumStatus::CREATED, HeaderMap::new())).await;
    let offer = |inbox: &str| {
        json!({"pattern": "request-endorsement", "target": {"id": "https://review.example/", "inbox": inbox, "type": "Service"},
               "object": {"id": "https://repo.example/item/1/", "ietf:cite-as": "https://doi.org/10.5555/1", "type": ["Page", "sorg:AboutPage"],
                          "ietf:item": {"id": "https://repo.example/item/1/paper.pdf", "mediaType": "application/pdf", "type": ["Article", "sorg:ScholarlyArticle"]}}})
    };
    let mut keys = Vec::new();
    for inbox in [&hostile, &fine] {
        let r = s
            .client
            .post(s.url("/api/outbox"))
            .bearer_auth(TOKEN)
            .json(&offer(inbox))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        keys.push(r.json::<Value>().await.unwrap()["key"].as_i64().unwrap());
    }
    eventually("the other delivery", async || {
        (!got.lock().unwrap().is_empty()).then_some(())
    })
    .await;
    // The two go side by side: the refused one is recorded once its answer is in.
    let record = eventually("the refused delivery to be retried later", async || {
        let record = s.app.store().get(keys[0]).await.unwrap().unwrap();
        (record.state == State::RetryScheduled).then_some(record)
    })
    .await;
    let next = record.next_attempt_at.expect("a retry is scheduled");
    let latest = chrono::Utc::now() + chrono::Duration::days(1) + chrono::Duration::minutes(1);
    assert!(next <= latest, "Retry-After is cut to a day: {next}");
    assert!(
        next >= chrono::Utc::now() + chrono::Duration::hours(23),
        "and honoured up to it: {next}"
    );
    assert_eq!(healthz(&s).await, StatusCode::OK);
    s.stop().await;
    common::db::drop_db(db).await;
}

/// A handler with a bug: it panics on the first notification it sees.
struct PanicsOnce(AtomicUsize);

impl coar_server::pipeline::Handler for PanicsOnce {
    fn name(&self) -> &str {
        "panics-once"
    }
    fn handle<'a>(
        &'a self,
        _: &'a coar_server::Core,
        _: &'a coar_store::Record,
        _: &'a Notification,
    ) -> coar_server::pipeline::HandlerFuture<'a> {
        Box::pin(async move {
            if self.0.fetch_add(1, Ordering::SeqCst) == 0 {
                panic!("index out of bounds in the handler");
            }
            Ok(())
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_is_that_notifications_failed_attempt_and_the_worker_goes_on() {
    let db = common::db::create(common::db::Kind::Sqlite).await.unwrap();
    let pipeline = coar_server::pipeline::Pipeline::default().add(
        &[Some(Pattern::RequestReview)],
        Arc::new(PanicsOnce(AtomicUsize::new(0))),
    );
    let s = common::start_with(
        &db.url,
        &[
            ("trust", "accept"),
            ("workers", "1"),
            ("retry_base", "100ms"),
        ],
        pipeline,
    )
    .await;
    let first = post(
        &s,
        common::LD_JSON,
        with_id(request_review(), 1).to_string(),
    )
    .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let processed = Filter {
        state: Some(State::Processed),
        direction: Some(Direction::Inbound),
        ..Filter::default()
    };
    // The first is retried after its failed attempt, and the worker takes more.
    let second = post(
        &s,
        common::LD_JSON,
        with_id(request_review(), 2).to_string(),
    )
    .await;
    assert_eq!(second.status(), StatusCode::CREATED);
    eventually("both to be processed", async || {
        (s.app.store().count(&processed).await.unwrap() == 2).then_some(())
    })
    .await;
    let attempts = s.app.store().attempts(key_of(&first)).await.unwrap();
    assert_eq!(attempts[0].outcome, "failed", "{attempts:?}");
    assert!(
        attempts[0]
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("panicked: index out of bounds in the handler"),
        "{attempts:?}"
    );
    let metrics = text(&s, "/metrics").await;
    assert!(metrics.contains("coar_worker_panics_total 1"), "{metrics}");
    assert!(metrics.contains("coar_workers_running 1"), "{metrics}");
    assert_eq!(healthz(&s).await, StatusCode::OK);
    s.stop().await;
    common::db::drop_db(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_failures_stay_local_and_peers_cannot_choose_private_targets() {
    // The operator's webhook is on a private address and refuses everything; the sender's
    // inbox is on a private address too, but that one the sender chose.
    let (hook, hook_calls) = target(|_| (AxumStatus::BAD_REQUEST, HeaderMap::new())).await;
    let (sender_inbox, told) = target(|_| (AxumStatus::CREATED, HeaderMap::new())).await;
    let specs: Vec<coar_server::pipeline::builtin::HandlerSpec> = toml::from_str::<toml::Table>(&format!(
        "[[pipeline]]\npatterns = [\"request-review\"]\nhandler = \"auto-reply\"\nreply = \"accept\"\n\n\
         [[pipeline]]\npatterns = [\"*\"]\nhandler = \"webhook\"\nurl = \"{hook}\"\n"
    ))
    .unwrap()["pipeline"]
        .clone()
        .try_into()
        .unwrap();
    let pipeline = coar_server::pipeline::builtin::from_specs(&specs).unwrap();
    let db = common::db::create(common::db::Kind::Sqlite).await.unwrap();
    let s = common::start_with(
        &db.url,
        &[
            ("trust", "accept"),
            ("workers", "1"),
            ("retry_base", "50ms"),
            ("max_attempts", "3"),
        ],
        pipeline,
    )
    .await;
    let mut rr = with_id(request_review(), 3);
    rr["origin"]["inbox"] = json!(sender_inbox);
    let r = post(&s, common::LD_JSON, rr.to_string()).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let dead = Filter {
        state: Some(State::Dead),
        direction: Some(Direction::Inbound),
        ..Filter::default()
    };
    eventually(
        "the notification to go dead after its retries",
        async || (s.app.store().count(&dead).await.unwrap() == 1).then_some(()),
    )
    .await;
    assert_eq!(
        hook_calls.lock().unwrap().len(),
        3,
        "the webhook (private, but the operator's) was called on each attempt"
    );
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        told.lock().unwrap().is_empty(),
        "the sender is not told of our webhook's failure: {:?}",
        told.lock().unwrap()
    );
    // The auto-reply (queued once, its id derived from the Offer's) goes to the inbox the
    // sender chose, which is private: refused by the address policy, not sent.
    let outbound = Filter {
        direction: Some(Direction::Outbound),
        ..Filter::default()
    };
    let replies = s.app.store().list(&outbound, None, 10).await.unwrap().items;
    assert_eq!(replies.len(), 1, "{replies:?}");
    let reply = eventually("the reply to be refused", async || {
        let r = s.app.store().get(replies[0].key).await.unwrap().unwrap();
        (r.state == State::Failed).then_some(r)
    })
    .await;
    assert!(
        reply
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("address policy"),
        "{:?}",
        reply.last_error
    );
    s.stop().await;
    common::db::drop_db(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_that_cannot_hold_a_delivery_is_refused() {
    let env = coar_server::config::Layer::from_env(|k| match k {
        "COAR_LEASE" => Some("60s".into()),
        "COAR_SEND_TIMEOUT" => Some("30s".into()),
        _ => None,
    });
    let err =
        coar_server::Config::resolve(coar_server::config::Layer::default(), env, None).unwrap_err();
    assert!(err.setting.starts_with("lease"), "{err}");
    assert!(err.message.contains("240s"), "{err}");
}

async fn state_of(s: &Server, r: &reqwest::Response) -> State {
    s.app.store().get(key_of(r)).await.unwrap().unwrap().state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_origin_stays_quarantined_when_the_real_service_is_registered() {
    let db = common::db::create(common::db::Kind::Sqlite).await.unwrap();
    let s = common::start(
        &db.url,
        &[("admin_token", TOKEN), ("trusted_proxies", "127.0.0.1/32")],
    )
    .await;
    let origin = request_review()["origin"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The attacker, from outside the real service's range, claims to be it.
    let forged = s
        .client
        .post(s.url("/inbox"))
        .header("content-type", common::LD_JSON)
        .header("x-forwarded-for", "198.51.100.66")
        .body(with_id(request_review(), 10).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::CREATED);
    // The real one, before it is registered, from its own range and with its token.
    let real = s
        .client
        .post(s.url("/inbox"))
        .header("content-type", common::LD_JSON)
        .header("x-forwarded-for", "192.0.2.7")
        .bearer_auth("the-real-services-token")
        .body(with_id(request_review(), 11).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(real.status(), StatusCode::CREATED);
    // Neither is published: no registered service vouches for them.
    let listing = text(&s, "/inbox").await;
    assert!(!listing.contains("/inbox/1"), "{listing}");
    let feed = text(&s, "/feed").await;
    assert!(!feed.contains("<entry>"), "{feed}");
    // The admin registers the real service with its range and token: only what it proved
    // to have sent is released.
    let r = s
        .client
        .post(s.url("/api/services"))
        .bearer_auth(TOKEN)
        .json(&json!({"name": "Repository", "id": origin, "cidrs": ["192.0.2.0/24"], "tokens": ["the-real-services-token"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["quarantine"],
        json!({"released": 1, "kept": 1}),
        "{body}"
    );
    assert_eq!(state_of(&s, &forged).await, State::Quarantined);
    assert_eq!(state_of(&s, &real).await, State::Queued);
    // Now the real one is public, the forged one still is not.
    let listing = text(&s, "/inbox").await;
    let real_url = real.headers()["location"].to_str().unwrap();
    let forged_url = forged.headers()["location"].to_str().unwrap();
    assert!(listing.contains(real_url), "{listing}");
    assert!(!listing.contains(forged_url), "{listing}");
    // X-Forwarded-For from a connection that is no trusted proxy is the sender's own claim.
    let s2 = common::start(&db.url, &[]).await;
    let r = s2
        .client
        .post(s2.url("/inbox"))
        .header("content-type", common::LD_JSON)
        .header("x-forwarded-for", "192.0.2.8")
        .bearer_auth("the-real-services-token")
        .body(with_id(request_review(), 12).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(state_of(&s2, &r).await, State::Quarantined);
    s2.stop().await;
    s.stop().await;
    common::db::drop_db(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn senders_are_rate_limited_and_the_quarantine_is_capped() {
    let db = common::db::create(common::db::Kind::Sqlite).await.unwrap();
    let s = common::start(
        &db.url,
        &[("rate_limit", "3/h"), ("quarantine_limit", "100")],
    )
    .await;
    for n in 0..3 {
        let r = post(
            &s,
            common::LD_JSON,
            with_id(request_review(), 20 + n).to_string(),
        )
        .await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let r = post(
        &s,
        common::LD_JSON,
        with_id(request_review(), 23).to_string(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1000..=1201).contains(&wait), "{wait}");
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    s.stop().await;
    // The quarantine holds at most its cap per unattributed origin (the count survives a
    // restart: it is the database's).
    let s = common::start(&db.url, &[("quarantine_limit", "4")]).await;
    let r = post(
        &s,
        common::LD_JSON,
        with_id(request_review(), 24).to_string(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = post(
        &s,
        common::LD_JSON,
        with_id(request_review(), 25).to_string(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["title"], "Quarantine full", "{p}");
    s.stop().await;
    common::db::drop_db(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_token_is_checked_before_the_body_is_read() {
    let db = common::db::create(common::db::Kind::Sqlite).await.unwrap();
    let s = common::start(&db.url, &[("admin_token", TOKEN)]).await;
    for (path, method) in [
        ("/api/services", reqwest::Method::POST),
        ("/api/outbox", reqwest::Method::POST),
        ("/api/services/1", reqwest::Method::PATCH),
    ] {
        // Not JSON, no media type: a handler that read the body first would say 400 or 415.
        // Small enough to be written whole before the answer: the server answers without
        // reading it and closes, which would cut off a larger upload with a broken pipe.
        let r = s
            .client
            .request(method, s.url(path))
            .body(vec![b'x'; 16 * 1024])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    s.stop().await;
    common::db::drop_db(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_admin_tokens_are_throttled_and_the_token_can_come_from_a_file() {
    let db = common::db::create(common::db::Kind::Sqlite).await.unwrap();
    let dir = std::env::temp_dir().join(format!("coar-token-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("admin-token");
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    let s = common::start(&db.url, &[("admin_token_file", file.to_str().unwrap())]).await;
    let get = async |token: &str| {
        s.client
            .get(s.url("/api/stats"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(
        get(TOKEN).await,
        StatusCode::OK,
        "the file's token, trimmed"
    );
    for _ in 0..10 {
        assert_eq!(
            get("a-guess-at-the-admin-token").await,
            StatusCode::FORBIDDEN
        );
    }
    // Ten wrong guesses a minute per address; then not even the right token is checked.
    assert_eq!(
        get("another-guess-at-the-token").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(get(TOKEN).await, StatusCode::TOO_MANY_REQUESTS);
    s.stop().await;
    // Both the token and a file: refused at start-up.
    let env = coar_server::config::Layer::from_env(|k| match k {
        "COAR_ADMIN_TOKEN" => Some(TOKEN.into()),
        "COAR_ADMIN_TOKEN_FILE" => Some(file.to_str().unwrap().into()),
        _ => None,
    });
    let err =
        coar_server::Config::resolve(coar_server::config::Layer::default(), env, None).unwrap_err();
    assert!(err.setting.starts_with("admin_token_file"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
    common::db::drop_db(db).await;
}
