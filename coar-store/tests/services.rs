//! The registry, attribution and quarantine, each test run on SQLite, PostgreSQL and
//! MariaDB.

mod common;

use coar_model::Pattern;
use coar_store::{Direction, NewNotification, ServiceInput, State, StoreError};
use common::{fixture, insert_many, parsed, with_new_id};
use serde_json::json;

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
        ..ServiceInput::default()
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

store_test!(
    service_lookups_are_cached_but_never_stale_after_a_local_change,
    |db| {
        let clock = coar_store::Clock::manual();
        let with_ttl = |ttl_ms| {
            let mut c = coar_store::StoreConfig::new(&db.url);
            c.service_cache_ttl = std::time::Duration::from_millis(ttl_ms);
            c.clock = clock.clone();
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
        clock.advance(std::time::Duration::from_millis(1999));
        assert!(
            !here.service_by_id(id).await.unwrap().unwrap().enabled,
            "still fresh"
        );
        clock.advance(std::time::Duration::from_millis(1));
        assert!(here.service_by_id(id).await.unwrap().unwrap().enabled);
        // Without a cache, every lookup reads the database.
        here.remove_service(added.key).await.unwrap();
        assert_eq!(elsewhere.service_by_id(id).await.unwrap(), None);
        assert_eq!(here.service_by_id(id).await.unwrap(), None);
        here.close().await.unwrap();
        elsewhere.close().await.unwrap();
    }
);

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
        ..ServiceInput::default()
    }
}

store_test!(
    signature_evidence_is_rechecked_against_the_keys_of_the_day,
    |db| {
        use coar_store::{NotReleased::Untrusted as U, ServiceKey, SignaturePolicy, Untrusted};
        let origin = "https://research-organisation.org/repository";
        let store = &db.store;
        let key = |t: &str| ServiceKey {
            thumbprint: t.into(),
            jwk: json!({"kty": "OKP", "crv": "Ed25519", "x": t, "kid": format!("kid-{t}")}),
        };
        let quarantine = async |addr: &str, signed_by: Option<&str>| {
            let (bytes, n) = parsed(&with_new_id(fixture("request-review")));
            let mut new = NewNotification::inbound(&n, &bytes, "application/ld+json");
            new.state = State::Quarantined;
            new.remote_addr = Some(addr.to_owned());
            new.signature_key = signed_by.map(str::to_owned);
            new.signature_hash = signed_by.map(|s| coar_store::sha256_hex(s.as_bytes()));
            store.insert(new).await.unwrap().record().key
        };
        let signed_in_range = quarantine("192.0.2.1", Some("old-key")).await;
        let signed_outside = quarantine("198.51.100.1", Some("old-key")).await;
        let unsigned_in_range = quarantine("192.0.2.2", None).await;
        let other_key = quarantine("198.51.100.2", Some("someone-elses")).await;
        let stored = store.get(signed_outside).await.unwrap().unwrap();
        assert_eq!(stored.signature_key.as_deref(), Some("old-key"));
        assert_eq!(
            stored.signature_hash,
            Some(coar_store::sha256_hex(b"old-key"))
        );
        // Signature required: only what a key of the service signed, and within its ranges.
        let required = ServiceInput {
            cidrs: vec!["192.0.2.0/24".into()],
            signature_policy: SignaturePolicy::SignatureRequired,
            keys: Some(vec![key("old-key")]),
            ..plain_service("Repository", origin)
        };
        let service = store.add_service(&required).await.unwrap();
        assert_eq!(service.signature_policy, SignaturePolicy::SignatureRequired);
        assert_eq!(service.keys[0].kid(), Some("kid-old-key"));
        assert_eq!(
            store.release_one(unsigned_in_range).await.unwrap(),
            Err(U(Untrusted::SignatureMissing))
        );
        assert_eq!(
            store.release_one(signed_outside).await.unwrap(),
            Err(U(Untrusted::AddressOutsideRanges))
        );
        assert_eq!(
            store.release_one(other_key).await.unwrap(),
            Err(U(Untrusted::SignatureMissing))
        );
        // The key is withdrawn before release: its signature is evidence no more.
        let withdrawn = ServiceInput {
            keys: Some(vec![key("new-key")]),
            ..required.clone()
        };
        let service = store.update_service(service.key, &withdrawn).await.unwrap();
        assert_eq!(
            store.release_one(signed_in_range).await.unwrap(),
            Err(U(Untrusted::SignatureMissing))
        );
        // Any one piece of evidence: a signature by a key (here fetched from its key set),
        // or an address in its ranges.
        let either = ServiceInput {
            signature_policy: SignaturePolicy::SignatureOrRangeOrToken,
            key_set_url: Some("https://research-organisation.org/keys".into()),
            ..withdrawn.clone()
        };
        let service = store.update_service(service.key, &either).await.unwrap();
        assert!(service.fetched_keys.is_empty());
        let service = store
            .set_fetched_keys(
                service.key,
                "https://research-organisation.org/keys",
                &[key("old-key")],
            )
            .await
            .unwrap();
        assert!(service.has_key("old-key") && service.has_key("new-key"));
        assert!(service.keys_fetched_at.is_some());
        // Keys fetched from a URL the service no longer has are not recorded.
        let stale = store
            .set_fetched_keys(service.key, "https://elsewhere.example/keys", &[key("x")])
            .await
            .unwrap();
        assert!(!stale.has_key("x"));
        assert_eq!(
            store.release_for(&service).await.unwrap(),
            coar_store::Released {
                released: 3,
                kept: 1
            }
        );
        let state = async |key| store.get(key).await.unwrap().unwrap().state;
        for key in [signed_in_range, signed_outside, unsigned_in_range] {
            assert_eq!(state(key).await, State::Queued, "{key}");
        }
        assert_eq!(
            store.release_one(other_key).await.unwrap(),
            Err(U(Untrusted::NoEvidence))
        );
        // Changing the URL forgets what was fetched from the old one.
        let moved = store
            .update_service(
                service.key,
                &ServiceInput {
                    key_set_url: Some("https://research-organisation.org/keys/v2".into()),
                    ..either
                },
            )
            .await
            .unwrap();
        assert!(moved.fetched_keys.is_empty() && moved.keys_fetched_at.is_none());
        // Bad input is named.
        let too_many = ServiceInput {
            keys: Some((0..33).map(|i| key(&format!("k{i}"))).collect()),
            ..plain_service("Many", "https://many.example/")
        };
        assert!(matches!(
            store.add_service(&too_many).await,
            Err(StoreError::Invalid { field: "keys", .. })
        ));
        assert_eq!(
            "signature-or-range-or-token".parse::<SignaturePolicy>(),
            Ok(SignaturePolicy::SignatureOrRangeOrToken)
        );
        assert!("signatures".parse::<SignaturePolicy>().is_err());
    }
);
