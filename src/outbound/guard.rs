//! The SSRF guard: which addresses an outbound call may reach. It runs inside the HTTP
//! client's resolver, on the addresses the connection will actually use, so it holds for
//! IP literals, for DNS names (no check-then-resolve race) and for every redirect hop.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// Why an address may not be called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forbidden {
    Loopback,
    Private,
    LinkLocal,
    UniqueLocal,
    CloudMetadata,
    /// Unspecified, multicast, broadcast, documentation and reserved ranges.
    NotRoutable,
}

impl fmt::Display for Forbidden {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Loopback => "a loopback address",
            Self::Private => "a private address",
            Self::LinkLocal => "a link-local address",
            Self::UniqueLocal => "a unique-local address",
            Self::CloudMetadata => "a cloud metadata address",
            Self::NotRoutable => "a non-routable address",
        })
    }
}

/// The class of `ip` when an outbound call must not reach it.
pub fn classify(ip: IpAddr) -> Option<Forbidden> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<Forbidden> {
    let [a, b, c, _] = ip.octets();
    if ip == Ipv4Addr::new(169, 254, 169, 254) || ip == Ipv4Addr::new(100, 100, 100, 200) {
        // AWS, GCP and Azure metadata; Alibaba's.
        return Some(Forbidden::CloudMetadata);
    }
    if ip.is_loopback() {
        return Some(Forbidden::Loopback);
    }
    if ip.is_private() || (a == 100 && (64..128).contains(&b)) {
        // RFC 1918 and the carrier-grade NAT range, which platforms use internally.
        return Some(Forbidden::Private);
    }
    if ip.is_link_local() {
        return Some(Forbidden::LinkLocal);
    }
    let not_routable = a == 0
        || ip.is_multicast()
        || a >= 240
        || ip.is_documentation()
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b == 18 || b == 19));
    not_routable.then_some(Forbidden::NotRoutable)
}

fn classify_v6(ip: Ipv6Addr) -> Option<Forbidden> {
    // IPv4 carried inside IPv6 (mapped, NAT64, 6to4) is judged as the IPv4 address.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    let s = ip.segments();
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return classify_v4(Ipv4Addr::new(
            (s[6] >> 8) as u8,
            s[6] as u8,
            (s[7] >> 8) as u8,
            s[7] as u8,
        ));
    }
    if s[0] == 0x2002 {
        return classify_v4(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        return Some(Forbidden::CloudMetadata);
    }
    if ip.is_loopback() {
        return Some(Forbidden::Loopback);
    }
    if ip.is_unique_local() {
        return Some(Forbidden::UniqueLocal);
    }
    if ip.is_unicast_link_local() {
        return Some(Forbidden::LinkLocal);
    }
    let not_routable =
        ip.is_unspecified() || ip.is_multicast() || (s[0] == 0x2001 && s[1] == 0xdb8);
    not_routable.then_some(Forbidden::NotRoutable)
}

/// A host pattern is a host name, or `*.` and a domain that matches its subdomains.
pub fn valid_host_pattern(pattern: &str) -> bool {
    let name = pattern.strip_prefix("*.").unwrap_or(pattern);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Which hosts may reach private addresses.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// Every host may (development).
    pub allow_private: bool,
    /// Lower-case patterns from `outbound.allow_hosts`.
    pub allow_hosts: Vec<String>,
}

impl Policy {
    fn host_allowed(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.allow_hosts
            .iter()
            .any(|pattern| match pattern.strip_prefix("*.") {
                Some(domain) => host
                    .strip_suffix(domain)
                    .is_some_and(|rest| rest.ends_with('.')),
                None => host == *pattern,
            })
    }

    /// Refuses the whole lookup of `host` when any of its addresses is forbidden.
    pub fn check(&self, host: &str, ips: impl IntoIterator<Item = IpAddr>) -> Result<(), Refused> {
        for ip in ips {
            if let Some(class) = self.refusal(host, ip) {
                return Err(Refused {
                    host: host.to_owned(),
                    ip,
                    class,
                });
            }
        }
        Ok(())
    }

