//! Workers, the outbox and reliable delivery, over real HTTP between real servers.

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{Router, http::StatusCode as AxumStatus, routing::post};
use coar_model::{Notification, Offer, Pattern};
use coar_store::{Direction, Filter, State, ThreadStatus};
use common::{Server, eventually, start};
use reqwest::StatusCode;
use serde_json::{Value, json};

const TOKEN: &str = "the-admin-token-for-tests";

async fn server(db: &common::db::TestDb, extra: &[(&str, &str)]) -> Server {
    let mut settings = vec![
        ("trust", "accept"),
        ("workers", "1"),
        ("allow_private_targets", "true"),
        ("admin_token", TOKEN),
        ("retry_base", "100ms"),
    ];
    settings.extend_from_slice(extra);
    start(&db.url, &settings).await
}

async fn outbox(s: &Server, doc: Value) -> Value {
    let r = s
        .client
        .post(s.url("/api/outbox"))
        .bearer_auth(TOKEN)
        .json(&doc)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::ACCEPTED,
        "{}",
        r.text().await.unwrap()
    );
    r.json().await.unwrap()
}

async fn state_of(s: &Server, key: i64) -> State {
    s.app.store().get(key).await.unwrap().unwrap().state
}

/// The specification's Request Review example.
fn request_review() -> Value {
    serde_json::from_slice(
        &std::fs::read(common::fixture_path("spec/request-review.json")).unwrap(),
    )
    .unwrap()
}

