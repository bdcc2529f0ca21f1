//! The Atom feed: every filter, the default of 10, paging, bad parameters, valid Atom.

mod common;

use chrono::{TimeZone, Utc};
use coar_store::NewNotification;
use reqwest::StatusCode;
use serde_json::{Value, json};

const ATOM: &str = "http://www.w3.org/2005/Atom";

struct Entry {
    id: String,
    title: String,
    published: String,
    describes: Option<String>,
    source: Option<String>,
    summary: String,
}

fn parse(xml: &str) -> (Vec<Entry>, Option<String>) {
    let doc = roxmltree::Document::parse(xml).unwrap_or_else(|e| panic!("not XML: {e}\n{xml}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().namespace(), Some(ATOM));
    assert_eq!(root.tag_name().name(), "feed");
    for required in ["id", "title", "updated"] {
        assert!(
            root.children().any(|c| c.has_tag_name((ATOM, required))),
            "feed/{required}"
        );
    }
    let link = |node: roxmltree::Node, rel: &str| {
        node.children()
            .find(|c| c.has_tag_name((ATOM, "link")) && c.attribute("rel") == Some(rel))
            .and_then(|l| l.attribute("href"))
            .map(str::to_owned)
    };
    let text = |node: roxmltree::Node, name: &str| {
        node.children()
            .find(|c| c.has_tag_name((ATOM, name)))
            .and_then(|c| c.text())
            .unwrap_or_default()
            .to_owned()
    };
    assert!(link(root, "self").is_some());
    let entries = root
        .children()
        .filter(|c| c.has_tag_name((ATOM, "entry")))
        .map(|e| Entry {
            id: text(e, "id"),
            title: text(e, "title"),
            published: text(e, "published"),
            describes: link(e, "http://www.openarchives.org/ore/terms/describes"),
            source: link(e, "http://purl.org/dc/terms/source"),
            summary: text(e, "summary"),
        })
        .collect();
    (entries, link(root, "next"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_filters_pages_and_is_valid_atom() {
    let db = common::db::create(common::db::Kind::Sqlite).await.unwrap();
    let s = common::start(
        &db.url,
        &[
            ("publish_untrusted", "true"),
            ("admin_token", "a-feed-test-admin-token"),
        ],
    )
    .await;
    // 15 Announce Reviews about two preprints from two sources, one a day from 1 November.
    for i in 0..15u32 {
        let mut doc: Value = serde_json::from_slice(
            &std::fs::read(common::fixture_path("spec/announce-review.json")).unwrap(),
        )
        .unwrap();
        doc["id"] = json!(format!("urn:uuid:00000000-0000-4000-8000-{i:012}"));
        doc["context"]["id"] = json!(format!("https://repo.example/item/{}/", i % 2));
        doc["origin"]["id"] = json!(if i < 5 {
            "https://a.example/"
        } else {
            "https://b.example/"
        });
        doc["summary"] = json!("<script>alert(1)</script> & more");
        let bytes = serde_json::to_vec(&doc).unwrap();
        let n = coar_model::Notification::from_slice(&bytes).unwrap();
        let mut new = NewNotification::inbound(&n, &bytes, "application/ld+json");
        new.received_at = Some(Utc.with_ymd_and_hms(2026, 11, 1 + i, 12, 0, 0).unwrap());
        s.app.store().insert(new).await.unwrap();
    }
    let get = |query: &str| {
        let url = s.url(&format!("/feed{query}"));
        let client = s.client.clone();
        async move { client.get(url).send().await.unwrap() }
    };
    // Default: the 10 newest, newest first, and a next link to the rest.
    let r = get("").await;
    assert_eq!(
        r.headers()["content-type"],
        "application/atom+xml; charset=utf-8"
    );
    let (entries, next) = parse(&r.text().await.unwrap());
    assert_eq!(entries.len(), 10);
    assert_eq!(
        entries[0].id,
        "urn:uuid:00000000-0000-4000-8000-000000000014"
    );
    assert!(entries[0].published.starts_with("2026-11-15T12:00:00"));
    assert_eq!(entries[0].title, "Announce Review");
    assert_eq!(
        entries[0].describes.as_deref(),
        Some("https://repo.example/item/0/")
    );
    assert_eq!(entries[0].source.as_deref(), Some("https://b.example/"));
    assert!(
        entries[0]
            .summary
            .contains("Announce Review from https://b.example/"),
        "{}",
        entries[0].summary
    );
    let (rest, none) = parse(
        &s.client
            .get(next.unwrap())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    assert_eq!((rest.len(), none), (5, None));
    // limit
    assert_eq!(
        parse(&get("?limit=3").await.text().await.unwrap()).0.len(),
        3
    );
    // ro: the resource
    let (about, _) = parse(
        &get("?ro=https://repo.example/item/1/")
            .await
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(about.len(), 7);
    assert!(
        about
            .iter()
            .all(|e| e.describes.as_deref() == Some("https://repo.example/item/1/"))
    );
    // source
    assert_eq!(
        parse(
            &get("?source=https://a.example/")
                .await
                .text()
                .await
                .unwrap()
        )
        .0
        .len(),
        5
    );
    // from and to, inclusive, as dates or date-times; no 10-entry default with a range.
    let (range, _) = parse(
        &get("?from=2026-11-02&to=2026-11-13T12:00:00Z")
            .await
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(range.len(), 12);
    // A date alone as `to` covers the whole of that day (entries are at noon), in the feed
    // and in the admin API alike.
    let (by_dates, _) = parse(
        &get("?from=2026-11-02&to=2026-11-13")
            .await
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(by_dates.len(), 12);
    let api: Value = s
        .client
        .get(s.url("/api/notifications?from=2026-11-02&to=2026-11-13"))
        .bearer_auth("a-feed-test-admin-token")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(api["items"].as_array().map(Vec::len), Some(12), "{api}");
    let (combined, _) = parse(
        &get("?from=2026-11-01&ro=https://repo.example/item/0/&source=https://b.example/&limit=2")
            .await
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(combined.len(), 2);
    // Bad parameters: 400 naming the parameter.
    for (query, param) in [
        ("?from=yesterday", "from"),
        ("?to=2026-13-01", "to"),
        ("?limit=0", "limit"),
        ("?limit=x", "limit"),
        ("?ro=not%20a%20uri", "ro"),
        ("?source=nope", "source"),
        ("?from=2026-11-10&to=2026-11-01", "from"),
    ] {
        let r = get(query).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{query}");
        let p: Value = r.json().await.unwrap();
        assert_eq!(p["title"], format!("Invalid parameter {param}"), "{query}");
    }
    // The service description points at the feed with its URI template.
    let desc: Value = s
        .client
        .get(s.url("/"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(desc["feed"], s.url("/feed{?ro,from,to,source,limit}"));
    s.stop().await;
    common::db::drop_db(db).await;
}
