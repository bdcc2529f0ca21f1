//! `coar-notify`: the COAR Notify server and its command-line tools.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use coar_server::config::{Config, Layer, LogFormat};

/// mimalloc rather than glibc's allocator: requests allocate and free many small values on
/// several threads, where glibc's malloc showed as a fifth of the server's profile.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "coar-notify",
    version,
    about = "COAR Notify over Linked Data Notifications"
)]
struct Cli {
    /// A TOML configuration file (flags and COAR_* variables override it).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Default, Clone)]
struct Settings {
    /// Listening address (COAR_BIND; default 127.0.0.1:8080).
    #[arg(long)]
    bind: Option<String>,
    /// sqlite://FILE, postgres://… or mysql://… (COAR_DATABASE_URL; default sqlite://coar-notify.db).
    #[arg(long)]
    database_url: Option<String>,
    /// Public base URL of ids and Locations (COAR_BASE_URL; default from the bind address).
    #[arg(long)]
    base_url: Option<String>,
    /// Admin API bearer token (COAR_ADMIN_TOKEN).
    #[arg(long)]
    admin_token: Option<String>,
    /// accept | quarantine | reject, for unregistered senders (COAR_TRUST; default quarantine).
    #[arg(long)]
    trust: Option<String>,
    /// Largest notification, e.g. 262144 or 256KiB (COAR_MAX_BODY).
    #[arg(long)]
    max_body: Option<String>,
    /// Whether GET on the inbox is public (COAR_INBOX_PUBLIC; default true).
    #[arg(long)]
    inbox_public: Option<String>,
    /// text | json (COAR_LOG_FORMAT).
    #[arg(long)]
    log_format: Option<String>,
    /// Store activities that name no COAR pattern (COAR_ACCEPT_UNRECOGNISED; default true).
    #[arg(long)]
    accept_unrecognised: Option<String>,
    /// Background workers in `serve` (COAR_WORKERS; default 2).
    #[arg(long)]
    workers: Option<String>,
    /// Attempts before a notification is dead (COAR_MAX_ATTEMPTS; default 8).
    #[arg(long)]
    max_attempts: Option<String>,
    /// First retry delay, e.g. 30s (COAR_RETRY_BASE).
    #[arg(long)]
    retry_base: Option<String>,
    /// Allow sending to loopback and private addresses (COAR_ALLOW_PRIVATE_TARGETS).
    #[arg(long)]
    allow_private_targets: Option<String>,
    /// This service's name (COAR_NAME).
    #[arg(long)]
    service_name: Option<String>,
    /// How long one delivery may take, e.g. 30s (COAR_SEND_TIMEOUT).
    #[arg(long)]
    send_timeout: Option<String>,
    /// How long a worker holds a notification, e.g. 5m (COAR_LEASE).
    #[arg(long)]
    lease: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the inbox (creates and migrates the database first).
    Serve(Settings),
    /// Run background workers only (processing and delivery), without the HTTP server.
    Worker(Settings),
    /// Apply database migrations and exit.
    Migrate(Settings),
    /// Validate notification files; exit 1 if any is invalid.
    Validate {
        /// JSON files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print machine-readable JSON.
        #[arg(long)]
        json: bool,
    },
    /// Send a notification: a file, or one built from flags (--pattern).
    Send(SendArgs),
    /// Find the LDN inbox of a resource.
    Discover {
        /// The resource URL.
        url: String,
        #[command(flatten)]
        net: NetArgs,
    },
    /// List the notifications in a remote inbox.
    Inbox {
        /// The inbox URL.
        url: String,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Manage the registry of trusted services.
    Services {
        #[command(subcommand)]
        action: ServicesCommand,
    },
    /// Print a notification's RDF.
    Rdf {
        /// A JSON-LD file.
        file: PathBuf,
        /// turtle | ntriples | nquads
        #[arg(long, default_value = "turtle")]
        format: String,
    },
}

#[derive(clap::Args, Clone, Default)]
struct NetArgs {
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
struct SendArgs {
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

#[derive(Subcommand)]
enum ServicesCommand {
    /// List the registered services.
    List {
        #[command(flatten)]
        settings: Settings,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Register a service.
    Add {
        #[command(flatten)]
        settings: Settings,
        /// A display name.
        #[arg(long)]
        name: String,
        /// The service's id URI (origin.id of its notifications).
        #[arg(long)]
        id: String,
        /// Its LDN inbox URL.
        #[arg(long)]
        inbox: Option<String>,
        /// A pattern it may send us (repeatable; none: all), e.g. announce-review.
        #[arg(long = "pattern")]
        patterns: Vec<String>,
        /// A pattern we send it (repeatable; none: all).
        #[arg(long = "outbound-pattern")]
        outbound_patterns: Vec<String>,
        /// An address range it sends from (repeatable; none: any), e.g. 192.0.2.0/24.
        #[arg(long = "cidr")]
        cidrs: Vec<String>,
        /// A bearer token it must send (repeatable; none: no token required).
        #[arg(long = "token")]
        tokens: Vec<String>,
        /// Register it disabled.
        #[arg(long)]
        disabled: bool,
    },
    /// Remove a service (by key or id URI).
    Remove {
        #[command(flatten)]
        settings: Settings,
        /// Its key or id URI.
        service: String,
    },
    /// Trust a service again (by key or id URI).
    Enable {
        #[command(flatten)]
        settings: Settings,
        /// Its key or id URI.
        service: String,
    },
    /// Stop trusting a service (by key or id URI).
    Disable {
        #[command(flatten)]
        settings: Settings,
        /// Its key or id URI.
        service: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(settings) => with_config(cli.config, settings, serve),
        Command::Migrate(settings) => with_config(cli.config, settings, migrate),
        Command::Worker(settings) => with_config(cli.config, settings, worker),
        Command::Validate { files, json } => validate(&files, json),
        Command::Rdf { file, format } => rdf(&file, &format),
        Command::Services { action } => services(cli.config, action),
        Command::Send(args) => send(args),
        Command::Discover { url, net } => discover(&url, &net),
        Command::Inbox { url, net } => inbox(&url, &net),
    }
}

fn parse_patterns(slugs: &[String]) -> Result<Vec<coar_model::Pattern>, String> {
    slugs
        .iter()
        .map(|s| {
            coar_model::Pattern::from_slug(s).ok_or_else(|| {
                format!("unknown pattern {s:?} (e.g. request-review, announce-review)")
            })
        })
        .collect()
}

fn services(file: Option<PathBuf>, action: ServicesCommand) -> ExitCode {
    use coar_store::ServiceInput;
    let settings = match &action {
        ServicesCommand::List { settings, .. }
        | ServicesCommand::Add { settings, .. }
        | ServicesCommand::Remove { settings, .. }
        | ServicesCommand::Enable { settings, .. }
        | ServicesCommand::Disable { settings, .. } => settings.clone(),
    };
    if let ServicesCommand::Add {
        patterns,
        outbound_patterns,
        ..
    } = &action
        && let Err(e) = parse_patterns(patterns).and(parse_patterns(outbound_patterns))
    {
        eprintln!("coar-notify: invalid setting --pattern: {e}");
        return ExitCode::from(2);
    }
    with_config(file, settings, move |config| {
        runtime()?.block_on(async move {
            let store = coar_store::Store::open(&config.database_url).await?;
            let find = async |s: &str| -> anyhow::Result<coar_store::Service> {
                let found = match s.parse::<i64>() {
                    Ok(key) => store.service(key).await?,
                    Err(_) => store.service_by_id(s).await?,
                };
                found.ok_or_else(|| anyhow::anyhow!("no service {s:?}"))
            };
            let enable = matches!(action, ServicesCommand::Enable { .. });
            match action {
                ServicesCommand::List { json, .. } => {
                    let all = store.services().await?;
                    if json {
                                                let views: Vec<_> = all.iter().map(coar_server::views::ServiceView::from).collect();
                        println!("{}", serde_json::to_string_pretty(&views)?);
                    } else {
                        for s in all {
                            let state = if s.enabled { "enabled" } else { "disabled" };
                            println!("{}\t{}\t{}\t{}\t{}", s.key, state, s.name, s.id, s.inbox.as_deref().unwrap_or("-"));
                        }
                    }
                }
                ServicesCommand::Add { name, id, inbox, patterns, outbound_patterns, cidrs, tokens, disabled, .. } => {
                    let input = ServiceInput {
                        name,
                        id,
                        inbox,
                        enabled: !disabled,
                        inbound_patterns: parse_patterns(&patterns).map_err(anyhow::Error::msg)?,
                        outbound_patterns: parse_patterns(&outbound_patterns).map_err(anyhow::Error::msg)?,
                        cidrs,
                        tokens: Some(tokens),
                    };
                    let s = store.add_service(&input).await?;
                    let r = store.release_for(&s).await?;
                    println!(
                        "added service {} ({}); {} quarantined notification(s) queued, {} kept (their sender's address or token does not meet its rules)",
                        s.key, s.id, r.released, r.kept
                    );
                }
                ServicesCommand::Remove { service, .. } => {
                    let s = find(&service).await?;
                    store.remove_service(s.key).await?;
                    println!("removed service {} ({})", s.key, s.id);
                }
                ServicesCommand::Enable { service, .. } | ServicesCommand::Disable { service, .. } => {
                    let s = find(&service).await?;
                    let s = store.set_service_enabled(s.key, enable).await?;
                    if enable {
                        let r = store.release_for(&s).await?;
                        println!(
                            "enabled service {} ({}); {} quarantined notification(s) queued, {} kept (their sender's address or token does not meet its rules)",
                            s.key, s.id, r.released, r.kept
                        );
                    } else {
                        println!("disabled service {} ({})", s.key, s.id);
                    }
                }
            }
            store.close().await?;
            Ok(())
        })
    })
}

fn with_config(
    file: Option<PathBuf>,
    settings: Settings,
    run: impl FnOnce(Config) -> anyhow::Result<()>,
) -> ExitCode {
    let flags = Layer {
        bind: settings.bind,
        database_url: settings.database_url,
        base_url: settings.base_url,
        admin_token: settings.admin_token,
        trust: settings.trust,
        max_body: settings.max_body.map(toml::Value::String),
        inbox_public: settings.inbox_public.map(toml::Value::String),
        log_format: settings.log_format,
        accept_unrecognised: settings.accept_unrecognised.map(toml::Value::String),
        workers: settings.workers.map(toml::Value::String),
        max_attempts: settings.max_attempts.map(toml::Value::String),
        retry_base: settings.retry_base,
        allow_private_targets: settings.allow_private_targets.map(toml::Value::String),
        name: settings.service_name,
        send_timeout: settings.send_timeout,
        pipeline: None,
        lease: settings.lease,
        // Settings without a flag: environment or configuration file only.
        ..Layer::default()
    };
    let file = match file.map(|f| Layer::from_file(&f)).transpose() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("coar-notify: {e}");
            return ExitCode::from(2);
        }
    };
    let config = match Config::resolve(flags, Layer::from_env(|k| std::env::var(k).ok()), file) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("coar-notify: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(config.log_format);
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("coar-notify: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn serve(config: Config) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.bind).await?;
        let base = config.base_url.clone();
        let pipeline = coar_server::handlers::pipeline(&config.pipeline).map_err(anyhow::Error::msg)?;
        let app = coar_server::app_with(config, pipeline).await?;
        if app.config.admin_token.is_none() {
            tracing::info!("no admin token configured: the admin API is disabled");
        }
        tracing::info!(inbox = %app.inbox_url(), database = %redact(&app.config.database_url), "coar-notify serving at {base}");
        coar_server::serve(listener, app, shutdown_signal()).await?;
        tracing::info!("stopped");
        Ok(())
    })
}

/// The database URL without its password.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

fn worker(config: Config) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        let count = config.workers.max(1);
        let pipeline =
            coar_server::handlers::pipeline(&config.pipeline).map_err(anyhow::Error::msg)?;
        let app = coar_server::app_with(config, pipeline).await?;
        tracing::info!(count, database = %redact(&app.config.database_url), "workers running");
        coar_server::work(app, count, shutdown_signal()).await;
        tracing::info!("workers stopped");
        Ok(())
    })
}

