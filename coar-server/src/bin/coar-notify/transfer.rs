//! `backup`, `export` and `import`: copying an installation, and moving it from one database
//! to another (SQLite to PostgreSQL or MariaDB, and back) without changing a byte
//! ([`coar_store::Store::export`], [`coar_store::Store::import`]).

use std::{
    io::{BufReader, BufWriter, Write},
    path::Path,
};

use anyhow::Context;
use coar_server::config::Config;

use crate::{run::redact, runtime};

/// `backup FILE`: a consistent copy of the SQLite database, taken while the server runs.
pub(crate) fn backup(config: Config, file: &Path) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        let store = coar_store::Store::open(&config.database_url).await?;
        store.backup(file).await?;
        store.close().await?;
        println!(
            "backed up {} to {}",
            redact(&config.database_url),
            file.display()
        );
        Ok(())
    })
}

/// `export [--output FILE]`: every row as JSON Lines, to the file or standard output; the
/// counts go to standard error.
pub(crate) fn export(config: Config, output: Option<&Path>) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        let store = coar_store::Store::open(&config.database_url).await?;
        let counts = match output {
            Some(path) => {
                let file = std::fs::File::create_new(path)
                    .with_context(|| format!("{} (it must not exist)", path.display()))?;
                let mut out = BufWriter::new(file);
                let counts = store.export(&mut out).await?;
                out.into_inner()
                    .map_err(|e| e.into_error())?
                    .sync_all()
                    .with_context(|| path.display().to_string())?;
                counts
            }
            None => {
                let mut out = BufWriter::new(std::io::stdout().lock());
                let counts = store.export(&mut out).await?;
                out.flush()?;
                counts
            }
        };
        store.close().await?;
        eprintln!(
            "exported {}: {}",
            redact(&config.database_url),
            rows(&counts)
        );
        Ok(())
    })
}

/// `import FILE` (`-` for standard input): an export into an empty database, whole or not
/// at all.
pub(crate) fn import(config: Config, file: &Path) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        let store = coar_store::Store::open(&config.database_url).await?;
        let counts = if file == Path::new("-") {
            store
                .import(BufReader::new(std::io::stdin().lock()))
                .await?
        } else {
            let input = std::fs::File::open(file).with_context(|| file.display().to_string())?;
            store.import(BufReader::new(input)).await?
        };
        store.close().await?;
        println!(
            "imported into {}: {}",
            redact(&config.database_url),
            rows(&counts)
        );
        Ok(())
    })
}

/// `2 services, 10 notifications, 14 attempts, 40 links`.
fn rows(counts: &coar_store::TransferCounts) -> String {
    format!(
        "{} services, {} notifications, {} attempts, {} links",
        counts.services, counts.notifications, counts.attempts, counts.links
    )
}
