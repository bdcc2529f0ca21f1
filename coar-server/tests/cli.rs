//! The `coar-notify` binary as a user runs it: the README's run command, `validate`, `rdf`,
//! and configuration errors.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

mod common;

const BIN: &str = env!("CARGO_BIN_EXE_coar-notify");

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(rel)
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir()
        .join(format!("coar-cli-{}", std::process::id()))
        .join(format!("{:?}", Instant::now()).replace(|c: char| !c.is_ascii_alphanumeric(), ""));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn command(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("COAR_") {
            c.env_remove(k);
        }
    }
    c
}

fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl is installed");
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// README: `cargo run --release --bin coar-notify -- serve` in a fresh directory, then POST
/// the spec's Request Review example with curl and see it listed.
#[test]
fn readme_run_command_serves_an_inbox() {
    let dir = temp_dir();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = command(&dir)
        .arg("serve")
        .env("COAR_BIND", format!("127.0.0.1:{port}"))
        .env("COAR_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ok = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                &format!("{base}/healthz"),
            ])
            .output()
            .unwrap();
        if ok.stdout == b"200" {
            break;
        }
        assert!(Instant::now() < deadline, "the server did not start");
        assert!(child.try_wait().unwrap().is_none(), "the server exited");
        std::thread::sleep(Duration::from_millis(50));
    }
    let example = fixture("spec/request-review.json");
    let headers = curl(&[
        "-i",
        "-X",
        "POST",
        "-H",
        "Content-Type: application/ld+json",
        "-H",
        "X-Request-Id: readme-post-1",
        "--data-binary",
        &format!("@{}", example.display()),
        &format!("{base}/inbox"),
    ]);
    assert!(headers.starts_with("HTTP/1.1 201"), "{headers}");
    let location = headers
        .lines()
        .find_map(|l| {
            l.strip_prefix("location: ")
                .or_else(|| l.strip_prefix("Location: "))
        })
        .unwrap()
        .trim()
        .to_owned();
    // Its sender is not registered: quarantined and not published, neither in the listing
    // nor at its Location (a forged notification is never published), as the README says.
    let listing = curl(&[&format!("{base}/inbox")]);
    assert!(!listing.contains(&location), "{listing}");
    let readme = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"),
    )
    .unwrap();
    assert!(
        readme.contains("quarantined"),
        "the README explains the empty listing"
    );
    let read = curl(&["-s", "-o", "/dev/null", "-w", "%{http_code}", &location]);
    assert_eq!(read, "404", "not published at its Location either");
    assert!(
        dir.join("coar-notify.db").exists(),
        "the SQLite file is made in the working directory"
    );
    // SIGTERM: a graceful stop.
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", out.status);
    // The access log: a line per request, its fields structured in JSON mode.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let post = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["fields"]["request_id"] == "readme-post-1")
        .unwrap_or_else(|| panic!("no access log line for the POST: {stderr}"));
    assert_eq!(post["level"], "INFO", "{post}");
    assert_eq!(post["target"], "coar_server::access", "{post}");
    let fields = &post["fields"];
    assert_eq!(fields["method"], "POST", "{post}");
    assert_eq!(fields["route"], "/inbox", "{post}");
    assert_eq!(fields["status"], 201, "{post}");
    assert_eq!(fields["remote"], "127.0.0.1", "{post}");
    assert!(
        fields["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0),
        "{post}"
    );
    // Routes, not paths: a notification's page is logged under its pattern.
    assert!(stderr.contains("\"route\":\"/inbox/{key}\""), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_settings_exit_2_naming_the_setting() {
    let dir = temp_dir();
    let out = command(&dir)
        .args(["serve"])
        .env("COAR_TRUST", "maybe")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("COAR_TRUST"), "{stderr}");
    let out = command(&dir)
        .args(["serve", "--max-body", "lots"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("max_body"));
    std::fs::write(dir.join("c.toml"), "bind = \"nowhere\"\n").unwrap();
    let out = command(&dir)
        .args(["--config", "c.toml", "serve"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bind"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn migrate_creates_the_database() {
    let dir = temp_dir();
    let out = command(&dir)
        .args(["migrate", "--database-url", "sqlite://m.db"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.join("m.db").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn validate_reports_every_problem_and_exits_1_when_invalid() {
    let dir = temp_dir();
    let valid = fixture("spec/accept.json");
    let out = command(&dir)
        .arg("validate")
        .arg(&valid)
        .arg(fixture("spec/request-review.json"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&valid).unwrap()).unwrap();
    doc.as_object_mut().unwrap().remove("inReplyTo");
    doc["target"].as_object_mut().unwrap().remove("inbox");
    let bad = dir.join("bad.json");
    std::fs::write(&bad, doc.to_string()).unwrap();
    let out = command(&dir)
        .arg("validate")
        .arg(&valid)
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("error at /inReplyTo") && text.contains("error at /target/inbox"),
        "{text}"
    );

    let out = command(&dir)
        .args(["validate", "--json"])
        .arg(&bad)
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json[0]["valid"], false);
    assert_eq!(json[0]["pattern"], "accept");
    let pointers: Vec<&str> = json[0]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pointer"].as_str().unwrap())
        .collect();
    assert!(
        pointers.contains(&"/inReplyTo") && pointers.contains(&"/target/inbox"),
        "{json}"
    );
    std::fs::write(dir.join("not.json"), "{").unwrap();
    let out = command(&dir)
        .args(["validate", "not.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rdf_prints_the_notification_graph() {
    let dir = temp_dir();
    let file = fixture("spec/announce-review.json");
    for format in ["turtle", "ntriples", "nquads"] {
        let out = command(&dir)
            .arg("rdf")
            .arg(&file)
            .args(["--format", format])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{format}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let d = if format == "turtle" {
            coar_ldn::Dataset::parse_turtle(&text, None).unwrap()
        } else {
            coar_ldn::Dataset::parse_nquads(&text).unwrap()
        };
        assert!(d.len() > 15, "{format}: {text}");
    }
    let out = command(&dir)
        .arg("rdf")
        .arg(&file)
        .args(["--format", "xml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn services_commands_manage_the_registry() {
    let dir = temp_dir();
    let run = |args: &[&str]| {
        let out = command(&dir)
            .arg("services")
            .args(args)
            .args(["--database-url", "sqlite://reg.db"])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = run(&[
        "add",
        "--name",
        "Review Service",
        "--id",
        "https://review.example/",
        "--inbox",
        "https://review.example/inbox/",
        "--pattern",
        "announce-review",
        "--pattern",
        "accept",
        "--cidr",
        "192.0.2.0/24",
        "--token",
        "a-long-enough-secret-token",
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("added service 1"), "{out}");
    let (code, _, err) = run(&["add", "--name", "Again", "--id", "https://review.example/"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("already registered"), "{err}");
    let (code, _, err) = run(&[
        "add",
        "--name",
        "X",
        "--id",
        "https://x.example/",
        "--pattern",
        "nope",
    ]);
    assert_eq!(code, Some(2), "{err}");
    let (code, out, _) = run(&["list", "--json"]);
    assert_eq!(code, Some(0));
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        list[0]["inbound_patterns"],
        serde_json::json!(["announce-review", "accept"])
    );
    assert_eq!(list[0]["enabled"], true);
    assert!(
        list[0].get("token_hashes").is_none(),
        "token hashes are not printed"
    );
    assert_eq!(run(&["disable", "https://review.example/"]).0, Some(0));
    assert!(run(&["list"]).1.contains("disabled\tReview Service"));
    assert!(run(&["enable", "1"]).1.contains("enabled service 1"));
    assert_eq!(run(&["remove", "1"]).0, Some(0));
    assert_eq!(run(&["remove", "1"]).0, Some(1));
    assert!(run(&["list"]).1.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

/// `send`, `discover` and `inbox` against a real server, with their exit codes: 0 delivered,
/// 1 refused by the peer, 2 usage, 3 unreachable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_discover_and_inbox_commands() {
    let dir = temp_dir();
    let db = format!("sqlite://{}", dir.join("inbox.db").display());
    let server = common::start(&db, &[("trust", "accept")]).await;
    let inbox = server.url("/inbox");
    let run = move |args: Vec<String>| {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || {
            let out = command(&dir).args(&args).output().unwrap();
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        })
    };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let example = fixture("spec/announce-review.json").display().to_string();

    // A file, to the inbox (found from the server's base URL).
    let (code, out, err) = run(s(&[
        "send",
        &example,
        "--to",
        &server.base,
        "--allow-private-targets",
    ]))
    .await
    .unwrap();
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.starts_with(&format!("delivered: 201 {inbox}/")),
        "{out}"
    );
    // Built from flags; the target's inbox is discovered from --to.
    let (code, out, err) = run(s(&[
        "send",
        "--pattern",
        "request-review",
        "--to",
        &inbox,
        "--allow-private-targets",
        "--origin",
        "https://repo.example/",
        "--origin-inbox",
        "https://repo.example/inbox/",
        "--target",
        &server.base,
        "--object",
        "https://repo.example/item/1/",
        "--cite-as",
        "https://doi.org/10.5555/1",
        "--item",
        "https://repo.example/item/1/a.pdf",
        "--actor",
        "https://orcid.org/0000-0002-1825-0097",
        "--actor-type",
        "Person",
    ]))
    .await
    .unwrap();
    assert_eq!(code, Some(0), "{out}{err}");
    // Discover and list.
    let (code, out, _) = run(s(&["discover", &server.base, "--allow-private-targets"]))
        .await
        .unwrap();
    assert_eq!((code, out.trim()), (Some(0), inbox.as_str()));
    let (code, out, _) = run(s(&["inbox", &inbox, "--allow-private-targets"]))
        .await
        .unwrap();
    assert_eq!(code, Some(0));
    assert_eq!(out.lines().count(), 2, "{out}");
    // Any pattern from its template, a reply from a received Offer included.
    let offer = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/spec/request-review.json")
        .display()
        .to_string();
    let (code, out, err) = run(s(&[
        "send",
        "--pattern",
        "tentative-accept",
        "--reply-to",
        &offer,
        "--to",
        &inbox,
        "--allow-private-targets",
        "--origin",
        "https://review.example/",
        "--origin-inbox",
        "https://review.example/inbox/",
        "--set",
        "summary=We will review it",
    ]))
    .await
    .unwrap();
    assert_eq!(code, Some(0), "{out}{err}");
    // A reply naming only the Offer's id embeds the Offer from this installation's
    // database; with no database to find it in, it is refused, naming the rule.
    let (code, out, err) = run(s(&[
        "send",
        &offer,
        "--to",
        &inbox,
        "--allow-private-targets",
    ]))
    .await
    .unwrap();
    assert_eq!(code, Some(0), "{out}{err}");
    let offer_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&offer).unwrap()).unwrap();
    let offer_id = offer_json["id"].as_str().unwrap();
    let reply = |database: Option<&str>| {
        let mut args = s(&[
            "send",
            "--pattern",
            "reject",
            "--in-reply-to",
            offer_id,
            "--to",
            &inbox,
            "--allow-private-targets",
            "--origin",
            "https://review.example/",
            "--target",
            "https://research-organisation.org/repository",
            "--target-inbox",
            &inbox,
        ]);
        if let Some(url) = database {
            args.extend(s(&["--database-url", url]));
        }
        run(args)
    };
    let (code, _, err) = reply(None).await.unwrap();
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("object.offer.complete"), "{err}");
    let (code, out, err) = reply(Some(&db)).await.unwrap();
    assert_eq!(code, Some(0), "{out}{err}");
    let location = out.trim().rsplit(' ').next().unwrap().to_owned();
    let sent: serde_json::Value = reqwest::Client::new()
        .get(&location)
        .header("accept", "application/ld+json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut whole = offer_json.clone();
    whole.as_object_mut().unwrap().remove("@context");
    assert_eq!(sent["object"], whole, "{sent}");
    let (code, _, err) = run(s(&[
        "send",
        "--pattern",
        "announce-relationship",
        "--to",
        &inbox,
        "--allow-private-targets",
        "--origin",
        "https://repo.example/",
        "--set",
        "colour=blue",
    ]))
    .await
    .unwrap();
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("subject, relationship, related"), "{err}");
    // 1: refused by the peer (same id, other body: 409).
    let mut changed: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&example).unwrap()).unwrap();
    changed["summary"] = serde_json::json!("changed");
    let changed_path =
        std::env::temp_dir().join(format!("coar-cli-changed-{}.json", std::process::id()));
    std::fs::write(&changed_path, changed.to_string()).unwrap();
    let (code, _, err) = run(s(&[
        "send",
        &changed_path.display().to_string(),
        "--to",
        &inbox,
        "--allow-private-targets",
    ]))
    .await
    .unwrap();
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("409"), "{err}");
    // 2: usage (an invalid notification is never sent; an unknown pattern).
    let mut invalid = changed.clone();
    invalid.as_object_mut().unwrap().remove("context");
    std::fs::write(&changed_path, invalid.to_string()).unwrap();
    let (code, _, err) = run(s(&[
        "send",
        &changed_path.display().to_string(),
        "--to",
        &inbox,
        "--allow-private-targets",
    ]))
    .await
    .unwrap();
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("/context"), "{err}");
    let (code, _, _) = run(s(&[
        "send",
        "--pattern",
        "nope",
        "--to",
        &inbox,
        "--allow-private-targets",
    ]))
    .await
    .unwrap();
    assert_eq!(code, Some(2));
    // 3: unreachable, or refused by the address policy.
    let closed = format!(
        "http://127.0.0.1:{}/inbox",
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    );
    let (code, _, _) = run(s(&[
        "send",
        &example,
        "--to",
        &closed,
        "--allow-private-targets",
        "--timeout",
        "1500ms",
    ]))
    .await
    .unwrap();
    assert_eq!(code, Some(3));
    let (code, _, err) = run(s(&["send", &example, "--to", &inbox])).await.unwrap();
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("address policy"), "{err}");
    let _ = std::fs::remove_file(&changed_path);
    server.stop().await;
}

/// An HTTPS inbox whose certificate an institution's own authority signed: `send` reaches it
/// once that authority is in the operating system's trust store (here the file
/// `SSL_CERT_FILE` names, as `update-ca-certificates` would install it), and refuses it with
/// the bundled roots alone (`COAR_TLS_ROOTS=bundled`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_trusts_the_systems_certificate_authorities() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls;

    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Example University CA");
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    let dir = temp_dir();
    let ca_file = dir.join("institution-ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();

    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let server_config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap(),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(server_config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let inbox = format!("https://{}/inbox", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                // Read the head and the body its Content-Length announces, then answer.
                let mut got = Vec::new();
                let mut buf = [0u8; 8192];
                loop {
                    let Ok(n) = tls.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    got.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&got).to_ascii_lowercase();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if got.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                let answer = if got.starts_with(b"POST") {
                    "HTTP/1.1 201 Created\r\nLocation: /inbox/1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                } else {
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                };
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });

    let example = fixture("spec/announce-review.json").display().to_string();
    let send = |roots: &'static str| {
        let (dir, ca_file, example, inbox) =
            (dir.clone(), ca_file.clone(), example.clone(), inbox.clone());
        tokio::task::spawn_blocking(move || {
            let out = command(&dir)
                .args(["send", &example, "--to", &inbox, "--allow-private-targets"])
                .env("SSL_CERT_FILE", &ca_file)
                .env("COAR_TLS_ROOTS", roots)
                .output()
                .unwrap();
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        })
    };
    let (code, out, err) = send("system+bundled").await.unwrap();
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.starts_with("delivered: 201"), "{out}");
    let (code, out, err) = send("system").await.unwrap();
    assert_eq!(code, Some(0), "{out}{err}");
    let (code, out, err) = send("bundled").await.unwrap();
    assert_eq!(code, Some(3), "{out}{err}");
}

