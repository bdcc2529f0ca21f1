//! `send`, `discover` and `inbox`: commands that talk to other servers through coar-client.
//! Exit codes: 0 delivered, 1 refused by the peer, 2 usage, 3 unreachable.

use std::{path::PathBuf, process::ExitCode};

use crate::{runtime, usage};

#[derive(clap::Args, Clone, Default)]
pub(crate) struct NetArgs {
    /// Allow loopback, private and link-local targets (COAR_ALLOW_PRIVATE_TARGETS=true).
    #[arg(long)]
    allow_private_targets: bool,
    /// Request timeout: `500ms`, `10s`, `1m`, or plain seconds.
    #[arg(long, default_value = "10s", value_parser = timeout)]
    timeout: std::time::Duration,
}

/// A non-zero duration in the forms the configuration takes.
fn timeout(s: &str) -> Result<std::time::Duration, String> {
    coar_server::config::parse_duration(s)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{s:?} is not a duration such as 500ms, 10s or 1m"))
}

#[derive(clap::Args)]
pub(crate) struct SendArgs {
    /// A notification file (JSON-LD); omit it to build one with --pattern.
    file: Option<PathBuf>,
    /// Where to send: an inbox, or a resource whose inbox is discovered. Default: the
    /// target's inbox.
    #[arg(long)]
    to: Option<String>,
    /// Build a notification of any 1.0.1 pattern from its template (the dashboard's compose
    /// fields): request-review, request-endorsement, announce-review, announce-endorsement,
    /// announce-relationship, announce-service-result, accept, reject, tentative-accept,
    /// tentative-reject, undo-offer, unprocessable.
    #[arg(long)]
    pattern: Option<String>,
    /// A received Offer (JSON-LD file) this answers: a reply takes its target, inReplyTo and
    /// object from it (acknowledgements and Undo embed it).
    #[arg(long)]
    reply_to: Option<PathBuf>,
    /// A template field, NAME=VALUE (repeatable), e.g. summary="Looks good" or
    /// `relationship=http://purl.org/vocab/frbr/core#supplement`; an unknown NAME lists the
    /// pattern's fields.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,
    /// summary.
    #[arg(long)]
    summary: Option<String>,
    /// origin.id: this system's HTTP URI.
    #[arg(long)]
    origin: Option<String>,
    /// origin.inbox: this system's inbox, for replies.
    #[arg(long)]
    origin_inbox: Option<String>,
    /// target.id: the receiving system's HTTP URI.
    #[arg(long)]
    target: Option<String>,
    /// target.inbox (default: discovered from --to or --target).
    #[arg(long)]
    target_inbox: Option<String>,
    /// actor.id.
    #[arg(long)]
    actor: Option<String>,
    /// actor.type: Application, Group, Organization, Person or Service.
    #[arg(long, default_value = "Service")]
    actor_type: String,
    /// actor.name.
    #[arg(long)]
    actor_name: Option<String>,
    /// object.id: the landing page (requests) or the review/endorsement/result (announces).
    #[arg(long)]
    object: Option<String>,
    /// object's ietf:cite-as.
    #[arg(long)]
    cite_as: Option<String>,
    /// The content file (ietf:item) of a request's landing page.
    #[arg(long)]
    item: Option<String>,
    /// The content file's media type.
    #[arg(long, default_value = "application/pdf")]
    item_media_type: String,
    /// context.id: the resource an announcement is about.
    #[arg(long)]
    context: Option<String>,
    /// inReplyTo. A reply (acknowledgement or Undo) without --reply-to embeds the Offer of
    /// that id from --database-url.
    #[arg(long)]
    in_reply_to: Option<String>,
    /// This installation's database, where a reply finds the Offer it answers (by
    /// --in-reply-to) when --reply-to is not given. Default: ./coar-notify.db, when it exists.
    #[arg(long, env = "COAR_DATABASE_URL")]
    database_url: Option<String>,
    /// Sign the POST (HTTP Message Signatures, RFC 9421) with this private key: a PKCS#8 PEM
    /// file, Ed25519 or RSA (then RSA-PSS-SHA512).
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// The signature's keyid, as the receiver knows the key [default: the key's RFC 7638
    /// thumbprint].
    #[arg(long, requires = "key")]
    key_id: Option<String>,
    #[command(flatten)]
    net: NetArgs,
}

/// Exit codes of the network commands: 0 delivered, 1 refused by the peer, 2 usage, 3
/// unreachable.
fn exit_for(err: &coar_client::ClientError) -> ExitCode {
    use coar_client::ClientError as E;
    ExitCode::from(match err {
        E::Invalid(_) | E::BadUrl(_) | E::Signing(_) => 2,
        E::Status(_) | E::BadResponse { .. } | E::TooLarge(_) => 1,
        E::Unreachable(_) | E::Forbidden(_) | E::Redirect(_) | E::NoInbox(_) => 3,
    })
}

fn client(net: &NetArgs) -> Result<coar_client::Client, coar_client::ClientError> {
    signing_client(net, None)
}