fn preprint() -> Value {
    json!({
        "id": "https://repo.example/item/1/",
        "ietf:cite-as": "https://doi.org/10.5555/1",
        "ietf:item": {"id": "https://repo.example/item/1/paper.pdf", "mediaType": "application/pdf", "type": ["Article", "sorg:ScholarlyArticle"]},
        "type": ["Page", "sorg:AboutPage"]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_run_a_request_review_workflow() {
    let (db_a, db_b) = (
        common::db::create(common::db::Kind::Sqlite).await.unwrap(),
        common::db::create(common::db::Kind::Sqlite).await.unwrap(),
    );
    let (a, b) = (
        server(&db_a, &[("name", "Repository")]).await,
        server(&db_b, &[("name", "Review service")]).await,
    );

    // A asks B for a review: a pattern and its parameters; origin and actor are A's identity.
    let sent = outbox(
        &a,
        json!({
            "pattern": "request-review",
            "target": {"id": b.url("/"), "inbox": b.url("/inbox"), "type": "Service"},
            "object": preprint(),
        }),
    )
    .await;
    let offer_key = sent["key"].as_i64().unwrap();
    // A target given by its id alone: its inbox is discovered.
    let by_id = outbox(&a, json!({"pattern": "request-endorsement", "target": {"id": b.url("/"), "type": "Service"}, "object": preprint()})).await;
    let record = a
        .app
        .store()
        .get(by_id["key"].as_i64().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        record.target_inbox.as_deref(),
        Some(b.url("/inbox").as_str())
    );
    eventually("the Offer to be delivered", async || {
        (state_of(&a, offer_key).await == State::Processed).then_some(())
    })
    .await;
    let attempts = a.app.store().attempts(offer_key).await.unwrap();
    assert_eq!((attempts.len(), attempts[0].http_status), (1, Some(201)));
    let metrics = a.app.metrics().render(&[]);
    for family in [
        "coar_delivery_duration_seconds_count{outcome=\"delivered\"} ",
        "coar_notification_end_latency_seconds_count{direction=\"outbound\",outcome=\"delivered\"} ",
    ] {
        assert!(metrics.contains(family), "no {family} in {metrics}");
    }

    // B received it and answers, step by step; A's thread moves with each answer.
    let inbound = Filter {
        direction: Some(Direction::Inbound),
        pattern: Some(Some(Pattern::RequestReview)),
        ..Filter::default()
    };
    let received = eventually("B to receive the Offer", async || {
        b.app
            .store()
            .list(&inbound, None, 10)
            .await
            .unwrap()
            .items
            .into_iter()
            .next()
    })
    .await;
    let offer =
        coar_model::RequestReview::try_from(Notification::from_slice(&received.body).unwrap())
            .unwrap();
    assert_eq!(
        offer.origin().unwrap().inbox(),
        Some(a.url("/inbox").as_str())
    );
    let announce = coar_model::AnnounceReview::builder(
        coar_model::Service::new(b.url("/"), b.url("/inbox")),
        coar_model::Service::new(a.url("/"), a.url("/inbox")),
        coar_model::Resource::new("https://review.example/r/1", ["Page", "sorg:Review"])
            .cite_as("https://doi.org/10.5555/r1"),
        coar_model::Resource::landing_page("https://repo.example/item/1/"),
    )
    .in_reply_to(offer.id().unwrap())
    .build()
    .unwrap();
    let steps: Vec<(Notification, ThreadStatus)> = vec![
        (
            offer.tentative_accept().build().unwrap().into(),
            ThreadStatus::TentativelyAccepted,
        ),
        (
            offer.accept().build().unwrap().into(),
            ThreadStatus::Accepted,
        ),
        (announce.into(), ThreadStatus::Announced),
    ];
    for (reply, want) in steps {
        outbox(&b, reply.to_value()).await;
        eventually(&format!("A's thread to be {want:?}"), async || {
            (a.app
                .store()
                .thread(offer_key)
                .await
                .unwrap()
                .unwrap()
                .status
                == want)
                .then_some(())
        })
        .await;
    }
    // The resource's record on A: the request, its replies, the review.
    let threads = a
        .app
        .store()
        .threads_for_resource("https://repo.example/item/1/")
        .await
        .unwrap();
    assert_eq!(
        threads.len(),
        2,
        "the review request and the endorsement request"
    );
    let thread = threads.iter().find(|t| t.offer.key == offer_key).unwrap();
    let patterns: Vec<Pattern> = thread.replies.iter().filter_map(|r| r.pattern).collect();
    assert_eq!(
        patterns,
        [
            Pattern::TentativeAccept,
            Pattern::Accept,
            Pattern::AnnounceReview
        ]
    );
    let about = Filter {
        resource: Some("https://review.example/r/1".into()),
        ..Filter::default()
    };
    assert_eq!(
        a.app.store().count(&about).await.unwrap(),
        1,
        "the review is linked"
    );
    // The API shows the Offer with its attempts and thread.
    let detail: Value = a
        .client
        .get(a.url(&format!("/api/notifications/{offer_key}")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(detail["thread"]["status"], "announced");
    assert_eq!(detail["attempts"][0]["outcome"], "succeeded");
    a.stop().await;
    b.stop().await;
    common::db::drop_db(db_a).await;
    common::db::drop_db(db_b).await;
}

async fn flaky_target(fail_first: usize, answering: Arc<AtomicBool>) -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let router = Router::new().route(
        "/inbox",
        post(move || {
            let (c, answering) = (c.clone(), answering.clone());
            async move {
                let n = c.fetch_add(1, Ordering::SeqCst);
                if !answering.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                }
                if n < fail_first {
                    AxumStatus::SERVICE_UNAVAILABLE
                } else {
                    AxumStatus::CREATED
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (format!("http://{addr}/inbox"), calls)
}

fn offer_to(inbox: &str) -> Value {
    json!({"pattern": "request-endorsement", "target": {"id": "https://review.example/", "inbox": inbox, "type": "Service"}, "object": preprint()})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_retries_with_backoff_until_the_target_accepts() {
    let db = common::db::create(common::db::Kind::Sqlite).await.unwrap();
    let s = server(&db, &[("max_attempts", "5")]).await;
    let (inbox, calls) = flaky_target(3, Arc::new(AtomicBool::new(true))).await;
    let key = outbox(&s, offer_to(&inbox)).await["key"].as_i64().unwrap();
    eventually("delivery", async || {
        (state_of(&s, key).await == State::Processed).then_some(())
    })
    .await;
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    let attempts = s.app.store().attempts(key).await.unwrap();
    let summary: Vec<(&str, Option<u16>)> = attempts
        .iter()
        .map(|a| (a.outcome.as_str(), a.http_status))
        .collect();
    assert_eq!(
        summary,
        [
            ("failed", Some(503)),
            ("failed", Some(503)),
            ("failed", Some(503)),
            ("succeeded", Some(201))
        ]
    );
    // Backoff: 100 ms, 200 ms, 400 ms between the attempts (at least).
    for (i, pair) in attempts.windows(2).enumerate() {
        let gap = (pair[1].started_at - pair[0].started_at).num_milliseconds();
        assert!(gap >= 100 << i, "gap {i}: {gap} ms");
    }
    s.stop().await;
    common::db::drop_db(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_target_makes_a_dead_message_that_replays() {
    let db = common::db::create(common::db::Kind::Sqlite).await.unwrap();
    let s = server(&db, &[("max_attempts", "2"), ("send_timeout", "300ms")]).await;
    let answering = Arc::new(AtomicBool::new(false));
    let (inbox, _) = flaky_target(0, answering.clone()).await;
    let key = outbox(&s, offer_to(&inbox)).await["key"].as_i64().unwrap();
    eventually("the message to die", async || {
        (state_of(&s, key).await == State::Dead).then_some(())
    })
    .await;
    let attempts = s.app.store().attempts(key).await.unwrap();
    assert_eq!(attempts.len(), 2);
    assert!(
        attempts.iter().all(
            |a| a.outcome == "failed" && a.error.as_deref().unwrap_or("").contains("timed out")
        ),
        "{attempts:?}"
    );
    // Visible, and replayable once the target answers.
    let dead = Filter {
        state: Some(State::Dead),
        ..Filter::default()
    };
    assert_eq!(s.app.store().count(&dead).await.unwrap(), 1);
    answering.store(true, Ordering::SeqCst);
    let r = s
        .client
        .post(s.url(&format!("/api/notifications/{key}/replay")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    eventually("the replayed delivery", async || {
        (state_of(&s, key).await == State::Processed).then_some(())
    })
    .await;
    let r = s
        .client
        .post(s.url(&format!("/api/notifications/{key}/replay")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    s.stop().await;
    common::db::drop_db(db).await;
}

/// A handler of the embedding application, run for its patterns; a refusal is answered to
/// the sender with an Unprocessable Notification that says only the refusal's fixed
/// sentence.
struct Refuses {
    seen: Arc<AtomicUsize>,
}

impl coar_server::pipeline::Handler for Refuses {
    fn name(&self) -> &str {
        "refuses"
    }
    fn handle<'a>(
        &'a self,
        _: &'a coar_server::Core,
        _: &'a coar_store::Record,
        n: &'a Notification,
    ) -> coar_server::pipeline::HandlerFuture<'a> {
        Box::pin(async move {
            self.seen.fetch_add(1, Ordering::SeqCst);
            assert_eq!(n.pattern(), Some(Pattern::RequestReview));
            Err(coar_server::pipeline::HandlerError::refused(
                coar_server::pipeline::Refusal::Policy,
                "we review nothing on Mondays (internal: http://10.0.0.7/hook)",
            ))
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_run_and_permanent_failures_are_flagged_to_the_sender() {
    let db = common::db::create(common::db::Kind::Sqlite).await.unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let pipeline = coar_server::pipeline::Pipeline::default().add(
        &[Some(Pattern::RequestReview)],
        Arc::new(Refuses { seen: seen.clone() }),
    );
    let settings = [
        ("trust", "accept"),
        ("workers", "1"),
        ("allow_private_targets", "true"),
        ("admin_token", TOKEN),
        ("retry_base", "100ms"),
    ];
    let s = common::start_with(&db.url, &settings, pipeline).await;
    // The sender: a small inbox that records what it gets.
    let got = Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    let g = got.clone();
    let router = Router::new().route(
        "/inbox",
        post(move |body: String| {
            let g = g.clone();
            async move {
                g.lock().unwrap().push(serde_json::from_str(&body).unwrap());
                AxumStatus::CREATED
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sender_inbox = format!("http://{}/inbox", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let mut rr: Value = request_review();
    rr["origin"]["inbox"] = json!(sender_inbox);
    let r = s
        .client
        .post(s.url("/inbox"))
        .header("content-type", "application/ld+json")
        .body(rr.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let flag = eventually("the Unprocessable Notification", async || {
        got.lock().unwrap().first().cloned()
    })
    .await;
    let flag = Notification::from_value(flag).unwrap();
    assert_eq!(flag.pattern(), Some(Pattern::Unprocessable));
    assert_eq!(flag.in_reply_to(), rr["id"].as_str());
    assert_eq!(
        flag.summary(),
        Some(coar_server::pipeline::Refusal::Policy.summary()),
        "the summary is the fixed sentence, nothing of ours"
    );
    assert_eq!(
        seen.load(Ordering::SeqCst),
        1,
        "a permanent failure is not retried"
    );
    let failed = Filter {
        state: Some(State::Failed),
        direction: Some(Direction::Inbound),
        ..Filter::default()
    };
    assert_eq!(s.app.store().count(&failed).await.unwrap(), 1);
    // Other patterns have no handler here: processed.
    let ar = std::fs::read(common::fixture_path("spec/announce-review.json")).unwrap();
    s.client
        .post(s.url("/inbox"))
        .header("content-type", "application/ld+json")
        .body(ar)
        .send()
        .await
        .unwrap();
    let processed = Filter {
        state: Some(State::Processed),
        direction: Some(Direction::Inbound),
        ..Filter::default()
    };
    eventually("the announcement to be processed", async || {
        (s.app.store().count(&processed).await.unwrap() == 1).then_some(())
    })
    .await;
    let metrics = s.app.metrics().render(&[]);
    for family in [
        "coar_notification_end_latency_seconds_count{direction=\"inbound\",outcome=\"processed\"} 1",
        "coar_notification_end_latency_seconds_count{direction=\"inbound\",outcome=\"failed\"} 1",
    ] {
        assert!(metrics.contains(family), "no {family} in {metrics}");
    }
    // The outbox refuses what is invalid, and needs the token.
    let r = s
        .client
        .post(s.url("/api/outbox"))
        .bearer_auth(TOKEN)
        .json(&json!({"pattern": "request-review", "target": {"type": "Service"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["pointer"] == "/target/inbox"),
        "{body}"
    );
    let r = s
        .client
        .post(s.url("/api/outbox"))
        .bearer_auth(TOKEN)
        .json(&json!({"pattern": "request-ingest"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = s
        .client
        .post(s.url("/api/outbox"))
        .bearer_auth("a-wrong-token-of-length")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    s.stop().await;
    common::db::drop_db(db).await;
}

/// A local receiver that records JSON bodies and headers, failing the first `fail` calls.
async fn recorder(
    fail: usize,
) -> (
    String,
    Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, String)>>>,
) {
    let got = Arc::new(std::sync::Mutex::new(Vec::new()));
    let g = got.clone();
    let calls = Arc::new(AtomicUsize::new(0));
    let router = Router::new().route(
        "/hook",
        post(move |headers: axum::http::HeaderMap, body: String| {
            let (g, calls) = (g.clone(), calls.clone());
            async move {
                if calls.fetch_add(1, Ordering::SeqCst) < fail {
                    return AxumStatus::INTERNAL_SERVER_ERROR;
                }
                g.lock().unwrap().push((headers, body));
                AxumStatus::CREATED
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (url, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_webhook_and_auto_reply() {
    let (hook, events) = recorder(1).await;
    let (sender_inbox, replies) = recorder(0).await;
    let specs: Vec<coar_server::pipeline::builtin::HandlerSpec> = toml::from_str::<toml::Table>(&format!(
        "[[pipeline]]\npatterns = [\"*\"]\nhandler = \"webhook\"\nurl = \"{hook}\"\nsecret = \"a-webhook-secret-key\"\n\n\
         [[pipeline]]\npatterns = [\"request-review\"]\nhandler = \"auto-reply\"\nreply = \"tentative-accept\"\nsummary = \"In the queue\"\n"
    ))
    .unwrap()["pipeline"]
        .clone()
        .try_into()
        .unwrap();
    let pipeline = coar_server::pipeline::builtin::from_specs(&specs).unwrap();
    let db = common::db::create(common::db::Kind::Sqlite).await.unwrap();
    let settings = [
        ("trust", "accept"),
        ("workers", "1"),
        ("allow_private_targets", "true"),
        ("admin_token", TOKEN),
        ("retry_base", "100ms"),
    ];
    let s = common::start_with(&db.url, &settings, pipeline).await;

    let mut rr: Value = request_review();
    rr["origin"]["inbox"] = json!(sender_inbox);
    let r = s
        .client
        .post(s.url("/inbox"))
        .header("content-type", "application/ld+json")
        .body(rr.to_string())
        .send()
        .await
        .unwrap();
    let key: i64 = r.headers()["location"]
        .to_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();

    // The webhook: retried after its first 500, signed.
    let (headers, body) = eventually("the webhook event", async || {
        events.lock().unwrap().first().cloned()
    })
    .await;
    // Standard Webhooks: an id stable across retries, a timestamp, and a signature over
    // both and the body.
    let header = |name: &str| headers[name].to_str().unwrap().to_owned();
    let (id, timestamp) = (header("webhook-id"), header("webhook-timestamp"));
    assert_eq!(id, format!("msg_{key}_received"));
    let timestamp: i64 = timestamp.parse().unwrap();
    assert!((chrono::Utc::now().timestamp() - timestamp).abs() < 60);
    assert_eq!(
        header("webhook-signature"),
        coar_server::pipeline::builtin::webhook_signature(
            "a-webhook-secret-key",
            &id,
            timestamp,
            body.as_bytes()
        )
    );
    let event: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (event["pattern"].clone(), event["id"].clone()),
        (json!("request-review"), rr["id"].clone())
    );
    // The auto-reply reached the sender, answering the Offer.
    let (_, reply) = eventually("the auto-reply", async || {
        replies.lock().unwrap().first().cloned()
    })
    .await;
    let reply = Notification::from_json_str(&reply).unwrap();
    assert_eq!(reply.pattern(), Some(Pattern::TentativeAccept));
    assert_eq!(reply.in_reply_to(), rr["id"].as_str());
    assert_eq!(reply.summary(), Some("In the queue"));
    eventually("processing to finish", async || {
        (state_of(&s, key).await == State::Processed).then_some(())
    })
    .await;
    // Processing again (a replay) queues no second reply: the reply's id is derived.
    let r = s
        .client
        .post(s.url(&format!("/api/notifications/{key}/replay")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    eventually("the replay", async || {
        (events.lock().unwrap().len() == 2).then_some(())
    })
    .await;
    eventually("processing to finish again", async || {
        (state_of(&s, key).await == State::Processed).then_some(())
    })
    .await;
    let outbound = Filter {
        direction: Some(Direction::Outbound),
        ..Filter::default()
    };
    assert_eq!(s.app.store().count(&outbound).await.unwrap(), 1);
    s.stop().await;
    common::db::drop_db(db).await;
}

/// Blocks its thread on its first call, longer than the lease (a worker that died
/// mid-processing, as far as the others can tell: it neither finishes nor fails), succeeds
/// afterwards.
struct HangsOnce {
    calls: Arc<AtomicUsize>,
}

impl coar_server::pipeline::Handler for HangsOnce {
    fn name(&self) -> &str {
        "hangs-once"
    }
    fn handle<'a>(
        &'a self,
        _: &'a coar_server::Core,
        _: &'a coar_store::Record,
        _: &'a Notification,
    ) -> coar_server::pipeline::HandlerFuture<'a> {
        Box::pin(async move {
            if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
                std::thread::sleep(Duration::from_secs(3));
            }
            Ok(())
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_workers_lease_expires_and_another_processes_the_message() {
    let db = common::db::create(common::db::Kind::Sqlite).await.unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let pipeline = || {
        coar_server::pipeline::Pipeline::default().add_everywhere(Arc::new(HangsOnce {
            calls: calls.clone(),
        }))
    };
    let settings = [
        ("trust", "accept"),
        ("workers", "1"),
        ("lease", "1s"),
        ("send_timeout", "100ms"),
    ];
    // The first server's worker takes the message and never comes back.
    let stuck = common::start_with(&db.url, &settings, pipeline()).await;
    let rr = std::fs::read(common::fixture_path("spec/request-review.json")).unwrap();
    let r = stuck
        .client
        .post(stuck.url("/inbox"))
        .header("content-type", "application/ld+json")
        .body(rr)
        .send()
        .await
        .unwrap();
    let key: i64 = r.headers()["location"]
        .to_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    eventually("the first attempt", async || {
        (calls.load(Ordering::SeqCst) == 1).then_some(())
    })
    .await;
    // Another process's worker takes it over once the lease has expired.
    let other = common::start_with(&db.url, &settings, pipeline()).await;
    eventually("the message to be processed", async || {
        (state_of(&other, key).await == State::Processed).then_some(())
    })
    .await;
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "processed once more, not more"
    );
    let outcomes: Vec<String> = other
        .app
        .store()
        .attempts(key)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.outcome)
        .collect();
    assert_eq!(outcomes, ["abandoned", "succeeded"]);
    other.stop().await;
    drop(stuck); // its worker is still stuck: it is left behind, as a dead process would be
}

/// Takes its time with each notification and counts calls per notification id.
struct Slow {
    calls: Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>,
}

impl coar_server::pipeline::Handler for Slow {
    fn name(&self) -> &str {
        "slow"
    }
    fn handle<'a>(
        &'a self,
        _: &'a coar_server::Core,
        _: &'a coar_store::Record,
        n: &'a Notification,
    ) -> coar_server::pipeline::HandlerFuture<'a> {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            *self
                .calls
                .lock()
                .unwrap()
                .entry(n.id().unwrap_or_default().to_owned())
                .or_default() += 1;
            Ok(())
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_started_only_while_the_lease_lasts_and_the_rest_is_handed_back() {
    let db = common::db::create(common::db::Kind::Sqlite).await.unwrap();
    let calls = Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
    let pipeline = coar_server::pipeline::Pipeline::default().add_everywhere(Arc::new(Slow {
        calls: calls.clone(),
    }));
    // 150 ms per notification against a lease of 1.6 s: a claimed batch cannot all be
    // started while an eighth of the lease (200 ms, also the most one may take) remains.
    let s = common::start_with(
        &db.url,
        &[
            ("trust", "accept"),
            ("workers", "1"),
            ("lease", "1600ms"),
            ("send_timeout", "100ms"),
        ],
        pipeline,
    )
    .await;
    let mut rr: Value = request_review();
    let ids: Vec<String> = (0..12)
        .map(|i| format!("urn:uuid:00000000-0000-4000-8000-{i:012}"))
        .collect();
    for id in &ids {
        rr["id"] = json!(id);
        let r = s
            .client
            .post(s.url("/inbox"))
            .header("content-type", "application/ld+json")
            .body(rr.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let processed = Filter {
        state: Some(State::Processed),
        direction: Some(Direction::Inbound),
        ..Filter::default()
    };
    eventually("all twelve processed", async || {
        (s.app.store().count(&processed).await.unwrap() == 12).then_some(())
    })
    .await;
    let calls = calls.lock().unwrap().clone();
    for id in &ids {
        assert_eq!(calls.get(id), Some(&1), "{id} handled once: {calls:?}");
    }
    let mut outcomes = Vec::new();
    for record in s
        .app
        .store()
        .list(&Filter::default(), None, 100)
        .await
        .unwrap()
        .items
    {
        for a in s.app.store().attempts(record.key).await.unwrap() {
            outcomes.push(a.outcome);
        }
    }
    assert!(
        outcomes.iter().any(|o| o == "released"),
        "some of a batch were handed back: {outcomes:?}"
    );
    assert!(
        !outcomes.iter().any(|o| o == "abandoned"),
        "no lease ran out: {outcomes:?}"
    );
    assert_eq!(outcomes.iter().filter(|o| *o == "succeeded").count(), 12);
    s.stop().await;
    common::db::drop_db(db).await;
}
