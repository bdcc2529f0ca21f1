//! What verifying senders' HTTP Message Signatures costs: ingest of signed notifications as
//! a ratio of unsigned ones, on one `coar-notify serve` (SQLite, ingest only), in alternating
//! rounds. Both kinds are built before each round (signing is the sender's work, not the
//! server's) and are attributed to one registered service: the unsigned ones by its address
//! range, the signed ones by its key (policy `signature-or-range-or-token`), so that the two
//! differ only by the verification.

use std::{path::Path, sync::Arc, time::Duration};

use anyhow::{Context, Result, bail};
use coar_ldn::signature::{SigningKey, content_digest, jwk_set, sign_request};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use super::{ADMIN, Load, load_prepared, runs};

/// Rounds of each kind, alternating (unsigned first).
const ROUNDS: usize = 2;

/// The unsigned and the signed rounds, each kind summed over its rounds.
pub(super) struct SignedCost {
    pub(super) unsigned: Load,
    pub(super) signed: Load,
}

impl SignedCost {
    /// Signed notifications a second as a ratio of unsigned ones.
    pub(super) fn ratio(&self) -> f64 {
        self.signed.rate() / self.unsigned.rate().max(f64::MIN_POSITIVE)
    }

    pub(super) fn json(&self) -> Value {
        json!({"unsigned": self.unsigned.json(), "signed": self.signed.json(), "ratio": self.ratio()})
    }
}

/// Runs the rounds; `expected` (notifications a second, from the ingest-only run) sizes the
/// requests built for each.
pub(super) async fn signed_cost(
    bin: &Path,
    dir: &Path,
    template: &str,
    seconds: Duration,
    expected: f64,
) -> Result<SignedCost> {
    let server = runs::coar_notify(bin, dir, "sqlite://coar-notify.db", 0, &[]).await?;
    let description = runs::get_json(&server.addr, "/").await?;
    let inbox = description["inbox"]
        .as_str()
        .context("the service description names no inbox")?
        .to_owned();
    let origin = serde_json::from_str::<Value>(template)?["origin"]["id"]
        .as_str()
        .context("the template has no origin")?
        .to_owned();
    let key = SigningKey::ed25519_from_seed("bench-sender", &[9; 32])
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let service = json!({
        "name": "Bench sender",
        "id": origin,
        "signature_policy": "signature-or-range-or-token",
        "cidrs": ["127.0.0.0/8"],
        "keys": jwk_set([&key.verifying_key()]),
    });
    let status = post_json(&server.addr, "/api/services", &service).await?;
    if status != 201 {
        bail!("registering the bench's sender answered {status}");
    }
    // Half again what the ingest-only run took, so that a round rarely runs out.
    let count = ((expected * seconds.as_secs_f64() * 1.5) as usize).max(1000);
    let mut unsigned = Vec::new();
    let mut signed = Vec::new();
    for round in 0..ROUNDS * 2 {
        let is_signed = round % 2 == 1;
        let requests = Arc::new(build(
            template,
            &server.addr,
            &inbox,
            round,
            count,
            is_signed.then_some(&key),
        )?);
        let load = load_prepared(&server.addr, requests, seconds).await?;
        if is_signed {
            &mut signed
        } else {
            &mut unsigned
        }
        .push(load);
    }
    drop(server);
    Ok(SignedCost {
        unsigned: sum(&unsigned),
        signed: sum(&signed),
    })
}

/// `count` whole requests of unique notifications, signed by `key` when given.
fn build(
    template: &str,
    addr: &str,
    inbox: &str,
    round: usize,
    count: usize,
    key: Option<&SigningKey>,
) -> Result<Vec<Vec<u8>>> {
    let created = chrono_now();
    (0..count)
        .map(|i| {
            let body = template.replace("BENCH-ID", &format!("{round:x}{i:011x}"));
            let mut head = format!(
                "POST /inbox HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/ld+json\r\nContent-Length: {}\r\n",
                body.len()
            );
            if let Some(key) = key {
                let digest = content_digest(body.as_bytes());
                let mut headers = http::HeaderMap::new();
                headers.insert("content-type", "application/ld+json".parse()?);
                headers.insert("content-digest", digest.parse()?);
                let req = coar_ldn::signature::Request {
                    method: "POST",
                    target_uri: inbox,
                    headers: &headers,
                };
                let (input, signature) =
                    sign_request(key, &req, "coar", created, Some(created + 300))
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                head.push_str(&format!(
                    "Content-Digest: {digest}\r\nSignature-Input: {input}\r\nSignature: {signature}\r\n"
                ));
            }
            head.push_str("\r\n");
            head.push_str(&body);
            Ok(head.into_bytes())
        })
        .collect()
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The rounds of one kind as one load: counts and time added, the worst percentiles.
fn sum(rounds: &[Load]) -> Load {
    let mut total = Load {
        requests: 0,
        created: 0,
        errors: 0,
        seconds: 0.0,
        p50_ms: 0.0,
        p99_ms: 0.0,
        p999_ms: 0.0,
    };
    for r in rounds {
        total.requests += r.requests;
        total.created += r.created;
        total.errors += r.errors;
        total.seconds += r.seconds;
        total.p50_ms = total.p50_ms.max(r.p50_ms);
        total.p99_ms = total.p99_ms.max(r.p99_ms);
        total.p999_ms = total.p999_ms.max(r.p999_ms);
    }
    total
}

/// POSTs JSON with the admin token; the status.
async fn post_json(addr: &str, path: &str, body: &Value) -> Result<u16> {
    let body = body.to_string();
    let mut stream = TcpStream::connect(addr).await?;
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {ADMIN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    String::from_utf8_lossy(&raw)
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no status")
}
