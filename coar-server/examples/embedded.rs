//! The engine without axum, as another framework (or none) embeds it: a notification read
//! from stdin (or the file given) is admitted with [`Core::admit`] (durably stored before the
//! receipt), then one worker runs a custom [`Handler`] on it, the reference library's
//! "service binding" made durable.
//!
//! ```text
//! cargo run -p coar-server --no-default-features --example embedded < fixtures/spec/announce-review.json
//! ```
//!
//! It builds without the `http` feature: no axum, tower or hyper server is compiled. The
//! database is a SQLite file in a temporary directory unless `COAR_DATABASE_URL` is set.

use std::{
    io::Read,
    net::{IpAddr, Ipv4Addr},
    sync::Arc,
    time::Duration,
};

use coar_model::Notification;
use coar_server::{
    Config, Core, Peer,
    config::Layer,
    pipeline::{Handler, HandlerError, HandlerFuture, Pipeline},
};
use coar_store::Record;
use tokio::sync::mpsc;

/// The embedding application's binding: it hands each notification to the application
/// (here, a channel). Handlers run at least once per notification, so they are idempotent.
struct Deliver(mpsc::UnboundedSender<(i64, String)>);

impl Handler for Deliver {
    fn name(&self) -> &str {
        "embedded-example"
    }

    fn handle<'a>(
        &'a self,
        _core: &'a Core,
        record: &'a Record,
        n: &'a Notification,
    ) -> HandlerFuture<'a> {
        Box::pin(async move {
            let what = format!(
                "{} {} from {}",
                n.pattern().map_or("activity", |p| p.title()),
                n.id().unwrap_or("(no id)"),
                n.origin().and_then(|o| o.id()).unwrap_or("(no origin)"),
            );
            // The application being gone is our failure, never the sender's: retried.
            self.0
                .send((record.key, what))
                .map_err(|_| HandlerError::transient("the application stopped listening"))
        })
    }
}

/// What one run did: the receipt's key and location, and what the handler saw.
#[derive(Debug)]
pub struct Outcome {
    /// The stored notification's key.
    pub key: i64,
    /// Its URL.
    pub location: String,
    /// What the handler was given.
    pub handled: String,
}

/// Admits `body` (JSON-LD or Turtle, by `media_type`) from a sender at 127.0.0.1 on
/// `database_url`, then runs one worker until the handler has seen it.
pub async fn run(
    database_url: &str,
    media_type: &str,
    body: Vec<u8>,
) -> Result<Outcome, Box<dyn std::error::Error>> {
    let settings = Layer {
        database_url: Some(database_url.to_owned()),
        base_url: Some("https://repository.example/ldn".into()),
        // No registry in this example: every sender is processed.
        trust: Some("accept".into()),
        ..Layer::default()
    };
    let config = Config::resolve(settings, Layer::default(), None)?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let pipeline = Pipeline::default().add_everywhere(Arc::new(Deliver(tx)));
    let core = Arc::new(Core::open(config, pipeline).await?);

    let peer = Peer::at(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let receipt = match core.admit(Some(media_type), body.into(), peer).await {
        Ok(receipt) => receipt,
        // What an HTTP adapter would answer: the status and the sender's problems.
        Err(rejection) => return Err(format!("{}: {rejection}", rejection.status()).into()),
    };

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let workers = tokio::spawn(coar_server::work(core.clone(), 1, async {
        let _ = stopped.await;
    }));
    let handled = tokio::time::timeout(Duration::from_secs(30), rx.recv()).await;
    let _ = stop.send(());
    workers.await?;
    let (key, handled) = handled?.ok_or("the worker stopped before handling it")?;
    assert_eq!(
        key, receipt.key,
        "the handler saw the admitted notification"
    );
    core.store().clone().close().await?;
    Ok(Outcome {
        key,
        location: receipt.location,
        handled,
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let body = match std::env::args().nth(1) {
        Some(file) => std::fs::read(file)?,
        None => {
            let mut body = Vec::new();
            std::io::stdin().read_to_end(&mut body)?;
            body
        }
    };
    let media_type = match body.trim_ascii_start().first() {
        Some(b'{') | Some(b'[') => "application/ld+json",
        _ => "text/turtle",
    };
    let dir = std::env::temp_dir().join(format!("coar-embedded-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let url = std::env::var("COAR_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}", dir.join("inbox.db").display()));
    let outcome = run(&url, media_type, body).await;
    let _ = std::fs::remove_dir_all(&dir);
    let outcome = outcome?;
    println!("stored {} at {}", outcome.key, outcome.location);
    println!("handled: {}", outcome.handled);
    Ok(())
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn admits_and_handles_a_notification_without_http() {
        let dir = std::env::temp_dir().join(format!("coar-embedded-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("inbox.db").display());
        let body = include_bytes!("../../fixtures/spec/announce-review.json").to_vec();
        let outcome = super::run(&url, "application/ld+json", body).await.unwrap();
        assert!(
            outcome
                .location
                .starts_with("https://repository.example/ldn/inbox/"),
            "{outcome:?}"
        );
        assert!(
            outcome.handled.starts_with("Announce Review"),
            "{outcome:?}"
        );
        // A body that is not one activity is refused with the inbox's status.
        let refused = super::run(&url, "application/ld+json", b"[1, 2]".to_vec()).await;
        let message = refused.unwrap_err().to_string();
        assert!(message.starts_with("4"), "{message}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
