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
    /// Build a notification: request-review, request-endorsement, announce-review,
    /// announce-endorsement or announce-service-result.
    #[arg(long)]
    pattern: Option<String>,
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
    /// inReplyTo.
    #[arg(long)]
    in_reply_to: Option<String>,
    #[command(flatten)]
    net: NetArgs,
}

/// Exit codes of the network commands: 0 delivered, 1 refused by the peer, 2 usage, 3
/// unreachable.
fn exit_for(err: &coar_client::ClientError) -> ExitCode {
    use coar_client::ClientError as E;
    ExitCode::from(match err {
        E::Invalid(_) | E::BadUrl(_) => 2,
        E::Status(_) | E::BadResponse { .. } | E::TooLarge(_) => 1,
        E::Unreachable(_) | E::Forbidden(_) | E::Redirect(_) | E::NoInbox(_) => 3,
    })
}

fn client(net: &NetArgs) -> Result<coar_client::Client, coar_client::ClientError> {
    let env = coar_client::ClientConfig::from_env();
    coar_client::Client::new(
        coar_client::ClientConfig {
            allow_private: net.allow_private_targets || env.allow_private,
            timeout: net.timeout,
            ..env
        },
        coar_server::contexts(),
    )
}

fn build(args: &SendArgs) -> Result<coar_model::Notification, String> {
    use coar_model::*;
    let pattern = args.pattern.as_deref().ok_or("give a FILE or --pattern")?;
    let pattern =
        Pattern::from_slug(pattern).ok_or_else(|| format!("unknown pattern {pattern:?}"))?;
    let need = |v: &Option<String>, flag: &str| {
        v.clone()
            .ok_or_else(|| format!("--pattern {} needs {flag}", pattern.slug()))
    };
    let origin = Service {
        id: need(&args.origin, "--origin")?,
        inbox: args.origin_inbox.clone(),
        name: None,
    };
    let target = Service {
        id: need(&args.target, "--target")?,
        inbox: args.target_inbox.clone(),
        name: None,
    };
    let object = need(&args.object, "--object")?;
    let actor = match &args.actor {
        Some(id) => {
            let kind = match args.actor_type.as_str() {
                "Application" => ActorType::Application,
                "Group" => ActorType::Group,
                "Organization" => ActorType::Organization,
                "Person" => ActorType::Person,
                "Service" => ActorType::Service,
                other => {
                    return Err(format!(
                        "--actor-type {other:?} is not Application, Group, Organization, Person or Service"
                    ));
                }
            };
            let a = Actor::new(id.clone(), kind);
            Some(match &args.actor_name {
                Some(n) => a.name(n.clone()),
                None => a,
            })
        }
        None => None,
    };
    let with_cite = |r: Resource| match &args.cite_as {
        Some(c) => r.cite_as(c.clone()),
        None => r,
    };
    macro_rules! finish {
        ($builder:expr) => {{
            let mut b = $builder;
            if let Some(a) = actor.clone() {
                b = b.actor(a);
            }
            if let Some(irt) = &args.in_reply_to {
                b = b.in_reply_to(irt.clone());
            }
            b.build().map(Notification::from).map_err(|e| e.to_string())
        }};
    }
    match pattern {
        Pattern::RequestReview | Pattern::RequestEndorsement => {
            let item = need(&args.item, "--item")?;
            let page = with_cite(Resource::landing_page(object))
                .item(Item::new(item, args.item_media_type.clone()));
            if pattern == Pattern::RequestReview {
                finish!(RequestReview::builder(origin, target, page))
            } else {
                finish!(RequestEndorsement::builder(origin, target, page))
            }
        }
        Pattern::AnnounceReview | Pattern::AnnounceEndorsement | Pattern::AnnounceServiceResult => {
            let context = Resource::landing_page(need(&args.context, "--context")?);
            let types: &[&str] = match pattern {
                Pattern::AnnounceReview => &["Page", "sorg:Review"],
                _ => &["Page", "sorg:WebPage"],
            };
            let thing = with_cite(Resource::new(object, types.iter().copied()));
            match pattern {
                Pattern::AnnounceReview => {
                    finish!(AnnounceReview::builder(origin, target, thing, context))
                }
                Pattern::AnnounceEndorsement => {
                    finish!(AnnounceEndorsement::builder(origin, target, thing, context))
                }
                _ => finish!(AnnounceServiceResult::builder(
                    origin, target, thing, context
                )),
            }
        }
        other => Err(format!(
            "--pattern {} cannot be built from flags; write it to a file and send the file",
            other.slug()
        )),
    }
}

/// `send`: a file, or a notification built from flags.
pub(crate) fn send(mut args: SendArgs) -> ExitCode {
    let Ok(rt) = runtime() else {
        return ExitCode::from(3);
    };
    rt.block_on(async move {
        let client = match client(&args.net) {
            Ok(c) => c,
            Err(e) => return usage(e),
        };
        // Without a target inbox, find it: from --to, or from the target's id.
        if args.file.is_none() && args.target_inbox.is_none() {
            let Some(from) = args.to.clone().or_else(|| args.target.clone()) else {
                return usage("give --to or --target-inbox");
            };
            match client.discover(&from).await {
                Ok(inbox) => args.target_inbox = Some(inbox.to_string()),
                Err(e) => {
                    eprintln!("coar-notify: {e}");
                    return exit_for(&e);
                }
            }
        }
        let notification = match &args.file {
            Some(file) => match std::fs::read(file)
                .map_err(|e| e.to_string())
                .and_then(|b| coar_model::Notification::from_slice(&b).map_err(|e| e.to_string()))
            {
                Ok(n) => n,
                Err(e) => return usage(format!("{}: {e}", file.display())),
            },
            None => match build(&args) {
                Ok(n) => n,
                Err(e) => return usage(e),
            },
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
