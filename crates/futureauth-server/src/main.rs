//! `futureauth-server`: the delivery service binary and its admin CLI.

use anyhow::Context;
use futureauth_server::cli::{run_admin, Cli, Command, ParseError};
use futureauth_server::store::Store;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = match Cli::try_parse_checked_from(std::env::args_os()) {
        Ok(cli) => cli,
        Err(ParseError::Usage(e)) => e.exit(),
        Err(ParseError::Config(e)) => return Err(e.into()),
    };
    match cli.command {
        None | Some(Command::Serve) => futureauth_server::serve(&cli.config).await?,
        Some(command) => {
            let url = cli.config.database.url();
            let store = Store::connect_with(&url, &cli.config.store_options())
                .await
                .with_context(|| format!("cannot open the database {url} (set DATABASE_URL)"))?;
            let mut out = std::io::stdout();
            run_admin(&command, &store, &mut out).await?;
            store.close().await;
        }
    }
    Ok(())
}