/// `backup`, `export` and `import` as an operator moves an installation: the export of the
/// imported copy is the export of the original, byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_export_and_import_move_an_installation() {
    let dir = temp_dir();
    let original = format!("sqlite://{}", dir.join("original.db").display());
    let server = common::start(&original, &[("trust", "accept")]).await;
    for name in ["request-review", "announce-review"] {
        let r = server
            .client
            .post(server.url("/inbox"))
            .header("content-type", "application/ld+json")
            .body(std::fs::read(fixture(&format!("spec/{name}.json"))).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let run = |args: Vec<String>| {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || {
            let out = command(&dir).args(&args).output().unwrap();
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        })
    };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    // A backup while the server runs.
    let copy = dir.join("copy.db").display().to_string();
    let (code, out, err) = run(s(&["backup", &copy, "--database-url", &original]))
        .await
        .unwrap();
    assert_eq!(code, Some(0), "{out}{err}");
    server.stop().await;
    let (code, _, err) = run(s(&["backup", &copy, "--database-url", &original]))
        .await
        .unwrap();
    assert_eq!(code, Some(1), "an existing file is kept: {err}");
    // Export, import elsewhere, export again.
    let first = dir.join("first.jsonl").display().to_string();
    let (code, out, err) = run(s(&["export", "-o", &first, "--database-url", &original]))
        .await
        .unwrap();
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(err.contains("2 notifications"), "{err}");
    let moved = format!("sqlite://{}?mode=rwc", dir.join("moved.db").display());
    let (code, out, err) = run(s(&["import", &first, "--database-url", &moved]))
        .await
        .unwrap();
    assert_eq!(code, Some(0), "{out}{err}");
    let (code, again, err) = run(s(&["export", "--database-url", &moved])).await.unwrap();
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(again.as_bytes(), std::fs::read(&first).unwrap().as_slice());
    let from_backup = format!("sqlite://{copy}");
    let (code, backed_up, err) = run(s(&["export", "--database-url", &from_backup]))
        .await
        .unwrap();
    assert_eq!(code, Some(0), "{err}");
    // Taken while workers ran: the same notifications, in whatever state they were then.
    let trailer = backed_up.lines().last().unwrap_or_default();
    assert!(trailer.contains("\"notifications\":2"), "{trailer}");
    // A second import into the same database is refused, leaving it as it was.
    let (code, _, err) = run(s(&["import", &first, "--database-url", &moved]))
        .await
        .unwrap();
    assert_eq!(code, Some(1));
    assert!(err.contains("not empty"), "{err}");
}

