//! The admin dashboard: over plain HTTP on every database, and in headless Chromium
//! (screenshots in `target/screenshots/`).

mod common;

use std::path::PathBuf;

use coar_store::{Direction, Filter, State};
use common::{
    LD_JSON, Server, eventually, hidden, http_session, sign_in, start, unescape, webdriver::Browser,
};
use reqwest::{StatusCode, redirect::Policy};
use serde_json::{Value, json};

const TOKEN: &str = "the-admin-token-for-tests";

fn fixture(name: &str) -> Value {
    serde_json::from_slice(
        &std::fs::read(common::fixture_path(&format!("spec/{name}.json"))).unwrap(),
    )
    .unwrap()
}

fn with_new_id(mut doc: Value) -> Value {
    doc["id"] = json!(coar_model::new_id());
    doc
}

async fn post_inbox(s: &Server, doc: &Value) {
    let r = s
        .client
        .post(s.url("/inbox"))
        .header("content-type", LD_JSON)
        .body(doc.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
}

/// POSTs a dashboard form: the session's CSRF token, then `fields`.
async fn submit(
    http: &reqwest::Client,
    url: &str,
    csrf: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = vec![("_csrf", csrf)];
    form.extend_from_slice(fields);
    http.post(url).form(&form).send().await.unwrap()
}

server_test!(dashboard_over_http, |url| {
    let s = start(
        url,
        &[
            ("admin_token", TOKEN),
            ("trust", "quarantine"),
            ("allow_private_targets", "true"),
        ],
    )
    .await;
    let http = http_session();

    // Not signed in: every page sends to the sign-in form, which remembers where to go.
    let r = http
        .get(s.url("/admin/messages?state=dead"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()["location"],
        "/admin/login?next=%2Fadmin%2Fmessages%3Fstate%3Ddead"
    );

    // Sign-in: a wrong token is refused, a form without the login CSRF cookie too.
    let login = http.get(s.url("/admin/login")).send().await.unwrap();
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let login = login.text().await.unwrap();
    let csrf = hidden(&login, "_csrf");
    let wrong = submit(
        &http,
        &s.url("/admin/login"),
        &csrf,
        &[("token", "not-the-token-at-all")],
    )
    .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let forged = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
        .post(s.url("/admin/login"))
        .form(&[("_csrf", csrf.as_str()), ("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let csrf = sign_in(&s, &http, TOKEN).await;

    // An open redirect after sign-in is not possible.
    let login = http_session();
    let page = login
        .get(s.url("/admin/login?next=//evil.example/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(hidden(&page, "next"), "/admin");

    // The log: free text, filters, a bad filter named.
    let offer = with_new_id(fixture("request-review"));
    post_inbox(&s, &offer).await;
    post_inbox(&s, &with_new_id(fixture("announce-endorsement"))).await;
    let log = |q: &'static str| {
        let http = http.clone();
        let url = s.url(&format!("/admin/messages{q}"));
        async move {
            let r = http.get(url).send().await.unwrap();
            (r.status(), r.text().await.unwrap())
        }
    };
    let (status, page) = log("?q=CONTENT.PDF").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("1 message match."), "{page}");
    let (_, page) = log("?direction=inbound&pattern=announce-endorsement&state=quarantined").await;
    assert!(page.contains("1 message match."), "{page}");
    let (_, page) = log("?direction=outbound").await;
    assert!(page.contains("0 messages match."), "{page}");
    let (status, page) = log("?origin=not-a-uri").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("is not an absolute URI"), "{page}");

    // Forms without this session's CSRF token change nothing.
    let key = s
        .app
        .store()
        .list(&Filter::default(), None, 10)
        .await
        .unwrap()
        .items[1]
        .key;
    for (path, fields) in [
        (
            "/admin/services",
            vec![("id", "https://evil.example/"), ("name", "Evil")],
        ),
        (
            "/admin/services/trust",
            vec![("id", "https://evil.example/")],
        ),
        ("/admin/logout", vec![]),
    ] {
        for token in [None, Some("0000")] {
            let mut form = fields.clone();
            if let Some(t) = token {
                form.push(("_csrf", t));
            }
            let r = http.post(s.url(path)).form(&form).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path} {token:?}");
        }
    }
    let r = http
        .post(s.url(&format!("/admin/messages/{key}/release")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(s.app.store().services().await.unwrap().is_empty());

    // Trust the quarantined sender: registered, and its notification released.
    let origin = offer["origin"]["id"].as_str().unwrap();
    let services = unescape(
        &http
            .get(s.url("/admin/services"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    assert!(services.contains(origin), "{services}");
    // First the admin sees what its notifications came with; nothing is registered yet.
    let inbox = offer["origin"]["inbox"].as_str().unwrap();
    let r = submit(
        &http,
        &s.url("/admin/services/trust"),
        &csrf,
        &[("id", origin)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let confirm = unescape(&r.text().await.unwrap());
    assert!(confirm.contains(inbox), "{confirm}");
    assert!(confirm.contains("127.0.0.1/32"), "{confirm}");
    assert!(s.app.store().services().await.unwrap().is_empty());
    // Confirming needs an inbox and addresses (or "any address", said explicitly).
    let r = submit(
        &http,
        &s.url("/admin/services/trust"),
        &csrf,
        &[("id", origin), ("confirm", "yes"), ("inbox", inbox)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(s.app.store().services().await.unwrap().is_empty());
    let r = submit(
        &http,
        &s.url("/admin/services/trust"),
        &csrf,
        &[
            ("id", origin),
            ("confirm", "yes"),
            ("inbox", inbox),
            ("cidrs", "127.0.0.1/32"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let registered = s.app.store().service_by_id(origin).await.unwrap().unwrap();
    assert_eq!(registered.cidrs, ["127.0.0.1/32"]);
    assert_eq!(registered.inbox.as_deref(), Some(inbox));
    assert!(registered.enabled);
    let quarantined = Filter {
        state: Some(State::Quarantined),
        ..Filter::default()
    };
    assert_eq!(
        s.app.store().count(&quarantined).await.unwrap(),
        1,
        "the other sender's waits"
    );

    // Edit it: patterns and CIDRs; a bad CIDR is named on the form.
    let edit = s.url(&format!("/admin/services/{}", registered.key));
    let r = submit(
        &http,
        &edit,
        &csrf,
        &[
            ("name", "Repo"),
            ("id", origin),
            ("enabled", "on"),
            ("inbound", "accept"),
            ("inbound", "reject"),
            ("cidrs", "not-a-cidr"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("not-a-cidr"));
    let r = submit(
        &http,
        &edit,
        &csrf,
        &[
            ("name", "Repo"),
            ("id", origin),
            ("enabled", "on"),
            ("inbound", "accept"),
            ("inbound", "reject"),
            ("cidrs", "127.0.0.0/8\n::1/128"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let edited = s
        .app
        .store()
        .service(registered.key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(edited.name, "Repo");
    assert_eq!(
        edited.inbound_patterns,
        [coar_model::Pattern::Accept, coar_model::Pattern::Reject]
    );
    assert_eq!(edited.cidrs, ["127.0.0.0/8", "::1/128"]);

    // A new token: shown once, only its hash kept.
    let r = submit(
        &http,
        &s.url(&format!("/admin/services/{}/token", registered.key)),
        &csrf,
        &[],
    )
    .await;
    let page = r.text().await.unwrap();
    let start = page.find("id=\"token\">").unwrap() + "id=\"token\">".len();
    let token = &page[start..start + 64];
    assert!(
        s.app
            .store()
            .service(registered.key)
            .await
            .unwrap()
            .unwrap()
            .token_matches(token)
    );

    // Compose: problems shown by field, nothing stored; then a valid one is stored.
    let compose = s.url("/admin/compose");
    // An item's media type without the item's own id.
    let request_review = [
        ("pattern", "request-review"),
        ("action", "send"),
        ("target_id", "https://review.example/"),
        ("target_inbox", "https://review.example/inbox"),
        ("object_id", "https://repo.example/item/1"),
        ("item_media_type", "application/pdf"),
    ];
    let r = submit(&http, &compose, &csrf, &request_review).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = r.text().await.unwrap();
    assert!(page.contains("field-problem error"), "{page}");
    let outbound = Filter {
        direction: Some(Direction::Outbound),
        ..Filter::default()
    };
    assert_eq!(s.app.store().count(&outbound).await.unwrap(), 0);
    let complete = [
        &request_review[..],
        &[("item_id", "https://repo.example/item/1/paper.pdf")],
    ]
    .concat();
    let r = submit(&http, &compose, &csrf, &complete).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let sent = s.app.store().list(&outbound, None, 10).await.unwrap().items;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].pattern, Some(coar_model::Pattern::RequestReview));
    assert_eq!(
        r.headers()["location"],
        format!("/admin/messages/{}?done=sent", sent[0].key).as_str()
    );

    // A reply to the received Offer embeds it and answers its id.
    let offer_key = s
        .app
        .store()
        .find_by_notification_id(offer["id"].as_str().unwrap())
        .await
        .unwrap()[0]
        .key;
    let form = unescape(
        &http
            .get(s.url(&format!(
                "/admin/compose?pattern=tentative-accept&reply_to={offer_key}"
            )))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    assert!(
        form.contains(offer["origin"]["inbox"].as_str().unwrap()),
        "{form}"
    );
    let r = submit(
        &http,
        &compose,
        &csrf,
        &[
            ("pattern", "tentative-accept"),
            ("action", "send"),
            ("reply_to", &offer_key.to_string()),
            ("target_id", offer["origin"]["id"].as_str().unwrap()),
            ("target_inbox", offer["origin"]["inbox"].as_str().unwrap()),
            ("in_reply_to", offer["id"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap()
    );
    let reply = &s.app.store().list(&outbound, None, 10).await.unwrap().items[0];
    assert_eq!(reply.in_reply_to.as_deref(), offer["id"].as_str());
    let body: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(body["object"]["object"], offer["object"]);

    // The resource page knows the request and its tentative acceptance.
    let page = http
        .get(s.url("/admin/resources?uri=https%3A%2F%2Fresearch-organisation.org%2Frepository%2Fpreprint%2F201203%2F421%2F"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("tentatively_accepted") || page.contains("Tentative"),
        "{page}"
    );

    // Sign out: the session is over, even for a copy of its cookie.
    let r = submit(&http, &s.url("/admin/logout"), &csrf, &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        http.get(s.url("/admin")).send().await.unwrap().status(),
        StatusCode::SEE_OTHER
    );
    s.stop().await;
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_disabled_without_an_admin_token() {
    let dir = common::db::TempDir::create();
    let url = format!("sqlite://{}/db.sqlite?mode=rwc", dir.0.display());
    let s = start(&url, &[]).await;
    let r = s.client.get(s.url("/admin")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(r.text().await.unwrap().contains("COAR_ADMIN_TOKEN"));
    s.stop().await;
}

fn screenshots_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots")
}

/// A person's afternoon in the dashboard, in headless Chromium: sign in, watch the counts
/// change, filter the log, open a detail, replay a dead message, register a service,
/// compose and send a Request Review to a second server, survive a peer's `<script>`, sign
/// out. Each page is saved in `target/screenshots/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_a_real_browser() {
    let Some((driver, chromium)) = common::webdriver::find() else {
        return;
    };
    let dir = common::db::TempDir::create();
    let a = start(
        &format!("sqlite://{}/a.sqlite?mode=rwc", dir.0.display()),
        &[
            ("admin_token", TOKEN),
            ("trust", "quarantine"),
            ("workers", "1"),
            ("allow_private_targets", "true"),
            ("max_attempts", "1"),
            ("retry_base", "100ms"),
            ("send_timeout", "2s"),
            ("name", "Repository A"),
        ],
    )
    .await;
    let b = start(
        &format!("sqlite://{}/b.sqlite?mode=rwc", dir.0.display()),
        &[("trust", "accept"), ("name", "Review service B")],
    )
    .await;
    let browser = Browser::start(&driver, &chromium, &screenshots_dir()).await;
    let count =
        async |id: &str| -> u64 { browser.find(id).await.text().await.trim().parse().unwrap() };

    // Sign in (a wrong token first).
    browser.goto(&a.url("/admin")).await;
    assert!(browser.url().await.contains("/admin/login?next=%2Fadmin"));
    browser.screenshot("01-sign-in").await;
    browser
        .find("#token")
        .await
        .fill("wrong-token-wrong-token")
        .await;
    browser.find("#sign-in").await.click().await;
    browser.wait_text("That is not the admin token.").await;
    browser.find("#token").await.fill(TOKEN).await;
    browser.find("#sign-in").await.click().await;
    browser.wait_text("id=\"count-total\"").await;
    assert_eq!(browser.url().await, a.url("/admin"));
    let session = browser
        .cookie("coar_admin")
        .await
        .expect("a session cookie");
    assert_eq!(count("#count-total").await, 0);
    browser.screenshot("02-overview-empty").await;

    // A notification arrives: the counts change.
    let offer = with_new_id(fixture("request-review"));
    post_inbox(&a, &offer).await;
    browser.goto(&a.url("/admin")).await;
    assert_eq!(count("#count-total").await, 1);
    assert_eq!(count("#count-quarantined").await, 1);
    browser.screenshot("03-overview-after-post").await;

    // Filter the log; open the detail.
    post_inbox(&a, &with_new_id(fixture("announce-review"))).await;
    browser
        .find("nav a[href='/admin/messages']")
        .await
        .click()
        .await;
    browser.wait_url("/admin/messages").await;
    assert_eq!(browser.count("#log tbody tr").await, 2);
    browser
        .find("#f-pattern option[value='request-review']")
        .await
        .click()
        .await;
    browser
        .find("#f-direction option[value='inbound']")
        .await
        .click()
        .await;
    browser.find("#f-q").await.fill("content.pdf").await;
    browser.find("#apply-filters").await.click().await;
    browser.wait_url("pattern=request-review").await;
    assert_eq!(
        browser.find("#result-count").await.text().await,
        "1 message match."
    );
    assert_eq!(browser.count("#log tbody tr").await, 1);
    browser.screenshot("04-messages-filtered").await;
    browser.find("#log .detail-link").await.click().await;
    browser.wait_url("/admin/messages/").await;
    assert_eq!(
        browser.find("#notification-id").await.text().await,
        offer["id"].as_str().unwrap()
    );
    assert!(
        browser
            .find("#payload")
            .await
            .text()
            .await
            .contains("\"coar-notify:ReviewAction\"")
    );
    assert!(
        browser
            .find("#turtle")
            .await
            .text()
            .await
            .contains("ReviewAction")
    );
    browser.screenshot("05-detail").await;

    // Trust its sender from the detail page: the admin confirms its inbox and address,
    // then it is registered, released, processed.
    browser.find("#trust").await.click().await;
    browser
        .wait_text("What its 1 quarantined notification(s) came with")
        .await;
    browser.find("input[name=inbox]").await.click().await;
    browser.find("input[name=cidrs]").await.click().await;
    browser.find("#confirm-trust").await.click().await;
    browser.wait_text("Registered as a trusted service").await;
    let offer_key = a
        .app
        .store()
        .find_by_notification_id(offer["id"].as_str().unwrap())
        .await
        .unwrap()[0]
        .key;
    eventually("the released Offer processed", async || {
        (a.app.store().get(offer_key).await.unwrap()?.state == State::Processed).then_some(())
    })
    .await;

    // A delivery to a closed port dies after its one attempt; replay it from its page.
    let dead = a
        .client
        .post(a.url("/api/outbox"))
        .bearer_auth(TOKEN)
        .json(&json!({
            "pattern": "request-endorsement",
            "target": {"id": "http://127.0.0.1:1/", "inbox": "http://127.0.0.1:1/inbox", "type": "Service"},
            "object": fixture("request-endorsement")["object"],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        dead.status(),
        StatusCode::ACCEPTED,
        "{}",
        dead.text().await.unwrap()
    );
    let dead_key = dead.json::<Value>().await.unwrap()["key"].as_i64().unwrap();
    eventually("the delivery dead", async || {
        (a.app.store().get(dead_key).await.unwrap()?.state == State::Dead).then_some(())
    })
    .await;
    browser.goto(&a.url("/admin")).await;
    assert_eq!(count("#count-dead").await, 1);
    browser.goto(&a.url("/admin/messages?state=dead")).await;
    browser.find("#log .detail-link").await.click().await;
    browser.wait_url("/admin/messages/").await;
    assert_eq!(browser.find("#state").await.text().await, "dead");
    browser.screenshot("06-dead-message").await;
    browser.find("#replay").await.click().await;
    browser.wait_text("Queued again").await;
    browser.screenshot("07-replayed").await;
    eventually("a second attempt", async || {
        (a.app.store().attempts(dead_key).await.unwrap().len() >= 2).then_some(())
    })
    .await;

    // Register a service.
    browser.goto(&a.url("/admin/services")).await;
    browser.find("#add-service").await.click().await;
    browser.wait_url("/admin/services/new").await;
    browser.find("#s-name").await.fill("Review service B").await;
    browser.find("#s-id").await.fill(&b.url("/")).await;
    browser.find("#s-inbox").await.fill(&b.url("/inbox")).await;
    browser
        .find("input[name=inbound][value='announce-review']")
        .await
        .click()
        .await;
    browser.find("#s-cidrs").await.fill("127.0.0.0/8").await;
    browser.screenshot("08-service-form").await;
    browser.find("#save-service").await.click().await;
    browser.wait_url("done=saved").await;
    let services = browser.find("#services").await.text().await;
    assert!(services.contains("Review service B"), "{services}");
    browser.screenshot("09-services").await;
    let registered = a
        .app
        .store()
        .service_by_id(&b.url("/"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        registered.inbound_patterns,
        [coar_model::Pattern::AnnounceReview]
    );

    // Compose a Request Review to B: a missing field is shown inline, then it is sent.
    browser
        .find("nav a[href='/admin/compose']")
        .await
        .click()
        .await;
    browser.wait_url("/admin/compose").await;
    browser
        .find(".patterns a[href='/admin/compose?pattern=request-review']")
        .await
        .click()
        .await;
    browser.wait_url("pattern=request-review").await;
    browser.find("#c-target_id").await.fill(&b.url("/")).await;
    browser.find("#c-target_inbox").await.fill("").await;
    browser
        .find("#c-object_id")
        .await
        .fill("https://repo.example/item/7")
        .await;
    browser
        .find("#c-object_cite_as")
        .await
        .fill("https://doi.org/10.5555/7")
        .await;
    browser.find("#preview").await.click().await;
    let problem = browser.find(".field-problem.error").await.text().await;
    assert!(problem.contains("item"), "{problem}");
    browser.screenshot("10-compose-problem").await;
    browser
        .find("#c-item_id")
        .await
        .fill("https://repo.example/item/7/paper.pdf")
        .await;
    browser.find("#preview").await.click().await;
    browser.wait_text("Valid: it can be sent.").await;
    let preview = browser.find("#preview-json").await.text().await;
    assert!(
        preview.contains(&b.url("/inbox")),
        "the inbox was discovered: {preview}"
    );
    browser.screenshot("11-compose-preview").await;
    browser.find("#send").await.click().await;
    browser.wait_text("Stored in the outbox").await;
    let sent_id = browser.find("#notification-id").await.text().await;
    eventually("B receives the Request Review", async || {
        b.app
            .store()
            .find_by_notification_id(&sent_id)
            .await
            .unwrap()
            .first()
            .map(|_| ())
    })
    .await;
    browser
        .goto(browser.url().await.split('?').next().unwrap())
        .await;
    browser.screenshot("12-sent").await;

    // A peer's markup is text: no script runs, no dialog opens, the text is on the page.
    let mut hostile = with_new_id(fixture("announce-review"));
    hostile["summary"] = json!("<script>alert('xss-summary')</script>");
    hostile["actor"]["name"] = json!("<img src=x onerror=alert('xss-actor')>");
    hostile["origin"]["name"] = json!("\"><script>alert('xss-origin')</script>");
    hostile["sorg:comment"] =
        json!("<iframe src=\"javascript:alert('xss-frame')\"></iframe><b>bold</b>");
    post_inbox(&a, &hostile).await;
    browser.goto(&a.url("/admin/messages")).await;
    assert_eq!(browser.dialog().await, None);
    browser.find("#log .detail-link").await.click().await;
    browser.wait_url("/admin/messages/").await;
    assert_eq!(browser.dialog().await, None);
    let payload = browser.find("#payload").await.text().await;
    assert!(
        payload.contains("<script>alert('xss-summary')</script>"),
        "{payload}"
    );
    assert!(
        payload.contains("<img src=x onerror=alert('xss-actor')>"),
        "{payload}"
    );
    assert_eq!(browser.count("script").await, 0);
    assert_eq!(browser.count("main img").await, 0);
    browser.screenshot("13-xss-as-text").await;
    assert_eq!(browser.count("main iframe, main b").await, 0);
    assert_eq!(
        browser.find("#summary").await.text().await,
        "<script>alert('xss-summary')</script>"
    );
    assert!(payload.contains("<b>bold</b>"), "{payload}");

    // CSRF: the session's cookie without the form's token changes nothing.
    let forged = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
        .post(a.url("/admin/services"))
        .header("cookie", format!("coar_admin={session}"))
        .form(&[
            ("id", "https://evil.example/"),
            ("name", "Evil"),
            ("enabled", "on"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(
        a.app
            .store()
            .service_by_id("https://evil.example/")
            .await
            .unwrap()
            .is_none()
    );

    // Sign out.
    browser.find("#sign-out").await.click().await;
    browser.wait_url("/admin/login").await;
    browser.goto(&a.url("/admin")).await;
    assert!(browser.url().await.contains("/admin/login"));
    browser.screenshot("14-signed-out").await;
    let replayed = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
        .get(a.url("/admin"))
        .header("cookie", format!("coar_admin={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        replayed.status(),
        StatusCode::SEE_OTHER,
        "a signed-out session stays out"
    );

    drop(browser);
    a.stop().await;
    b.stop().await;
}
