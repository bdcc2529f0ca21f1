//! The sender's address, the first piece of evidence of who it is: the connection's, or the
//! one a trusted proxy forwarded. Attribution on that evidence is
//! [`coar_store::Store::attribute`].

use std::net::IpAddr;

/// Which header the trusted proxies write the client's address to. Only that one is read:
/// a proxy passes the other through from the sender, who can write anything in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For` (nginx's `$proxy_add_x_forwarded_for`, most load balancers).
    #[default]
    XForwardedFor,
    /// `Forwarded: for=…` (RFC 7239).
    Forwarded,
}

impl std::str::FromStr for ForwardedHeader {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "x-forwarded-for" => Ok(ForwardedHeader::XForwardedFor),
            "forwarded" => Ok(ForwardedHeader::Forwarded),
            other => Err(format!("{other:?} is not x-forwarded-for or forwarded")),
        }
    }
}

/// The address a request comes from: the connection's peer, or, when that peer is one of
/// `trusted` (a reverse proxy), the last address the proxies added to `header` that is not
/// itself a trusted proxy. Headers from anyone else are ignored: they are the sender's to
/// forge. IPv4-mapped IPv6 addresses are given as IPv4.
pub fn client_addr(
    peer: IpAddr,
    headers: &http::HeaderMap,
    trusted: &[coar_store::Cidr],
    header: ForwardedHeader,
) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    // Each proxy appends the address it got the request from; read right to left.
    let mut chain: Vec<Option<IpAddr>> = Vec::new();
    let forwarded = match header {
        ForwardedHeader::Forwarded => headers.get_all("forwarded").iter().collect(),
        ForwardedHeader::XForwardedFor => Vec::new(),
    };
    for value in forwarded {
        for element in value.to_str().unwrap_or_default().split(',') {
            for pair in element.split(';') {
                if let Some((k, v)) = pair.trim().split_once('=')
                    && k.trim().eq_ignore_ascii_case("for")
                {
                    chain.push(forwarded_ip(v));
                }
            }
        }
    }
    if header == ForwardedHeader::XForwardedFor {
        for value in headers.get_all("x-forwarded-for") {
            chain.extend(
                value
                    .to_str()
                    .unwrap_or_default()
                    .split(',')
                    .map(|a| forwarded_ip(a.trim())),
            );
        }
    }
    // An entry a proxy could not fill (`unknown`) ends the chain: what lies left of it is
    // the sender's.
    for entry in chain.into_iter().rev() {
        match entry.map(|ip| ip.to_canonical()) {
            Some(ip) if is_trusted(ip) => continue,
            Some(ip) => return ip,
            None => break,
        }
    }
    peer
}

/// An address of `Forwarded: for=` (`192.0.2.1`, `"[2001:db8::1]:4711"`, `192.0.2.1:80`)
/// or of `X-Forwarded-For`; `None` for obfuscated identifiers (`_hidden`, `unknown`).
fn forwarded_ip(v: &str) -> Option<IpAddr> {
    let v = v.trim().trim_matches('"');
    if let Some(rest) = v.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    v.parse().ok().or_else(|| {
        let (host, port) = v.rsplit_once(':')?;
        port.parse::<u16>().ok()?;
        host.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_proxies() {
        use ForwardedHeader::{Forwarded, XForwardedFor as Xff};
        let proxies: Vec<coar_store::Cidr> = vec!["10.0.0.0/8".parse().unwrap()];
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let at = |peer: &str, h: &HeaderMap, which| client_addr(ip(peer), h, &proxies, which);
        let forged = headers(&[("x-forwarded-for", "198.51.100.7")]);
        // From the internet: the header is the sender's own claim, ignored.
        assert_eq!(at("203.0.113.5", &forged, Xff), ip("203.0.113.5"));
        // From the proxy: the address it saw.
        assert_eq!(at("10.0.0.2", &forged, Xff), ip("198.51.100.7"));
        // A sender that forges a first hop: the proxy's own entry is the last, and wins.
        let chained = headers(&[("x-forwarded-for", "192.0.2.66, 198.51.100.7")]);
        assert_eq!(at("10.0.0.2", &chained, Xff), ip("198.51.100.7"));
        // Two proxies of ours in a row.
        let two = headers(&[("x-forwarded-for", "198.51.100.7, 10.0.0.9")]);
        assert_eq!(at("10.0.0.2", &two, Xff), ip("198.51.100.7"));
        // Only the configured header is read: a Forwarded the proxy passed through from the
        // sender is not believed.
        let both = headers(&[
            (
                "forwarded",
                "for=192.0.2.60;proto=https, for=\"[2001:db8::1]:4711\"",
            ),
            ("x-forwarded-for", "198.51.100.7"),
        ]);
        assert_eq!(at("10.0.0.2", &both, Xff), ip("198.51.100.7"));
        // RFC 7239, with IPv6 and ports, when configured.
        assert_eq!(at("10.0.0.2", &both, Forwarded), ip("2001:db8::1"));
        // An entry the proxy could not fill ends the chain: the proxy itself.
        let hidden = headers(&[("forwarded", "for=192.0.2.66, for=_hidden")]);
        assert_eq!(at("10.0.0.2", &hidden, Forwarded), ip("10.0.0.2"));
        // IPv4-mapped addresses are IPv4.
        assert_eq!(at("::ffff:203.0.113.5", &forged, Xff), ip("203.0.113.5"));
    }
}
