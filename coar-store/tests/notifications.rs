//! Storing notifications and the queries over them, each test run on SQLite, PostgreSQL and
//! MariaDB.

mod common;

use chrono::{TimeZone, Utc};
use coar_model::Pattern;
use coar_store::{Direction, Filter, Inserted, NewNotification, State, StoreError};
use common::{SPEC_1_0_1, fixture, parsed, with_new_id};
use serde_json::json;

store_test!(insert_and_read_back, |db| {
    let doc = fixture("request-review");
    let (bytes, n) = parsed(&doc);
    let mut new = NewNotification::inbound(
        &n,
        &bytes,
        "application/ld+json; profile=\"https://www.w3.org/ns/activitystreams\"",
    );
    new.remote_addr = Some("192.0.2.1".into());
    let Inserted::New(r) = db.store.insert(new).await.unwrap() else {
        panic!("not new")
    };
    let back = db.store.get(r.key).await.unwrap().unwrap();
    assert_eq!(back, r);
    assert_eq!(back.body, bytes, "body byte for byte");
    assert_eq!(back.pattern, Some(Pattern::RequestReview));
    assert_eq!(back.direction, Direction::Inbound);
    assert_eq!(back.state, State::Queued);
    assert_eq!(back.notification_id, doc["id"].as_str().unwrap());
    assert_eq!(back.origin_id.as_deref(), doc["origin"]["id"].as_str());
    assert_eq!(
        back.target_inbox.as_deref(),
        doc["target"]["inbox"].as_str()
    );
    assert_eq!(back.object_id.as_deref(), doc["object"]["id"].as_str());
    assert_eq!(
        back.cite_as,
        [doc["object"]["ietf:cite-as"].as_str().unwrap()]
    );
    assert_eq!(back.types, ["Offer", "coar-notify:ReviewAction"]);
    assert_eq!(back.remote_addr.as_deref(), Some("192.0.2.1"));
    assert_eq!(back.sha256.len(), 64);
    assert!(back.media_type.contains("profile="));
    assert_eq!(
        db.store
            .find_by_notification_id(&back.notification_id)
            .await
            .unwrap(),
        std::slice::from_ref(&back)
    );
    assert_eq!(db.store.get(back.key + 1000).await.unwrap(), None);

    // A large body (over MySQL's 64 KiB BLOB) is kept whole.
    let mut big = with_new_id(fixture("announce-review"));
    big["summary"] = json!("x".repeat(300 * 1024));
    let (bytes, n) = parsed(&big);
    let r = db
        .store
        .insert(NewNotification::inbound(&n, &bytes, "application/ld+json"))
        .await
        .unwrap();
    assert_eq!(
        db.store.get(r.record().key).await.unwrap().unwrap().body,
        bytes
    );
});

