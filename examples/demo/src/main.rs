//! `futureauth-demo`: the FutureAuth sample app.
//!
//! ```text
//! cargo run -p futureauth-demo        # SQLite file + dev outbox, http://127.0.0.1:3000
//! ```
//!
//! Environment: `PORT` (default 3000), `DATABASE_URL` (default
//! `sqlite://futureauth-demo.db?mode=rwc`), `FUTUREAUTH_SECRET_KEY` and
//! `FUTUREAUTH_API_URL` for real delivery, `RUST_LOG`.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use anyhow::Context;
use futureauth_demo::{build_app, DemoConfig, DemoDelivery};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("futureauth-demo: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let port = match std::env::var("PORT") {
        Ok(p) if !p.trim().is_empty() => p
            .trim()
            .parse::<u16>()
            .with_context(|| format!("PORT must be a port number such as 3000, not {p:?}"))?,
        _ => 3000,
    };
    let cfg = DemoConfig::from_env()?;
    let delivery = match &cfg.delivery {
        DemoDelivery::DevOutbox(_) => {
            "dev outbox (nothing is really sent; codes are printed here)".to_string()
        }
        DemoDelivery::FutureAuthServer => format!("FutureAuth server at {}", cfg.auth.api_url),
    };
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (is the port in use? set PORT)"))?;
    let addr = listener.local_addr()?;
    let demo = build_app(cfg.serve_at(addr)).await?;
    println!(
        "FutureAuth demo: http://{addr} (or http://localhost:{}, where passkeys work too)",
        addr.port()
    );
    println!("  delivery: {delivery}");
    if demo.outbox.is_some() {
        println!("  dev outbox: http://{addr}/dev/outbox");
    }

    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    axum::serve(
        listener,
        demo.router
            .into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .context("server failed")?;
    Ok(())
}
