//! The generic_inbox example behaves as an LDN receiver, over real HTTP on loopback.

#[path = "../examples/generic_inbox.rs"]
#[allow(dead_code)]
mod example;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn headers(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// One HTTP/1.1 request on a fresh connection.
async fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    // Bodies here are small and not chunked unless the server chose to; undo chunking.
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            out.push_str(&tail[..n]);
            rest = &tail[n + 2..];
        }
        out
    } else {
        body.to_owned()
    };
    Reply {
        status,
        headers,
        body,
    }
}

#[tokio::test]
async fn behaves_as_an_ldn_receiver() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let base = format!("http://{addr}");
    tokio::spawn(axum::serve(listener, example::app(&base)).into_future());

    let like = r#"{"@context": "https://www.w3.org/ns/activitystreams", "id": "urn:uuid:3b6d1f7e-2f35-4c37-9a3d-000000000001", "type": "Like", "actor": "https://a.example/me", "object": "https://b.example/post"}"#;
    let created = request(
        &addr,
        "POST",
        "/inbox",
        &[(
            "Content-Type",
            "application/ld+json; profile=\"https://www.w3.org/ns/activitystreams\"",
        )],
        like,
    )
    .await;
    assert_eq!(created.status, 201);
    let location = created.header("location").unwrap().to_owned();
    assert_eq!(location, format!("{base}/inbox/0"));
    let turtle = "<urn:x:2> a <https://www.w3.org/ns/activitystreams#Announce> .";
    assert_eq!(
        request(
            &addr,
            "POST",
            "/inbox",
            &[("Content-Type", "text/turtle")],
            turtle
        )
        .await
        .status,
        201
    );

    // Errors: media type (with Accept-Post), malformed JSON, unknown remote context.
    let refused = request(
        &addr,
        "POST",
        "/inbox",
        &[("Content-Type", "text/plain")],
        "hi",
    )
    .await;
    assert_eq!(refused.status, 415);
    assert_eq!(refused.header("accept-post"), Some(coar_ldn::ACCEPT_POST));
    assert_eq!(
        refused.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(
        request(
            &addr,
            "POST",
            "/inbox",
            &[("Content-Type", "application/ld+json")],
            "{"
        )
        .await
        .status,
        400
    );
    let remote = r#"{"@context": "https://elsewhere.example/ctx", "type": "Like"}"#;
    assert_eq!(
        request(
            &addr,
            "POST",
            "/inbox",
            &[("Content-Type", "application/ld+json")],
            remote
        )
        .await
        .status,
        422
    );

    // The listing: ldp:contains both, JSON-LD by default, Turtle by negotiation.
    let listing = request(&addr, "GET", "/inbox", &[], "").await;
    assert_eq!(listing.status, 200);
    assert_eq!(listing.header("content-type"), Some("application/ld+json"));
    let json: serde_json::Value = serde_json::from_str(&listing.body).unwrap();
    assert_eq!(json["@id"], format!("{base}/inbox"));
    assert_eq!(
        json["contains"],
        serde_json::json!([format!("{base}/inbox/0"), format!("{base}/inbox/1")])
    );
    assert!(
        listing
            .headers("link")
            .iter()
            .any(|l| l.contains("ldp#BasicContainer"))
    );
    let ttl = request(&addr, "GET", "/inbox", &[("Accept", "text/turtle")], "").await;
    assert!(
        ttl.header("content-type")
            .unwrap()
            .starts_with("text/turtle")
    );
    assert!(
        ttl.body.contains(&format!("{base}/inbox/1")),
        "{}",
        ttl.body
    );
    assert_eq!(
        request(&addr, "GET", "/inbox", &[("Accept", "image/png")], "")
            .await
            .status,
        406
    );

    // Each notification: as received, or in another RDF syntax.
    let first = request(
        &addr,
        "GET",
        "/inbox/0",
        &[("Accept", "application/ld+json")],
        "",
    )
    .await;
    assert_eq!(first.body, like);
    let nt = request(
        &addr,
        "GET",
        "/inbox/0",
        &[("Accept", "application/n-triples")],
        "",
    )
    .await;
    assert!(
        nt.body
            .contains("<https://www.w3.org/ns/activitystreams#Like>"),
        "{}",
        nt.body
    );
    assert_eq!(request(&addr, "GET", "/inbox/9", &[], "").await.status, 404);

    let options = request(&addr, "OPTIONS", "/inbox", &[], "").await;
    assert_eq!(options.header("allow"), Some("GET, HEAD, OPTIONS, POST"));
    assert_eq!(options.header("accept-post"), Some(coar_ldn::ACCEPT_POST));
}
