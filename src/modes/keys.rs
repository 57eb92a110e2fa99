//! `app keys ...`: scoped API keys from the command line, for the first key of a
//! deployment and for operators (`railway run app keys create ...`). Only Postgres and
//! `encryption.key` are needed. The key's value goes to stdout, alone, so a script can
//! capture it; everything else goes to stderr. Input is checked exactly as the API
//! checks it. Made and revoked keys are audited with the actor `admin`.

use std::process::ExitCode;

use clap::Subcommand;
use sqlx::PgPool;

use crate::auth::keys::{self, CreateError, Hasher, KeyInput, KeyView};
use crate::config::Settings;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a key and print it once
    Create {
        /// What it is for, e.g. ci or "laravel backend"
        #[arg(long)]
        name: String,
        /// Comma-separated scopes, e.g. jobs:read,metrics:read; * is every scope
        #[arg(long, value_delimiter = ',', required = true)]
        scopes: Vec<String>,
        /// How long it works: 30m, 12h or 90d [default: never expires]
        #[arg(long, value_name = "DURATION")]
        expires: Option<String>,
    },
    /// List every key, newest first
    List,
    /// Revoke a key by id or prefix
    Revoke {
        /// The key's id or prefix
        key: String,
    },
}

pub async fn run(db: &PgPool, settings: &Settings, command: KeysCommand) -> ExitCode {
    match execute(db, settings, command).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    }
}

async fn execute(
    db: &PgPool,
    settings: &Settings,
    command: KeysCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        KeysCommand::Create {
            name,
            scopes,
            expires,
        } => {
            let input = KeyInput {
                name,
                scopes,
                expires_in: expires,
            };
            let new = match input.check(chrono::Utc::now()) {
                Ok(new) => new,
                Err(invalid) => {
                    let flag = if invalid.field == "expires_in" {
                        "expires"
                    } else {
                        &invalid.field
                    };
                    eprintln!("error: --{flag}: {}", invalid.message);
                    return Ok(ExitCode::from(2));
                }
            };
            let hasher = Hasher::new(&settings.encryption);
            let minted = match keys::create(db, &hasher, &new, "admin").await {
                Ok(minted) => minted,
                Err(CreateError::NoKey) => {
                    eprintln!(
                        "error: encryption.key (ENCRYPTION_KEY) is not set, so API keys cannot \
                         be made: set it to 32 random bytes in base64 (openssl rand -base64 32)"
                    );
                    return Ok(ExitCode::from(1));
                }
                Err(CreateError::Store(error)) => return Err(error),
            };
            eprintln!("made {}; it is shown once:", describe(&minted.view));
            println!("{}", minted.key);
        }
        KeysCommand::List => {
            let keys = keys::list(db).await?;
            if keys.is_empty() {
                eprintln!("no API keys");
            }
            for key in keys {
                println!("{}", describe(&key));
            }
        }
        KeysCommand::Revoke { key } => match keys::revoke(db, &key, "admin").await? {
            Some(view) => eprintln!("revoked {}", describe(&view)),
            None => {
                eprintln!("error: no API key {key:?}");
                return Ok(ExitCode::from(1));
            }
        },
    }
    Ok(ExitCode::SUCCESS)
}

/// One line about a key: prefix, name, scopes, state.
fn describe(key: &KeyView) -> String {
    let time = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let state = match (key.revoked_at, key.expires_at) {
        (Some(at), _) => format!("revoked {}", time(at)),
        (None, Some(at)) if at <= chrono::Utc::now() => format!("expired {}", time(at)),
        (None, Some(at)) => format!("expires {}", time(at)),
        (None, None) => "no expiry".to_owned(),
    };
    let used = key
        .last_used_at
        .map_or("never used".to_owned(), |at| format!("used {}", time(at)));
    format!(
        "sy_{}_…  {}  [{}]  {}  {}  id={}",
        key.prefix,
        key.name,
        key.scopes.join(","),
        state,
        used,
        key.id
    )
}
