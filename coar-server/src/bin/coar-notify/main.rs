//! `coar-notify`: the COAR Notify server and its command-line tools. This file only
//! dispatches; each group of commands has its module:
//!
//! - [`run`]: `serve`, `worker`, `migrate`, on the settings of [`coar_server::config`];
//! - [`services`]: the registry of trusted services;
//! - [`keys`]: the keys this server signs with;
//! - [`net`]: `send`, `discover`, `inbox`, which talk to other servers;
//! - [`offline`]: `validate`, `rdf`, which read files;
//! - [`transfer`]: `backup`, `export`, `import`, which copy and move an installation.

mod keys;
mod net;
mod offline;
mod run;
mod services;
mod transfer;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use coar_server::config::{Config, Layer};

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

// Parsed once per run: the settings each variant flattens in are its size, and boxing them
// would hide them from clap.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub(crate) enum Command {
    /// Run the inbox (creates and migrates the database first).
    Serve(Layer),
    /// Run background workers only (processing and delivery), without the HTTP server.
    Worker(Layer),
    /// Apply database migrations and exit.
    Migrate(Layer),
    /// Copy the SQLite database to FILE while the server runs (consistent; FILE must not
    /// exist).
    Backup {
        /// Where the copy goes.
        file: PathBuf,
        #[command(flatten)]
        settings: Layer,
    },
    /// Write every notification (raw bodies, states, attempts), link and service as JSON
    /// Lines, to move the installation to another database with `import`.
    Export {
        /// The file to write (it must not exist); default standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
        #[command(flatten)]
        settings: Layer,
    },
    /// Read an `export` into an empty database (of any kind), all of it or nothing.
    Import {
        /// The export, or - for standard input.
        file: PathBuf,
        #[command(flatten)]
        settings: Layer,
    },
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
    Send(net::SendArgs),
    /// Find the LDN inbox of a resource.
    Discover {
        /// The resource URL.
        url: String,
        #[command(flatten)]
        net: net::NetArgs,
    },
    /// List the notifications in a remote inbox.
    Inbox {
        /// The inbox URL.
        url: String,
        #[command(flatten)]
        net: net::NetArgs,
    },
    /// Manage the registry of trusted services.
    Services {
        #[command(subcommand)]
        action: services::ServicesCommand,
    },
    /// The keys this server signs what it sends with: list, rotate.
    Keys {
        #[command(subcommand)]
        action: keys::KeysCommand,
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(layer) => with_config(cli.config, layer, run::serve),
        Command::Migrate(layer) => with_config(cli.config, layer, run::migrate),
        Command::Worker(layer) => with_config(cli.config, layer, run::worker),
        Command::Backup { file, settings } => {
            with_config(cli.config, settings, |c| transfer::backup(c, &file))
        }
        Command::Export { output, settings } => with_config(cli.config, settings, |c| {
            transfer::export(c, output.as_deref())
        }),
        Command::Import { file, settings } => {
            with_config(cli.config, settings, |c| transfer::import(c, &file))
        }
        Command::Validate { files, json } => offline::validate(&files, json),
        Command::Rdf { file, format } => offline::rdf(&file, &format),
        Command::Services { action } => services::run(cli.config, action),
        Command::Keys { action } => keys::run(cli.config, action),
        Command::Send(args) => net::send(args),
        Command::Discover { url, net } => net::discover(&url, &net),
        Command::Inbox { url, net } => net::inbox(&url, &net),
    }
}

/// Resolves the settings (flags and `COAR_*` variables, already merged by clap; then the
/// file; then defaults), starts logging and runs `run`. Exit 2 on a bad setting.
pub(crate) fn with_config(
    file: Option<PathBuf>,
    flags: Layer,
    run: impl FnOnce(Config) -> anyhow::Result<()>,
) -> ExitCode {
    let file = match file.map(|f| Layer::from_file(&f)).transpose() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("coar-notify: {e}");
            return ExitCode::from(2);
        }
    };
    let config = match Config::resolve(flags, Layer::default(), file) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("coar-notify: {e}");
            return ExitCode::from(2);
        }
    };
    run::init_logging(config.log_format);
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("coar-notify: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The multi-threaded runtime every command that does I/O runs on.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// A usage error: the message, exit 2.
pub(crate) fn usage(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("coar-notify: {message}");
    ExitCode::from(2)
}