fn migrate(config: Config) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        let store = coar_store::Store::open(&config.database_url).await?;
        store.migrate().await?;
        store.close().await?;
        println!("migrated {}", redact(&config.database_url));
        Ok(())
    })
}

fn validate(files: &[PathBuf], json: bool) -> ExitCode {
    let mut all_valid = true;
    let mut results = Vec::new();
    for file in files {
        let (pattern, report, error) = match std::fs::read(file) {
            Err(e) => (None, None, Some(e.to_string())),
            Ok(bytes) => match coar_model::Notification::from_slice(&bytes) {
                Err(e) => (None, None, Some(e.to_string())),
                Ok(n) => (n.pattern(), Some(n.validate()), None),
            },
        };
        let valid =
            error.is_none() && pattern.is_some() && report.as_ref().is_some_and(|r| r.is_valid());
        all_valid &= valid;
        if json {
            results.push(serde_json::json!({
                "file": file.display().to_string(),
                "valid": valid,
                "pattern": pattern.map(|p| p.slug()),
                "error": error,
                "problems": report.as_ref().map(|r| &r.problems),
            }));
        } else {
            let name = file.display();
            match (&error, pattern) {
                (Some(e), _) => println!("{name}: not a notification: {e}"),
                (None, Some(p)) => println!(
                    "{name}: {} ({})",
                    if valid { "valid" } else { "INVALID" },
                    p.title()
                ),
                (None, None) => println!("{name}: INVALID (no COAR Notify pattern)"),
            }
            for p in report.iter().flat_map(|r| &r.problems) {
                println!("  {p}");
            }
        }
    }
    if json {
        println!("{}", serde_json::Value::Array(results));
    }
    if all_valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn rdf(file: &PathBuf, format: &str) -> ExitCode {
    let format = match format {
        "turtle" | "ttl" => coar_ldn::RdfFormat::Turtle,
        "ntriples" | "nt" => coar_ldn::RdfFormat::NTriples,
        "nquads" | "nq" => coar_ldn::RdfFormat::NQuads,
        other => {
            eprintln!(
                "coar-notify: invalid setting --format: {other:?} is not turtle, ntriples or nquads"
            );
            return ExitCode::from(2);
        }
    };
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("coar-notify: {}: {e}", file.display());
            return ExitCode::from(2);
        }
    };
    match coar_server::contexts().to_dataset(&text).and_then(|d| {
        d.serialize(format)
            .map_err(|e| coar_ldn::JsonLdError::Invalid(e.to_string()))
    }) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("coar-notify: {}: {e}", file.display());
            ExitCode::FAILURE
        }
    }
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

fn usage(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("coar-notify: {message}");
    ExitCode::from(2)
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

fn send(mut args: SendArgs) -> ExitCode {
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

fn discover(url: &str, net: &NetArgs) -> ExitCode {
    print_lines(net, async |client| {
        client
            .discover(url)
            .await
            .map(|inbox| vec![inbox.to_string()])
    })
}

fn inbox(url: &str, net: &NetArgs) -> ExitCode {
    print_lines(net, async |client| client.inbox_listing(url).await)
}
