//! `keys`: the keys this server signs what it sends with (HTTP Message Signatures), kept in
//! the database and shared by every process on it.

use std::{path::PathBuf, process::ExitCode};

use clap::Subcommand;
use coar_server::config::{Config, Layer};

use crate::{runtime, with_config};

#[derive(Subcommand)]
pub(crate) enum KeysCommand {
    /// List the keys: the one in use, and the retired ones (published for 7 days after).
    List {
        #[command(flatten)]
        settings: Layer,
    },
    /// Put a new key in use: a fresh Ed25519 key, or the PKCS#8 PEM file given (Ed25519 or
    /// RSA). The old key stays published at /keys for 7 days; restart the servers and
    /// workers to sign with the new one.
    Rotate {
        #[command(flatten)]
        settings: Layer,
        /// The new key (PKCS#8 PEM); default: a fresh Ed25519 key.
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
    },
}

pub(crate) fn run(file: Option<PathBuf>, action: KeysCommand) -> ExitCode {
    match action {
        KeysCommand::List { settings } => with_config(file, settings, list),
        KeysCommand::Rotate { settings, key } => {
            with_config(file, settings, |c| rotate(c, key.as_deref()))
        }
    }
}

fn list(config: Config) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        let store = coar_store::Store::open(&config.database_url).await?;
        for k in store.signing_keys().await? {
            let state = match k.retired_at {
                None => "in use".to_owned(),
                Some(at) => format!("retired {}", at.format("%Y-%m-%d %H:%M UTC")),
            };
            println!("{}  {}  {state}", k.kid, k.alg);
        }
        store.close().await?;
        Ok(())
    })
}

fn rotate(config: Config, key: Option<&std::path::Path>) -> anyhow::Result<()> {
    use coar_ldn::signature::SigningKey;
    let new = match key {
        None => coar_server::new_signing_key().map_err(anyhow::Error::msg)?,
        Some(file) => {
            let pem = std::fs::read_to_string(file)?;
            let der = coar_ldn::signature::pem_pkcs8(&pem)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            // What is stored is what was read, and it is a key.
            let key = SigningKey::from_pkcs8("", &der)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            coar_store::NewSigningKey {
                kid: key.verifying_key().thumbprint(),
                alg: key.algorithm().name().to_owned(),
                pkcs8: der,
            }
        }
    };
    runtime()?.block_on(async move {
        let store = coar_store::Store::open(&config.database_url).await?;
        let k = store.rotate_signing_key(new).await?;
        store.close().await?;
        println!("{}  {}  in use", k.kid, k.alg);
        Ok(())
    })
}
