//! `serve`, `worker` and `migrate`: the server, the workers alone, the migrations.

use coar_server::config::{Config, LogFormat};

use crate::runtime;

/// Logs to stderr, as text or JSON lines; `RUST_LOG` filters.
pub(crate) fn init_logging(format: LogFormat) {
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

/// `serve`: the inbox and the workers, until SIGINT or SIGTERM.
pub(crate) fn serve(config: Config) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.bind).await?;
        let base = config.base_url.clone();
        let pipeline = coar_server::pipeline::builtin::from_specs(&config.pipeline).map_err(anyhow::Error::msg)?;
        let app = coar_server::app_with(config, pipeline).await?;
        if app.config().admin_token.is_none() {
            tracing::info!("no admin token configured: the admin API is disabled");
        }
        tracing::info!(inbox = %app.inbox_url(), database = %redact(&app.config().database_url), "coar-notify serving at {base}");
        coar_server::serve(listener, app, shutdown_signal()).await?;
        tracing::info!("stopped");
        Ok(())
    })
}

/// The database URL without its password.
pub(crate) fn redact(url: &str) -> String {
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

/// `worker`: the workers alone, for deployments that scale them apart from the web.
pub(crate) fn worker(config: Config) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        let count = config.workers.max(1);
        let pipeline = coar_server::pipeline::builtin::from_specs(&config.pipeline)
            .map_err(anyhow::Error::msg)?;
        let core = std::sync::Arc::new(coar_server::Core::open(config, pipeline).await?);
        tracing::info!(count, database = %redact(&core.config().database_url), "workers running");
        coar_server::work(core, count, shutdown_signal()).await;
        tracing::info!("workers stopped");
        Ok(())
    })
}

/// `migrate`: applies the migrations and exits.
pub(crate) fn migrate(config: Config) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        let store = coar_store::Store::open(&config.database_url).await?;
        store.migrate().await?;
        store.close().await?;
        println!("migrated {}", redact(&config.database_url));
        Ok(())
    })
}
