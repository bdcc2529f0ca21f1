//! Every 1.0.1 pattern built with its builder validates and round-trips; reply helpers
//! address the answer back to the sender; builders refuse to produce invalid payloads.

use coar_model::*;
use serde_json::json;

fn repo() -> Service {
    Service::new("https://repo.example/", "https://repo.example/inbox/").name("Repository")
}

fn reviewer() -> Service {
    Service::new("https://review.example/", "https://review.example/inbox/")
}

fn preprint() -> Resource {
    Resource::landing_page("https://repo.example/item/1/")
        .cite_as("https://doi.org/10.5555/1")
        .item(Item::new(
            "https://repo.example/item/1/paper.pdf",
            "application/pdf",
        ))
}

fn offer() -> RequestReview {
    RequestReview::builder(repo(), reviewer(), preprint())
        .actor(
            Actor::new("https://orcid.org/0000-0002-1825-0097", ActorType::Person)
                .name("Josiah Carberry"),
        )
        .build()
        .unwrap()
}

/// Validates, checks the pattern, and round-trips through JSON text.
fn check(n: Notification, pattern: Pattern) {
    assert_eq!(n.pattern(), Some(pattern));
    let report = n.validate();
    assert!(report.is_valid(), "{pattern}:\n{report}");
    assert!(n.id().unwrap().starts_with("urn:uuid:"));
    let text = n.to_json_string();
    let back = Notification::from_json_str(&text).unwrap();
    assert_eq!(back, n, "{pattern}");
    assert_eq!(
        n.json_ld_context(),
        Some(&json!([
            "https://www.w3.org/ns/activitystreams",
            "https://coar-notify.net"
        ]))
    );
}

#[test]
fn every_pattern_builds_validates_and_round_trips() {
    let offer = offer();
    let endorse = RequestEndorsement::builder(repo(), reviewer(), preprint())
        .build()
        .unwrap();
    let review = Resource::new("https://review.example/review/9", ["Page", "sorg:Review"])
        .cite_as("https://doi.org/10.5555/r9");
    let announce_actor = Actor::new("https://review.example/", ActorType::Service);
    let built: Vec<(Notification, Pattern)> = vec![
        (offer.clone().into(), Pattern::RequestReview),
        (endorse.clone().into(), Pattern::RequestEndorsement),
        (offer.accept().build().unwrap().into(), Pattern::Accept),
        (
            offer
                .reject()
                .summary("Out of scope")
                .build()
                .unwrap()
                .into(),
            Pattern::Reject,
        ),
        (
            offer.tentative_accept().build().unwrap().into(),
            Pattern::TentativeAccept,
        ),
        (
            endorse
                .tentative_reject()
                .summary("Revise first")
                .build()
                .unwrap()
                .into(),
            Pattern::TentativeReject,
        ),
        (offer.undo().build().unwrap().into(), Pattern::UndoOffer),
        (
            AnnounceReview::builder(reviewer(), repo(), review.clone(), preprint())
                .actor(announce_actor.clone())
                .in_reply_to(offer.id().unwrap())
                .build()
                .unwrap()
                .into(),
            Pattern::AnnounceReview,
        ),
        (
            AnnounceEndorsement::builder(
                reviewer(),
                repo(),
                Resource::new("https://review.example/e/1", ["Page", "sorg:WebPage"])
                    .cite_as("https://doi.org/10.5555/e1"),
                Resource::landing_page("https://repo.example/item/1/"),
            )
            .build()
            .unwrap()
            .into(),
            Pattern::AnnounceEndorsement,
        ),
        (
            AnnounceServiceResult::builder(
                reviewer(),
                repo(),
                Resource::new("https://review.example/result/1", ["Page", "sorg:WebPage"]),
                Resource::landing_page("https://repo.example/item/1/"),
            )
            .build()
            .unwrap()
            .into(),
            Pattern::AnnounceServiceResult,
        ),
        (
            AnnounceRelationship::builder(
                repo(),
                reviewer(),
                Relationship::new(
                    "https://repo.example/item/1/",
                    "http://purl.org/vocab/frbr/core#supplement",
                    "https://data.example/set/7/",
                ),
                Resource::new("https://data.example/set/7/", ["Page", "sorg:AboutPage"]),
            )
            .build()
            .unwrap()
            .into(),
            Pattern::AnnounceRelationship,
        ),
        (
            Unprocessable::builder(
                reviewer(),
                repo(),
                offer.id().unwrap(),
                "Cannot fetch the PDF: 404",
            )
            .build()
            .unwrap()
            .into(),
            Pattern::Unprocessable,
        ),
    ];
    let mut patterns: Vec<Pattern> = built.iter().map(|(_, p)| *p).collect();
    patterns.sort();
    let want: Vec<Pattern> = Pattern::ALL
        .into_iter()
        .filter(|p| !p.is_legacy())
        .collect();
    assert_eq!(patterns, want, "a 1.0.1 pattern has no builder test");
    for (n, p) in built {
        check(n, p);
    }
}

