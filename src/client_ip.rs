//! Who is the client? The TCP peer, unless the peer is a trusted proxy: then the
//! right-most `X-Forwarded-For` address that is not itself a trusted proxy. Nothing else
//! in the request is believed.

use std::net::{IpAddr, SocketAddr};

use crate::config::Cidr;

/// Entries of `X-Forwarded-For` looked at, from the right. A chain of real proxies is
/// short; this bounds the work a hostile header can cause.
const MAX_HOPS: usize = 32;

pub fn client_ip<'a>(
    peer: IpAddr,
    forwarded_for: impl DoubleEndedIterator<Item = &'a [u8]>,
    trusted: &[Cidr],
) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|c| c.0.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    // Several X-Forwarded-For headers count as one list, in order.
    let mut last_trusted = peer;
    let entries = forwarded_for
        .rev()
        .flat_map(|header| header.rsplit(|b| *b == b','))
        .take(MAX_HOPS);
    for entry in entries {
        let Some(ip) = parse_entry(entry) else {
            // A hop we cannot read: the proxy that wrote it is as far as we can trust.
            return last_trusted;
        };
        if !is_trusted(&ip) {
            return ip;
        }
        last_trusted = ip;
    }
    last_trusted
}

/// A request carried `X-Forwarded-For` from a peer that is not a trusted proxy: most
/// likely Doorman runs behind a proxy that `server.trusted_proxies` does not list, and
/// every person then shares the proxy's address (in the rate limits, in every session's
/// IP and location). Said once per process: a log line per request would drown the log.
fn warn_untrusted_forwarding(peer: IpAddr, trusted: &[Cidr]) {
    use std::sync::atomic::{AtomicBool, Ordering};
    static WARNED: AtomicBool = AtomicBool::new(false);
    let peer = peer.to_canonical();
    if trusted.iter().any(|c| c.0.contains(&peer)) || WARNED.swap(true, Ordering::Relaxed) {
        return;
    }
    tracing::warn!(
        %peer,
        "a request carried X-Forwarded-For from {peer}, which is not in server.trusted_proxies: \
         the header is ignored and the peer's address is used. If Doorman runs behind a \
         proxy, list the proxy's address in server.trusted_proxies (said once)"
    );
}

fn parse_entry(raw: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(raw).ok()?.trim();
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(|ip| ip.to_canonical())
}

/// Whether the request's TCP peer is one of the trusted proxies: only such a peer's
/// forwarding headers are believed.
pub fn peer_is_trusted(req: &poem::Request, trusted: &[Cidr]) -> bool {
    req.remote_addr()
        .as_socket_addr()
        .map(|a| a.ip().to_canonical())
        .is_some_and(|ip| trusted.iter().any(|c| c.0.contains(&ip)))
}

/// The client's address alone (per the trusted-proxy rule), without allocating: for a
/// peer that is not a trusted proxy, the peer's address.
pub fn ip_of(req: &poem::Request, trusted: &[Cidr]) -> IpAddr {
    let peer = req
        .remote_addr()
        .as_socket_addr()
        .map(|a| a.ip())
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let xff = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .map(|v| v.as_bytes());
    client_ip(peer, xff, trusted)
}

/// The client as far as we believe it: address (per the trusted-proxy rule) and the
/// cleaned User-Agent.
pub fn from_request(req: &poem::Request, trusted: &[Cidr]) -> crate::model::ClientInfo {
    let peer = req
        .remote_addr()
        .as_socket_addr()
        .map(|a| a.ip())
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let xff = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .map(|v| v.as_bytes())
        .collect::<Vec<_>>();
    let ua = req.headers().get("user-agent").map(|v| v.as_bytes());
    if !xff.is_empty() {
        warn_untrusted_forwarding(peer, trusted);
    }
    crate::model::ClientInfo {
        ip: client_ip(peer, xff.into_iter(), trusted),
        user_agent: crate::ua::clean_user_agent(ua),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidrs(list: &[&str]) -> Vec<Cidr> {
        list.iter().map(|s| Cidr(s.parse().unwrap())).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peer_is_the_client() {
        let xff: [&[u8]; 1] = [b"1.2.3.4"];
        assert_eq!(
            client_ip(ip("8.8.8.8"), xff.into_iter(), &cidrs(&["10.0.0.0/8"])),
            ip("8.8.8.8")
        );
    }

    #[test]
    fn rightmost_untrusted_hop_wins() {
        let xff: [&[u8]; 1] = [b"6.6.6.6, 81.2.69.142, 10.0.0.2"];
        let got = client_ip(ip("10.0.0.1"), xff.into_iter(), &cidrs(&["10.0.0.0/8"]));
        assert_eq!(got, ip("81.2.69.142"));
    }

    #[test]
    fn multiple_headers_and_ports() {
        let xff: [&[u8]; 2] = [b"9.9.9.9", b"[2001:db8::1]:443, 10.1.1.1"];
        let got = client_ip(ip("10.0.0.1"), xff.into_iter(), &cidrs(&["10.0.0.0/8"]));
        assert_eq!(got, ip("2001:db8::1"));
    }

    #[test]
    fn garbage_stops_at_last_trusted_hop() {
        let xff: [&[u8]; 1] = [b"1.1.1.1, \xff\xfe, 10.0.0.7"];
        let got = client_ip(ip("10.0.0.1"), xff.into_iter(), &cidrs(&["10.0.0.0/8"]));
        assert_eq!(got, ip("10.0.0.7"));
        let none: [&[u8]; 0] = [];
        assert_eq!(
            client_ip(ip("10.0.0.1"), none.into_iter(), &cidrs(&["10.0.0.0/8"])),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn mapped_v6_peer_is_canonical() {
        let none: [&[u8]; 0] = [];
        let got = client_ip(
            ip("::ffff:127.0.0.1"),
            none.into_iter(),
            &cidrs(&["127.0.0.1/32"]),
        );
        assert_eq!(got, ip("127.0.0.1"));
    }
}
