//! The benchmark's ceiling: an axum endpoint that only parses the JSON body and answers 201.
//! `cargo xtask bench` runs the same load against it and against `coar-notify serve`.

use axum::{Router, body::Bytes, http::StatusCode, routing::post};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8091".into());
    let app = Router::new().route(
        "/inbox",
        post(|body: Bytes| async move {
            match serde_json::from_slice::<serde_json::Value>(&body) {
                Ok(_) => (StatusCode::CREATED, [("location", "/inbox/1")]),
                Err(_) => (StatusCode::BAD_REQUEST, [("location", "")]),
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    axum::serve(listener, app).await
}
