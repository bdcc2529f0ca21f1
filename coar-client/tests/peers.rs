//! The client against small local HTTP servers: discovery in each form, redirects, 429,
//! 5xx then success, silence, huge answers; and the address policy.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    Router,
    http::{HeaderMap, StatusCode, header},
    response::IntoResponse,
    routing::{get, post},
};
use coar_client::{Client, ClientConfig, ClientError, RetryPolicy};
use coar_model::{Item, Notification, RequestReview, Resource, Service};

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

fn client(config: ClientConfig) -> Client {
    Client::new(config, coar_server::contexts()).unwrap()
}

fn local() -> ClientConfig {
    ClientConfig {
        allow_private: true,
        timeout: Duration::from_secs(5),
        ..ClientConfig::default()
    }
}

fn offer() -> Notification {
    RequestReview::builder(
        Service::new("https://repo.example/", "https://repo.example/inbox/"),
        Service::new("https://review.example/", "https://review.example/inbox/"),
        Resource::landing_page("https://repo.example/item/1/")
            .cite_as("https://doi.org/10.5555/1")
            .item(Item::new(
                "https://repo.example/item/1/a.pdf",
                "application/pdf",
            )),
    )
    .build()
    .unwrap()
    .into()
}

#[tokio::test]
async fn discovery_in_every_form() {
    let router = Router::new()
        .route("/by-link", get(|| async { ([(header::LINK, r#"</inbox/>; rel="http://www.w3.org/ns/ldp#inbox""#)], "page") }))
        .route(
            "/by-json-ld",
            get(|| async {
                ([(header::CONTENT_TYPE, "application/ld+json")], r#"{"@context": "http://www.w3.org/ns/ldp", "@id": "", "inbox": "/json-inbox/"}"#)
            }),
        )
        .route("/by-turtle", get(|| async { ([(header::CONTENT_TYPE, "text/turtle")], "<> <http://www.w3.org/ns/ldp#inbox> <ttl-inbox/> .") }))
        .route(
            "/by-html",
            get(|| async { ([(header::CONTENT_TYPE, "text/html")], r#"<html><head><link rel="http://www.w3.org/ns/ldp#inbox" href="/html-inbox/"></head></html>"#) }),
        )
        .route("/moved", get(|| async { (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, "/by-link")]) }))
        .route("/nothing", get(|| async { "no inbox here" }))
        .route(
            "/huge",
            get(|| async {
                let mut page = String::from(r#"<link rel="http://www.w3.org/ns/ldp#inbox" href="/huge-inbox/">"#);
                page.push_str(&"x".repeat(5 * 1024 * 1024));
                ([(header::CONTENT_TYPE, "text/html")], page)
            }),
        );
    let base = serve(router).await;
    let c = client(local());
    for (path, inbox) in [
        ("/by-link", "/inbox/"),
        ("/by-json-ld", "/json-inbox/"),
        ("/by-turtle", "/ttl-inbox/"),
        ("/by-html", "/html-inbox/"),
        ("/moved", "/inbox/"),
        ("/huge", "/huge-inbox/"),
    ] {
        assert_eq!(
            c.discover(&format!("{base}{path}")).await.unwrap().as_str(),
            format!("{base}{inbox}"),
            "{path}"
        );
    }
    assert!(matches!(
        c.discover(&format!("{base}/nothing")).await,
        Err(ClientError::NoInbox(_))
    ));
    // A huge body is cut off at the limit, not read whole.
    let small = client(ClientConfig {
        max_response_bytes: 1024,
        ..local()
    });
    assert!(matches!(
        small.fetch(&format!("{base}/huge")).await,
        Err(ClientError::TooLarge(_))
    ));
}

#[tokio::test]
async fn send_redirects_and_receipts() {
    let posts = Arc::new(AtomicUsize::new(0));
    let p = posts.clone();
    let router = Router::new()
        .route(
            "/inbox",
            post(move |headers: HeaderMap, body: String| {
                let p = p.clone();
                async move {
                    p.fetch_add(1, Ordering::SeqCst);
                    assert!(
                        headers[header::CONTENT_TYPE]
                            .to_str()
                            .unwrap()
                            .starts_with("application/ld+json")
                    );
                    assert!(serde_json::from_str::<serde_json::Value>(&body).is_ok());
                    (StatusCode::CREATED, [(header::LOCATION, "/inbox/1")])
                }
            }),
        )
        .route(
            "/accepted",
            post(|| async { (StatusCode::ACCEPTED, "queued as job 7") }),
        )
        .route(
            "/temporary",
            post(|| async {
                (
                    StatusCode::TEMPORARY_REDIRECT,
                    [(header::LOCATION, "/inbox")],
                )
            }),
        )
        .route(
            "/permanent",
            post(|| async {
                (
                    StatusCode::PERMANENT_REDIRECT,
                    [(header::LOCATION, "/inbox")],
                )
            }),
        )
        .route(
            "/moved",
            post(|| async {
                (
                    StatusCode::MOVED_PERMANENTLY,
                    [(header::LOCATION, "/inbox")],
                )
            }),
        )
        .route(
            "/loop",
            post(|| async {
                (
                    StatusCode::TEMPORARY_REDIRECT,
                    [(header::LOCATION, "/loop")],
                )
            }),
        )
        .route(
            "/invalid",
            post(|| async {
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    [(header::CONTENT_TYPE, "application/problem+json")],
                    r#"{"title": "Invalid", "detail": "target.inbox is wrong", "status": 422}"#,
                )
            }),
        );
    let base = serve(router).await;
    let c = client(local());
    let n = offer();
    let r = c.send(&n, &format!("{base}/inbox")).await.unwrap();
    assert_eq!(
        (r.status, r.location.as_deref()),
        (201, Some(format!("{base}/inbox/1").as_str()))
    );
    let r = c.send(&n, &format!("{base}/accepted")).await.unwrap();
    assert_eq!((r.status, r.body.as_str()), (202, "queued as job 7"));
    for path in ["/temporary", "/permanent"] {
        let r = c.send(&n, &format!("{base}{path}")).await.unwrap();
        assert_eq!(
            r.inbox.as_str(),
            format!("{base}/inbox"),
            "re-POSTed after {path}"
        );
    }
    assert_eq!(posts.load(Ordering::SeqCst), 3);
    assert!(matches!(
        c.send(&n, &format!("{base}/moved")).await,
        Err(ClientError::Redirect(_))
    ));
    assert!(matches!(
        c.send(&n, &format!("{base}/loop")).await,
        Err(ClientError::Redirect(_))
    ));
    let err = c.send(&n, &format!("{base}/invalid")).await.unwrap_err();
    assert!(!err.is_retryable());
    assert_eq!(err.status(), Some(422));
    assert!(err.to_string().contains("target.inbox is wrong"), "{err}");
    // An invalid notification is never sent.
    let mut doc = n.to_value();
    doc["target"].as_object_mut().unwrap().remove("inbox");
    let invalid = Notification::from_value(doc).unwrap();
    assert!(matches!(
        c.send(&invalid, &format!("{base}/inbox")).await,
        Err(ClientError::Invalid(_))
    ));
    assert_eq!(posts.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn retries_after_429_and_5xx() {
    let calls = Arc::new(AtomicUsize::new(0));
    let (a, b) = (calls.clone(), calls.clone());
    let router = Router::new()
        .route(
            "/busy",
            post(move || {
                let a = a.clone();
                async move {
                    if a.fetch_add(1, Ordering::SeqCst) == 0 {
                        (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "1")])
                            .into_response()
                    } else {
                        StatusCode::CREATED.into_response()
                    }
                }
            }),
        )
        .route(
            "/flaky",
            post(move || {
                let b = b.clone();
                async move {
                    if b.fetch_add(1, Ordering::SeqCst) < 3 {
                        StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        StatusCode::CREATED
                    }
                }
            }),
        );
    let base = serve(router).await;
    let c = client(local());
    let n = offer();
    let policy = RetryPolicy {
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        ..RetryPolicy::default()
    };
    let started = Instant::now();
    let r = c
        .send_with_retry(&n, &format!("{base}/busy"), &policy)
        .await
        .unwrap();
    assert_eq!(r.status, 201);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After honoured"
    );
    calls.store(0, Ordering::SeqCst);
    let r = c
        .send_with_retry(&n, &format!("{base}/flaky"), &policy)
        .await
        .unwrap();
    assert_eq!(r.status, 201);
    assert_eq!(calls.load(Ordering::SeqCst), 4, "3 x 503, then 201");
    // Out of attempts: the last error, still retryable.
    calls.store(0, Ordering::SeqCst);
    let few = RetryPolicy {
        max_attempts: 2,
        ..policy
    };
    let err = c
        .send_with_retry(&n, &format!("{base}/flaky"), &few)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert!(err.is_retryable());
}

#[tokio::test]
async fn a_silent_peer_times_out() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket); // never answer
        }
    });
    let c = client(ClientConfig {
        timeout: Duration::from_millis(300),
        ..local()
    });
    let started = Instant::now();
    let err = c
        .send(&offer(), &format!("http://{addr}/inbox"))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Unreachable(_)), "{err}");
    assert!(err.is_retryable());
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn the_address_policy_refuses_private_targets_unless_allowed() {
    let c = client(ClientConfig::default());
    for url in [
        "http://127.0.0.1:9/inbox",
        "http://[::1]:9/inbox",
        "http://10.0.0.1/inbox",
        "http://169.254.169.254/latest/meta-data",
        "http://localhost:9/inbox",
    ] {
        match c.send(&offer(), url).await {
            Err(ClientError::Forbidden(_)) => {}
            other => panic!("{url}: {other:?}"),
        }
        assert!(
            matches!(c.discover(url).await, Err(ClientError::Forbidden(_))),
            "{url}"
        );
    }
    // A redirect to a private address is refused too.
    let base = serve(Router::new().route(
        "/r",
        get(|| async {
            (
                StatusCode::FOUND,
                [(header::LOCATION, "http://127.0.0.1:9/")],
            )
        }),
    ))
    .await;
    let port = base.rsplit(':').next().unwrap().to_owned();
    let allowed_first_hop = client(local());
    assert!(
        allowed_first_hop
            .discover(&format!("http://localhost:{port}/r"))
            .await
            .is_err()
    );
    // Allowed: a server on localhost is reached.
    let base = serve(Router::new().route("/inbox", post(|| async { StatusCode::CREATED }))).await;
    let port = base.rsplit(':').next().unwrap().to_owned();
    assert_eq!(
        client(local())
            .send(&offer(), &format!("http://localhost:{port}/inbox"))
            .await
            .unwrap()
            .status,
        201
    );
    assert!(matches!(
        c.send(&offer(), &format!("http://localhost:{port}/inbox"))
            .await,
        Err(ClientError::Forbidden(_))
    ));
}

#[tokio::test]
async fn tokens_discovery_cache_and_paged_listings() {
    let heads = Arc::new(AtomicUsize::new(0));
    let h = heads.clone();
    let router = Router::new()
        .route(
            "/resource",
            get(move || {
                let h = h.clone();
                async move {
                    h.fetch_add(1, Ordering::SeqCst);
                    ([(header::LINK, r#"</inbox>; rel="http://www.w3.org/ns/ldp#inbox""#)], "")
                }
            }),
        )
        .route(
            "/inbox",
            post(|headers: HeaderMap| async move {
                match headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
                    Some("Bearer the-secret-for-this-inbox") => StatusCode::CREATED,
                    _ => StatusCode::UNAUTHORIZED,
                }
            })
            .get(|| async {
                (
                    [(header::CONTENT_TYPE, "application/ld+json"), (header::LINK, r#"</inbox2>; rel="next""#)],
                    r#"{"@context": "http://www.w3.org/ns/ldp", "@id": "", "contains": ["/n/1", "/n/2"]}"#,
                )
            }),
        )
        .route(
            "/inbox2",
            get(|| async {
                ([(header::CONTENT_TYPE, "text/turtle")], "<> <http://www.w3.org/ns/ldp#contains> </n/3> .")
            }),
        );
    let base = serve(router).await;
    let anonymous = client(local());
    let err = anonymous
        .send(&offer(), &format!("{base}/inbox"))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(401));
    let with_token = client(ClientConfig {
        tokens: vec![(format!("{base}/inbox"), "the-secret-for-this-inbox".into())],
        ..local()
    });
    assert_eq!(
        with_token
            .send(&offer(), &format!("{base}/inbox"))
            .await
            .unwrap()
            .status,
        201
    );
    // Discovery is cached: the second call asks nothing.
    let c = client(local());
    for _ in 0..3 {
        assert_eq!(
            c.discover(&format!("{base}/resource"))
                .await
                .unwrap()
                .as_str(),
            format!("{base}/inbox")
        );
    }
    assert_eq!(heads.load(Ordering::SeqCst), 1);
    // Listings follow the next links across pages and formats.
    let items = c.inbox_listing(&format!("{base}/inbox")).await.unwrap();
    assert_eq!(
        items,
        [
            format!("{base}/n/1"),
            format!("{base}/n/2"),
            format!("{base}/n/3")
        ]
    );
}

/// With a signing key, each POST carries `Content-Digest` and an RFC 9421 signature over the
/// method, the target URI (each redirect hop's own: a hop is signed again), the digest and
/// the media type, which the receiver verifies with the sender's public key. Without a key,
/// nothing is signed.
#[tokio::test]
async fn signed_posts_verify_at_the_receiver_on_every_hop() {
    use coar_ldn::signature::{Policy, Request, SigningKey, verify_request};
    let (key, _) = SigningKey::generate_ed25519("sender-key-1").unwrap();
    let public = key.verifying_key();
    let base: Arc<std::sync::OnceLock<String>> = Arc::default();
    let seen: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let (b, s) = (base.clone(), seen.clone());
    let router = Router::new()
        .route(
            "/moved",
            post(|| async {
                (
                    StatusCode::TEMPORARY_REDIRECT,
                    [(header::LOCATION, "/inbox")],
                )
            }),
        )
        .route(
            "/inbox",
            post(
                move |uri: axum::http::Uri, headers: HeaderMap, body: axum::body::Bytes| {
                    let (b, s, public) = (b.clone(), s.clone(), public.clone());
                    async move {
                        let target = format!("{}{uri}", b.get().unwrap());
                        let now = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .unwrap()
                            .as_secs() as i64;
                        let req = Request {
                            method: "POST",
                            target_uri: &target,
                            headers: &headers,
                        };
                        let outcome =
                            match verify_request(&req, &body, now, Policy::default(), |id| {
                                (id == public.key_id()).then(|| public.clone())
                            }) {
                                Ok(Some(v)) => format!("verified {} at {target}", v.key.key_id()),
                                Ok(None) => "unsigned".to_owned(),
                                Err(e) => format!("refused: {}", e.reason()),
                            };
                        let status = if outcome.starts_with("refused") {
                            StatusCode::UNAUTHORIZED
                        } else {
                            StatusCode::CREATED
                        };
                        s.lock().unwrap().push(outcome);
                        status
                    }
                },
            ),
        );
    let url = serve(router).await;
    base.set(url.clone()).unwrap();
    // The same server under another name is another origin: a signed POST is not followed
    // there (it would be signed for an address the sender never chose).
    let other_origin = url.replace("127.0.0.1", "localhost");
    let elsewhere = serve(Router::new().route(
        "/moved",
        post(move || {
            let to = format!("{other_origin}/inbox");
            async move { (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, to)]) }
        }),
    ))
    .await;
    let signing = client(ClientConfig {
        signing: Some(Arc::new(key)),
        ..local()
    });
    let receipt = signing
        .send(&offer(), &format!("{url}/moved"))
        .await
        .unwrap();
    assert_eq!(receipt.status, 201);
    let refused = signing
        .send(&offer(), &format!("{elsewhere}/moved"))
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, ClientError::Redirect(m) if m.contains("another origin")),
        "{refused}"
    );
    client(local())
        .send(&offer(), &format!("{url}/inbox"))
        .await
        .unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        [
            format!("verified sender-key-1 at {url}/inbox"),
            "unsigned".to_owned()
        ]
    );
}
