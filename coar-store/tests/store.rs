//! The store's behaviour, each test run on SQLite, PostgreSQL and MariaDB.

mod common;

use std::collections::BTreeSet;

use chrono::{Duration, TimeZone, Utc};
use coar_model::Pattern;
use coar_store::{
    Direction, Failure, Filter, Inserted, NewNotification, ServiceInput, State, StoreError,
    ThreadStatus,
};
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

async fn insert_many(db: &common::TestDb, n: usize) -> Vec<i64> {
    let mut keys = Vec::new();
    for _ in 0..n {
        let (bytes, note) = parsed(&with_new_id(fixture("announce-endorsement")));
        keys.push(
            db.store
                .insert(NewNotification::inbound(
                    &note,
                    &bytes,
                    "application/ld+json",
                ))
                .await
                .unwrap()
                .record()
                .key,
        );
    }
    keys
}

store_test!(claim_complete_and_lease_expiry, |db| {
    let keys = insert_many(&db, 3).await;
    let now = Utc::now();
    let claims = db
        .store
        .claim_at(Direction::Inbound, "w1", 2, now)
        .await
        .unwrap();
    assert_eq!(
        claims.iter().map(|c| c.record.key).collect::<Vec<_>>(),
        keys[..2]
    );
    assert!(
        claims
            .iter()
            .all(|c| c.attempt == 1 && c.record.state == State::Processing)
    );
    // Nothing else of inbound is due but the third; outbound has nothing.
    assert!(
        db.store
            .claim_at(Direction::Outbound, "w1", 10, now)
            .await
            .unwrap()
            .is_empty()
    );
    let third = db
        .store
        .claim_at(Direction::Inbound, "w2", 10, now)
        .await
        .unwrap();
    assert_eq!(
        third.iter().map(|c| c.record.key).collect::<Vec<_>>(),
        [keys[2]]
    );
    assert!(
        db.store
            .claim_at(Direction::Inbound, "w2", 10, now)
            .await
            .unwrap()
            .is_empty()
    );

    db.store.complete(&claims[0], None).await.unwrap();
    assert_eq!(
        db.store.get(keys[0]).await.unwrap().unwrap().state,
        State::Processed
    );

    // w1 dies holding keys[1]: after the lease, w3 gets it; w1's late answer is refused.
    let later = now + Duration::seconds(61);
    let retaken = db
        .store
        .claim_at(Direction::Inbound, "w3", 10, later)
        .await
        .unwrap();
    let retaken_keys: BTreeSet<i64> = retaken.iter().map(|c| c.record.key).collect();
    assert_eq!(retaken_keys, BTreeSet::from([keys[1], keys[2]]));
    assert!(retaken.iter().all(|c| c.attempt == 2));
    assert!(
        matches!(db.store.complete(&claims[1], None).await, Err(StoreError::LeaseLost(k)) if k == keys[1])
    );
    for c in &retaken {
        db.store.complete(c, None).await.unwrap();
    }
    let attempts = db.store.attempts(keys[1]).await.unwrap();
    let outcomes: Vec<(&str, u32, &str)> = attempts
        .iter()
        .map(|a| (a.outcome.as_str(), a.attempt, a.worker.as_str()))
        .collect();
    assert_eq!(outcomes, [("abandoned", 1, "w1"), ("succeeded", 2, "w3")]);
    assert!(attempts[0].error.as_deref().unwrap().contains("lease"));

    // A released claim goes back to the queue without using up an attempt.
    let keys = insert_many(&db, 1).await;
    let c = db
        .store
        .claim(Direction::Inbound, "w4", 1)
        .await
        .unwrap()
        .remove(0);
    db.store.release(&c).await.unwrap();
    let r = db.store.get(keys[0]).await.unwrap().unwrap();
    assert_eq!((r.state, r.attempts), (State::Queued, 0));
});

