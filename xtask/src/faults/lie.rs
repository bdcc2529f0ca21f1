//! Peers that lie: absurd `Retry-After`, a forged origin, a webhook that is down.

use super::*;

pub(super) async fn peers_that_lie(root: &Path, bin: &Path, work: &Path) -> Result<String> {
    let dir = work.join("lying-peers");
    std::fs::create_dir_all(&dir)?;
    // The sender's own inbox: it must hear nothing about our webhook.
    type Heard = Arc<Mutex<Vec<Value>>>;
    let heard: Heard = Arc::default();
    let log = heard.clone();
    let sender = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let sender_inbox = format!("http://{}/inbox", sender.local_addr()?);
    http_sink(
        sender,
        Arc::new(move |_, body| {
            if let Ok(v) = serde_json::from_slice(body) {
                log.lock().unwrap_or_else(|e| e.into_inner()).push(v);
            }
            b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n".to_vec()
        }),
    );
    // A target that asks to be left alone for 300 000 years, and one that accepts.
    let absurd = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let absurd_inbox = format!("http://{}/inbox", absurd.local_addr()?);
    http_sink(
        absurd,
        Arc::new(|_, _| {
            b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 10000000000000\r\nContent-Length: 0\r\n\r\n"
                .to_vec()
        }),
    );
    let (fine, fine_counts) = counting_sink().await?;
    let fine_inbox = format!("http://{fine}/inbox");
    // A webhook whose port is closed.
    let config = dir.join("coar-notify.toml");
    std::fs::write(
        &config,
        format!(
            "[[pipeline]]\npatterns = [\"*\"]\nhandler = \"webhook\"\nurl = \"http://127.0.0.1:{}/hook\"\n",
            free_port()?
        ),
    )?;
    let database_url = format!("sqlite://{}?mode=rwc", dir.join("coar.db").display());
    let config_path = config.display().to_string();
    let (proc, addr) = serve(
        bin,
        &dir,
        &database_url,
        &[
            ("COAR_CONFIG", config_path.as_str()),
            ("COAR_TRUST", "quarantine"),
            ("COAR_WORKERS", "2"),
            ("COAR_ALLOW_PRIVATE_TARGETS", "true"),
            ("COAR_RETRY_BASE", "100ms"),
            ("COAR_MAX_ATTEMPTS", "3"),
            ("COAR_SEND_TIMEOUT", "5s"),
        ],
    )
    .await?;
    let template: Value = serde_json::from_slice(&std::fs::read(
        root.join("fixtures/spec/request-review.json"),
    )?)?;

    // 1. The absurd Retry-After, then a delivery elsewhere.
    let mut keys = Vec::new();
    for (n, inbox) in [&absurd_inbox, &fine_inbox].into_iter().enumerate() {
        let mut doc = template.clone();
        doc["id"] = json!(format!("urn:uuid:00000000-0000-4000-8def-{n:012x}"));
        doc["target"]["inbox"] = json!(inbox);
        let r = post_json(&addr, "/api/outbox", &doc).await?;
        ensure!(r.status == 202, "the outbox answered {}", r.status);
        let v: Value = serde_json::from_slice(&r.body)?;
        keys.push(v["key"].as_i64().context("no key")?);
    }
    within_a_minute("the delivery after the absurd Retry-After", async || {
        Ok((fine_counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .sum::<u32>()
            > 0)
        .then_some(()))
    })
    .await?;
    // The two deliveries are independent and run concurrently: the first may still be in
    // flight when the second lands, so wait for its attempt to finish.
    let held = within_a_minute("the attempt on the absurd target to finish", async || {
        let held = admin_get(&addr, &format!("/api/notifications/{}", keys[0])).await?;
        Ok((held["record"]["state"] != "processing").then_some(held))
    })
    .await?;
    let next = held["record"]["next_attempt_at"]
        .as_str()
        .or(held["next_attempt_at"].as_str())
        .unwrap_or_default()
        .to_owned();
    ensure!(
        held.to_string().contains("retry_scheduled"),
        "the target that said 10000000000000 s is not retried later: {held}"
    );
    healthy(&addr)
        .await
        .context("after the absurd Retry-After")?;

    // 2. A forged origin, then the real service registered with its range.
    let mut forged = template.clone();
    forged["id"] = json!("urn:uuid:00000000-0000-4000-8def-0000000000f0");
    let origin = forged["origin"]["id"]
        .as_str()
        .context("origin")?
        .to_owned();
    let r = request(
        &addr,
        "POST",
        "/inbox",
        &[("Content-Type", "application/ld+json")],
        &serde_json::to_vec(&forged)?,
    )
    .await?;
    ensure!(r.status == 201, "the forged notification got {}", r.status);
    let real = json!({"name": "Real", "id": origin, "cidrs": ["192.0.2.0/24"]});
    let r = post_json(&addr, "/api/services", &real).await?;
    ensure!(r.status == 201, "registering answered {}", r.status);
    let registered: Value = serde_json::from_slice(&r.body)?;
    ensure!(
        registered["quarantine"] == json!({"released": 0, "kept": 1}),
        "registering with a range released what came from outside it: {registered}"
    );

    // 3. A registered sender (any address) whose notification meets a webhook that is down.
    let sender_id = "https://sender.example/";
    let r = post_json(
        &addr,
        "/api/services",
        &json!({"name": "Sender", "id": sender_id}),
    )
    .await?;
    ensure!(
        r.status == 201,
        "registering the sender answered {}",
        r.status
    );
    let mut doc = template.clone();
    doc["id"] = json!("urn:uuid:00000000-0000-4000-8def-0000000000f1");
    doc["origin"] = json!({"id": sender_id, "inbox": sender_inbox, "type": "Service"});
    let r = request(
        &addr,
        "POST",
        "/inbox",
        &[("Content-Type", "application/ld+json")],
        &serde_json::to_vec(&doc)?,
    )
    .await?;
    ensure!(
        r.status == 201,
        "the sender's notification got {}",
        r.status
    );
    within_a_minute("the notification to go dead on the webhook", async || {
        let dead = admin_get(&addr, "/api/notifications?direction=inbound&state=dead").await?;
        Ok((dead["items"].as_array().is_some_and(|i| !i.is_empty())).then_some(()))
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let told = heard.lock().unwrap_or_else(|e| e.into_inner()).len();
    ensure!(
        told == 0,
        "the sender was told about our webhook: {told} message(s)"
    );
    healthy(&addr).await?;
    drop(proc);
    Ok(format!(
        "a Retry-After of 10000000000000 s held one delivery (next attempt {next}) and not the next; \
         a forged origin stayed quarantined when the real service was registered with its range; \
         a notification dead on a down webhook, its sender told nothing"
    ))
}
