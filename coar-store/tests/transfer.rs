//! Moving an installation: export, import into an empty database of another backend, and
//! export again, byte-identical at every step (SQLite → PostgreSQL → MariaDB → SQLite), with
//! the keys' sequences carrying on after the import; refusals of what must not be imported;
//! and the online SQLite backup.

mod common;

use coar_model::Pattern;
use coar_store::{Delivery, Direction, Failure, NewNotification, ServiceInput, State, Store};
use common::{Kind, fixture, parsed, with_new_id};
use serde_json::json;

/// A store with something of everything: services (ranges, tokens, patterns, one
/// disabled), inbound notifications processed, failed, quarantined with evidence, and
/// outbound ones delivered and retrying, with their attempts and links; and bodies whose
/// bytes a careless copy would change (non-ASCII, U+2028, CRLF, a Turtle body).
async fn populate(store: &Store) {
    // The installation's signing keys: one retired, one in use (opaque bytes here).
    store
        .active_signing_key(|| coar_store::NewSigningKey {
            kid: "first-key".into(),
            alg: "ed25519".into(),
            pkcs8: vec![0x30, 0x2e, 0x02, 0x01, 0x00],
        })
        .await
        .unwrap();
    store
        .rotate_signing_key(coar_store::NewSigningKey {
            kid: "second-key".into(),
            alg: "rsa-pss-sha512".into(),
            pkcs8: (0..=255).collect(),
        })
        .await
        .unwrap();
    store
        .add_service(&ServiceInput {
            name: "Repository «Ünï»".into(),
            id: "https://research-organisation.org/repository".into(),
            inbox: Some("https://research-organisation.org/inbox/".into()),
            enabled: true,
            inbound_patterns: vec![Pattern::RequestReview, Pattern::UndoOffer],
            outbound_patterns: vec![Pattern::AnnounceReview],
            cidrs: vec!["192.0.2.0/24".into(), "2001:db8::/32".into()],
            tokens: Some(vec!["the-repositorys-own-token".into()]),
            signature_policy: coar_store::SignaturePolicy::SignatureOrRangeOrToken,
            keys: Some(vec![coar_store::ServiceKey {
                thumbprint: "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k".into(),
                jwk: json!({"kty": "OKP", "crv": "Ed25519", "kid": "repo-2026",
                    "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}),
            }]),
            key_set_url: Some("https://research-organisation.org/keys".into()),
        })
        .await
        .unwrap();
    let with_keys = store.services().await.unwrap()[0].clone();
    store
        .set_fetched_keys(
            with_keys.key,
            "https://research-organisation.org/keys",
            &with_keys.keys,
        )
        .await
        .unwrap();
    store
        .add_service(&ServiceInput {
            name: "Old peer".into(),
            id: "https://old.example/".into(),
            inbox: None,
            enabled: false,
            inbound_patterns: Vec::new(),
            outbound_patterns: Vec::new(),
            cidrs: Vec::new(),
            tokens: None,
            ..ServiceInput::default()
        })
        .await
        .unwrap();
    for (i, name) in [
        "request-review",
        "announce-review",
        "announce-endorsement",
        "announce-relationship",
        "accept",
    ]
    .into_iter()
    .enumerate()
    {
        let mut doc = with_new_id(fixture(name));
        doc["summary"] = json!(format!("n°{i} — ünïcödé\u{2028}line\r\nend"));
        let (mut bytes, n) = parsed(&doc);
        bytes.extend_from_slice(b"\r\n  ");
        let mut new = NewNotification::inbound(&n, &bytes, "application/ld+json");
        new.remote_addr = Some(format!("192.0.2.{i}"));
        if i == 3 {
            new.state = State::Quarantined;
            new.bearer_sha256 = Some(coar_store::sha256_hex(b"a-token"));
        }
        if i == 2 {
            new.signature_key = Some("kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k".into());
            new.signature_hash = Some(coar_store::sha256_hex(b"a signature"));
        }
        store.insert(new).await.unwrap();
    }
    // A Turtle body, kept as received.
    let (_, n) = parsed(&with_new_id(fixture("announce-review")));
    let turtle =
        b"@prefix as: <https://www.w3.org/ns/activitystreams#> .\n<urn:x> a as:Announce .\n";
    store
        .insert(NewNotification::inbound(&n, turtle, "text/turtle"))
        .await
        .unwrap();
    // Outbound, to two inboxes.
    for inbox in ["https://a.example/inbox/", "https://b.example/inbox/"] {
        let mut doc = with_new_id(fixture("announce-review"));
        doc["target"]["inbox"] = json!(inbox);
        let (bytes, n) = parsed(&doc);
        store
            .insert(NewNotification::outbound(&n, &bytes))
            .await
            .unwrap();
    }
    // Work: processed, retried, failed; delivered, retrying with the peer's answer.
    let inbound = store
        .claim(Direction::Inbound, "worker-1", 3)
        .await
        .unwrap();
    store.complete(&inbound[0], None).await.unwrap();
    store
        .fail(&inbound[1], Failure::transient("the handler timed out"))
        .await
        .unwrap();
    store
        .fail(&inbound[2], Failure::permanent("not for us"))
        .await
        .unwrap();
    let outbound = store
        .claim(Direction::Outbound, "worker-2", 2)
        .await
        .unwrap();
    store
        .complete(
            &outbound[0],
            Some(Delivery {
                status: 201,
                excerpt: None,
            }),
        )
        .await
        .unwrap();
    store
        .fail(
            &outbound[1],
            Failure {
                message: "503 from the target".into(),
                delivery: Some(Delivery {
                    status: 503,
                    excerpt: Some("{\"title\": \"busy — later\"}".into()),
                }),
                ..Failure::default()
            },
        )
        .await
        .unwrap();
}

async fn export(store: &Store) -> (Vec<u8>, coar_store::TransferCounts) {
    let mut out = Vec::new();
    let counts = store.export(&mut out).await.unwrap();
    (out, counts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_to_postgres_to_mariadb_to_sqlite_is_byte_identical() {
    let first = common::create(Kind::Sqlite).await.unwrap();
    populate(&first.store).await;
    let (original, counts) = export(&first.store).await;
    assert_eq!(
        (counts.services, counts.notifications),
        (2, 8),
        "{counts:?}"
    );
    assert!(counts.attempts >= 5 && counts.links > 8, "{counts:?}");
    assert_eq!(counts.signing_keys, 2, "{counts:?}");
    let mut exported = original.clone();
    let mut path = vec!["sqlite".to_owned()];
    for kind in [Kind::Postgres, Kind::MySql, Kind::Sqlite] {
        let Some(next) = common::create(kind).await else {
            eprintln!("round trip: {kind:?} SKIPPED");
            continue;
        };
        // A server that opened the new database first made a key of its own: the
        // installation's replace it.
        next.store
            .active_signing_key(|| coar_store::NewSigningKey {
                kid: "made-by-the-new-server".into(),
                alg: "ed25519".into(),
                pkcs8: vec![1],
            })
            .await
            .unwrap();
        let imported = next.store.import(exported.as_slice()).await.unwrap();
        let keys = next.store.signing_keys().await.unwrap();
        assert_eq!(
            keys.iter()
                .map(|k| (k.kid.as_str(), k.retired_at.is_some()))
                .collect::<Vec<_>>(),
            [("second-key", false), ("first-key", true)],
            "{kind:?}"
        );
        assert_eq!(imported, counts, "{kind:?}");
        let (again, _) = export(&next.store).await;
        assert!(
            again == original,
            "{kind:?} after {path:?}: the export differs:\n{}\n---\n{}",
            String::from_utf8_lossy(&original),
            String::from_utf8_lossy(&again)
        );
        // Keys carry on after the highest imported one, and the queue works on.
        let (bytes, n) = parsed(&with_new_id(fixture("announce-review")));
        let key = next
            .store
            .insert(NewNotification::inbound(&n, &bytes, "application/ld+json"))
            .await
            .unwrap()
            .record()
            .key;
        assert!(key > 8, "{kind:?}: new key {key}");
        let claimed = next.store.claim(Direction::Inbound, "w", 10).await.unwrap();
        assert!(claimed.iter().any(|c| c.record.key == key), "{kind:?}");
        let service = next
            .store
            .service_by_id("https://research-organisation.org/repository")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(service.cidrs.len(), 2, "{kind:?}");
        path.push(format!("{kind:?}"));
        exported = again;
        common::drop_db(next).await;
    }
    common::drop_db(first).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_refuse_what_they_cannot_take_whole() {
    let source = common::create(Kind::Sqlite).await.unwrap();
    populate(&source.store).await;
    let (export, _) = export(&source.store).await;
    let text = String::from_utf8(export.clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let refused = async |body: String, why: &str| {
        let target = common::create(Kind::Sqlite).await.unwrap();
        let err = target
            .store
            .import(body.as_bytes())
            .await
            .expect_err(why)
            .to_string();
        // Nothing of a refused import stays behind.
        let (after, counts) = self::export(&target.store).await;
        assert_eq!(
            counts,
            coar_store::TransferCounts::default(),
            "{why}: {}",
            String::from_utf8_lossy(&after)
        );
        common::drop_db(target).await;
        err
    };
    let cut = lines[..lines.len() - 3].join("\n");
    assert!(refused(cut, "cut off").await.contains("cut off"));
    let mut swapped = lines.clone();
    let (a, b) = (2, lines.len() - 2);
    swapped.swap(a, b);
    assert!(
        refused(swapped.join("\n"), "out of order")
            .await
            .contains("out of order")
    );
    let other = text.replacen("\"version\":1", "\"version\":99", 1);
    assert!(refused(other, "version").await.contains("header"));
    let header: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    let current = header["schema"].as_str().unwrap();
    let schema = text.replacen(current, "m0099_future", 1);
    assert!(refused(schema, "schema").await.contains("schema"));
    let miscounted = text.replacen("\"services\":2", "\"services\":3", 1);
    assert!(refused(miscounted, "counts").await.contains("trailer"));
    // Into a database that already holds notifications: refused, nothing added.
    let err = source
        .store
        .import(export.as_slice())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("not empty"), "{err}");
    common::drop_db(source).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_is_a_consistent_copy_of_a_live_sqlite_database() {
    let db = common::create(Kind::Sqlite).await.unwrap();
    populate(&db.store).await;
    let dir = common::TempDir::create();
    let copy = dir.0.join("backup.db");
    // Writes go on while the copy is taken.
    let writer = {
        let store = db.store.clone();
        tokio::spawn(async move {
            for _ in 0..50 {
                let (bytes, n) = parsed(&with_new_id(fixture("announce-endorsement")));
                store
                    .insert(NewNotification::inbound(&n, &bytes, "application/ld+json"))
                    .await
                    .unwrap();
            }
        })
    };
    db.store.backup(&copy).await.unwrap();
    writer.await.unwrap();
    assert!(
        db.store.backup(&copy).await.is_err(),
        "an existing file is never overwritten"
    );
    let restored = Store::open(&format!("sqlite://{}", copy.display()))
        .await
        .unwrap();
    let (copied, counts) = export(&restored).await;
    assert!(
        (8..=58).contains(&counts.notifications),
        "{counts:?}: a moment's copy"
    );
    // Every notification in the copy is whole: its bytes match the live database's.
    let text = String::from_utf8(copied).unwrap();
    for line in text
        .lines()
        .filter(|l| l.contains("\"kind\":\"notification\""))
    {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        let key = row["id"].as_i64().unwrap();
        let live = db.store.get(key).await.unwrap().unwrap();
        let kept = restored.get(key).await.unwrap().unwrap();
        assert_eq!(kept.body, live.body);
        assert_eq!(kept.sha256, live.sha256);
    }
    restored.close().await.unwrap();
    common::drop_db(db).await;
}