store_test!(retry_backoff_dead_and_replay, |db| {
    let key = insert_many(&db, 1).await[0];
    let t0 = Utc::now();
    let c1 = db
        .store
        .claim_at(Direction::Inbound, "w", 1, t0)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        db.store
            .fail_at(&c1, Failure::transient("peer down"), t0)
            .await
            .unwrap(),
        State::RetryScheduled
    );
    let r = db.store.get(key).await.unwrap().unwrap();
    assert_eq!(r.state, State::RetryScheduled);
    assert_eq!(r.last_error.as_deref(), Some("peer down"));
    // base 10 s after the first failure
    assert_eq!(
        r.next_attempt_at.unwrap().timestamp_micros(),
        (t0 + Duration::seconds(10)).timestamp_micros()
    );
    assert!(
        db.store
            .claim_at(Direction::Inbound, "w", 1, t0 + Duration::seconds(9))
            .await
            .unwrap()
            .is_empty()
    );
    let t1 = t0 + Duration::seconds(10);
    let c2 = db
        .store
        .claim_at(Direction::Inbound, "w", 1, t1)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(c2.attempt, 2);
    // A peer's Retry-After later than the backoff wins; 20 s doubled backoff otherwise.
    let not_before = t1 + Duration::seconds(45);
    let failure = Failure {
        not_before: Some(not_before),
        ..Failure::transient("429")
    };
    assert_eq!(
        db.store.fail_at(&c2, failure, t1).await.unwrap(),
        State::RetryScheduled
    );
    assert_eq!(
        db.store
            .get(key)
            .await
            .unwrap()
            .unwrap()
            .next_attempt_at
            .unwrap()
            .timestamp_micros(),
        not_before.timestamp_micros()
    );
    let c3 = db
        .store
        .claim_at(Direction::Inbound, "w", 1, not_before)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        db.store
            .fail_at(&c3, Failure::transient("still down"), not_before)
            .await
            .unwrap(),
        State::Dead
    );
    assert!(
        db.store
            .claim_at(Direction::Inbound, "w", 1, not_before + Duration::days(1))
            .await
            .unwrap()
            .is_empty()
    );
    let attempts = db.store.attempts(key).await.unwrap();
    assert_eq!(
        attempts
            .iter()
            .map(|a| a.outcome.as_str())
            .collect::<Vec<_>>(),
        ["failed"; 3]
    );

    // Dead stays visible, and replays.
    let dead = Filter {
        state: Some(State::Dead),
        ..Filter::default()
    };
    assert_eq!(db.store.count(&dead).await.unwrap(), 1);
    assert!(db.store.replay(key).await.unwrap());
    let r = db.store.get(key).await.unwrap().unwrap();
    assert_eq!((r.state, r.attempts), (State::Queued, 0));
    assert!(
        !db.store.replay(key).await.unwrap(),
        "a queued notification is not replayed"
    );
    assert!(matches!(
        db.store.replay(key + 999).await,
        Err(StoreError::NotFound(_))
    ));

    // A permanent failure fails at once, with the peer's answer recorded.
    let c = db
        .store
        .claim(Direction::Inbound, "w", 1)
        .await
        .unwrap()
        .remove(0);
    let failure = Failure {
        delivery: Some(coar_store::Delivery {
            status: 422,
            excerpt: Some("{\"title\":\"invalid\"}".into()),
        }),
        ..Failure::permanent("refused: 422")
    };
    assert_eq!(db.store.fail(&c, failure).await.unwrap(), State::Failed);
    let last = db.store.attempts(key).await.unwrap().pop().unwrap();
    assert_eq!(
        (last.http_status, last.response_excerpt.as_deref()),
        (Some(422), Some("{\"title\":\"invalid\"}"))
    );
});

store_test!(two_workers_never_share_a_row, |db| {
    let keys: BTreeSet<i64> = insert_many(&db, 120).await.into_iter().collect();
    let other = db.open_another().await;
    let worker = |store: coar_store::Store, name: &'static str| {
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let claims = store.claim(Direction::Inbound, name, 4).await.unwrap();
                if claims.is_empty() {
                    return mine;
                }
                for c in claims {
                    store.complete(&c, None).await.unwrap();
                    mine.push(c.record.key);
                }
            }
        })
    };
    let (a, b) = tokio::join!(worker(db.store.clone(), "a"), worker(other.clone(), "b"));
    let (a, b) = (a.unwrap(), b.unwrap());
    let all: Vec<i64> = a.iter().chain(&b).copied().collect();
    assert_eq!(
        all.len(),
        keys.len(),
        "a row was processed twice or lost (a: {}, b: {})",
        a.len(),
        b.len()
    );
    assert_eq!(all.iter().copied().collect::<BTreeSet<_>>(), keys);
    let processed = Filter {
        state: Some(State::Processed),
        ..Filter::default()
    };
    assert_eq!(db.store.count(&processed).await.unwrap(), 120);
    other.close().await.unwrap();
});

