//! The server's subcommands: `tickets serve` and `tickets token`.

use std::io::Write;

use anyhow::{bail, Context};
use chrono::Utc;
use domain::Role;

use super::{Cli, TokenArgs};
use crate::auth::{Claims, JwtKeys};
use crate::settings::{Secret, SecretUse, ServeSettings};
use crate::stores::StoreUrls;

/// `tickets serve`: build the application, say where it listens and how to get
/// a token, and run until SIGINT/SIGTERM.
pub(super) async fn serve(
    cli: &Cli,
    settings: &ServeSettings,
    urls: &StoreUrls,
) -> anyhow::Result<()> {
    let secret = cli.secret(SecretUse::Serve(settings.listen))?;
    if secret == Secret::Development {
        tracing::warn!(
            "DEVELOPMENT MODE: no TICKETS_JWT_SECRET is set, tokens are signed with a \
             public well-known secret; anybody who reaches this loopback address can \
             mint a token for it. Set TICKETS_JWT_SECRET (at least 32 bytes) to serve \
             any other address."
        );
    }
    let shutdown = tokio_util::sync::CancellationToken::new();
    crate::app::cancel_on_signal(shutdown.clone());
    let app = crate::app::Application::build(
        settings.clone(),
        urls,
        cli.database_schema.as_deref(),
        &secret,
        shutdown,
    )
    .await?;
    let address = app.address()?;
    // Best effort: a closed standard output (a supervisor that read the first
    // line and went away) must not stop the server.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on http://{address}");
    let _ = writeln!(out, "web client: http://{address}/");
    let _ = writeln!(out, "GraphiQL: http://{address}/graphql");
    if let Some(ops) = app.ops_address()? {
        let _ = writeln!(
            out,
            "health, readiness, metrics: http://{ops}/healthz /readyz /metrics"
        );
    }
    let _ = writeln!(
        out,
        "get a token: tickets token --sub alice --role AGENT --team support \\
         (send it as `Authorization: Bearer <token>`)"
    );
    let _ = out.flush();
    drop(out);
    tracing::info!(%address, "serving");
    app.run_until_stopped().await
}

pub(super) fn print_token(cli: &Cli, args: &TokenArgs) -> anyhow::Result<()> {
    let secret = cli.secret(SecretUse::Mint)?;
    if secret == Secret::Development {
        eprintln!("warning: no TICKETS_JWT_SECRET set; signing with the development secret");
    }
    let ttl = chrono::Duration::from_std(args.ttl).context("lifetime too long")?;
    let claims = Claims {
        sub: args.sub.trim().to_string(),
        exp: (Utc::now() + ttl).timestamp(),
        roles: if args.roles.is_empty() {
            vec![Role::Requester]
        } else {
            args.roles.clone()
        },
        teams: args.teams.clone(),
        given_name: args.given_name.clone(),
        family_name: args.family_name.clone(),
        email: args.email.clone(),
    };
    if claims.sub.is_empty() {
        bail!("--sub must not be empty");
    }
    println!("{}", JwtKeys::new(secret.value()).mint(&claims)?);
    Ok(())
}
