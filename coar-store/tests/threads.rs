//! Request threads and their status, each test run on SQLite, PostgreSQL and MariaDB.

mod common;

use coar_model::Pattern;
use coar_store::{NewNotification, ThreadStatus};

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
