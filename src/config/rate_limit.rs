//! `[rate_limit]`: request budgets shared by every replica through Redis, per caller (an
//! API key, the root token, or an anonymous client's address) and per client address for
//! failed authentications, and whose forwarded addresses to believe.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::{Check, list_or_csv};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Every caller's budget on every route no group names: `100/s`, `6000/m`; unset is
    /// unlimited.
    #[serde(default)]
    pub rate: Option<String>,
    /// Requests a caller may make at once above `rate`.
    pub burst: u32,
    /// Budgets for named routes (`[rate_limit.groups.files_upload]` with `routes =
    /// ["POST /api/v1/files"]`, `rate` and `burst`), counted apart from `rate`.
    #[serde(default)]
    pub groups: BTreeMap<String, RateGroup>,
    /// Failed authentications (401s) one client address may cause.
    pub failed_auth_rate: String,
    pub failed_auth_burst: u32,
    /// `fail_open` (requests go through, counted in a metric and logged once a minute)
    /// or `fail_closed` (503) while Redis cannot be reached.
    pub on_redis_down: FailMode,
    /// Proxies whose `X-Forwarded-For` and `X-Real-IP` are believed (`10.0.0.0/8`,
    /// `127.0.0.1`); from any other peer the peer's address is the client's.
    #[serde(default, deserialize_with = "list_or_csv")]
    pub trusted_proxies: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateGroup {
    /// `METHOD /path/template` as the OpenAPI document names them.
    pub routes: Vec<String>,
    pub rate: String,
    pub burst: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailMode {
    FailOpen,
    FailClosed,
}

/// A sustained rate, as requests per second.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate(pub f64);

impl Rate {
    /// `10/s`, `600/m` or `3600/h`.
    pub fn parse(text: &str) -> Option<Self> {
        let (count, per) = text.trim().split_once('/')?;
        let count: f64 = count
            .trim()
            .parse()
            .ok()
            .filter(|n: &f64| *n > 0.0 && n.is_finite())?;
        let seconds = match per.trim() {
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        Some(Self(count / seconds))
    }
}

/// An address range: `10.0.0.0/8`, `fd00::/8`, or one address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    bits: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Option<Self> {
        let (address, bits) = match text.trim().split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (text.trim(), None),
        };
        let network: IpAddr = address.parse().ok()?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            Some(b) => b.parse().ok().filter(|b| *b <= max)?,
            None => max,
        };
        Some(Self { network, bits })
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        let address = match address {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
            v4 => v4,
        };
        let (a, b, width) = match (self.network, address) {
            (IpAddr::V4(n), IpAddr::V4(a)) => (u32::from(n) as u128, u32::from(a) as u128, 32),
            (IpAddr::V6(n), IpAddr::V6(a)) => (u128::from(n), u128::from(a), 128),
            _ => return false,
        };
        let shift = width - u32::from(self.bits);
        shift >= width || (a >> shift) == (b >> shift)
    }
}

impl RateLimitSettings {
    pub fn rate(&self) -> Option<Rate> {
        self.rate.as_deref().and_then(Rate::parse)
    }

    pub fn failed_auth(&self) -> Rate {
        Rate::parse(&self.failed_auth_rate).unwrap_or(Rate(10.0))
    }

    pub fn trusted(&self) -> Vec<Cidr> {
        self.trusted_proxies
            .iter()
            .filter_map(|t| Cidr::parse(t))
            .collect()
    }
}

pub(super) fn validate(s: &RateLimitSettings) -> Check {
    let rate_problem = |text: &str| format!("{text:?} is not a rate such as 10/s, 600/m or 3600/h");
    if let Some(rate) = &s.rate
        && Rate::parse(rate).is_none()
    {
        return Err(("rate_limit.rate", rate_problem(rate)));
    }
    if Rate::parse(&s.failed_auth_rate).is_none() {
        return Err((
            "rate_limit.failed_auth_rate",
            rate_problem(&s.failed_auth_rate),
        ));
    }
    if s.burst == 0 || s.failed_auth_burst == 0 {
        return Err(("rate_limit.burst", "bursts must be at least 1".into()));
    }
    for (name, group) in &s.groups {
        if Rate::parse(&group.rate).is_none() || group.burst == 0 {
            return Err((
                "rate_limit.groups",
                format!("group {name:?}: rate must be like 10/s and burst at least 1"),
            ));
        }
        for route in &group.routes {
            let valid = route.split_once(' ').is_some_and(|(m, p)| {
                !m.is_empty() && m.chars().all(|c| c.is_ascii_uppercase()) && p.starts_with('/')
            });
            if !valid {
                return Err((
                    "rate_limit.groups",
                    format!(
                        "group {name:?}: {route:?} is not a route such as \"POST /api/v1/files\""
                    ),
                ));
            }
        }
    }
    if let Some(bad) = s.trusted_proxies.iter().find(|t| Cidr::parse(t).is_none()) {
        return Err((
            "rate_limit.trusted_proxies",
            format!("{bad:?} is not an address or a range such as 10.0.0.0/8"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_ranges_parse() {
        assert_eq!(Rate::parse("10/s"), Some(Rate(10.0)));
        assert_eq!(Rate::parse("120/m"), Some(Rate(2.0)));
        assert_eq!(Rate::parse("0/s"), None);
        assert_eq!(Rate::parse("10"), None);
        let net = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(net.contains("10.1.2.3".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(
            Cidr::parse("127.0.0.1")
                .unwrap()
                .contains("127.0.0.1".parse().unwrap())
        );
        assert!(
            Cidr::parse("fd00::/8")
                .unwrap()
                .contains("fd12::1".parse().unwrap())
        );
        assert_eq!(Cidr::parse("10.0.0.0/33"), None);
        assert_eq!(Cidr::parse("nope"), None);
    }
}
