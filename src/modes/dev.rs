//! `app dev`: every mode in one process, as `app all` runs them, for a laptop. Unlike
//! `app all` it migrates first, lets outbound calls reach local servers, and generates an
//! admin token, an app secret (signed URLs and realtime tokens), an encryption key
//! (webhook secrets) and a signing secret for `http` jobs when none are configured,
//! printing each once so that a local backend can use them.

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::{Secret, Settings};
use crate::outbound::SigningKey;
use crate::state::AppState;

/// Adjusts settings for a laptop before anything starts.
pub fn prepare(settings: &mut Settings) -> anyhow::Result<()> {
    settings.worker.queues = settings.jobs.queues.clone();
    // The user's own app runs on localhost next to this; let http jobs reach it.
    settings.outbound.allow_private = true;
    if settings.app.admin_token.is_none() {
        let token = generate_token()?;
        eprintln!(
            "\n  app dev: generated an admin token for this run (set ADMIN_TOKEN to choose one):\n\n      {}\n",
            token.expose()
        );
        settings.app.admin_token = Some(token);
    }
    if settings.app.secret.is_none() {
        // Printed so that a local backend can mint realtime tokens with its own JWT
        // library; signed URLs and tokens made in this run stop working when it ends.
        let secret = generate_token()?;
        eprintln!(
            "  app dev: generated an app secret for signed URLs and realtime tokens (set APP_SECRET to keep one across runs):\n\n      {}\n",
            secret.expose()
        );
        settings.app.secret = Some(secret);
    }
    if settings.encryption.key.is_none() {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no system randomness: {e}"))?;
        let key = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes);
        eprintln!(
            "  app dev: generated an encryption key for webhook secrets (set ENCRYPTION_KEY to keep one; a later run needs it to sign for endpoints made in this one):\n\n      {key}\n"
        );
        settings.encryption.key = Some(Secret::new(key));
    }
    if settings.outbound.signing_secret.is_none() {
        let secret = SigningKey::generate()?;
        eprintln!(
            "  app dev: generated a webhook signing secret for http jobs (set OUTBOUND_SIGNING_SECRET to keep one):\n\n      {secret}\n"
        );
        settings.outbound.signing_secret = Some(Secret::new(secret));
    }
    Ok(())
}

/// A fresh random admin token for this run.
pub fn generate_token() -> anyhow::Result<Secret> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no system randomness: {e}"))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(Secret::new(format!("dev_{hex}")))
}

/// Migrates, then runs every part as `app all` does.
pub async fn run(
    state: AppState,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let applied = crate::db::migrate(&state.db).await?;
    if !applied.is_empty() {
        tracing::info!(count = applied.len(), "applied migrations");
    }
    super::all::run(state, listener, shutdown).await
}
