//! The address policy: LDN senders should not POST to localhost or loopback, and a server
//! that sends where a peer tells it must not be turned against its own network (SSRF).

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Whether an address is loopback, private, link-local, unique-local, unspecified,
/// multicast or otherwise not a public unicast address.
pub fn is_restricted(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => restricted_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => restricted_v4(v4),
            None => restricted_v6(v6),
        },
    }
}

fn restricted_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240
}

fn restricted_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link local
        || (first & 0xffc0) == 0xfec0 // site local (deprecated)
}

/// A DNS resolver that applies the policy to every address a name resolves to: if any is
/// restricted, the name is refused (a name that mixes public and private addresses is
/// treated as hostile).
#[derive(Debug, Clone)]
pub(crate) struct PolicyResolver {
    pub(crate) allow_private: bool,
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !allow_private && let Some(bad) = addrs.iter().find(|a| is_restricted(a.ip())) {
                return Err(Box::new(Refused(format!(
                    "{host} resolves to {}, a loopback, private or link-local address",
                    bad.ip()
                )))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The policy refused an address.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Refused(pub(crate) String);

pub(crate) fn resolver(allow_private: bool) -> Arc<PolicyResolver> {
    Arc::new(PolicyResolver { allow_private })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restricted_addresses() {
        for ip in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "224.0.0.1",
            "::",
        ] {
            assert!(is_restricted(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "203.0.113.9",
            "2001:4860:4860::8888",
            "172.32.0.1",
        ] {
            assert!(!is_restricted(ip.parse().unwrap()), "{ip}");
        }
    }
}
