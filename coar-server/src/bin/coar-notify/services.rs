//! `services`: the registry of trusted services. Registering or enabling one releases the
//! quarantined notifications it vouches for, in one transaction ([`coar_store::Store::release_for`]).

use std::{path::PathBuf, process::ExitCode};

use clap::Subcommand;
use coar_server::config::Layer;

use crate::{runtime, with_config};

// Parsed once per run: the settings each variant flattens in are its size, and boxing them
// would hide them from clap.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub(crate) enum ServicesCommand {
    /// List the registered services.
    List {
        #[command(flatten)]
        settings: Layer,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Register a service.
    Add {
        #[command(flatten)]
        settings: Layer,
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
        /// What its notifications must prove: rules (its ranges and tokens),
        /// signature-or-range-or-token, or signature-required.
        #[arg(long, default_value = "rules")]
        signature_policy: String,
        /// A file with its public keys (a JWK Set, an array of JWKs or one JWK), for its
        /// HTTP Message Signatures.
        #[arg(long = "keys")]
        keys: Option<PathBuf>,
        /// Where it publishes its JWK Set (fetched by the server when a signed request
        /// needs it).
        #[arg(long)]
        key_set_url: Option<String>,
    },
    /// Remove a service (by key or id URI).
    Remove {
        #[command(flatten)]
        settings: Layer,
        /// Its key or id URI.
        service: String,
    },
    /// Trust a service again (by key or id URI).
    Enable {
        #[command(flatten)]
        settings: Layer,
        /// Its key or id URI.
        service: String,
    },
    /// Stop trusting a service (by key or id URI).
    Disable {
        #[command(flatten)]
        settings: Layer,
        /// Its key or id URI.
        service: String,
    },
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

/// Runs a `services` command.
pub(crate) fn run(file: Option<PathBuf>, action: ServicesCommand) -> ExitCode {
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
            let find = async |s: &str| -> anyhow::Result<coar_store::RegisteredService> {
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
                ServicesCommand::Add { name, id, inbox, patterns, outbound_patterns, cidrs, tokens, disabled, signature_policy, keys, key_set_url, .. } => {
                    let keys = match keys {
                        Some(path) => {
                            let text = std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                            let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: not JSON: {e}", path.display()))?;
                            coar_server::signatures::service_keys(&value).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
                        }
                        None => Vec::new(),
                    };
                    let input = ServiceInput {
                        signature_policy: signature_policy.parse().map_err(anyhow::Error::msg)?,
                        keys: Some(keys),
                        key_set_url,
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