/// A client that signs its POSTs with `signing`, if given.
fn signing_client(
    net: &NetArgs,
    signing: Option<std::sync::Arc<coar_ldn::signature::SigningKey>>,
) -> Result<coar_client::Client, coar_client::ClientError> {
    let env = coar_client::ClientConfig::from_env();
    coar_client::Client::new(
        coar_client::ClientConfig {
            allow_private: net.allow_private_targets || env.allow_private,
            timeout: net.timeout,
            signing,
            ..env
        },
        coar_server::contexts(),
    )
}

/// The private key of `--key`, under `--key-id` or its thumbprint.
fn signing_key(
    file: &std::path::Path,
    key_id: Option<&str>,
) -> Result<std::sync::Arc<coar_ldn::signature::SigningKey>, String> {
    use coar_ldn::signature::SigningKey;
    let pem =
        std::fs::read_to_string(file).map_err(|e| format!("--key {}: {e}", file.display()))?;
    let key =
        SigningKey::from_pem("", &pem).map_err(|e| format!("--key {}: {e}", file.display()))?;
    let key = match key_id {
        Some(id) => key.with_key_id(id),
        None => key.named_by_thumbprint(),
    };
    Ok(std::sync::Arc::new(key))
}

/// A notification of `--pattern` from coar-model's template of it: the flags and `--set`
/// values name its fields; a reply takes what it can from `--reply-to`; `origin` and
/// `actor` come from `--origin` and `--actor`. Invalid ones are refused with every problem.
fn build(args: &SendArgs) -> Result<serde_json::Value, String> {
    use coar_model::{Notification, Pattern, template};
    let slug = args.pattern.as_deref().ok_or("give a FILE or --pattern")?;
    let pattern = Pattern::from_slug(slug)
        .filter(|p| !p.is_legacy())
        .ok_or_else(|| format!("unknown pattern {slug:?}"))?;
    let origin_id = args
        .origin
        .clone()
        .ok_or_else(|| format!("--pattern {} needs --origin", pattern.slug()))?;
    let offer = match &args.reply_to {
        Some(file) => Some(
            std::fs::read(file)
                .map_err(|e| e.to_string())
                .and_then(|b| Notification::from_slice(&b).map_err(|e| e.to_string()))
                .map_err(|e| format!("--reply-to {}: {e}", file.display()))?,
        ),
        None => None,
    };
    let fields = template::fields(pattern);
    let mut values: Vec<(String, String)> = match &offer {
        Some(o) => template::reply_values(pattern, o)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        None => fields
            .iter()
            .map(|f| (f.name.to_owned(), f.default.to_owned()))
            .collect(),
    };
    let mut give = |name: &str, value: &str| {
        values.retain(|(k, _)| k != name);
        values.push((name.to_owned(), value.to_owned()));
    };
    for (name, flag) in [
        ("target_id", &args.target),
        ("target_inbox", &args.target_inbox),
        ("object_id", &args.object),
        ("object_cite_as", &args.cite_as),
        ("item_id", &args.item),
        ("context_id", &args.context),
        ("in_reply_to", &args.in_reply_to),
        ("summary", &args.summary),
    ] {
        if let Some(v) = flag {
            give(name, v);
        }
    }
    if fields.iter().any(|f| f.name == "item_media_type") {
        give("item_media_type", &args.item_media_type);
    }
    for pair in &args.set {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("--set {pair:?}: expected NAME=VALUE"))?;
        if !fields.iter().any(|f| f.name == name) {
            let names: Vec<&str> = fields.iter().map(|f| f.name).collect();
            return Err(format!(
                "--set {name}: {} has the fields {}",
                pattern.slug(),
                names.join(", ")
            ));
        }
        give(name, value);
    }
    let mut doc = template::compose(
        pattern,
        |name| {
            values
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        },
        offer.as_ref(),
    );
    let mut origin = serde_json::json!({"id": origin_id, "type": "Service"});
    if let Some(inbox) = &args.origin_inbox {
        origin["inbox"] = serde_json::json!(inbox);
    }
    if let Some(actor) = &args.actor {
        if !coar_model::vocab::is_actor_type(&args.actor_type) {
            return Err(format!(
                "--actor-type {:?} is not Application, Group, Organization, Person or Service",
                args.actor_type
            ));
        }
        let mut a = serde_json::json!({"id": actor, "type": args.actor_type});
        if let Some(name) = &args.actor_name {
            a["name"] = serde_json::json!(name);
        }
        doc["actor"] = a;
    }
    coar_model::complete_outbound(&mut doc, &origin).map_err(|e| e.to_string())?;
    Ok(doc)
}

