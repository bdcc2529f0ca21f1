//! The queue: claims, leases, retries, outbound threads and per-inbox limits, each test run on SQLite, PostgreSQL
//! and MariaDB.

mod common;

use std::collections::BTreeSet;

use chrono::{Duration, Utc};
use coar_store::{Direction, Failure, Filter, NewNotification, State, StoreError};
use common::{fixture, insert_many, parsed, with_new_id};
use serde_json::json;

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

/// Queues an outbound notification to the inbox `target`, answering `in_reply_to` when
/// given (then it is in that activity's delivery thread); returns its key and its id.
async fn queue_reply(
    db: &common::TestDb,
    target: &str,
    in_reply_to: Option<&str>,
) -> (i64, String) {
    let mut doc = with_new_id(fixture("request-review"));
    doc["target"]["inbox"] = json!(target);
    if let Some(id) = in_reply_to {
        doc["inReplyTo"] = json!(id);
    }
    let (bytes, n) = parsed(&doc);
    let key = db
        .store
        .insert(NewNotification::outbound(&n, &bytes))
        .await
        .unwrap()
        .record()
        .key;
    (key, doc["id"].as_str().unwrap().to_owned())
}

/// Queues an outbound notification to the inbox `target`, in a thread of its own.
async fn queue_to(db: &common::TestDb, target: &str) -> i64 {
    queue_reply(db, target, None).await.0
}

fn keys_of(claims: &[coar_store::Claim]) -> Vec<i64> {
    claims.iter().map(|c| c.record.key).collect()
}

store_test!(
    outbound_keeps_order_within_a_thread_and_each_inbox_within_its_limit,
    |db| {
        // The tests' policy allows 2 deliveries at once per inbox.
        let (a, b) = ("https://a.example/inbox", "https://b.example/inbox");
        let (offer, offer_id) = queue_reply(&db, a, None).await;
        let (undo, _) = queue_reply(&db, a, Some(&offer_id)).await;
        let a2 = queue_to(&db, a).await;
        let a3 = queue_to(&db, a).await;
        let b1 = queue_to(&db, b).await;
        let now = Utc::now();
        let claim = |at| db.store.claim_at(Direction::Outbound, "w", 10, at);

        // The Undo waits for its Offer; inbox a takes two at once, b is not held up.
        let first = claim(now).await.unwrap();
        assert_eq!(keys_of(&first), [offer, a2, b1]);
        assert!(claim(now).await.unwrap().is_empty(), "inbox a is full");
        db.store.complete(&first[2], None).await.unwrap();
        db.store.complete(&first[1], None).await.unwrap();
        let next = claim(now).await.unwrap();
        assert_eq!(
            keys_of(&next),
            [a3],
            "a slot came free; the Undo still waits"
        );
        db.store.complete(&next[0], None).await.unwrap();

        // A failing Offer holds up its Undo only: a later, independent notification goes.
        let state = db
            .store
            .fail_at(&first[0], Failure::transient("connection refused"), now)
            .await
            .unwrap();
        assert_eq!(state, State::RetryScheduled);
        let a4 = queue_to(&db, a).await;
        let independent = claim(now).await.unwrap();
        assert_eq!(keys_of(&independent), [a4]);
        db.store.complete(&independent[0], None).await.unwrap();
        let retry = claim(now + Duration::days(1)).await.unwrap();
        assert_eq!(keys_of(&retry), [offer]);
        assert!(
            claim(now).await.unwrap().is_empty(),
            "the Undo waits while its Offer is in flight"
        );
        db.store.complete(&retry[0], None).await.unwrap();
        let after = claim(now).await.unwrap();
        assert_eq!(keys_of(&after), [undo]);

        // A notification whose worker died is taken again.
        let retaken = claim(now + Duration::days(1)).await.unwrap();
        assert_eq!(keys_of(&retaken), [undo]);
        assert_eq!(retaken[0].attempt, 2);

        // One that fails for good no longer holds its thread.
        let (o2, o2_id) = queue_reply(&db, b, None).await;
        let (r2, _) = queue_reply(&db, b, Some(&o2_id)).await;
        let later = now + Duration::days(2);
        for c in &retaken {
            db.store.complete(c, None).await.unwrap();
        }
        let head = claim(later).await.unwrap();
        assert_eq!(keys_of(&head), [o2]);
        db.store
            .fail(&head[0], Failure::permanent("refused: 400"))
            .await
            .unwrap();
        assert_eq!(keys_of(&claim(later).await.unwrap()), [r2]);

        // Inbound notifications have neither threads nor limits.
        let inbound = insert_many(&db, 3).await;
        assert_eq!(
            keys_of(&db.store.claim(Direction::Inbound, "w", 10).await.unwrap()),
            inbound
        );
    }
);