/// `send --key FILE` signs the POST (RFC 9421): the receiver verifies it with the key's
/// public half, under the key's thumbprint as keyid (or `--key-id`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_signs_with_the_key_given() {
    use coar_ldn::signature::{Policy, Request, SigningKey, pkcs8_pem, verify_request};
    let (key, pkcs8) = SigningKey::generate_ed25519("unused").unwrap();
    let public = key.verifying_key();
    let thumbprint = public.thumbprint();
    let dir = temp_dir();
    let key_file = dir.join("sender.pem");
    std::fs::write(&key_file, pkcs8_pem(&pkcs8)).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let inbox = format!("http://{}/inbox", listener.local_addr().unwrap());
    let seen: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    let (s, target) = (seen.clone(), inbox.clone());
    let router = axum::Router::new().route(
        "/inbox",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let (s, target) = (s.clone(), target.clone());
                let mut public = public.clone();
                async move {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_secs() as i64;
                    let req = Request {
                        method: "POST",
                        target_uri: &target,
                        headers: &headers,
                    };
                    let outcome = verify_request(&req, &body, now, Policy::default(), |id| {
                        // Known under its thumbprint and under the id an operator gave it.
                        (id == public.thumbprint() || id == "https://repo.example/#key").then(
                            || {
                                public = coar_ldn::signature::VerifyingKey::from_jwk(&{
                                    let mut jwk = public.to_jwk();
                                    jwk["kid"] = serde_json::json!(id);
                                    jwk
                                })
                                .unwrap();
                                public.clone()
                            },
                        )
                    });
                    s.lock().unwrap().push(match outcome {
                        Ok(Some(v)) => format!("verified {}", v.key.key_id()),
                        Ok(None) => "unsigned".into(),
                        Err(e) => format!("refused {}", e.reason()),
                    });
                    (axum::http::StatusCode::CREATED, [("location", "/inbox/1")])
                }
            },
        )
        // `--to` looks for an advertised inbox first; this one advertises none.
        .get(|| async { "" }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let example = fixture("spec/announce-review.json").display().to_string();
    let key_path = key_file.display().to_string();
    for extra in [vec![], vec!["--key-id", "https://repo.example/#key"]] {
        let mut args = vec![
            "send".to_owned(),
            example.clone(),
            "--to".to_owned(),
            inbox.clone(),
            "--allow-private-targets".to_owned(),
            "--key".to_owned(),
            key_path.clone(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let dir = dir.clone();
        let out = tokio::task::spawn_blocking(move || command(&dir).args(&args).output().unwrap())
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // A key file that is not one: a usage error, nothing sent.
    std::fs::write(dir.join("not-a-key.pem"), "hello").unwrap();
    let bad = dir.join("not-a-key.pem").display().to_string();
    let (d, i) = (dir.clone(), inbox.clone());
    let out = tokio::task::spawn_blocking(move || {
        command(&d)
            .args([
                "send",
                &example,
                "--to",
                &i,
                "--allow-private-targets",
                "--key",
                &bad,
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        *seen.lock().unwrap(),
        [
            format!("verified {thumbprint}"),
            "verified https://repo.example/#key".to_owned()
        ]
    );
}