store_test!(quarantine_until_trusted, |db| {
    let (bytes, n) = parsed(&fixture("request-review"));
    let mut new = NewNotification::inbound(&n, &bytes, "application/ld+json");
    new.state = State::Quarantined;
    let key = db.store.insert(new).await.unwrap().record().key;
    assert!(
        db.store
            .claim(Direction::Inbound, "w", 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        db.store.queue_depth(Direction::Inbound).await.unwrap(),
        [(State::Quarantined, 1)]
    );
    assert!(
        db.store
            .queue_depth(Direction::Outbound)
            .await
            .unwrap()
            .is_empty()
    );
    // Registering the origin releases it (its sender proved nothing, and the service asks
    // for nothing).
    let service = db
        .store
        .add_service(&plain_service(
            "Repository",
            "https://research-organisation.org/repository",
        ))
        .await
        .unwrap();
    assert_eq!(
        db.store.release_for(&service).await.unwrap(),
        coar_store::Released {
            released: 1,
            kept: 0
        }
    );
    let claimed = db.store.claim(Direction::Inbound, "w", 10).await.unwrap();
    assert_eq!(claimed[0].record.key, key);
    assert_eq!(claimed[0].record.service, Some(service.key), "attributed");
    assert_eq!(
        db.store.release_one(key).await.unwrap(),
        Err(coar_store::NotReleased::NotQuarantined)
    );
});

store_test!(quarantine_is_released_only_on_the_evidence_recorded, |db| {
    let origin = "https://research-organisation.org/repository";
    let token = "the-repositorys-own-token";
    let store = &db.store;
    let quarantine = async |addr: &str, bearer: Option<&str>, inbox: &str| {
        let mut doc = with_new_id(fixture("request-review"));
        doc["origin"]["inbox"] = json!(inbox);
        let (bytes, n) = parsed(&doc);
        let mut new = NewNotification::inbound(&n, &bytes, "application/ld+json");
        new.state = State::Quarantined;
        new.remote_addr = Some(addr.to_owned());
        new.bearer_sha256 = bearer.map(|t| coar_store::sha256_hex(t.as_bytes()));
        store.insert(new).await.unwrap().record().key
    };
    let inbox = "https://research-organisation.org/inbox/";
    let proven = quarantine("192.0.2.10", Some(token), inbox).await;
    let outside = quarantine("198.51.100.1", Some(token), inbox).await;
    let no_token = quarantine("192.0.2.11", None, inbox).await;
    let wrong_token = quarantine("192.0.2.12", Some("a-guess-at-the-token"), inbox).await;
    let forged_inbox = quarantine("192.0.2.13", Some(token), "https://evil.example/inbox").await;
    // Before the service is registered, nothing can vouch for any of them.
    assert_eq!(
        db.store.release_one(proven).await.unwrap(),
        Err(coar_store::NotReleased::NoService)
    );
    let input = ServiceInput {
        inbox: Some(inbox.into()),
        cidrs: vec!["192.0.2.0/24".into()],
        tokens: Some(vec![token.into()]),
        ..plain_service("Repository", origin)
    };
    let disabled = db
        .store
        .add_service(&ServiceInput {
            enabled: false,
            ..input.clone()
        })
        .await
        .unwrap();
    assert_eq!(
        db.store.release_for(&disabled).await.unwrap(),
        coar_store::Released::default(),
        "a disabled service vouches for nothing"
    );
    let service = db.store.update_service(disabled.key, &input).await.unwrap();
    assert_eq!(
        db.store.release_for(&service).await.unwrap(),
        coar_store::Released {
            released: 1,
            kept: 4
        }
    );
    let state = async |key| db.store.get(key).await.unwrap().unwrap().state;
    assert_eq!(state(proven).await, State::Queued);
    for key in [outside, no_token, wrong_token, forged_inbox] {
        assert_eq!(state(key).await, State::Quarantined, "{key}");
    }
    use coar_store::{NotReleased::Untrusted as U, Untrusted};
    assert_eq!(
        db.store.release_one(outside).await.unwrap(),
        Err(U(Untrusted::AddressOutsideRanges))
    );
    assert_eq!(
        db.store.release_one(no_token).await.unwrap(),
        Err(U(Untrusted::TokenMissing))
    );
    assert_eq!(
        db.store.release_one(wrong_token).await.unwrap(),
        Err(U(Untrusted::TokenMissing))
    );
    assert_eq!(
        db.store.release_one(forged_inbox).await.unwrap(),
        Err(U(Untrusted::InboxMismatch))
    );
    // The rules change, the evidence does not: without the token rule, what came from its
    // range is released; what came from elsewhere still is not.
    let service = db
        .store
        .update_service(
            service.key,
            &ServiceInput {
                tokens: Some(Vec::new()),
                ..input.clone()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        db.store.release_for(&service).await.unwrap(),
        coar_store::Released {
            released: 2,
            kept: 2
        }
    );
    assert_eq!(state(outside).await, State::Quarantined);
    assert_eq!(state(forged_inbox).await, State::Quarantined);
    let (by_addr, by_origin) = db
        .store
        .quarantined_from("198.51.100.1", Some(origin))
        .await
        .unwrap();
    assert_eq!((by_addr, by_origin), (1, 2));
});

store_test!(service_registry, |db| {
    let input = ServiceInput {
        name: "Review Service".into(),
        id: "https://review-service.com/system".into(),
        inbox: Some("https://review-service.com/inbox/".into()),
        enabled: true,
        inbound_patterns: vec![Pattern::AnnounceReview, Pattern::Accept],
        outbound_patterns: vec![Pattern::RequestReview],
        cidrs: vec!["192.0.2.0/24".into(), "2001:db8::/32".into()],
        tokens: Some(vec!["a-long-enough-secret-token".into()]),
    };
    let s = db.store.add_service(&input).await.unwrap();
    assert_eq!(
        s.inbound_patterns,
        [Pattern::AnnounceReview, Pattern::Accept]
    );
    assert!(s.token_matches("a-long-enough-secret-token"));
    assert!(!s.token_matches("a-long-enough-secret-tokeN"));
    assert!(s.address_allowed("192.0.2.9".parse().unwrap()));
    assert!(s.address_allowed("2001:db8::7".parse().unwrap()));
    assert!(!s.address_allowed("198.51.100.1".parse().unwrap()));
    assert!(s.accepts_inbound(Some(Pattern::Accept)));
    assert!(!s.accepts_inbound(Some(Pattern::Reject)));
    assert_eq!(
        db.store
            .service_by_id("https://review-service.com/system")
            .await
            .unwrap(),
        Some(s.clone())
    );
    assert!(matches!(
        db.store.add_service(&input).await,
        Err(StoreError::Invalid { field: "id", .. })
    ));
    for bad in [
        ServiceInput {
            id: "urn:x:1".into(),
            ..input.clone()
        },
        ServiceInput {
            cidrs: vec!["10.0.0.0/40".into()],
            ..input.clone()
        },
        ServiceInput {
            tokens: Some(vec!["short".into()]),
            ..input.clone()
        },
        ServiceInput {
            name: " ".into(),
            ..input.clone()
        },
    ] {
        assert!(
            matches!(
                db.store.add_service(&bad).await,
                Err(StoreError::Invalid { .. })
            ),
            "{bad:?}"
        );
    }

    // Update without tokens keeps them; rotation replaces them.
    let updated = db
        .store
        .update_service(
            s.key,
            &ServiceInput {
                name: "Renamed".into(),
                tokens: None,
                ..input.clone()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.name, "Renamed");
    assert!(updated.token_matches("a-long-enough-secret-token"));
    let rotated = db
        .store
        .update_service(
            s.key,
            &ServiceInput {
                tokens: Some(vec!["another-long-secret-token".into()]),
                ..input.clone()
            },
        )
        .await
        .unwrap();
    assert!(!rotated.token_matches("a-long-enough-secret-token"));
    assert!(rotated.token_matches("another-long-secret-token"));
    assert!(
        !db.store
            .set_service_enabled(s.key, false)
            .await
            .unwrap()
            .enabled
    );

    let second = db
        .store
        .add_service(&ServiceInput {
            name: "Another".into(),
            id: "https://b.example/".into(),
            tokens: None,
            cidrs: vec![],
            ..input.clone()
        })
        .await
        .unwrap();
    assert_eq!(
        db.store
            .services()
            .await
            .unwrap()
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        ["Another", "Review Service"]
    );
    assert!(second.address_allowed("203.0.113.5".parse().unwrap()));
    assert!(db.store.remove_service(second.key).await.unwrap());
    assert!(!db.store.remove_service(second.key).await.unwrap());
    assert_eq!(db.store.service(second.key).await.unwrap(), None);
    assert!(matches!(
        db.store.update_service(second.key, &input).await,
        Err(StoreError::NotFound(_))
    ));
});

store_test!(request_threads_and_status, |db| {
    use coar_model::{Actor, ActorType, Item, Offer, Resource, Service};
    let me = Service::new("https://repo.example/", "https://repo.example/inbox/");
    let them = Service::new("https://review.example/", "https://review.example/inbox/");
    let preprint = Resource::landing_page("https://repo.example/item/1/")
        .cite_as("https://doi.org/10.5555/1")
        .item(Item::new(
            "https://repo.example/item/1/paper.pdf",
            "application/pdf",
        ));
    let offer = coar_model::RequestReview::builder(me.clone(), them.clone(), preprint.clone())
        .actor(Actor::new("https://repo.example/", ActorType::Service))
        .build()
        .unwrap();
    let store_out = |n: coar_model::Notification| {
        let store = db.store.clone();
        async move {
            let bytes = n.to_json_string().into_bytes();
            store
                .insert(NewNotification::outbound(&n, &bytes))
                .await
                .unwrap()
                .record()
                .clone()
        }
    };
    let store_in = |n: coar_model::Notification| {
        let store = db.store.clone();
        async move {
            let bytes = n.to_json_string().into_bytes();
            store
                .insert(NewNotification::inbound(&n, &bytes, "application/ld+json"))
                .await
                .unwrap()
                .record()
                .clone()
        }
    };
    let offer_record = store_out(offer.clone().into()).await;
    let thread = db.store.thread(offer_record.key).await.unwrap().unwrap();
    assert_eq!(thread.status, ThreadStatus::Requested);

    store_in(offer.tentative_accept().build().unwrap().into()).await;
    assert_eq!(
        db.store
            .thread(offer_record.key)
            .await
            .unwrap()
            .unwrap()
            .status,
        ThreadStatus::TentativelyAccepted
    );
    let accept = store_in(offer.accept().build().unwrap().into()).await;
    assert_eq!(
        db.store
            .thread(offer_record.key)
            .await
            .unwrap()
            .unwrap()
            .status,
        ThreadStatus::Accepted
    );
    let review = coar_model::AnnounceReview::builder(
        them.clone(),
        me.clone(),
        Resource::new("https://review.example/r/1", ["Page", "sorg:Review"])
            .cite_as("https://doi.org/10.5555/r1"),
        Resource::landing_page("https://repo.example/item/1/"),
    )
    .in_reply_to(offer.id().unwrap())
    .build()
    .unwrap();
    store_in(review.into()).await;
    let thread = db.store.thread(offer_record.key).await.unwrap().unwrap();
    assert_eq!(thread.status, ThreadStatus::Announced);
    assert_eq!(
        thread
            .replies
            .iter()
            .map(|r| r.pattern.unwrap())
            .collect::<Vec<_>>(),
        [
            Pattern::TentativeAccept,
            Pattern::Accept,
            Pattern::AnnounceReview
        ]
    );
    // From a reply, the same thread.
    assert_eq!(
        db.store
            .thread_of(&accept)
            .await
            .unwrap()
            .unwrap()
            .offer
            .key,
        offer_record.key
    );

    // By resource: the landing page or its DOI.
    let second = coar_model::RequestEndorsement::builder(me.clone(), them.clone(), preprint)
        .build()
        .unwrap();
    let second_record = store_out(second.clone().into()).await;
    store_in(second.reject().build().unwrap().into()).await;
    for uri in ["https://repo.example/item/1/", "https://doi.org/10.5555/1"] {
        let threads = db.store.threads_for_resource(uri).await.unwrap();
        let got: Vec<(i64, ThreadStatus)> =
            threads.iter().map(|t| (t.offer.key, t.status)).collect();
        assert_eq!(
            got,
            [
                (offer_record.key, ThreadStatus::Announced),
                (second_record.key, ThreadStatus::Rejected)
            ],
            "{uri}"
        );
    }
    assert!(
        db.store
            .threads_for_resource("https://nothing.example/")
            .await
            .unwrap()
            .is_empty()
    );
    // An announcement that does not say inReplyTo, from the service asked, about the
    // resource: it completes the endorsement request, not the review request.
    let endorsement = coar_model::AnnounceEndorsement::builder(
        them.clone(),
        me.clone(),
        Resource::new("https://review.example/e/1", ["Page", "sorg:WebPage"])
            .cite_as("https://doi.org/10.5555/e1"),
        Resource::landing_page("https://repo.example/item/1/"),
    )
    .build()
    .unwrap();
    store_in(endorsement.into()).await;
    let endorsement_thread = db.store.thread(second_record.key).await.unwrap().unwrap();
    assert_eq!(endorsement_thread.status, ThreadStatus::Announced);
    assert_eq!(endorsement_thread.replies.len(), 2);
    assert_eq!(
        db.store
            .thread(offer_record.key)
            .await
            .unwrap()
            .unwrap()
            .replies
            .len(),
        3
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

store_test!(a_database_from_before_m0002_is_brought_up_to_date, |db| {
    use sea_orm::ConnectionTrait;
    // As a release before M0002 left it: its row absent from seaql_migrations (the table
    // sea-orm-migration kept, which the store's runner reads), and no bearer_sha256 column.
    let raw = sea_orm::Database::connect(db.url.replacen("mariadb://", "mysql://", 1))
        .await
        .unwrap();
    raw.execute_unprepared("DELETE FROM seaql_migrations WHERE version = 'm0002_sender_evidence'")
        .await
        .unwrap();
    raw.execute_unprepared("ALTER TABLE notifications DROP COLUMN bearer_sha256")
        .await
        .unwrap();
    let again = db.open_another().await;
    let (bytes, n) = parsed(&with_new_id(fixture("announce-review")));
    let mut new = NewNotification::inbound(&n, &bytes, "application/ld+json");
    new.bearer_sha256 = Some(coar_store::sha256_hex(b"a token"));
    let key = again.insert(new).await.unwrap().record().key;
    assert!(again.get(key).await.unwrap().is_some());
    let recorded = raw
        .query_all_raw(sea_orm::Statement::from_string(
            raw.get_database_backend(),
            "SELECT version FROM seaql_migrations ORDER BY version",
        ))
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get::<String>("", "version").unwrap())
        .collect::<Vec<_>>();
    assert_eq!(recorded, ["m0002_sender_evidence", "migration"]);
    // Once more changes nothing.
    again.migrate().await.unwrap();
    again.close().await.unwrap();
    raw.close().await.unwrap();
});

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

/// Queues an outbound notification to the inbox `target` (a lane), returning its key.
async fn queue_to(db: &common::TestDb, target: &str) -> i64 {
    let mut doc = with_new_id(fixture("request-review"));
    doc["target"]["inbox"] = json!(target);
    let (bytes, n) = parsed(&doc);
    db.store
        .insert(NewNotification::outbound(&n, &bytes))
        .await
        .unwrap()
        .record()
        .key
}

fn keys_of(claims: &[coar_store::Claim]) -> Vec<i64> {
    claims.iter().map(|c| c.record.key).collect()
}

store_test!(outbound_lanes_deliver_in_order_of_creation, |db| {
    let (a, b) = ("https://a.example/inbox", "https://b.example/inbox");
    let a1 = queue_to(&db, a).await;
    let b1 = queue_to(&db, b).await;
    let a2 = queue_to(&db, a).await;
    let b2 = queue_to(&db, b).await;
    let a3 = queue_to(&db, a).await;
    let now = Utc::now();
    let claim = |at| db.store.claim_at(Direction::Outbound, "w", 10, at);

    // Only the head of each lane is due.
    let heads = claim(now).await.unwrap();
    assert_eq!(keys_of(&heads), [a1, b1]);
    assert!(claim(now).await.unwrap().is_empty(), "a lane's second went");
    db.store.complete(&heads[1], None).await.unwrap();
    let b_next = claim(now).await.unwrap();
    assert_eq!(keys_of(&b_next), [b2]);
    db.store.complete(&b_next[0], None).await.unwrap();

    // A failed head holds its lane up until it is delivered: a2 waits for a1's retry.
    let state = db
        .store
        .fail_at(&heads[0], Failure::transient("connection refused"), now)
        .await
        .unwrap();
    assert_eq!(state, State::RetryScheduled);
    assert!(claim(now).await.unwrap().is_empty());
    let retry = claim(now + Duration::days(1)).await.unwrap();
    assert_eq!(keys_of(&retry), [a1]);
    db.store.complete(&retry[0], None).await.unwrap();
    let second = claim(now).await.unwrap();
    assert_eq!(keys_of(&second), [a2]);

    // A head that fails for good no longer blocks; one whose worker died is taken again,
    // still alone.
    db.store
        .fail(&second[0], Failure::permanent("refused: 400"))
        .await
        .unwrap();
    let third = claim(now).await.unwrap();
    assert_eq!(keys_of(&third), [a3]);
    let retaken = claim(now + Duration::days(1)).await.unwrap();
    assert_eq!(keys_of(&retaken), [a3]);
    assert_eq!(retaken[0].attempt, 2);

    // Inbound notifications have no lanes.
    let inbound = insert_many(&db, 3).await;
    assert_eq!(
        keys_of(&db.store.claim(Direction::Inbound, "w", 10).await.unwrap()),
        inbound
    );
});

store_test!(concurrent_claimers_keep_each_lane_in_order, |db| {
    let lanes = [
        "https://a.example/inbox",
        "https://b.example/inbox",
        "https://c.example/inbox",
    ];
    let mut expected: std::collections::BTreeMap<&str, Vec<i64>> = Default::default();
    for i in 0..36 {
        let lane = lanes[i % 3];
        expected
            .entry(lane)
            .or_default()
            .push(queue_to(&db, lane).await);
    }
    let other = db.open_another().await;
    let delivered = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let worker = |store: coar_store::Store, name: &'static str| {
        let delivered = delivered.clone();
        tokio::spawn(async move {
            let mut idle = 0;
            while idle < 20 {
                let claims = store.claim(Direction::Outbound, name, 4).await.unwrap();
                if claims.is_empty() {
                    idle += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    continue;
                }
                idle = 0;
                for c in claims {
                    let lane = c.record.target_inbox.clone().unwrap();
                    delivered.lock().unwrap().push((lane, c.record.key));
                    tokio::task::yield_now().await;
                    store.complete(&c, None).await.unwrap();
                }
            }
        })
    };
    let (x, y, z) = tokio::join!(
        worker(db.store.clone(), "x"),
        worker(other.clone(), "y"),
        worker(db.store.clone(), "z")
    );
    x.unwrap();
    y.unwrap();
    z.unwrap();
    let delivered = delivered.lock().unwrap().clone();
    for (lane, keys) in &expected {
        let got: Vec<i64> = delivered
            .iter()
            .filter(|(l, _)| l == lane)
            .map(|(_, k)| *k)
            .collect();
        assert_eq!(&got, keys, "lane {lane} out of order or incomplete");
    }
    other.close().await.unwrap();
});

store_test!(
    service_lookups_are_cached_but_never_stale_after_a_local_change,
    |db| {
        let with_ttl = |ttl_ms| {
            let mut c = coar_store::StoreConfig::new(&db.url);
            c.service_cache_ttl = std::time::Duration::from_millis(ttl_ms);
            coar_store::Store::open_with(c)
        };
        let here = with_ttl(2000).await.unwrap();
        let elsewhere = with_ttl(0).await.unwrap();
        let id = "https://cached.example/system";
        // An unknown sender is remembered as unknown, and forgotten when it is registered here.
        assert_eq!(here.service_by_id(id).await.unwrap(), None);
        let input = plain_service("Cached", id);
        let added = here.add_service(&input).await.unwrap();
        assert!(here.service_by_id(id).await.unwrap().unwrap().enabled);
        // A change through this store is seen at once.
        here.set_service_enabled(added.key, false).await.unwrap();
        assert!(!here.service_by_id(id).await.unwrap().unwrap().enabled);
        // A change by another process is seen once the entry expires, not before.
        elsewhere
            .set_service_enabled(added.key, true)
            .await
            .unwrap();
        assert!(
            !here.service_by_id(id).await.unwrap().unwrap().enabled,
            "not cached"
        );
        tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
        assert!(here.service_by_id(id).await.unwrap().unwrap().enabled);
        // Without a cache, every lookup reads the database.
        here.remove_service(added.key).await.unwrap();
        assert_eq!(elsewhere.service_by_id(id).await.unwrap(), None);
        assert_eq!(here.service_by_id(id).await.unwrap(), None);
        here.close().await.unwrap();
        elsewhere.close().await.unwrap();
    }
);

store_test!(a_batch_completes_in_one_go_except_a_lost_lease, |db| {
    let keys = insert_many(&db, 3).await;
    let now = Utc::now();
    let claims = db
        .store
        .claim_at(Direction::Inbound, "w1", 3, now)
        .await
        .unwrap();
    assert_eq!(keys_of(&claims), keys);
    // The second one's lease runs out and another worker takes it over.
    let later = now + Duration::seconds(61);
    let retaken = db
        .store
        .claim_at(Direction::Inbound, "w2", 3, later)
        .await
        .unwrap();
    assert_eq!(keys_of(&retaken), keys, "every lease ran out");
    db.store.complete(&retaken[1], None).await.unwrap();
    let c = db
        .store
        .claim_at(Direction::Inbound, "w3", 3, later + Duration::seconds(61))
        .await
        .unwrap();
    assert_eq!(keys_of(&c), [keys[0], keys[2]]);
    let delivery = coar_store::Delivery {
        status: 201,
        excerpt: Some("https://peer.example/inbox/1".into()),
    };
    let results = db
        .store
        .complete_many(&[
            (&c[0], Some(delivery)),
            (&retaken[1], None), // finished already by its new holder
            (&c[1], None),
        ])
        .await;
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    assert!(matches!(results[1], Err(StoreError::LeaseLost(k)) if k == keys[1]));
    for key in &keys {
        assert_eq!(
            db.store.get(*key).await.unwrap().unwrap().state,
            State::Processed
        );
    }
    let last = db.store.attempts(keys[0]).await.unwrap().pop().unwrap();
    assert_eq!(
        (last.outcome.as_str(), last.http_status),
        ("succeeded", Some(201))
    );
    assert!(db.store.complete_many(&[]).await.is_empty());
});

store_test!(unknown_senders_are_grouped_from_the_quarantine, |db| {
    let quarantine = |origin: &'static str, inbox: &'static str| {
        let mut doc = with_new_id(fixture("announce-review"));
        doc["origin"]["id"] = json!(origin);
        doc["origin"]["inbox"] = json!(inbox);
        doc
    };
    let mut keys = Vec::new();
    for (origin, inbox) in [
        ("https://b.example/system", "https://b.example/inbox/1"),
        ("https://a.example/system", "https://a.example/inbox"),
        ("https://b.example/system", "https://b.example/inbox/2"),
        (
            "https://known.example/system",
            "https://known.example/inbox",
        ),
    ] {
        let (bytes, n) = parsed(&quarantine(origin, inbox));
        let mut new = NewNotification::inbound(&n, &bytes, "application/ld+json");
        new.state = State::Quarantined;
        keys.push(db.store.insert(new).await.unwrap().record().key);
    }
    // Queued (not quarantined) notifications do not count.
    insert_many(&db, 2).await;
    db.store
        .add_service(&plain_service("Known", "https://known.example/system"))
        .await
        .unwrap();
    let unknown = db.store.unknown_senders().await.unwrap();
    let got: Vec<(&str, u64, i64, Vec<Option<&str>>)> = unknown
        .iter()
        .map(|u| {
            let inboxes = u.seen.iter().map(|s| s.inbox.as_deref()).collect();
            (u.id.as_str(), u.count, u.latest, inboxes)
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "https://a.example/system",
                1,
                keys[1],
                vec![Some("https://a.example/inbox")]
            ),
            (
                "https://b.example/system",
                2,
                keys[2],
                vec![
                    Some("https://b.example/inbox/1"),
                    Some("https://b.example/inbox/2")
                ]
            ),
        ]
    );
});

/// An enabled service with no inbox, patterns, addresses or tokens.
fn plain_service(name: &str, id: &str) -> ServiceInput {
    ServiceInput {
        name: name.into(),
        id: id.into(),
        inbox: None,
        enabled: true,
        inbound_patterns: Vec::new(),
        outbound_patterns: Vec::new(),
        cidrs: Vec::new(),
        tokens: None,
    }
}

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