    /// Why calling `host` at `ip` is refused, or `None` when it is allowed.
    pub fn refusal(&self, host: &str, ip: IpAddr) -> Option<Forbidden> {
        if self.allow_private {
            return None;
        }
        let class = classify(ip)?;
        // An allow-listed host may be private, but never the metadata service.
        (class == Forbidden::CloudMetadata || !self.host_allowed(host)).then_some(class)
    }
}

/// The refusal as the error the client reports; `Outbound` recognises it by type.
#[derive(Clone, Debug, thiserror::Error)]
#[error("refused to call {host}: it resolves to {class} ({ip})")]
pub struct Refused {
    pub host: String,
    pub ip: IpAddr,
    pub class: Forbidden,
}

/// Resolves like the default resolver, then refuses the whole lookup if any address is
/// forbidden: a name that mixes public and private answers is not trusted either.
#[derive(Debug)]
pub struct GuardedResolver {
    pub policy: Policy,
    pub inner: DefaultResolver,
}

impl Resolver for GuardedResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let addrs = self.inner.resolve(uri, config, timeout)?;
        let host = uri
            .host()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']');
        self.policy
            .check(host, addrs.iter().map(|addr| addr.ip()))
            .map_err(|refused| ureq::Error::Other(Box::new(refused)))?;
        Ok(addrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(ip: &str) -> Option<Forbidden> {
        classify(ip.parse().unwrap())
    }

    #[test]
    fn every_internal_address_class_is_refused() {
        use Forbidden::*;
        let table = [
            ("127.0.0.1", Some(Loopback)),
            ("::1", Some(Loopback)),
            ("10.1.2.3", Some(Private)),
            ("172.16.0.1", Some(Private)),
            ("192.168.1.1", Some(Private)),
            ("100.64.0.1", Some(Private)),
            ("169.254.10.1", Some(LinkLocal)),
            ("fe80::1", Some(LinkLocal)),
            ("fd12:3456::1", Some(UniqueLocal)),
            ("169.254.169.254", Some(CloudMetadata)),
            ("fd00:ec2::254", Some(CloudMetadata)),
            ("::ffff:127.0.0.1", Some(Loopback)),
            ("::ffff:169.254.169.254", Some(CloudMetadata)),
            ("64:ff9b::a00:1", Some(Private)),
            ("2002:c0a8:101::1", Some(Private)),
            ("0.0.0.0", Some(NotRoutable)),
            ("::", Some(NotRoutable)),
            ("224.0.0.1", Some(NotRoutable)),
            ("255.255.255.255", Some(NotRoutable)),
            ("8.8.8.8", None),
            ("172.32.0.1", None),
            ("2606:4700::1111", None),
        ];
        for (ip, want) in table {
            assert_eq!(class(ip), want, "{ip}");
        }
    }

    #[test]
    fn allowed_hosts_may_be_private_but_never_the_metadata_service() {
        let policy = Policy {
            allow_private: false,
            allow_hosts: vec!["*.railway.internal".into(), "hooks.local".into()],
        };
        let private: IpAddr = "10.0.0.5".parse().unwrap();
        let metadata: IpAddr = "169.254.169.254".parse().unwrap();
        assert_eq!(policy.refusal("api.railway.internal", private), None);
        assert_eq!(policy.refusal("HOOKS.local.", private), None);
        assert_eq!(
            policy.refusal("railway.internal", private),
            Some(Forbidden::Private)
        );
        assert_eq!(
            policy.refusal("evilrailway.internal", private),
            Some(Forbidden::Private)
        );
        assert_eq!(
            policy.refusal("api.railway.internal", metadata),
            Some(Forbidden::CloudMetadata)
        );
        assert!(valid_host_pattern("*.railway.internal"));
        assert!(!valid_host_pattern("*"));
        assert!(!valid_host_pattern("a..b"));
    }
}
