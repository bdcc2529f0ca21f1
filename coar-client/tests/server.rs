//! Against the real coar-notify server over loopback: every pattern built, sent, stored,
//! listed and fetched back.

use std::time::Duration;

use coar_client::{Client, ClientConfig};
use coar_model::*;
use coar_server::{Config, config::Layer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_pattern_round_trips_through_a_real_inbox() {
    let dir = std::env::temp_dir().join(format!("coar-client-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let flags = Layer {
        bind: Some(addr.to_string()),
        database_url: Some(format!("sqlite://{}", dir.join("inbox.db").display())),
        trust: Some("accept".into()),
        ..Layer::default()
    };
    let config = Config::resolve(flags, Layer::default(), None).unwrap();
    let app = coar_server::app(config).await.unwrap();
    let inbox = app.inbox_url();
    tokio::spawn(coar_server::serve(listener, app, std::future::pending()));

    let me = Service::new("https://repo.example/", "https://repo.example/inbox/");
    let them = Service::new(format!("http://{addr}/"), inbox.clone());
    let preprint = Resource::landing_page("https://repo.example/item/1/")
        .cite_as("https://doi.org/10.5555/1")
        .item(Item::new(
            "https://repo.example/item/1/a.pdf",
            "application/pdf",
        ));
    let offer = RequestReview::builder(me.clone(), them.clone(), preprint.clone())
        .build()
        .unwrap();
    let endorse = RequestEndorsement::builder(me.clone(), them.clone(), preprint.clone())
        .build()
        .unwrap();
    // Replies addressed to the inbox under test: build from an Offer that the server sent.
    let from_them = RequestReview::builder(them.clone(), me.clone(), preprint.clone())
        .build()
        .unwrap();
    let review = Resource::new("https://review.example/r/1", ["Page", "sorg:Review"])
        .cite_as("https://doi.org/10.5555/r1");
    let all: Vec<Notification> = vec![
        offer.clone().into(),
        endorse.clone().into(),
        from_them.accept().build().unwrap().into(),
        from_them.reject().build().unwrap().into(),
        from_them.tentative_accept().build().unwrap().into(),
        from_them.tentative_reject().build().unwrap().into(),
        offer.undo().build().unwrap().into(),
        AnnounceReview::builder(
            me.clone(),
            them.clone(),
            review.clone(),
            Resource::landing_page("https://x.example/p/"),
        )
        .build()
        .unwrap()
        .into(),
        AnnounceEndorsement::builder(
            me.clone(),
            them.clone(),
            review.clone(),
            Resource::landing_page("https://x.example/p/"),
        )
        .build()
        .unwrap()
        .into(),
        AnnounceServiceResult::builder(
            me.clone(),
            them.clone(),
            review.clone(),
            Resource::landing_page("https://x.example/p/"),
        )
        .build()
        .unwrap()
        .into(),
        AnnounceRelationship::builder(
            me.clone(),
            them.clone(),
            Relationship::new(
                "https://repo.example/item/1/",
                "http://purl.org/vocab/frbr/core#supplement",
                "https://x.example/p/",
            ),
            Resource::landing_page("https://x.example/p/"),
        )
        .build()
        .unwrap()
        .into(),
        Unprocessable::builder(
            me.clone(),
            them.clone(),
            "urn:uuid:0370c0fb-bb78-4a9b-87f5-bed307a509dd",
            "could not read it",
        )
        .build()
        .unwrap()
        .into(),
    ];
    let patterns: std::collections::BTreeSet<Pattern> =
        all.iter().filter_map(Notification::pattern).collect();
    assert_eq!(patterns.len(), 12);

    let client = Client::new(
        ClientConfig {
            allow_private: true,
            timeout: Duration::from_secs(10),
            ..ClientConfig::default()
        },
        coar_server::contexts(),
    )
    .unwrap();
    // The inbox is found from the server's own URL.
    let discovered = client.discover(&inbox).await.unwrap();
    assert_eq!(discovered.as_str(), inbox);
    // So does a plain sender, with no contexts registered: from the Link header.
    let plain = Client::plain(ClientConfig {
        allow_private: true,
        ..ClientConfig::default()
    })
    .unwrap();
    assert_eq!(
        plain
            .discover(&format!("http://{addr}/"))
            .await
            .unwrap()
            .as_str(),
        inbox
    );
    let mut locations = Vec::new();
    for n in &all {
        let receipt = client.send(n, discovered.as_str()).await.unwrap();
        assert_eq!(receipt.status, 201, "{:?}", n.pattern());
        let location = receipt.location.unwrap();
        let back = Notification::from_value(client.fetch(&location).await.unwrap()).unwrap();
        assert_eq!(&back, n);
        locations.push(location);
    }
    let listed = client.inbox_listing(&inbox).await.unwrap();
    for l in &locations {
        assert!(listed.contains(l), "{l} not listed");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