/// A reply built without `--reply-to` gets the whole Offer it answers (a 1.0.1 reply's
/// `object`) from this installation's database, as the outbox does. Nothing happens when
/// it needs none, or there is no database to look in: validation then names the rule.
async fn embed_stored_offer(doc: &mut serde_json::Value, url: Option<&str>) -> Result<(), String> {
    if coar_model::offer_wanted(doc).is_none() {
        return Ok(());
    }
    const DEFAULT: &str = "coar-notify.db";
    let url = match url {
        Some(url) => url.to_owned(),
        None if std::path::Path::new(DEFAULT).is_file() => format!("sqlite://{DEFAULT}"),
        None => return Ok(()),
    };
    let mut config = coar_store::StoreConfig::new(&url);
    config.migrate = false;
    let store = coar_store::Store::open_with(config)
        .await
        .map_err(|e| format!("--database-url: {e}"))?;
    coar_server::outbox::embed_stored_offer(&store, doc)
        .await
        .map_err(|e| format!("--database-url: {e}"))
}

/// A notification built from flags, once its target inbox is known: refused with every
/// problem when invalid.
fn checked(doc: serde_json::Value) -> Result<coar_model::Notification, String> {
    let n = coar_model::Notification::from_value(doc).map_err(|e| e.to_string())?;
    let report = n.validate();
    if !report.is_valid() {
        return Err(format!(
            "the notification built from --pattern is invalid:\n{report}"
        ));
    }
    Ok(n)
}

/// `send`: a file, or a notification built from flags.
pub(crate) fn send(args: SendArgs) -> ExitCode {
    let Ok(rt) = runtime() else {
        return ExitCode::from(3);
    };
    rt.block_on(async move {
        let signing = match &args.key {
            Some(file) => match signing_key(file, args.key_id.as_deref()) {
                Ok(key) => Some(key),
                Err(e) => return usage(e),
            },
            None => None,
        };
        let client = match signing_client(&args.net, signing) {
            Ok(c) => c,
            Err(e) => return usage(e),
        };
        let notification = match &args.file {
            Some(file) => match std::fs::read(file)
                .map_err(|e| e.to_string())
                .and_then(|b| coar_model::Notification::from_slice(&b).map_err(|e| e.to_string()))
            {
                Ok(n) => n,
                Err(e) => return usage(format!("{}: {e}", file.display())),
            },
            None => {
                let mut doc = match build(&args) {
                    Ok(doc) => doc,
                    Err(e) => return usage(e),
                };
                // Built without a target inbox: find it, from --to or from the target's id.
                if doc.pointer("/target/inbox").is_none() {
                    let target_id = doc.pointer("/target/id").and_then(|v| v.as_str());
                    let Some(from) = args.to.clone().or(target_id.map(str::to_owned)) else {
                        return usage("give --to or --target-inbox");
                    };
                    match client.discover(&from).await {
                        Ok(inbox) => doc["target"]["inbox"] = serde_json::json!(inbox.as_str()),
                        Err(e) => {
                            eprintln!("coar-notify: {e}");
                            return exit_for(&e);
                        }
                    }
                }
                if let Err(e) = embed_stored_offer(&mut doc, args.database_url.as_deref()).await {
                    return usage(e);
                }
                match checked(doc) {
                    Ok(n) => n,
                    Err(e) => return usage(e),
                }
            }
        };
        let destination = match (&args.to, notification.target().and_then(|t| t.inbox())) {
            (Some(to), _) => match client.discover(to).await {
                Ok(inbox) => inbox.to_string(),
                // Not a resource that advertises an inbox: take it as the inbox itself.
                Err(coar_client::ClientError::NoInbox(_)) => to.clone(),
                Err(e) => {
                    eprintln!("coar-notify: {e}");
                    return exit_for(&e);
                }
            },
            (None, Some(inbox)) => inbox.to_owned(),
            (None, None) => {
                return usage("give --to URL, or a notification whose target has an inbox");
            }
        };
        match client.send(&notification, &destination).await {
            Ok(receipt) => {
                println!(
                    "delivered: {} {}",
                    receipt.status,
                    receipt
                        .location
                        .as_deref()
                        .unwrap_or(receipt.inbox.as_str())
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("coar-notify: {e}");
                exit_for(&e)
            }
        }
    })
}

/// Runs one client call and prints its lines: the shape of `discover` and `inbox`.
fn print_lines<F>(net: &NetArgs, call: F) -> ExitCode
where
    F: AsyncFnOnce(coar_client::Client) -> Result<Vec<String>, coar_client::ClientError>,
{
    let Ok(rt) = runtime() else {
        return ExitCode::from(3);
    };
    rt.block_on(async {
        let client = match client(net) {
            Ok(c) => c,
            Err(e) => return usage(e),
        };
        match call(client).await {
            Ok(lines) => {
                for line in lines {
                    println!("{line}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("coar-notify: {e}");
                exit_for(&e)
            }
        }
    })
}

/// `discover`: a resource's inbox.
pub(crate) fn discover(url: &str, net: &NetArgs) -> ExitCode {
    print_lines(net, async |client| {
        client
            .discover(url)
            .await
            .map(|inbox| vec![inbox.to_string()])
    })
}

/// `inbox`: the notifications a remote inbox lists.
pub(crate) fn inbox(url: &str, net: &NetArgs) -> ExitCode {
    print_lines(net, async |client| client.inbox_listing(url).await)
}
