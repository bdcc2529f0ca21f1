//! The admin API: authentication, listings with filters and cursors, resources, stats,
//! the service registry, OpenAPI.

mod common;

use reqwest::StatusCode;
use serde_json::{Value, json};

const TOKEN: &str = "the-admin-token-for-tests";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api() {
    let db = common::db::create(common::db::Kind::Sqlite).await.unwrap();
    // Without a token configured the admin API does not exist.
    let s = common::start(&db.url, &[]).await;
    assert_eq!(
        s.client
            .get(s.url("/api/stats"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    s.stop().await;

    let s = common::start(&db.url, &[("admin_token", TOKEN)]).await;
    let api = |path: &str| s.url(path);
    assert_eq!(
        s.client
            .get(api("/api/stats"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.client
            .get(api("/api/stats"))
            .bearer_auth("a-wrong-token-of-length")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );

    // Notifications arrive (quarantined: no service is registered yet).
    for name in [
        "request-review",
        "announce-review",
        "announce-endorsement",
        "accept",
    ] {
        let body = std::fs::read(common::fixture_path(&format!("spec/{name}.json"))).unwrap();
        let r = s
            .client
            .post(api("/inbox"))
            .header("content-type", "application/ld+json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED, "{name}");
    }
    let get = |path: String| {
        let client = s.client.clone();
        async move {
            let r = client.get(path).bearer_auth(TOKEN).send().await.unwrap();
            let status = r.status();
            (status, r.json::<Value>().await.unwrap())
        }
    };
    let (_, all) = get(api("/api/notifications")).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 4);
    assert!(all["next"].is_null());
    let (_, reviews) = get(api(
        "/api/notifications?pattern=announce-review&direction=inbound&state=quarantined",
    ))
    .await;
    assert_eq!(reviews["items"].as_array().unwrap().len(), 1);
    // Cursors: two pages of two.
    let (_, first) = get(api("/api/notifications?limit=2")).await;
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    let (_, second) = get(first["next"].as_str().unwrap().to_owned()).await;
    assert_eq!(second["items"].as_array().unwrap().len(), 2);
    assert!(second["next"].is_null());
    assert_ne!(first["items"][0]["key"], second["items"][0]["key"]);
    for bad in [
        "?direction=sideways",
        "?pattern=nope",
        "?state=asleep",
        "?ro=nope",
        "?from=x",
        "?limit=5000",
    ] {
        let (status, p) = get(api(&format!("/api/notifications{bad}"))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {p}");
    }

    // Everything known about the preprint.
    let preprint = "https://research-organisation.org/repository/preprint/201203/421/";
    let (_, known) = get(api(&format!("/api/resources?uri={preprint}"))).await;
    assert_eq!(
        known["notifications"].as_array().unwrap().len(),
        4,
        "{known}"
    );
    let kinds: Vec<&str> = known["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.len(), 2);
    assert!(
        kinds.contains(&"review") && kinds.contains(&"endorsement"),
        "{kinds:?}"
    );
    assert_eq!(
        get(api("/api/resources?uri=")).await.0,
        StatusCode::BAD_REQUEST
    );

    // Stats.
    let (_, stats) = get(api("/api/stats")).await;
    assert_eq!(stats["by_direction"]["inbound"], 4);
    assert_eq!(stats["by_state"]["quarantined"], 4);

    // The registry: registering a sender releases its quarantined notifications.
    let r = s
        .client
        .post(api("/api/services"))
        .bearer_auth(TOKEN)
        .json(&json!({"name": "Repository", "id": "https://research-organisation.org/repository", "inbox": "https://research-organisation.org/inbox/", "inbound_patterns": ["request-review"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    let key = created["key"].as_i64().unwrap();
    assert_eq!(created["has_tokens"], false);
    let (_, stats) = get(api("/api/stats")).await;
    assert_eq!(stats["by_state"]["queued"], 1, "{stats}");
    let dup = s
        .client
        .post(api("/api/services"))
        .bearer_auth(TOKEN)
        .json(&json!({"name": "Again", "id": "https://research-organisation.org/repository"}))
        .send()
        .await
        .unwrap();
    assert_eq!(dup.status(), StatusCode::BAD_REQUEST);
    let unknown = s
        .client
        .post(api("/api/services"))
        .bearer_auth(TOKEN)
        .json(&json!({"name": "X", "id": "https://x.example/", "colour": "blue"}))
        .send()
        .await
        .unwrap();
    assert!(unknown.status().is_client_error());
    let patched: Value = s
        .client
        .patch(api(&format!("/api/services/{key}")))
        .bearer_auth(TOKEN)
        .json(&json!({"enabled": false, "tokens": ["a-long-enough-secret-token"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            patched["enabled"].clone(),
            patched["has_tokens"].clone(),
            patched["name"].clone()
        ),
        (json!(false), json!(true), json!("Repository"))
    );
    let (_, list) = get(api("/api/services")).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(list[0].get("token_hashes").is_none());
    assert_eq!(
        s.client
            .delete(api(&format!("/api/services/{key}")))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.client
            .delete(api(&format!("/api/services/{key}")))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );

    let spec: Value = s
        .client
        .get(api("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(spec["openapi"], "3.1.0");
    assert!(spec["paths"]["/api/outbox"]["post"].is_object());
    s.stop().await;
    common::db::drop_db(db).await;
}

/// A reply composed with only the id of the Offer it answers gets the whole Offer from the
/// store (COAR Notify 1.0.1: its `object` is the Offer's payload); one naming no stored
/// Offer is refused with the rule, never sent to a peer that would refuse it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_replies_embed_the_stored_offer() {
    let db = common::db::create(common::db::Kind::Sqlite).await.unwrap();
    let s = common::start(
        &db.url,
        &[
            ("admin_token", TOKEN),
            ("workers", "0"),
            ("trust", "accept"),
        ],
    )
    .await;
    let offer: Value = serde_json::from_slice(
        &std::fs::read(common::fixture_path("spec/request-review.json")).unwrap(),
    )
    .unwrap();
    let r = s
        .client
        .post(s.url("/inbox"))
        .header("content-type", "application/ld+json")
        .json(&offer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let offer_id = offer["id"].as_str().unwrap();
    let reply = |in_reply_to: &str| {
        json!({
            "pattern": "tentative-accept",
            "inReplyTo": in_reply_to,
            "object": {"id": in_reply_to, "type": "Offer"},
            "target": offer["origin"],
        })
    };
    let r = s
        .client
        .post(s.url("/api/outbox"))
        .bearer_auth(TOKEN)
        .json(&reply(offer_id))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let queued: Value = r.json().await.unwrap();
    let r = s
        .client
        .get(queued["url"].as_str().unwrap())
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let stored: Value = r.json().await.unwrap();
    let mut whole = offer.clone();
    whole.as_object_mut().unwrap().shift_remove("@context");
    assert_eq!(stored["payload"]["object"], whole, "{stored}");
    assert_eq!(stored["payload"]["inReplyTo"], json!(offer_id));

    // No such Offer here: 422 naming the rule and where.
    let r = s
        .client
        .post(s.url("/api/outbox"))
        .bearer_auth(TOKEN)
        .json(&reply("urn:uuid:00000000-0000-4000-8000-00000000dead"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = r.json().await.unwrap();
    let named: Vec<(&str, &str)> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["rule"].as_str().unwrap_or_default(),
                e["pointer"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    for pointer in ["/object/origin", "/object/target", "/object/object"] {
        assert!(
            named.contains(&("object.offer.complete", pointer)),
            "{problem}"
        );
    }
    s.stop().await;
    common::db::drop_db(db).await;
}

/// `/api/openapi.json` is valid OpenAPI 3.1 to an independent validator
/// (openapi-spec-validator, from the venv `.ci/run` makes), and describes what the router
/// serves: every admin route and method, its `{key}` parameter, the bearer scheme, and
/// each operation's refusals beside its success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_is_valid_and_complete() {
    let db = common::db::create(common::db::Kind::Sqlite).await.unwrap();
    let s = common::start(&db.url, &[("admin_token", TOKEN)]).await;
    let text = s
        .client
        .get(s.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let spec: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(spec["openapi"], "3.1.0");
    assert_eq!(spec["servers"][0]["url"], s.base.as_str());
    assert_eq!(
        spec["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let routes = [
        ("/api/outbox", "post", "202"),
        ("/api/notifications", "get", "200"),
        ("/api/notifications/{key}", "get", "200"),
        ("/api/notifications/{key}/replay", "post", "200"),
        ("/api/resources", "get", "200"),
        ("/api/stats", "get", "200"),
        ("/api/services", "get", "200"),
        ("/api/services", "post", "201"),
        ("/api/services/{key}", "patch", "200"),
        ("/api/services/{key}", "delete", "204"),
    ];
    let mut operations = 0;
    for (path, ops) in spec["paths"].as_object().unwrap() {
        operations += ops.as_object().unwrap().len();
        for (method, op) in ops.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            for refusal in ["401", "403"] {
                assert!(
                    responses.contains_key(refusal),
                    "{method} {path}: no {refusal}"
                );
            }
            if path.contains("{key}") {
                let params = op["parameters"].as_array().unwrap();
                assert!(
                    params
                        .iter()
                        .any(|p| p["name"] == "key" && p["in"] == "path" && p["required"] == true),
                    "{method} {path}: no key parameter"
                );
            }
        }
    }
    assert_eq!(operations, routes.len(), "an operation per admin route");
    for (path, method, success) in routes {
        let op = &spec["paths"][path][method];
        assert!(
            op["responses"][success].is_object(),
            "{method} {path}: no {success}: {op}"
        );
        // The route exists, and refuses a caller without the token as documented.
        let url = s.url(&path.replace("{key}", "1"));
        let r = s
            .client
            .request(method.to_uppercase().parse().unwrap(), url)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
    }
    let listing = &spec["paths"]["/api/notifications"]["get"]["parameters"];
    for name in [
        "direction",
        "pattern",
        "state",
        "from",
        "to",
        "q",
        "limit",
        "after",
    ] {
        assert!(
            listing
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == name),
            "no {name} parameter"
        );
    }

    // The independent validator.
    let validator = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/ci-venv/bin/openapi-spec-validator");
    if !validator.exists() {
        let message = format!(
            "openapi-spec-validator SKIPPED: {} is missing (.ci/run installs it: python3 -m venv \
             target/ci-venv && target/ci-venv/bin/pip install openapi-spec-validator)",
            validator.display()
        );
        assert!(
            std::env::var_os("CI").is_none(),
            "{message}; CI must run it"
        );
        eprintln!("{message}");
    } else {
        let file = std::env::temp_dir().join(format!("coar-openapi-{}.json", std::process::id()));
        std::fs::write(&file, &text).unwrap();
        let out = std::process::Command::new(&validator)
            .arg(&file)
            .output()
            .unwrap();
        let _ = std::fs::remove_file(&file);
        assert!(
            out.status.success(),
            "openapi-spec-validator: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    s.stop().await;
    common::db::drop_db(db).await;
}
