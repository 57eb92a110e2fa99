//! The scheduler's leader lease in Redis: one STRING key, `scheduler:leader`, holding the
//! leader's id with the lease as its TTL. The leader renews it every third of the lease;
//! another replica takes it once it expires (the leader died) or at once when the leader
//! releases it on shutdown. Each check-and-set is one Lua script, so two replicas can
//! never both believe they took it.

use std::sync::LazyLock;
use std::time::Duration;

use anyhow::Context;
use deadpool_redis::redis::Script;

/// KEYS: leader. ARGV: id, lease ms. Takes the lease if free, renews it if ours.
/// Returns the holder afterwards: our id when we hold it.
static HOLD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return ARGV[1]
elseif not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ARGV[1]
end
return holder
"#,
    )
});

/// KEYS: leader. ARGV: id. Gives the lease up if ours.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#,
    )
});

/// One replica's side of the lease.
pub struct Leader {
    pool: crate::redis::Redis,
    key: String,
    pub id: String,
    pub lease: Duration,
}

impl Leader {
    pub fn new(pool: crate::redis::Redis, prefix: &str, id: String, lease: Duration) -> Self {
        Self {
            pool,
            key: format!("{prefix}scheduler:leader"),
            id,
            lease,
        }
    }

    /// Takes or renews the lease. Returns who holds it afterwards: this replica's id
    /// while it leads, else the leader's.
    pub async fn hold(&self) -> anyhow::Result<String> {
        let mut conn = self.pool.get().await.context("no Redis connection")?;
        HOLD.key(&self.key)
            .arg(&self.id)
            .arg(self.lease.as_millis() as u64)
            .invoke_async(&mut conn)
            .await
            .context("leader lease script failed")
    }

    /// Gives the lease up so that another replica takes over without waiting it out.
    pub async fn release(&self) -> anyhow::Result<()> {
        let mut conn = self.pool.get().await.context("no Redis connection")?;
        let _: i64 = RELEASE
            .key(&self.key)
            .arg(&self.id)
            .invoke_async(&mut conn)
            .await
            .context("releasing the leader lease failed")?;
        Ok(())
    }
}
