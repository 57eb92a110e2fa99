//! `app jobs ...`: one-shot job commands for operators and Railway cron services.
//! `enqueue` queues one job and exits; `dead` lists dead jobs; `retry` queues dead jobs
//! again. Input is checked exactly as the API checks it.

use std::process::ExitCode;

use clap::Subcommand;

use crate::jobs::dead;
use crate::jobs::enqueue::EnqueueRequest;
use crate::queue::now_ms;
use crate::state::AppState;

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Enqueue one job, print its id and exit
    Enqueue {
        /// The queue (one of jobs.queues)
        queue: String,
        /// The job kind, e.g. http, mails, noop
        kind: String,
        /// The payload as JSON
        #[arg(long, default_value = "{}")]
        payload: String,
        /// Start no sooner than this from now: 90, 30s, 5m, 2h or 1d
        #[arg(long, value_parser = parse_delay, value_name = "DURATION")]
        delay: Option<i64>,
        /// Attempts before the job is dead [default: jobs.max_attempts]
        #[arg(long)]
        max_attempts: Option<u32>,
        /// Run time per attempt in seconds [default: jobs.timeout_seconds]
        #[arg(long)]
        timeout: Option<u64>,
        /// Make a repeat of this command within the idempotency window a no-op
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// List dead jobs, newest first
    Dead {
        /// Only this queue
        #[arg(long)]
        queue: Option<String>,
        /// How many to show
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Queue dead jobs again with fresh attempts: one by id, or --all
    Retry {
        /// The dead job's id
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<uuid::Uuid>,
        /// Every dead job (of --queue when given)
        #[arg(long)]
        all: bool,
        /// With --all: only this queue
        #[arg(long, requires = "all")]
        queue: Option<String>,
    },
}

/// `90`, `30s`, `5m`, `2h` or `1d`, in seconds.
fn parse_delay(raw: &str) -> Result<i64, String> {
    let raw = raw.trim();
    let (number, unit) = match raw.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => raw.split_at(at),
        None => (raw, "s"),
    };
    let number: i64 = number
        .parse()
        .map_err(|_| format!("{raw:?} is not a duration such as 30s, 5m, 2h or 1d"))?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("unknown unit in {raw:?}: use s, m, h or d")),
    };
    Ok(number * unit)
}

pub async fn run(state: &AppState, command: JobsCommand) -> ExitCode {
    match execute(state, command).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    }
}

async fn execute(state: &AppState, command: JobsCommand) -> anyhow::Result<ExitCode> {
    match command {
        JobsCommand::Enqueue {
            queue,
            kind,
            payload,
            delay,
            max_attempts,
            timeout,
            idempotency_key,
        } => {
            let payload = match serde_json::value::RawValue::from_string(payload) {
                Ok(payload) => payload,
                Err(e) => {
                    eprintln!("error: --payload is not valid JSON: {e}");
                    return Ok(ExitCode::from(1));
                }
            };
            let request = EnqueueRequest {
                kind,
                queue: Some(queue),
                payload,
                delay_seconds: delay,
                run_at: None,
                max_attempts,
                timeout_seconds: timeout,
                idempotency_key,
            };
            let now = now_ms();
            let job = match request.into_job(&state.settings.jobs, now) {
                Ok(job) => job,
                Err(invalid) => {
                    eprintln!("error: {invalid}");
                    return Ok(ExitCode::from(1));
                }
            };
            let enqueued = state.queues.enqueue(&job, now).await?;
            println!(
                "{}",
                serde_json::json!({"id": enqueued.id, "created": enqueued.created})
            );
        }
        JobsCommand::Dead { queue, limit } => {
            dead::move_outbox(&state.db, &state.queues).await?;
            let page = dead::list(&state.db, queue.as_deref(), limit.clamp(1, 1000), None)
                .await?
                .map_err(anyhow::Error::from)?;
            if page.jobs.is_empty() {
                println!("no dead jobs");
            }
            for job in page.jobs {
                let error: String = job.last_error.chars().take(80).collect();
                println!(
                    "{}  {:<10} {:<12} attempts={}/{}  died={}  {}",
                    job.id,
                    job.queue,
                    job.kind,
                    job.attempts,
                    job.max_attempts,
                    job.died_at.format("%Y-%m-%dT%H:%M:%SZ"),
                    error
                );
            }
        }
        JobsCommand::Retry { id, all, queue } => {
            if all {
                let retried =
                    dead::retry_all(&state.db, &state.queues, queue.as_deref(), now_ms()).await?;
                println!("retried {retried} dead jobs");
            } else if let Some(id) = id {
                if dead::retry(&state.db, &state.queues, id, now_ms())
                    .await?
                    .is_none()
                {
                    eprintln!("error: no dead job {id}");
                    return Ok(ExitCode::from(1));
                }
                println!("retried {id}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::parse_delay;

    #[test]
    fn delays_read_seconds_minutes_hours_and_days() {
        assert_eq!(parse_delay("90"), Ok(90));
        assert_eq!(parse_delay("30s"), Ok(30));
        assert_eq!(parse_delay("5m"), Ok(300));
        assert_eq!(parse_delay("2h"), Ok(7200));
        assert_eq!(parse_delay("1d"), Ok(86_400));
        assert!(parse_delay("5w").is_err());
        assert!(parse_delay("-5s").is_err());
    }
}
