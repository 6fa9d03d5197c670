//! Hostile `X-Forwarded-For` headers (the input split on newlines, one header each)
//! from a peer chosen by the first byte: never a panic, and an untrusted peer is always
//! the client whatever the headers say.
#![no_main]

use std::net::IpAddr;

use doorman::client_ip::client_ip;
use doorman::config::Cidr;
use libfuzzer_sys::fuzz_target;

const TRUSTED: [&str; 3] = ["10.0.0.0/8", "127.0.0.1/32", "2001:db8::/32"];
const PEERS: [&str; 5] = [
    "10.0.0.1",
    "127.0.0.1",
    "2001:db8::1",
    "::ffff:10.1.2.3",
    "203.0.113.9",
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let trusted: Vec<Cidr> = TRUSTED
        .iter()
        .filter_map(|c| c.parse().ok())
        .map(Cidr)
        .collect();
    let Ok(peer) = PEERS[usize::from(pick) % PEERS.len()].parse::<IpAddr>() else {
        return;
    };
    let headers: Vec<&[u8]> = rest.split(|b| *b == b'\n').collect();
    let ip = client_ip(peer, headers.iter().copied(), &trusted);
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|c| c.0.contains(ip));
    if !is_trusted(&peer.to_canonical()) {
        assert_eq!(ip, peer.to_canonical());
    }
    assert_eq!(ip, ip.to_canonical());
});
