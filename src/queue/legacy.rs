//! Jobs left in the key layout of Switchyard before Redis Cluster support, on one server:
//! `queue:<q>:ready` (and `scheduled`, `retry`, `leased`, `idem:<key>`), `job:<id>` and
//! the shared `dead` outbox, every key under `redis.key_prefix`. A cluster never held them.
//!
//! Workers adopt them into the current layout: at start, and every few seconds after,
//! since a replica of the previous version can still enqueue during a rolling deploy.
//! Ready jobs keep their order ahead of newer ones; delayed and retrying jobs keep their
//! due times; dead jobs enter their queue's outbox. Leases still running are left for
//! the old worker that holds them to finish in place; once one lapses it is adopted and
//! recovered like any lapsed lease. A job whose record stayed behind (finished and kept
//! for its retention) is still found by id.
//!
//! Idempotency keys are found by scanning the whole keyspace, once per queue. A start
//! that finds nothing of the old layout, jobs or keys, leaves the marker
//! `legacy:idem-clean`, and later starts skip the scan: with millions of job records,
//! every worker's start would otherwise walk them all.

use std::collections::HashMap;

use anyhow::Context;
use deadpool_redis::redis::{self, AsyncCommands};

use super::{JobRecord, Queues, scripts};
use crate::redis::Multiplexed;

/// Entries moved per structure and script call, so that no call holds Redis for long.
const BATCH: usize = 1_000;

/// What one adoption moved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Adopted {
    pub jobs: u64,
    pub idempotency_keys: u64,
}

impl Queues {
    fn legacy_key(&self, queue: &str, part: &str) -> String {
        format!("{}queue:{queue}:{part}", self.prefix)
    }

    fn legacy_job_prefix(&self) -> String {
        format!("{}job:", self.prefix)
    }

    /// Set once a scan found no idempotency key of the old layout.
    fn legacy_clean_marker(&self) -> String {
        format!("{}legacy:idem-clean", self.prefix)
    }
}

/// Moves every job of the old layout into the current one; with `idempotency_keys`, the
/// idempotency keys too (a scan of the keyspace, so at start only). Nothing to do on a
/// cluster.
pub async fn adopt(
    queues: &Queues,
    idempotency_keys: bool,
    now_ms: i64,
) -> anyhow::Result<Adopted> {
    let Multiplexed::Single(_) = queues.conn else {
        return Ok(Adopted::default());
    };
    let mut adopted = Adopted::default();
    let mut conn = queues.conn.clone();
    for queue in queues.names.iter() {
        loop {
            let (moved, _live): (u64, u64) = scripts::ADOPT
                .key(queues.legacy_key(queue, "ready"))
                .key(queues.legacy_key(queue, "scheduled"))
                .key(queues.legacy_key(queue, "retry"))
                .key(queues.legacy_key(queue, "leased"))
                .key(format!("{}dead", queues.prefix))
                .key(queues.key(queue, "ready"))
                .key(queues.key(queue, "scheduled"))
                .key(queues.key(queue, "retry"))
                .key(queues.key(queue, "leased"))
                .key(queues.dead_outbox(queue))
                .key(queues.wake_key(queue))
                .arg(queues.legacy_job_prefix())
                .arg(queues.job_prefix(queue))
                .arg(now_ms)
                .arg(queue)
                .arg(BATCH)
                .invoke_async(&mut conn)
                .await
                .context("adopting jobs of the old key layout failed")?;
            adopted.jobs += moved;
            if moved == 0 {
                break;
            }
        }
    }
    if idempotency_keys {
        let clean: bool = conn
            .exists(queues.legacy_clean_marker())
            .await
            .context("reading the old layout's marker failed")?;
        if !clean {
            for queue in queues.names.iter() {
                adopted.idempotency_keys += adopt_idempotency_keys(queues, queue).await?;
            }
            if adopted == Adopted::default() {
                let _: () = conn
                    .set(queues.legacy_clean_marker(), 1)
                    .await
                    .context("setting the old layout's marker failed")?;
            }
        }
    }
    if adopted != Adopted::default() {
        tracing::info!(
            jobs = adopted.jobs,
            idempotency_keys = adopted.idempotency_keys,
            "adopted jobs of the old redis key layout"
        );
    }
    Ok(adopted)
}

/// Renames `queue`'s idempotency keys into the current layout, their time to live kept.
/// A key the current layout already has (a newer enqueue claimed it) stays as it is.
async fn adopt_idempotency_keys(queues: &Queues, queue: &str) -> anyhow::Result<u64> {
    let mut conn = queues.conn.clone();
    let old = queues.legacy_key(queue, "idem:");
    let pattern = format!("{}*", glob_escape(&old));
    let mut cursor: u64 = 0;
    let mut moved = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(BATCH)
            .query_async(&mut conn)
            .await
            .context("scanning old idempotency keys failed")?;
        for key in keys {
            let Some(name) = key.strip_prefix(&old) else {
                continue;
            };
            let renamed: bool = conn
                .rename_nx(&key, format!("{}{name}", queues.key(queue, "idem:")))
                .await
                .context("renaming an old idempotency key failed")?;
            if renamed {
                moved += 1;
            } else {
                let _: () = conn
                    .del(&key)
                    .await
                    .context("dropping an old idempotency key failed")?;
            }
        }
        if next == 0 {
            return Ok(moved);
        }
        cursor = next;
    }
}

/// `text` as a SCAN pattern that matches only itself.
fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A job whose record is still in the old layout, on one server.
pub(super) async fn get(queues: &Queues, id: &str) -> anyhow::Result<Option<JobRecord>> {
    let Multiplexed::Single(_) = queues.conn else {
        return Ok(None);
    };
    let mut conn = queues.conn.clone();
    let hash: HashMap<String, String> = conn
        .hgetall(format!("{}{id}", queues.legacy_job_prefix()))
        .await
        .context("failed to read a job")?;
    Ok(JobRecord::from_hash(id, hash))
}

#[cfg(test)]
mod tests {
    use super::glob_escape;

    #[test]
    fn glob_escape_makes_pattern_characters_literal() {
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
        assert_eq!(
            glob_escape("switchyard:queue:x:idem:"),
            "switchyard:queue:x:idem:"
        );
    }
}
