//! The address policy: LDN senders should not POST to localhost or loopback, and a server
//! that sends where a peer tells it must not be turned against its own network (SSRF).

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Whether an address is anything but a globally reachable unicast address: loopback,
/// private, link-local, unique-local, unspecified, multicast, shared (CGNAT), documentation,
/// benchmarking, reserved, or any other range of the IANA special-purpose registries that is
/// not globally reachable. Addresses that embed an IPv4 address (IPv4-mapped, -compatible,
/// NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) are judged by the address they embed, since that
/// is where a packet to them ends up.
pub fn is_restricted(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => restricted_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => restricted_v4(v4),
            None => restricted_v6(v6),
        },
    }
}

/// The IPv4 address an IPv6 address stands for, where it stands for one.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = Ipv4Addr::from(((u32::from(s[6])) << 16) | u32::from(s[7]));
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4); // ::ffff:a.b.c.d
    }
    if s[..6] == [0; 6] && !ip.is_loopback() && !ip.is_unspecified() {
        return Some(low); // ::a.b.c.d, IPv4-compatible (deprecated)
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(low); // NAT64, RFC 6052
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::from((u32::from(s[1]) << 16) | u32::from(s[2]))); // 6to4
    }
    None
}

/// IPv4 ranges that are not globally reachable (RFC 6890 and the IANA IPv4 special-purpose
/// registry), as (network, prefix length).
const V4_SPECIAL: [([u8; 4], u8); 20] = [
    ([0, 0, 0, 0], 8),          // "this network"
    ([10, 0, 0, 0], 8),         // private
    ([100, 64, 0, 0], 10),      // shared address space (CGNAT)
    ([127, 0, 0, 0], 8),        // loopback
    ([169, 254, 0, 0], 16),     // link local
    ([172, 16, 0, 0], 12),      // private
    ([192, 0, 0, 0], 24),       // IETF protocol assignments
    ([192, 0, 2, 0], 24),       // documentation (TEST-NET-1)
    ([192, 31, 196, 0], 24),    // AS112-v4
    ([192, 52, 193, 0], 24),    // AMT
    ([192, 88, 99, 0], 24),     // deprecated 6to4 relay anycast
    ([192, 168, 0, 0], 16),     // private
    ([192, 175, 48, 0], 24),    // direct delegation AS112
    ([198, 18, 0, 0], 15),      // benchmarking
    ([198, 51, 100, 0], 24),    // documentation (TEST-NET-2)
    ([203, 0, 113, 0], 24),     // documentation (TEST-NET-3)
    ([224, 0, 0, 0], 4),        // multicast
    ([240, 0, 0, 0], 4),        // reserved, and the limited broadcast address
    ([255, 255, 255, 255], 32), // limited broadcast
    ([192, 0, 0, 170], 31),     // NAT64/DNS64 discovery (inside 192.0.0.0/24, kept explicit)
];

/// IPv6 ranges that are not globally reachable (the IANA IPv6 special-purpose registry),
/// beyond those that embed an IPv4 address.
const V6_SPECIAL: [(u128, u8); 12] = [
    (0, 128),                          // unspecified
    (1, 128),                          // loopback
    (0x0064_ff9b_0001 << 80, 48),      // local-use NAT64, RFC 8215
    (0x0100 << 112, 64),               // discard-only
    (0x0100_0000_0000_0001 << 64, 64), // dummy prefix, RFC 9780
    (0x2001 << 112, 23),               // IETF protocol assignments (Teredo, ORCHID, …)
    (0x2001_0db8 << 96, 32),           // documentation
    (0x3fff << 112, 20),               // documentation, RFC 9637
    (0x5f00 << 112, 16),               // segment routing SIDs
    (0xfc00 << 112, 7),                // unique local
    (0xfe80 << 112, 10),               // link local (and fec0::/10 below)
    (0xff00 << 112, 8),                // multicast
];

fn restricted_v4(ip: Ipv4Addr) -> bool {
    let ip = u32::from(ip);
    V4_SPECIAL.iter().any(|(net, len)| {
        let mask = u32::MAX.checked_shl(32 - u32::from(*len)).unwrap_or(0);
        ip & mask == u32::from_be_bytes(*net) & mask
    })
}

fn restricted_v6(ip: Ipv6Addr) -> bool {
    let ip = u128::from(ip);
    let site_local = ip >> 118 == 0xfec0 >> 6; // fec0::/10, deprecated
    site_local
        || V6_SPECIAL.iter().any(|(net, len)| {
            let mask = u128::MAX.checked_shl(128 - u32::from(*len)).unwrap_or(0);
            ip & mask == net & mask
        })
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
            "192.0.0.8",
            "192.0.2.1",
            "198.18.0.1",
            "198.51.100.7",
            "203.0.113.9",
            "240.0.0.1",
            "255.255.255.255",
            "::1",
            "fe80::1",
            "fec0::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "224.0.0.1",
            "ff02::1",
            "::",
            // IPv6 addresses that lead to a private IPv4 one.
            "64:ff9b::10.0.0.1",
            "64:ff9b::7f00:1",
            "2002:a00:1::1",
            "2002:7f00:1::",
            "::10.0.0.1",
            "::127.0.0.1",
            // Special-purpose IPv6.
            "64:ff9b:1::1",
            "100::1",
            "100:0:0:1::1",
            "2001::1",
            "2001:db8::1",
            "3fff::1",
            "5f00::1",
        ] {
            assert!(is_restricted(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "2001:4860:4860::8888",
            "2606:4700::1111",
            "172.32.0.1",
            "64:ff9b::8.8.8.8",
            "2002:808:808::1",
            "::ffff:8.8.8.8",
        ] {
            assert!(!is_restricted(ip.parse().unwrap()), "{ip}");
        }
    }
}