store_test!(
    concurrent_claimers_keep_threads_in_order_and_inboxes_within_limit,
    |db| {
        let inboxes = [
            "https://a.example/inbox",
            "https://b.example/inbox",
            "https://c.example/inbox",
        ];
        // Per inbox, four threads of three: an Offer and two replies to it, interleaved.
        let mut threads: Vec<Vec<i64>> = Vec::new();
        for inbox in inboxes {
            let mut heads = Vec::new();
            for _ in 0..4 {
                let (key, id) = queue_reply(&db, inbox, None).await;
                threads.push(vec![key]);
                heads.push(id);
            }
            for _ in 0..2 {
                for (t, id) in heads.iter().enumerate() {
                    let (key, _) = queue_reply(&db, inbox, Some(id)).await;
                    let at = threads.len() - 4 + t;
                    threads[at].push(key);
                }
            }
        }
        let other = db.open_another().await;
        let started = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let in_flight = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashMap::<
            String,
            u32,
        >::new()));
        let worker = |store: coar_store::Store, name: &'static str| {
            let (started, in_flight) = (started.clone(), in_flight.clone());
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
                    for c in &claims {
                        let inbox = c.record.target_inbox.clone().unwrap();
                        let mut flying = in_flight.lock().unwrap();
                        let n = flying.entry(inbox.clone()).or_default();
                        *n += 1;
                        assert!(*n <= 2, "{n} deliveries at once to {inbox}");
                        started.lock().unwrap().push(c.record.key);
                    }
                    tokio::task::yield_now().await;
                    for c in &claims {
                        *in_flight
                            .lock()
                            .unwrap()
                            .get_mut(c.record.target_inbox.as_deref().unwrap())
                            .unwrap() -= 1;
                        store.complete(c, None).await.unwrap();
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
        let started = started.lock().unwrap().clone();
        assert_eq!(started.len(), 36, "each delivered once");
        for thread in &threads {
            let got: Vec<i64> = started
                .iter()
                .copied()
                .filter(|k| thread.contains(k))
                .collect();
            assert_eq!(&got, thread, "a thread out of order");
        }
        other.close().await.unwrap();
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

store_test!(a_batch_claims_what_it_stores_for_a_hand_over, |db| {
    use coar_store::{HandOver, Inserted};
    let docs: Vec<_> = (0..4)
        .map(|_| parsed(&with_new_id(fixture("announce-endorsement"))))
        .collect();
    let mut batch: Vec<NewNotification<'_>> = docs
        .iter()
        .map(|(bytes, n)| NewNotification::inbound(n, bytes, "application/ld+json"))
        .collect();
    batch[1].state = State::Quarantined; // never handed over
    batch.push(NewNotification::outbound(&docs[3].1, &docs[3].0)); // nor outbound
    let hand_over = HandOver {
        worker: "worker-here",
        limit: 2,
    };
    let written = db.store.write_batch(&batch, Some(hand_over), &[]).await;
    let stored: Vec<i64> = written
        .inserted
        .iter()
        .map(|r| match r {
            Ok(Inserted::New(r)) => r.key,
            other => panic!("{other:?}"),
        })
        .collect();
    // The first two queued inbound ones, as a claim leaves them: processing, one running
    // attempt; the third queued one waits, beyond the hand-over's room.
    assert_eq!(keys_of(&written.claims), [stored[0], stored[2]]);
    for claim in &written.claims {
        let record = db.store.get(claim.record.key).await.unwrap().unwrap();
        assert_eq!((record.state, record.attempts), (State::Processing, 1));
        assert_eq!(claim.attempt, 1);
        let attempts = db.store.attempts(claim.record.key).await.unwrap();
        assert_eq!(attempts.len(), 1);
        assert_eq!(
            (attempts[0].outcome.as_str(), attempts[0].worker.as_str()),
            ("running", "worker-here")
        );
    }
    let state = |i: usize| {
        let store = db.store.clone();
        let key = stored[i];
        async move { store.get(key).await.unwrap().unwrap().state }
    };
    assert_eq!(state(1).await, State::Quarantined);
    assert_eq!(state(3).await, State::Queued);
    assert_eq!(state(4).await, State::Queued);
    // A worker's claim finds only what was not handed over.
    let now = Utc::now();
    let claimed = db
        .store
        .claim_at(Direction::Inbound, "w", 10, now)
        .await
        .unwrap();
    assert_eq!(keys_of(&claimed), [stored[3]]);
    // Completions ride on the next batch's transaction, a repeat in it included.
    let done = [(&written.claims[0], None), (&claimed[0], None)];
    let next = db.store.write_batch(&batch[..1], None, &done).await;
    assert!(matches!(next.inserted[..], [Ok(Inserted::Duplicate(_))]));
    assert!(next.claims.is_empty());
    assert!(next.completed.iter().all(Result::is_ok), "{next:?}");
    assert_eq!(state(0).await, State::Processed);
    assert_eq!(state(3).await, State::Processed);
    // Nothing to write writes nothing.
    let only = db.store.write_batch(&[], None, &[]).await;
    assert!(only.inserted.is_empty() && only.completed.is_empty());
    // The one handed over and never finished is anybody's once its lease ends.
    let later = now + Duration::seconds(61);
    let retaken = db
        .store
        .claim_at(Direction::Inbound, "w2", 10, later)
        .await
        .unwrap();
    assert_eq!(keys_of(&retaken), [stored[2]]);
    // The stale claim and its successor complete in one batch (the writer gathers every
    // worker's): each is judged by its own lease, in either order.
    let stale = (&written.claims[1], None);
    let current = (&retaken[0], None);
    let both = db
        .store
        .write_batch(&[], None, &[stale.clone(), current.clone()])
        .await;
    assert!(
        matches!(both.completed[..], [Err(StoreError::LeaseLost(k)), Ok(())] if k == stored[2]),
        "{both:?}"
    );
    assert_eq!(state(2).await, State::Processed);
    let outcomes: Vec<String> = db
        .store
        .attempts(stored[2])
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.outcome)
        .collect();
    assert_eq!(outcomes, ["abandoned", "succeeded"]);
    // The other order, on a fresh claim and its successor.
    let (bytes, n) = parsed(&with_new_id(fixture("announce-endorsement")));
    let mine = db
        .store
        .write_batch(
            &[NewNotification::inbound(&n, &bytes, "application/ld+json")],
            Some(hand_over),
            &[],
        )
        .await
        .claims;
    let theirs = db
        .store
        .claim_at(
            Direction::Inbound,
            "w3",
            10,
            Utc::now() + Duration::seconds(61),
        )
        .await
        .unwrap();
    assert_eq!(keys_of(&theirs), keys_of(&mine));
    let both = db
        .store
        .write_batch(&[], None, &[(&theirs[0], None), (&mine[0], None)])
        .await;
    assert!(
        matches!(both.completed[..], [Ok(()), Err(StoreError::LeaseLost(_))]),
        "{both:?}"
    );
});