store_test!(idempotent_and_conflicting_reinsert, |db| {
    let doc = fixture("announce-review");
    let (bytes, n) = parsed(&doc);
    let first = db
        .store
        .insert(NewNotification::inbound(&n, &bytes, "application/ld+json"))
        .await
        .unwrap();
    let Inserted::New(first) = first else {
        panic!()
    };
    let again = db
        .store
        .insert(NewNotification::inbound(&n, &bytes, "application/ld+json"))
        .await
        .unwrap();
    assert_eq!(again, Inserted::Duplicate(first.clone()));

    // Same id and origin, different body: a typed conflict, not a database error.
    let mut changed = doc.clone();
    changed["summary"] = json!("changed");
    let (bytes2, n2) = parsed(&changed);
    match db
        .store
        .insert(NewNotification::inbound(
            &n2,
            &bytes2,
            "application/ld+json",
        ))
        .await
    {
        Err(StoreError::Conflict {
            key,
            notification_id,
            ..
        }) => {
            assert_eq!(key, first.key);
            assert_eq!(notification_id, first.notification_id);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }

    // Same id from another origin, or in the other direction: another notification.
    let mut other_origin = doc.clone();
    other_origin["origin"]["id"] = json!("https://elsewhere.example/");
    let (bytes3, n3) = parsed(&other_origin);
    assert!(matches!(
        db.store
            .insert(NewNotification::inbound(
                &n3,
                &bytes3,
                "application/ld+json"
            ))
            .await
            .unwrap(),
        Inserted::New(_)
    ));
    assert!(matches!(
        db.store
            .insert(NewNotification::outbound(&n, &bytes))
            .await
            .unwrap(),
        Inserted::New(_)
    ));
    assert_eq!(db.store.count(&Filter::default()).await.unwrap(), 3);
});

store_test!(concurrent_duplicate_inserts_store_one, |db| {
    let doc = fixture("request-endorsement");
    let (bytes, n) = parsed(&doc);
    let other = db.open_another().await;
    let (a, b) = tokio::join!(
        db.store
            .insert(NewNotification::inbound(&n, &bytes, "application/ld+json")),
        other.insert(NewNotification::inbound(&n, &bytes, "application/ld+json")),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.record().key, b.record().key);
    assert_eq!(db.store.count(&Filter::default()).await.unwrap(), 1);
    other.close().await.unwrap();
});

store_test!(queries_filters_counts_and_pages, |db| {
    let day = |d: u32| Utc.with_ymd_and_hms(2026, 11, d, 12, 0, 0).unwrap();
    let mut keys = Vec::new();
    for (i, name) in SPEC_1_0_1.iter().enumerate() {
        let doc = with_new_id(fixture(name));
        let (bytes, n) = parsed(&doc);
        let mut new = NewNotification::inbound(&n, &bytes, "application/ld+json");
        new.received_at = Some(day(1 + (i as u32 % 3)));
        if i % 4 == 0 {
            new.direction = Direction::Outbound;
        }
        if *name == "reject" {
            new.state = State::Quarantined;
        }
        keys.push(db.store.insert(new).await.unwrap().record().key);
    }
    let all = Filter::default();
    assert_eq!(db.store.count(&all).await.unwrap(), 12);

    // Pages of 5, newest first, no overlap, nothing lost, last page says so.
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = db.store.list(&all, cursor, 5).await.unwrap();
        pages += 1;
        seen.extend(page.items.iter().map(|r| r.key));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let mut want = keys.clone();
    want.reverse();
    assert_eq!(seen, want);

    let count = |f: Filter| {
        let store = db.store.clone();
        async move { store.count(&f).await.unwrap() }
    };
    assert_eq!(
        count(Filter {
            direction: Some(Direction::Outbound),
            ..Filter::default()
        })
        .await,
        3
    );
    assert_eq!(
        count(Filter {
            pattern: Some(Some(Pattern::Accept)),
            ..Filter::default()
        })
        .await,
        1
    );
    assert_eq!(
        count(Filter {
            pattern: Some(None),
            ..Filter::default()
        })
        .await,
        0
    );
    assert_eq!(
        count(Filter {
            state: Some(State::Quarantined),
            ..Filter::default()
        })
        .await,
        1
    );
    // Ten examples are about the same preprint (as object, context, or the object of an
    // embedded Offer); seven name its DOI (the two Offers and the five replies embedding one).
    let preprint = "https://research-organisation.org/repository/preprint/201203/421/";
    assert_eq!(
        count(Filter {
            resource: Some(preprint.into()),
            ..Filter::default()
        })
        .await,
        10
    );
    assert_eq!(
        count(Filter {
            resource: Some("https://doi.org/10.5555/12345680".into()),
            ..Filter::default()
        })
        .await,
        7
    );
    assert_eq!(
        count(Filter {
            origin: Some("https://research-organisation.org/repository".into()),
            ..Filter::default()
        })
        .await,
        3
    );
    assert_eq!(
        count(Filter {
            target: Some("https://review-service.com/system".into()),
            ..Filter::default()
        })
        .await,
        1
    );
    assert_eq!(
        count(Filter {
            source: Some("https://generic-service-1.com".into()),
            ..Filter::default()
        })
        .await,
        5
    );
    assert_eq!(
        count(Filter {
            since: Some(day(2)),
            until: Some(day(3)),
            ..Filter::default()
        })
        .await,
        4
    );
    // Free text: the body (ASCII case-insensitively), the notification id, the last error;
    // LIKE's wildcards are plain characters.
    let text = |t: &str| Filter {
        text: Some(t.into()),
        ..Filter::default()
    };
    assert_eq!(count(text("REVIEW-SERVICE.COM/review/GEO/202103")).await, 1);
    assert_eq!(count(text("review-service.com/review/geo/2021%")).await, 0);
    assert_eq!(count(text("geo_202103")).await, 0);
    let first = db.store.get(keys[0]).await.unwrap().unwrap();
    let id_part = &first.notification_id[first.notification_id.len() - 12..];
    assert_eq!(count(text(id_part)).await, 1);
    // With other filters, whose parameters come first.
    let with_pattern = |p: Pattern, t: &str| Filter {
        pattern: Some(Some(p)),
        since: Some(day(1)),
        text: Some(t.into()),
        ..Filter::default()
    };
    assert_eq!(
        count(with_pattern(Pattern::AnnounceReview, "geo/202103")).await,
        1
    );
    assert_eq!(count(with_pattern(Pattern::Accept, "geo/202103")).await, 0);
    let page = db
        .store
        .list(
            &Filter {
                since: Some(day(3)),
                ..Filter::default()
            },
            None,
            100,
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 4);
    assert!(page.items.iter().all(|r| r.received_at == day(3)));
    assert_eq!(page.next, None);

    let stats = db.store.stats(&all).await.unwrap();
    assert_eq!(stats.by_pattern.len(), 12);
    assert!(stats.by_pattern.iter().all(|(_, n)| *n == 1));
    assert_eq!(
        stats.by_direction,
        [("inbound".into(), 9), ("outbound".into(), 3)]
    );
    assert_eq!(
        stats.by_state,
        [("quarantined".into(), 1), ("queued".into(), 11)]
    );
    assert_eq!(
        stats.by_day,
        [
            ("2026-11-01".into(), 4),
            ("2026-11-02".into(), 4),
            ("2026-11-03".into(), 4)
        ]
    );
});

store_test!(migrating_again_loses_nothing, |db| {
    let (bytes, n) = parsed(&fixture("undo-offer"));
    let key = db
        .store
        .insert(NewNotification::inbound(&n, &bytes, "application/ld+json"))
        .await
        .unwrap()
        .record()
        .key;
    db.store.migrate().await.unwrap();
    let again = db.open_another().await;
    again.migrate().await.unwrap();
    assert_eq!(again.get(key).await.unwrap().unwrap().body, bytes);
    again.close().await.unwrap();
    db.store.ping().await.unwrap();
});

store_test!(
    a_database_from_before_m0002_and_m0003_is_brought_up_to_date,
    |db| {
        use sea_orm::ConnectionTrait;
        // A delivery queued by a release before M0003, which keyed no delivery threads.
        let mut outbound = with_new_id(fixture("request-review"));
        outbound["target"]["inbox"] = serde_json::json!("https://a.example/inbox");
        let (out_bytes, out) = parsed(&outbound);
        let queued = db
            .store
            .insert(NewNotification::outbound(&out, &out_bytes))
            .await
            .unwrap()
            .record()
            .key;
        // As a release before M0002 left it: their rows absent from seaql_migrations (the table
        // sea-orm-migration kept, which the store's runner reads), no bearer_sha256 column, no
        // thread_key column, index or queue_locks table, no signing_keys table, none of
        // M0005's signature columns.
        let raw = sea_orm::Database::connect(db.url.replacen("mariadb://", "mysql://", 1))
            .await
            .unwrap();
        let backend = raw.get_database_backend();
        let drop_index = match backend {
            sea_orm::DatabaseBackend::MySql => {
                "DROP INDEX ix_notifications_thread ON notifications"
            }
            _ => "DROP INDEX ix_notifications_thread",
        };
        for sql in [
            "DELETE FROM seaql_migrations WHERE version IN ('m0002_sender_evidence', 'm0003_delivery_threads', 'm0004_signing_keys', 'm0005_sender_signatures')",
            "ALTER TABLE notifications DROP COLUMN signature_key",
            "ALTER TABLE notifications DROP COLUMN signature_hash",
            "ALTER TABLE services DROP COLUMN signature_policy",
            "ALTER TABLE services DROP COLUMN public_keys",
            "ALTER TABLE services DROP COLUMN key_set_url",
            "ALTER TABLE services DROP COLUMN fetched_keys",
            "ALTER TABLE services DROP COLUMN keys_fetched_at",
            "DROP TABLE signing_keys",
            "ALTER TABLE notifications DROP COLUMN bearer_sha256",
            drop_index,
            "ALTER TABLE notifications DROP COLUMN thread_key",
            "DROP TABLE queue_locks",
        ] {
            raw.execute_unprepared(sql).await.unwrap();
        }
        let again = db.open_another().await;
        let (bytes, n) = parsed(&with_new_id(fixture("announce-review")));
        let mut new = NewNotification::inbound(&n, &bytes, "application/ld+json");
        new.bearer_sha256 = Some(coar_store::sha256_hex(b"a token"));
        let key = again.insert(new).await.unwrap().record().key;
        assert!(again.get(key).await.unwrap().is_some());
        let recorded = raw
            .query_all_raw(sea_orm::Statement::from_string(
                backend,
                "SELECT version FROM seaql_migrations ORDER BY version",
            ))
            .await
            .unwrap()
            .iter()
            .map(|r| r.try_get::<String>("", "version").unwrap())
            .collect::<Vec<_>>();
        assert_eq!(
            recorded,
            [
                "m0002_sender_evidence",
                "m0003_delivery_threads",
                "m0004_signing_keys",
                "m0005_sender_signatures",
                "migration"
            ]
        );
        // The delivery queued before is in a thread now, and goes out.
        let keyed = raw
            .query_one_raw(sea_orm::Statement::from_string(
                backend,
                format!("SELECT thread_key FROM notifications WHERE id = {queued}"),
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get::<Option<String>>("", "thread_key")
            .unwrap();
        assert!(keyed.is_some_and(|k| k.len() == 64));
        let claims = again
            .claim(coar_store::Direction::Outbound, "w", 10)
            .await
            .unwrap();
        assert_eq!(
            claims.iter().map(|c| c.record.key).collect::<Vec<_>>(),
            [queued]
        );
        // Once more changes nothing.
        again.migrate().await.unwrap();
        again.close().await.unwrap();
        raw.close().await.unwrap();
    }
);

store_test!(group_commit_gives_each_its_own_answer, |db| {
    let existing_doc = with_new_id(fixture("announce-review"));
    let (existing_bytes, existing) = parsed(&existing_doc);
    let first = db
        .store
        .insert(NewNotification::inbound(
            &existing,
            &existing_bytes,
            "application/ld+json",
        ))
        .await
        .unwrap();
    let fresh: Vec<(Vec<u8>, coar_model::Notification)> = (0..5)
        .map(|_| parsed(&with_new_id(fixture("request-review"))))
        .collect();
    let mut conflicting = existing_doc.clone();
    conflicting["summary"] = json!("another body");
    let (conflict_bytes, conflict) = parsed(&conflicting);
    let mut batch: Vec<NewNotification> = fresh
        .iter()
        .map(|(b, n)| NewNotification::inbound(n, b, "application/ld+json"))
        .collect();
    batch.push(NewNotification::inbound(
        &fresh[0].1,
        &fresh[0].0,
        "application/ld+json",
    )); // repeated within the batch
    batch.push(NewNotification::inbound(
        &existing,
        &existing_bytes,
        "application/ld+json",
    )); // stored before
    batch.push(NewNotification::inbound(
        &conflict,
        &conflict_bytes,
        "application/ld+json",
    )); // other body, same id
    let results = db.store.insert_many(&batch).await;
    assert_eq!(results.len(), 8);
    for r in &results[..5] {
        assert!(matches!(r, Ok(Inserted::New(_))), "{r:?}");
    }
    assert!(
        matches!(&results[5], Ok(Inserted::Duplicate(r)) if Some(r.key) == results[0].as_ref().ok().map(|i| i.record().key))
    );
    assert_eq!(
        results[6].as_ref().unwrap(),
        &Inserted::Duplicate(first.record().clone())
    );
    assert!(matches!(results[7], Err(StoreError::Conflict { .. })));
    assert_eq!(db.store.count(&Filter::default()).await.unwrap(), 6);
    let resource = Filter {
        resource: Some("https://research-organisation.org/repository/preprint/201203/421/".into()),
        ..Filter::default()
    };
    assert_eq!(
        db.store.count(&resource).await.unwrap(),
        6,
        "links are written for batched rows too"
    );
});

store_test!(
    nul_in_an_identifier_is_refused_and_links_find_any_other_uri,
    |db| {
        let origins = [
            "https://plain.example/system",
            "https://ünï.example/çà?q=\"quoted\"&x=\\",
            "https://nul.example/a\u{0}b",
        ];
        let docs = reviews_from(&origins);
        // A NUL in an identifier is refused (no IRI holds one; PostgreSQL cannot store one in
        // text), and only that notification of its batch.
        let results = db.store.insert_many(&inbound_batch(&docs)).await;
        assert!(results[0].is_ok() && results[1].is_ok(), "{results:?}");
        assert!(
            matches!(&results[2], Err(StoreError::Invalid { message, .. }) if message.contains("origin.id")),
            "{:?}",
            results[2]
        );
        // The other two in a batch of their own (links written the batch's way): found again.
        let fresh = reviews_from(&origins[..2]);
        for r in db.store.insert_many(&inbound_batch(&fresh)).await {
            assert!(matches!(r.unwrap(), Inserted::New(_)));
        }
        for (origin, expected) in origins.iter().zip([2, 2, 0]) {
            let filter = Filter {
                origin: Some((*origin).into()),
                ..Filter::default()
            };
            assert_eq!(
                db.store.count(&filter).await.unwrap(),
                expected,
                "{origin:?}"
            );
        }
    }
);

fn inbound_batch(docs: &[(Vec<u8>, coar_model::Notification)]) -> Vec<NewNotification<'_>> {
    docs.iter()
        .map(|(bytes, n)| NewNotification::inbound(n, bytes, "application/ld+json"))
        .collect()
}

/// An Announce Review with a fresh id from each origin, parsed.
fn reviews_from(origins: &[&str]) -> Vec<(Vec<u8>, coar_model::Notification)> {
    origins
        .iter()
        .map(|o| {
            let mut doc = with_new_id(fixture("announce-review"));
            doc["origin"]["id"] = json!(o);
            parsed(&doc)
        })
        .collect()
}
