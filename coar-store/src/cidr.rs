//! IPv4 and IPv6 CIDR ranges, for the service registry and trusted proxies, over `ipnet`.

use std::{fmt, net::IpAddr, str::FromStr};

use ipnet::IpNet;

/// An address range such as `192.0.2.0/24` or `2001:db8::/32`; a bare address is a /32 or
/// /128. Host bits are kept as written (`192.0.2.7/24` is the range `192.0.2.0/24`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr(IpNet);

impl Cidr {
    /// Whether `ip` is in the range. An IPv4-mapped IPv6 address matches IPv4 ranges.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.0.contains(&ip)
    }
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Cidr, String> {
        let t = s.trim();
        if let Ok(net) = t.parse::<IpNet>() {
            return Ok(Cidr(net));
        }
        match t.parse::<IpAddr>() {
            Ok(addr) => Ok(Cidr(IpNet::from(addr))),
            Err(_)
                if t.contains('/')
                    && t.split_once('/')
                        .is_some_and(|(a, _)| a.parse::<IpAddr>().is_ok()) =>
            {
                let max = if t.contains(':') { 128 } else { 32 };
                Err(format!("{s:?} has a prefix length outside 0..={max}"))
            }
            Err(_) => Err(format!("{s:?} is not an IP address or CIDR range")),
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let c: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(c.contains("10.1.2.3".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        let c: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(c.contains("2001:db8::1".parse().unwrap()));
        assert!(!c.contains("2001:db9::1".parse().unwrap()));
        assert!(!c.contains("10.0.0.1".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        let one: Cidr = "192.0.2.7".parse().unwrap();
        assert_eq!(one.to_string(), "192.0.2.7/32");
        let host_bits: Cidr = "192.0.2.7/24".parse().unwrap();
        assert!(host_bits.contains("192.0.2.200".parse().unwrap()));
        for bad in ["", "10.0.0.0/33", "x/8", "::/129", "10.0.0.0/-1"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
        assert!(
            "10.0.0.0/33"
                .parse::<Cidr>()
                .unwrap_err()
                .contains("prefix length")
        );
    }
}
