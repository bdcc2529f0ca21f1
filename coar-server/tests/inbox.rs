//! The inbox end to end over real HTTP on loopback, on SQLite, PostgreSQL and MariaDB.

mod common;

use std::collections::BTreeSet;

use common::{LD_JSON, fixture_path, spec_payloads, start};
use reqwest::{StatusCode, header};
use serde_json::{Value, json};

async fn post(
    s: &common::Server,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    s.client
        .post(s.url("/inbox"))
        .header(header::CONTENT_TYPE, content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

/// `GET url` with `Accept: accept`.
async fn get_as(s: &common::Server, url: &str, accept: &str) -> reqwest::Response {
    s.client
        .get(url)
        .header(header::ACCEPT, accept)
        .send()
        .await
        .unwrap()
}

/// Whether a problem's `errors` has one whose `field` is `value`.
fn names_error(problem: &Value, field: &str, value: &str) -> bool {
    problem["errors"]
        .as_array()
        .is_some_and(|errors| errors.iter().any(|e| e[field] == value))
}

async fn problem(r: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(r.status(), status);
    assert_eq!(
        r.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], status.as_u16());
    body
}

fn with_new_id(bytes: &[u8]) -> Vec<u8> {
    let mut doc: Value = serde_json::from_slice(bytes).unwrap();
    doc["id"] = json!(coar_model::new_id());
    serde_json::to_vec(&doc).unwrap()
}

server_test!(every_spec_example_is_accepted_stored_and_listed, |url| {
    // The examples reuse ids: one inbox answers 409 to a second, different body under an id
    // it has seen (tested below). So each round posts into a fresh database what the previous
    // round's inbox had seen an id for.
    let mut pending = spec_payloads();
    assert_eq!(pending.len(), 36);
    let mut round = 0;
    while !pending.is_empty() {
        round += 1;
        assert!(
            round <= 8,
            "ids collide more than expected: {:?}",
            pending.iter().map(|(n, _)| n).collect::<Vec<_>>()
        );
        let extra = if round == 1 {
            None
        } else {
            common::db::create(kind_of(url)).await
        };
        let db_url = extra.as_ref().map_or(url, |d| d.url.as_str());
        let s = start(db_url, &[("trust", "accept")]).await;
        let mut later = Vec::new();
        let mut locations = Vec::new();
        for (name, bytes) in pending {
            let r = post(&s, LD_JSON, bytes.clone()).await;
            if r.status() == StatusCode::CONFLICT {
                later.push((name, bytes));
                continue;
            }
            assert_eq!(
                r.status(),
                StatusCode::CREATED,
                "{name}: {}",
                r.text().await.unwrap()
            );
            let location = r.headers()[header::LOCATION].to_str().unwrap().to_owned();
            assert!(location.starts_with(&s.url("/inbox/")), "{location}");
            // Retrievable byte for byte, as JSON-LD.
            let got = s.client.get(&location).send().await.unwrap();
            assert_eq!(got.status(), StatusCode::OK);
            assert_eq!(got.headers()[header::CONTENT_TYPE], "application/ld+json");
            assert_eq!(
                got.bytes().await.unwrap().as_ref(),
                bytes.as_slice(),
                "{name}"
            );
            locations.push(location);
        }
        let listing: Value = s
            .client
            .get(s.url("/inbox?limit=1000"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let listed: BTreeSet<&str> = listing["contains"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        for l in &locations {
            assert!(listed.contains(l.as_str()), "{l} not listed");
        }
        s.stop().await;
        if let Some(d) = extra {
            common::db::drop_db(d).await;
        }
        pending = later;
    }
});

/// The kind of a test database URL.
fn kind_of(url: &str) -> common::db::Kind {
    if url.starts_with("postgres") {
        common::db::Kind::Postgres
    } else if url.starts_with("mysql") {
        common::db::Kind::MySql
    } else {
        common::db::Kind::Sqlite
    }
}

server_test!(each_error_status, |url| {
    let s = start(url, &[("trust", "accept"), ("max_body", "4096")]).await;
    let rr = std::fs::read(fixture_path("spec/request-review.json")).unwrap();

    // 400: not JSON, with the position.
    let p = problem(
        post(&s, LD_JSON, "{\"id\": }").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(p["title"], "Malformed JSON");
    assert!(p["detail"].as_str().unwrap().contains("line 1"), "{p}");
    // 400: JSON but not JSON-LD.
    assert_eq!(
        problem(
            post(&s, LD_JSON, r#"{"@context": 5}"#).await,
            StatusCode::BAD_REQUEST
        )
        .await["title"],
        "Invalid JSON-LD"
    );
    // 400: hostile nesting.
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    too_large(&s, deep).await;
    let deep = format!("{{\"a\":{}1{}}}", "[".repeat(200), "]".repeat(200));
    assert_eq!(
        problem(post(&s, LD_JSON, deep).await, StatusCode::BAD_REQUEST).await["title"],
        "Nested too deeply"
    );
    // 413: too large, by Content-Length and by streaming.
    let big = format!("{{\"summary\": \"{}\"}}", "x".repeat(5000));
    too_large(&s, big.clone()).await;
    let stream = reqwest::Body::wrap_stream(futures_stream(big.into_bytes()));
    too_large(&s, stream).await;
    // 415, with Accept-Post.
    let r = post(&s, "text/plain", rr.clone()).await;
    assert_eq!(r.headers()["accept-post"], coar_ldn::ACCEPT_POST);
    problem(r, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    let r = s
        .client
        .post(s.url("/inbox"))
        .body(rr.clone())
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    // 422: COAR validation, every problem with its pointer.
    let mut doc: Value = serde_json::from_slice(&rr).unwrap();
    doc["target"].as_object_mut().unwrap().remove("inbox");
    doc["object"]["ietf:item"]
        .as_object_mut()
        .unwrap()
        .remove("mediaType");
    let p = problem(
        post(&s, LD_JSON, doc.to_string()).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let pointers: BTreeSet<&str> = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["severity"] == "error")
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(
        pointers,
        BTreeSet::from(["/target/inbox", "/object/ietf:item/mediaType"]),
        "{p}"
    );
    // 422: an unknown remote context, refused without fetching it.
    let mut doc: Value = serde_json::from_slice(&rr).unwrap();
    doc["@context"] = json!([
        "https://www.w3.org/ns/activitystreams",
        "http://169.254.169.254/latest/meta-data"
    ]);
    let p = problem(
        post(&s, LD_JSON, doc.to_string()).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        p["detail"].as_str().unwrap().contains("169.254.169.254"),
        "{p}"
    );
    // 201, then idempotent 201 with the same Location, then 409 for another body.
    let first = post(&s, LD_JSON, rr.clone()).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let again = post(&s, LD_JSON, rr.clone()).await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(
        first.headers()[header::LOCATION],
        again.headers()[header::LOCATION]
    );
    let mut changed: Value = serde_json::from_slice(&rr).unwrap();
    changed["actor"]["name"] = json!("Someone Else");
    problem(
        post(&s, LD_JSON, changed.to_string()).await,
        StatusCode::CONFLICT,
    )
    .await;
    // The three oversized bodies were each refused as too large.
    let metrics = s
        .client
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "coar_notifications_received_total{pattern=\"none\",outcome=\"too_large\"} 3"
        ),
        "{metrics}"
    );
    // 405 with Allow; 404 for an unknown notification; 406.
    let r = s.client.put(s.url("/inbox")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    let allow = r.headers()[header::ALLOW].to_str().unwrap().to_owned();
    for m in ["GET", "HEAD", "OPTIONS", "POST"] {
        assert!(allow.contains(m), "{allow}");
    }
    problem(
        s.client.get(s.url("/inbox/999999")).send().await.unwrap(),
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        s.client.get(s.url("/inbox/abc")).send().await.unwrap(),
        StatusCode::NOT_FOUND,
    )
    .await;
    let r = s
        .client
        .get(s.url("/inbox"))
        .header(header::ACCEPT, "image/png")
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::NOT_ACCEPTABLE).await;
    problem(
        s.client.get(s.url("/inbox?limit=0")).send().await.unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    problem(
        s.client.get(s.url("/inbox?after=x")).send().await.unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    s.stop().await;
});

/// A body over the limit is refused with 413. The server answers before reading the whole
/// body and closes the connection, so a client still sending may see the connection close
/// instead of the answer: both are a refusal (the metrics count them).
async fn too_large(s: &common::Server, body: impl Into<reqwest::Body>) {
    match s
        .client
        .post(s.url("/inbox"))
        .header(header::CONTENT_TYPE, LD_JSON)
        .body(body)
        .send()
        .await
    {
        Ok(r) => {
            problem(r, StatusCode::PAYLOAD_TOO_LARGE).await;
        }
        Err(e) => assert!(e.is_request() || e.is_body(), "{e}"),
    }
}

fn futures_stream(
    bytes: Vec<u8>,
) -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + Sync + 'static {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        bytes.chunks(1000).map(|c| Ok(c.to_vec())).collect();
    StreamIter(chunks.into_iter())
}

struct StreamIter<I>(I);

impl<I: Iterator + Unpin> futures_core::Stream for StreamIter<I> {
    type Item = I::Item;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<I::Item>> {
        std::task::Poll::Ready(self.0.next())
    }
}

server_test!(trust_policies, |url| {
    use coar_store::{Filter, ServiceInput, State};
    let rr = std::fs::read(fixture_path("spec/request-review.json")).unwrap();
    // Reject: 403 for unknown senders.
    let s = start(url, &[("trust", "reject")]).await;
    problem(post(&s, LD_JSON, rr.clone()).await, StatusCode::FORBIDDEN).await;
    // A registered, enabled service is accepted and attributed, even under reject.
    let service = s
        .app
        .store()
        .add_service(&ServiceInput {
            name: "Repository".into(),
            id: "https://research-organisation.org/repository".into(),
            inbox: Some("https://research-organisation.org/inbox/".into()),
            enabled: true,
            cidrs: vec!["127.0.0.0/8".into(), "::1/128".into()],
            tokens: Some(vec!["repository-secret-token".into()]),
            ..ServiceInput::default()
        })
        .await
        .unwrap();
    // Without its token: not attributed.
    problem(post(&s, LD_JSON, rr.clone()).await, StatusCode::FORBIDDEN).await;
    let r = s
        .client
        .post(s.url("/inbox"))
        .header(header::CONTENT_TYPE, LD_JSON)
        .bearer_auth("repository-secret-token")
        .body(rr.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let records = s
        .app
        .store()
        .list(&Filter::default(), None, 10)
        .await
        .unwrap()
        .items;
    assert_eq!(
        (records[0].state, records[0].service),
        (State::Queued, Some(service.key))
    );
    // Disabled: untrusted again.
    s.app
        .store()
        .set_service_enabled(service.key, false)
        .await
        .unwrap();
    problem(
        s.client
            .post(s.url("/inbox"))
            .header(header::CONTENT_TYPE, LD_JSON)
            .bearer_auth("repository-secret-token")
            .body(with_new_id(&rr))
            .send()
            .await
            .unwrap(),
        StatusCode::FORBIDDEN,
    )
    .await;
    s.stop().await;

    let quarantined = Filter {
        state: Some(State::Quarantined),
        ..Filter::default()
    };
    let queued = Filter {
        state: Some(State::Queued),
        ..Filter::default()
    };

    // Quarantine (the default): stored and listed, not queued.
    let s = start(url, &[]).await;
    let before = (
        s.app.store().count(&quarantined).await.unwrap(),
        s.app.store().count(&queued).await.unwrap(),
    );
    let r = post(&s, LD_JSON, with_new_id(&rr)).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let after = (
        s.app.store().count(&quarantined).await.unwrap(),
        s.app.store().count(&queued).await.unwrap(),
    );
    assert_eq!(after, (before.0 + 1, before.1));
    s.stop().await;

    // Accept: queued.
    let s = start(url, &[("trust", "accept")]).await;
    assert_eq!(
        post(&s, LD_JSON, with_new_id(&rr)).await.status(),
        StatusCode::CREATED
    );
    let last = (
        s.app.store().count(&quarantined).await.unwrap(),
        s.app.store().count(&queued).await.unwrap(),
    );
    assert_eq!(last, (after.0, after.1 + 1));
    s.stop().await;
});

server_test!(turtle_negotiation_and_unrecognised_activities, |url| {
    let s = start(url, &[("trust", "accept")]).await;
    let rr = std::fs::read(fixture_path("spec/announce-review.json")).unwrap();
    let created = post(&s, LD_JSON, rr.clone()).await;
    let location = created.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    // Negotiated representations of the stored notification.
    let ttl = s
        .client
        .get(&location)
        .header(header::ACCEPT, "text/turtle")
        .send()
        .await
        .unwrap();
    assert!(
        ttl.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/turtle")
    );
    let ttl = ttl.text().await.unwrap();
    let nt = s
        .client
        .get(&location)
        .header(header::ACCEPT, "application/n-triples")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        nt.contains("<http://coar-notify.net/specification/vocabulary/ReviewAction>"),
        "{nt}"
    );
    let head = s.client.head(&location).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    // The same notification as Turtle (with a new id): accepted, readable as JSON-LD.
    let id = coar_model::new_id();
    let ttl = ttl.replace("urn:uuid:94ecae35-dcfd-4182-8550-22c7164fe23f", &id);
    let created = post(&s, "text/turtle", ttl).await;
    assert_eq!(
        created.status(),
        StatusCode::CREATED,
        "{}",
        created.text().await.unwrap()
    );
    let location = created.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    let json: Value = s
        .client
        .get(&location)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(json["id"], id);
    let n = coar_model::Notification::from_value(json).unwrap();
    assert_eq!(n.pattern(), Some(coar_model::Pattern::AnnounceReview));
    assert!(n.validate().is_valid(), "{}", n.validate());
    // An ActivityStreams activity that is no COAR pattern: stored and listed.
    let like = r#"{"@context": "https://www.w3.org/ns/activitystreams", "id": "urn:uuid:1f0c2b64-4d8e-4b0e-9d27-000000000001", "type": "Like", "object": "https://x.example/"}"#;
    assert_eq!(
        post(&s, "application/ld+json", like).await.status(),
        StatusCode::CREATED
    );
    s.stop().await;
    // … unless configured otherwise: then 422, naming the type.
    let s = start(
        url,
        &[("trust", "accept"), ("accept_unrecognised", "false")],
    )
    .await;
    let like = like.replace("000000000001", "000000000002");
    let p = problem(
        post(&s, "application/ld+json", like).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(names_error(&p, "rule", "type.pattern"), "{p}");
    s.stop().await;
});

#[tokio::test]
async fn the_inbox_link_layer_advertises_the_inbox_on_an_applications_pages() {
    use tower::ServiceExt;
    let page = axum::Router::new()
        .route(
            "/items/{id}",
            axum::routing::get(|| async { "an item page" }),
        )
        .layer(coar_server::inbox_link_layer("https://repo.example/inbox").unwrap());
    let response = page
        .oneshot(
            axum::http::Request::get("/items/7")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let link = response.headers()[header::LINK].to_str().unwrap();
    let base = url::Url::parse("https://repo.example/items/7").unwrap();
    let found = coar_ldn::discovery::inbox_from_link_headers(&base, [link]).unwrap();
    assert_eq!(found.as_str(), "https://repo.example/inbox");
}

server_test!(pagination_across_pages, |url| {
    let s = start(url, &[("trust", "accept")]).await;
    let rr = std::fs::read(fixture_path("spec/request-endorsement.json")).unwrap();
    let mut posted = BTreeSet::new();
    for _ in 0..25 {
        let r = post(&s, LD_JSON, with_new_id(&rr)).await;
        posted.insert(r.headers()[header::LOCATION].to_str().unwrap().to_owned());
    }
    let mut seen = Vec::new();
    let mut next = Some(s.url("/inbox?limit=10"));
    let mut pages = 0;
    while let Some(url) = next {
        pages += 1;
        let r = s.client.get(&url).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let links: Vec<String> = r
            .headers()
            .get_all(header::LINK)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        let header_next = links
            .iter()
            .flat_map(|l| coar_ldn::parse_link_header(l))
            .find(|l| l.has_rel("next"))
            .map(|l| l.target);
        let body: Value = r.json().await.unwrap();
        assert_eq!(
            body["@id"], url,
            "the page's subject is the URL as requested"
        );
        seen.extend(
            body["contains"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_owned()),
        );
        let body_next = body.get("next").and_then(Value::as_str).map(str::to_owned);
        assert_eq!(header_next, body_next);
        next = body_next;
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 25);
    assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), posted);
    // Turtle listing of the first page.
    let ttl = s
        .client
        .get(s.url("/inbox"))
        .header(header::ACCEPT, "text/turtle")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let d = coar_ldn::Dataset::parse_turtle(&ttl, None).unwrap();
    assert_eq!(
        d.objects(&s.url("/inbox"), "http://www.w3.org/ns/ldp#contains")
            .len(),
        25
    );
    s.stop().await;
});

server_test!(options_discovery_health_metrics_and_private_inbox, |url| {
    let s = start(
        url,
        &[
            ("inbox_public", "false"),
            ("admin_token", "an-admin-token-of-some-length"),
        ],
    )
    .await;
    let r = s
        .client
        .request(reqwest::Method::OPTIONS, s.url("/inbox"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(r.headers()[header::ALLOW], "GET, HEAD, OPTIONS, POST");
    assert_eq!(r.headers()["accept-post"], coar_ldn::ACCEPT_POST);
    let links: Vec<&str> = r
        .headers()
        .get_all(header::LINK)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    let base = url::Url::parse(&s.base).unwrap();
    assert_eq!(
        coar_ldn::link::find_link(links.clone(), coar_ldn::LDP_INBOX, &base)
            .unwrap()
            .as_str(),
        s.url("/inbox")
    );
    let constraints =
        coar_ldn::link::find_link(links, coar_ldn::LDP_CONSTRAINED_BY, &base).unwrap();
    let page = s
        .client
        .get(constraints.as_str())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("request-review"), "{page}");
    // The private inbox needs the admin token to be read.
    assert_eq!(
        s.client.get(s.url("/inbox")).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.client
            .get(s.url("/inbox"))
            .bearer_auth("wrong-token-wrong-token")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.client
            .get(s.url("/inbox"))
            .bearer_auth("an-admin-token-of-some-length")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    // Health and metrics.
    assert_eq!(
        s.client
            .get(s.url("/healthz"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "ok\n"
    );
    let rr = std::fs::read(fixture_path("spec/request-review.json")).unwrap();
    assert_eq!(post(&s, LD_JSON, rr).await.status(), StatusCode::CREATED);
    let metrics = s
        .client
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("coar_notifications_received_total{pattern=\"request-review\",outcome=\"quarantined\"} 1"), "{metrics}");
    assert!(
        metrics
            .contains("coar_http_requests_total{method=\"GET\",route=\"/inbox\",status=\"401\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("coar_queue_depth{direction=\"inbound\",state=\"quarantined\"} 1"),
        "{metrics}"
    );
    for family in [
        "coar_queue_oldest_age_seconds{direction=\"inbound\",state=\"quarantined\"} ",
        "coar_http_request_duration_seconds_count{method=\"POST\",route=\"/inbox\"} 1",
        "coar_workers_running ",
        "coar_build_info{version=\"",
    ] {
        assert!(metrics.contains(family), "no {family} in {metrics}");
    }
    let r = s.client.get(s.url("/healthz")).send().await.unwrap();
    assert!(r.headers().contains_key("x-request-id"));
    s.stop().await;
});

/// The content types of the fuzz target's encoding (`fixtures/fuzz/README.md`).
const FUZZ_CONTENT_TYPES: [Option<&str>; 6] = [
    Some("application/ld+json"),
    Some("application/ld+json; profile=\"https://www.w3.org/ns/activitystreams\""),
    Some("text/turtle"),
    Some("application/json"),
    Some("text/plain"),
    None,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_input_the_fuzzer_broke_gets_an_answer() {
    let db = common::db::create(common::db::Kind::Sqlite).await.unwrap();
    let s = start(&db.url, &[]).await;
    let mut files: Vec<_> = std::fs::read_dir(fixture_path("fuzz/inbound"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 2, "the regression inputs are missing");
    for file in files {
        let data = std::fs::read(&file).unwrap();
        let Some((&selector, body)) = data.split_first() else {
            continue;
        };
        let mut request = s.client.post(s.url("/inbox")).body(body.to_vec());
        if let Some(ct) = FUZZ_CONTENT_TYPES[usize::from(selector) % FUZZ_CONTENT_TYPES.len()] {
            request = request.header(header::CONTENT_TYPE, ct);
        }
        let r = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}: no answer: {e}", file.display()));
        let status = r.status();
        assert!(
            status.is_success() || status.is_client_error(),
            "{}: {status}",
            file.display()
        );
        if status.is_client_error() {
            assert_eq!(
                r.headers()[header::CONTENT_TYPE],
                "application/problem+json"
            );
            let problem: Value = r.json().await.unwrap();
            assert!(
                problem["detail"].as_str().is_some_and(|d| !d.is_empty()),
                "{}: {problem}",
                file.display()
            );
        }
        let health = s.client.get(s.url("/healthz")).send().await.unwrap();
        assert_eq!(health.status(), StatusCode::OK);
    }
    s.stop().await;
    common::db::drop_db(db).await;
}

server_test!(a_nul_in_an_identifier_is_a_400_on_every_database, |url| {
    let s = start(url, &[("trust", "accept")]).await;
    // An activity of no COAR pattern (accepted by default), whose id holds a NUL: no IRI may,
    // and PostgreSQL cannot store one in text. Before, PostgreSQL answered 500.
    let body = json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": "urn:uuid:0\u{0}1",
        "type": "Create",
        "origin": {"id": "https://sender.example/", "type": "Service"}
    });
    let r = post(&s, LD_JSON, body.to_string()).await;
    let p = problem(r, StatusCode::BAD_REQUEST).await;
    assert!(
        p["detail"].as_str().unwrap().contains("id contains a NUL"),
        "{p}"
    );
    let health = s.client.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    s.stop().await;
});

server_test!(json_clients_get_json_ld_not_406, |url| {
    let s = start(url, &[("trust", "accept")]).await;
    let body = std::fs::read(fixture_path("spec/announce-review.json")).unwrap();
    let created = post(&s, LD_JSON, body.clone()).await;
    let location = created.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    // What common clients send by default, and what each gets back.
    for (accept, content_type) in [
        ("application/json", "application/json"),
        // Spring's RestTemplate and WebClient.
        (
            "application/json, application/*+json",
            "application/ld+json",
        ),
        ("application/*+json", "application/ld+json"),
        ("*/*", "application/ld+json"),
    ] {
        let listing = s
            .client
            .get(s.url("/inbox"))
            .header(header::ACCEPT, accept)
            .send()
            .await
            .unwrap();
        assert_eq!(listing.status(), StatusCode::OK, "{accept}");
        assert_eq!(
            listing.headers()[header::CONTENT_TYPE],
            content_type,
            "{accept}"
        );
        let json: serde_json::Value = listing.json().await.unwrap();
        assert!(json.to_string().contains(&location), "{accept}: {json}");
        let one = get_as(&s, &location, accept).await;
        assert_eq!(one.status(), StatusCode::OK, "{accept}");
        assert_eq!(
            one.headers()[header::CONTENT_TYPE],
            content_type,
            "{accept}"
        );
        assert_eq!(
            one.bytes().await.unwrap(),
            body,
            "{accept}: the body as received"
        );
    }
    // Refusing JSON-LD by name is still heard.
    let r = s
        .client
        .get(s.url("/inbox"))
        .header(
            header::ACCEPT,
            "application/ld+json;q=0, application/json;q=0",
        )
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::NOT_ACCEPTABLE).await;
    s.stop().await;
});

server_test!(browsers_get_pages_of_the_inbox, |url| {
    let s = start(url, &[("trust", "accept")]).await;
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture_path("spec/announce-review.json")).unwrap())
            .unwrap();
    doc["object"]["summary"] = serde_json::json!("<script>alert(1)</script> & more");
    let created = post(&s, LD_JSON, serde_json::to_vec(&doc).unwrap()).await;
    let location = created.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    let get = |url: String| {
        let client = s.client.clone();
        async move {
            let r = client
                .get(url)
                .header(header::ACCEPT, browser)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            assert!(
                r.headers()[header::CONTENT_TYPE]
                    .to_str()
                    .unwrap()
                    .starts_with("text/html")
            );
            assert_eq!(r.headers()[header::VARY], "Accept");
            r.text().await.unwrap()
        }
    };
    let listing = get(s.url("/inbox")).await;
    assert!(
        // minijinja escapes `/` in attributes too.
        listing.contains(&format!("href=\"{}\"", location.replace('/', "&#x2f;"))),
        "{listing}"
    );
    assert!(listing.contains("Announce Review"), "{listing}");
    let page = get(location.clone()).await;
    assert!(page.contains(doc["id"].as_str().unwrap()), "{page}");
    // What the peer sent is text: escaped, never markup, and the page runs no script.
    assert!(!page.contains("<script"), "{page}");
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt; &amp; more"),
        "{page}"
    );
    // Only what the JSON-LD shows: no queue state.
    assert!(!page.contains("queued"), "{page}");
    // `*/*` alone, and a client that ranks JSON-LD first, still get JSON-LD.
    for accept in ["*/*", "application/ld+json, text/html;q=0.5"] {
        let r = get_as(&s, &location, accept).await;
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "application/ld+json",
            "{accept}"
        );
    }
    s.stop().await;
});

server_test!(
    browser_senders_may_post_from_configured_origins_only,
    |url| {
        let s = start(
            url,
            &[
                ("trust", "accept"),
                (
                    "cors_post_origins",
                    "https://Editor.example, http://localhost:8080",
                ),
            ],
        )
        .await;
        let preflight = |path: &'static str, origin: &'static str| {
            let client = s.client.clone();
            let url = s.url(path);
            async move {
                client
                    .request(reqwest::Method::OPTIONS, url)
                    .header(header::ORIGIN, origin)
                    .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
                    .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "content-type")
                    .send()
                    .await
                    .unwrap()
            }
        };
        // A configured origin (normalised as browsers send it): POST is allowed, to it by name.
        let r = preflight("/inbox", "https://editor.example").await;
        assert!(r.status().is_success());
        let h = r.headers();
        assert_eq!(
            h[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://editor.example"
        );
        assert!(
            h[header::ACCESS_CONTROL_ALLOW_METHODS]
                .to_str()
                .unwrap()
                .contains("POST")
        );
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_HEADERS], "content-type");
        assert!(h.get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS).is_none());
        assert!(h.get_all(header::VARY).iter().any(|v| v == "Origin"));
        // The POST itself carries the grant, and the browser may read Location.
        let body = std::fs::read(fixture_path("spec/announce-review.json")).unwrap();
        let posted = s
            .client
            .post(s.url("/inbox"))
            .header(header::CONTENT_TYPE, LD_JSON)
            .header(header::ORIGIN, "http://localhost:8080")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(posted.status(), StatusCode::CREATED);
        assert_eq!(
            posted.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "http://localhost:8080"
        );
        assert!(
            posted.headers()[header::ACCESS_CONTROL_EXPOSE_HEADERS]
                .to_str()
                .unwrap()
                .contains("Location")
        );
        // Another origin: reading only, and its POST gets no grant (the browser hides the answer).
        let r = preflight("/inbox", "https://evil.example").await;
        assert_eq!(
            r.headers()[header::ACCESS_CONTROL_ALLOW_METHODS],
            "GET, HEAD, OPTIONS"
        );
        let mut other = serde_json::from_slice::<Value>(&body).unwrap();
        other["id"] = json!("urn:uuid:6f1f1d8e-0000-4000-8000-00000000c025");
        let posted = s
            .client
            .post(s.url("/inbox"))
            .header(header::CONTENT_TYPE, LD_JSON)
            .header(header::ORIGIN, "https://evil.example")
            .body(serde_json::to_vec(&other).unwrap())
            .send()
            .await
            .unwrap();
        assert!(
            posted
                .headers()
                .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
                .is_none()
        );
        // Never the admin API, whatever the origin.
        let r = preflight("/api/outbox", "https://editor.example").await;
        assert!(
            !r.headers()
                .get(header::ACCESS_CONTROL_ALLOW_METHODS)
                .is_some_and(|m| m.to_str().unwrap().contains("POST"))
        );
        s.stop().await;
    }
);

server_test!(without_cors_post_origins_no_page_may_post, |url| {
    let s = start(url, &[("trust", "accept")]).await;
    let r = s
        .client
        .request(reqwest::Method::OPTIONS, s.url("/inbox"))
        .header(header::ORIGIN, "https://editor.example")
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    assert_eq!(
        r.headers()[header::ACCESS_CONTROL_ALLOW_METHODS],
        "GET, HEAD, OPTIONS"
    );
    s.stop().await;
});

server_test!(
    coar_looking_documents_meet_coar_rules_before_unrecognised,
    |url| {
        let s = start(url, &[("trust", "accept")]).await;
        let base: Value = serde_json::from_slice(
            &std::fs::read(fixture_path("spec/request-review.json")).unwrap(),
        )
        .unwrap();
        let with_id = |mut doc: Value, n: u32| {
            doc["id"] = json!(format!("urn:uuid:6f1f1d8e-0000-4000-8000-{n:012}"));
            doc
        };
        // A Request Review without its type: COAR's context, so COAR's rules, each named.
        let mut untyped = with_id(base.clone(), 1);
        untyped.as_object_mut().unwrap().remove("type");
        let p = problem(
            post(&s, LD_JSON, serde_json::to_vec(&untyped).unwrap()).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        let rules: Vec<&str> = p["errors"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["rule"].as_str())
            .collect();
        assert!(rules.contains(&"type.required"), "{p}");
        // Unknown COAR-ish type, but no target inbox: refused, naming the pointer.
        let mut no_inbox = with_id(base.clone(), 2);
        no_inbox["type"] = json!(["Offer", "coar-notify:NoSuchAction"]);
        no_inbox["target"].as_object_mut().unwrap().remove("inbox");
        let p = problem(
            post(&s, LD_JSON, serde_json::to_vec(&no_inbox).unwrap()).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert!(names_error(&p, "pointer", "/target/inbox"), "{p}");
        // The same unknown pattern, complete: accepted as unrecognised (forward compatibility).
        let mut future = with_id(base.clone(), 3);
        future["type"] = json!(["Offer", "coar-notify:NoSuchAction"]);
        let created = post(&s, LD_JSON, serde_json::to_vec(&future).unwrap()).await;
        assert_eq!(created.status(), StatusCode::CREATED);
        // A plain LDN notification is not COAR's business.
        let like = r#"{"@context": "https://www.w3.org/ns/activitystreams", "id": "urn:uuid:1f0c2b64-4d8e-4b0e-9d27-000000000009", "type": "Like", "object": "https://x.example/"}"#;
        assert_eq!(post(&s, LD_JSON, like).await.status(), StatusCode::CREATED);
        s.stop().await;
    }
);

server_test!(metrics_can_require_a_token, |url| {
    let token = "metrics-token-0123456789";
    let s = start(url, &[("metrics_token", token)]).await;
    let r = s.client.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(r.headers()[header::WWW_AUTHENTICATE], "Bearer");
    problem(r, StatusCode::UNAUTHORIZED).await;
    let r = s
        .client
        .get(s.url("/metrics"))
        .bearer_auth("not-the-metrics-token")
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::FORBIDDEN).await;
    let r = s
        .client
        .get(s.url("/metrics"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("coar_"));
    s.stop().await;
});

// The W3C LDN test suite's sender: a generic (non-COAR) notification whose `"@id": ""` is
// the notification itself. It is accepted, listed, and read back in every RDF syntax with
// its own URL as the subject; JSON that states nothing is refused.
server_test!(ldn_test_suite_notifications_round_trip, |url| {
    let s = start(url, &[("trust", "accept")]).await;
    let sent = json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "@id": "",
        "@type": "Announce",
        "actor": "https://linkedresearch.org/ldn/tests/",
        "object": "https://example.org/article",
        "target": "https://example.org/profile#me",
        "updated": "2026-12-01T00:00:00Z"
    });
    let created = post(&s, LD_JSON, sent.to_string()).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let location = created.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    for (accept, subject) in [
        ("text/turtle", format!("<{location}>")),
        ("application/n-triples", format!("<{location}>")),
    ] {
        let r = s
            .client
            .get(&location)
            .header(header::ACCEPT, accept)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{accept}");
        let text = r.text().await.unwrap();
        assert!(
            text.contains(&subject) && text.contains("https://example.org/article"),
            "{accept}: {text}"
        );
    }
    let json: Value = s
        .client
        .get(&location)
        .header(header::ACCEPT, "application/ld+json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(json, sent, "JSON-LD as received");
    let listing = s
        .client
        .get(s.url("/inbox"))
        .header(header::ACCEPT, "application/ld+json")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(listing.contains(&location), "{listing}");
    // The suite's next notification is another document with the same `"@id": ""`: another
    // notification, not a conflict; the same one again is a repeat.
    let mut next = sent.clone();
    next["object"] = json!("https://example.org/another-article");
    let second = post(&s, LD_JSON, next.to_string()).await;
    assert_eq!(second.status(), StatusCode::CREATED);
    assert_ne!(second.headers()[header::LOCATION], location.as_str());
    let again = post(&s, LD_JSON, sent.to_string()).await;
    assert_eq!(again.headers()[header::LOCATION], location.as_str());
    let refused = post(&s, LD_JSON, r#"{"hello": "world"}"#.to_owned()).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    s.stop().await;
});

/// A body that breaks off in its framing (a chunk size that is not hex) is a 400 naming it,
/// not a 413 as if it were too large, and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_broken_off_midway_is_a_400() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let db = common::db::create(common::db::Kind::Sqlite).await.unwrap();
    let s = start(&db.url, &[]).await;
    let addr = s
        .base
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let request = format!(
        "POST /inbox HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/ld+json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{{\"a\":\r\nZZ\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut answer),
    )
    .await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("Unreadable body"), "{answer}");
    assert!(db.store.get(1).await.unwrap().is_none());
    s.stop().await;
    common::db::drop_db(db).await;
}
