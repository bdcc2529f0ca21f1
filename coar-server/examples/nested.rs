//! The inbox inside an existing axum application: a repository's own routes (its item
//! pages, which advertise the inbox with [`coar_server::inbox_link_layer`]) with the whole
//! COAR Notify server nested under `/ldn`.
//!
//! ```text
//! cargo run -p coar-server --example nested -- 127.0.0.1:8093
//! curl -i http://127.0.0.1:8093/items/1            # Link: <…/ldn/inbox>; rel="…ldp#inbox"
//! ```
//!
//! The nested server's base URL is the application's URL plus `/ldn`, so the ids and
//! `Location`s it writes point inside the application.

use std::net::SocketAddr;

use axum::{Router, extract::Path, routing::get};
use coar_server::{Config, config::Layer};
use tokio::net::TcpListener;

/// The application: its own routes, and the COAR Notify server under `/ldn`. Workers run
/// as in `coar-notify serve` when `workers` is not zero.
pub async fn application(
    listener: &TcpListener,
    database_url: &str,
) -> Result<Router, Box<dyn std::error::Error>> {
    let base = format!("http://{}/ldn", listener.local_addr()?);
    let settings = Layer {
        database_url: Some(database_url.to_owned()),
        base_url: Some(base),
        trust: Some("accept".into()),
        workers: Some(toml::Value::Integer(0)),
        ..Layer::default()
    };
    let config = Config::resolve(settings, Layer::default(), None)?;
    let app = coar_server::app(config).await?;
    let items = Router::new()
        .route(
            "/items/{id}",
            get(|Path(id): Path<u32>| async move { format!("item {id}\n") }),
        )
        .layer(coar_server::inbox_link_layer(&app.inbox_url())?);
    Ok(Router::new()
        .merge(items)
        .nest("/ldn", coar_server::router(app)))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8093".into());
    let listener = TcpListener::bind(&addr).await?;
    let database =
        std::env::var("COAR_DATABASE_URL").unwrap_or_else(|_| "sqlite://nested-example.db".into());
    let app = application(&listener, &database).await?;
    println!("serving at http://{addr}/items/1 with the inbox at http://{addr}/ldn/inbox");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    #[tokio::test]
    async fn the_inbox_works_nested_in_another_application() {
        let dir = std::env::temp_dir().join(format!("coar-nested-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("inbox.db").display());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = super::application(&listener, &url).await.unwrap();
        let server = tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
        });
        let client = reqwest::Client::new();
        let base = format!("http://{addr}");

        // The application's own page advertises the nested inbox.
        let page = client.get(format!("{base}/items/1")).send().await.unwrap();
        let link = page.headers()["link"].to_str().unwrap().to_owned();
        assert!(link.contains(&format!("<{base}/ldn/inbox>")), "{link}");
        assert_eq!(page.text().await.unwrap(), "item 1\n");

        // A notification posted there is stored, at a URL inside the application.
        let posted = client
            .post(format!("{base}/ldn/inbox"))
            .header("content-type", "application/ld+json")
            .body(include_str!("../../fixtures/spec/announce-review.json"))
            .send()
            .await
            .unwrap();
        assert_eq!(posted.status(), 201);
        let location = posted.headers()["location"].to_str().unwrap().to_owned();
        assert!(
            location.starts_with(&format!("{base}/ldn/inbox/")),
            "{location}"
        );
        let read = client.get(&location).send().await.unwrap();
        assert_eq!(read.status(), 200);
        let listing = client
            .get(format!("{base}/ldn/inbox"))
            .send()
            .await
            .unwrap();
        assert!(listing.text().await.unwrap().contains(&location));

        server.abort();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
