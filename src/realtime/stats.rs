//! What every hub holds, for the API and the console: each realtime process reports its
//! sockets and its busiest channels to one Redis hash every second, and any process reads
//! them back and adds them up. A report older than [`STALE_AFTER`] is of a hub that
//! stopped without saying so; a reader drops it.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use deadpool_redis::redis::{self, AsyncCommands};
use serde::{Deserialize, Serialize};

use super::history::History;
use super::hub::Hub;

/// Channels each hub reports, busiest first.
pub const CHANNELS_REPORTED: usize = 100;

/// A report this old is of a hub that is gone.
pub const STALE_AFTER: Duration = Duration::from_secs(10);

/// One hub's report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HubReport {
    /// The process: `service/replica/pid`.
    pub hub: String,
    /// Open sockets.
    pub connections: usize,
    /// Channels with at least one subscriber here.
    pub channels: usize,
    /// Whether its Redis subscriber is connected (false: it is reconnecting).
    pub subscriber: bool,
    /// Its busiest channels, with subscribers, most first.
    pub busiest: Vec<ChannelCount>,
    /// When it reported, in milliseconds since the epoch.
    pub at_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChannelCount {
    pub channel: String,
    pub subscribers: usize,
}

/// Every live hub's report and their sum.
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RealtimeStats {
    /// Sockets open on every hub together.
    pub connections: usize,
    /// The busiest channels over every hub (each hub's own busiest, added up), most first.
    pub channels: Vec<ChannelCount>,
    pub hubs: Vec<HubReport>,
}

impl HubReport {
    /// What `hub` holds now.
    pub fn of(name: &str, hub: &Hub, now_ms: i64) -> Self {
        Self {
            hub: name.to_owned(),
            connections: hub.connections(),
            channels: hub.channel_count(),
            subscriber: hub.subscriber_connected(),
            busiest: hub
                .busiest(CHANNELS_REPORTED)
                .into_iter()
                .map(|(channel, subscribers)| ChannelCount {
                    channel,
                    subscribers,
                })
                .collect(),
            at_ms: now_ms,
        }
    }
}

/// Writes this hub's report, and sets the process's channel gauge from it (the socket
/// gauge follows each socket as it opens and closes).
pub async fn report(history: &History, report: &HubReport) -> anyhow::Result<()> {
    metrics::gauge!("switchyard_realtime_channels").set(report.channels as f64);
    let mut conn = history.pool().get().await.context("no Redis connection")?;
    let json = serde_json::to_string(report).context("failed to encode a hub report")?;
    let _: () = conn
        .hset(history.keys().hubs(), &report.hub, json)
        .await
        .context("failed to write a hub report")?;
    Ok(())
}

/// Removes this hub's report, as it stops.
pub async fn withdraw(history: &History, hub: &str) -> anyhow::Result<()> {
    let mut conn = history.pool().get().await.context("no Redis connection")?;
    let _: () = conn
        .hdel(history.keys().hubs(), hub)
        .await
        .context("failed to remove a hub report")?;
    Ok(())
}

/// Every live hub's report, and their sum; stale reports are removed.
pub async fn read(history: &History, now_ms: i64) -> anyhow::Result<RealtimeStats> {
    let mut conn = history.pool().get().await.context("no Redis connection")?;
    let key = history.keys().hubs();
    let all: BTreeMap<String, String> = conn
        .hgetall(&key)
        .await
        .context("failed to read hub reports")?;
    let mut stale = Vec::new();
    let mut hubs = Vec::new();
    for (field, json) in all {
        match serde_json::from_str::<HubReport>(&json) {
            Ok(report) if now_ms - report.at_ms < STALE_AFTER.as_millis() as i64 => {
                hubs.push(report)
            }
            _ => stale.push(field),
        }
    }
    if !stale.is_empty() {
        let _: () = redis::cmd("HDEL")
            .arg(&key)
            .arg(&stale)
            .query_async(&mut conn)
            .await
            .context("failed to remove stale hub reports")?;
    }
    Ok(sum(hubs))
}

/// The hubs' reports added up.
fn sum(hubs: Vec<HubReport>) -> RealtimeStats {
    let mut channels: BTreeMap<&str, usize> = BTreeMap::new();
    for report in &hubs {
        for c in &report.busiest {
            *channels.entry(c.channel.as_str()).or_default() += c.subscribers;
        }
    }
    let mut channels: Vec<ChannelCount> = channels
        .into_iter()
        .map(|(channel, subscribers)| ChannelCount {
            channel: channel.to_owned(),
            subscribers,
        })
        .collect();
    channels.sort_by_key(|c| std::cmp::Reverse(c.subscribers));
    channels.truncate(CHANNELS_REPORTED);
    RealtimeStats {
        connections: hubs.iter().map(|h| h.connections).sum(),
        channels,
        hubs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(hub: &str, connections: usize, busiest: &[(&str, usize)]) -> HubReport {
        HubReport {
            hub: hub.into(),
            connections,
            channels: busiest.len(),
            subscriber: true,
            busiest: busiest
                .iter()
                .map(|(channel, subscribers)| ChannelCount {
                    channel: (*channel).into(),
                    subscribers: *subscribers,
                })
                .collect(),
            at_ms: 0,
        }
    }

    #[test]
    fn hubs_add_up_their_sockets_and_each_channels_subscribers() {
        let stats = sum(vec![
            report("a", 3, &[("files", 2), ("chat", 1)]),
            report("b", 4, &[("chat", 4)]),
        ]);
        assert_eq!(stats.connections, 7);
        let channels: Vec<(&str, usize)> = stats
            .channels
            .iter()
            .map(|c| (c.channel.as_str(), c.subscribers))
            .collect();
        assert_eq!(channels, [("chat", 5), ("files", 2)]);
        assert_eq!(stats.hubs.len(), 2);
    }
}