#[test]
fn replies_swap_origin_and_target_and_embed_the_offer() {
    let offer = offer();
    let accept = offer.accept().build().unwrap();
    assert_eq!(accept.in_reply_to(), offer.id());
    assert_eq!(accept.object_id(), offer.id());
    assert_eq!(accept.origin(), offer.target());
    assert_eq!(accept.target(), offer.origin());
    let embedded = accept.object().unwrap();
    assert!(embedded.get("@context").is_none());
    assert_eq!(embedded.types(), ["Offer", "coar-notify:ReviewAction"]);

    let undo = offer.undo().summary("Withdrawn").build().unwrap();
    assert_eq!(undo.origin(), offer.origin());
    assert_eq!(undo.target(), offer.target());
    assert_eq!(undo.in_reply_to(), offer.id());
}

#[test]
fn unprocessable_reply_to_any_received_payload() {
    let received = Notification::from_value(json!({
        "@context": ["https://www.w3.org/ns/activitystreams", "https://coar-notify.net"],
        "id": "urn:uuid:6908e2d0-ab41-4fbf-8b27-e6d6cf1f7b95",
        "type": "Create",
        "origin": {"id": "https://sender.example", "inbox": "https://sender.example/inbox", "type": "Service"},
        "target": {"id": "https://me.example", "inbox": "https://me.example/inbox", "type": "Service"},
        "object": {"id": "https://sender.example/thing"}
    }))
    .unwrap();
    assert_eq!(received.pattern(), None);
    let flag = received
        .unprocessable_reply("Create is not a COAR Notify pattern")
        .build()
        .unwrap();
    assert_eq!(flag.in_reply_to(), received.id());
    assert_eq!(flag.object_id(), received.id());
    assert_eq!(flag.target().unwrap().id(), Some("https://sender.example"));
    assert_eq!(flag.reason(), Some("Create is not a COAR Notify pattern"));

    // No way back to the sender: building fails and says why.
    let mut doc = received.to_value();
    doc["origin"].as_object_mut().unwrap().shift_remove("inbox");
    let err = Notification::from_value(doc)
        .unwrap()
        .unprocessable_reply("x")
        .build()
        .unwrap_err();
    assert!(
        err.report
            .errors()
            .any(|p| p.rule == "target.inbox.required"),
        "{err}"
    );
}

#[test]
fn builders_refuse_invalid_payloads() {
    // A request without the content file.
    let err = RequestReview::builder(
        repo(),
        reviewer(),
        Resource::landing_page("https://repo.example/item/1/"),
    )
    .build()
    .unwrap_err();
    let rules: Vec<&str> = err.report.errors().map(|p| p.rule).collect();
    assert_eq!(rules, ["item.required"]);
    assert!(err.to_string().contains("/object/ietf:item"), "{err}");

    // A target without an inbox, a bad id.
    let target = Service {
        inbox: None,
        ..reviewer()
    };
    let err = RequestEndorsement::builder(repo(), target, preprint())
        .id("nope")
        .build()
        .unwrap_err();
    let rules: Vec<&str> = err.report.errors().map(|p| p.rule).collect();
    assert_eq!(rules, ["id.uri", "target.inbox.required"]);

    // A relationship whose context is another resource.
    let err = AnnounceRelationship::builder(
        repo(),
        reviewer(),
        Relationship::new(
            "https://a.example/1",
            "http://purl.org/vocab/frbr/core#supplement",
            "https://b.example/2",
        ),
        Resource::landing_page("https://c.example/3"),
    )
    .build()
    .unwrap_err();
    assert_eq!(
        err.report.errors().map(|p| p.rule).collect::<Vec<_>>(),
        ["context.id.matches-relationship"]
    );
}

#[test]
fn extra_properties_are_written_and_kept() {
    let n = RequestReview::builder(
        repo(),
        reviewer(),
        preprint().property("sorg:name", json!("A title")),
    )
    .property("updated", json!("2026-11-23T00:00:00Z"))
    .build()
    .unwrap();
    assert_eq!(
        n.as_map().get("updated"),
        Some(&json!("2026-11-23T00:00:00Z"))
    );
    assert_eq!(
        n.object().unwrap().get("sorg:name"),
        Some(&json!("A title"))
    );
    let keys: Vec<&str> = n.as_map().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "@context", "id", "type", "origin", "target", "object", "updated"
        ]
    );
}

#[test]
fn serde_round_trip_of_the_enum() {
    let n: Notification = offer().into();
    let text = serde_json::to_string(&n).unwrap();
    let back: Notification = serde_json::from_str(&text).unwrap();
    assert_eq!(back, n);
    let typed = RequestReview::try_from(back).unwrap();
    assert_eq!(typed.item().unwrap().media_type(), Some("application/pdf"));
}
