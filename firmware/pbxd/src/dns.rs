//! RFC 3263 server location for providers and links given by a DNS name: NAPTR for
//! the transport, SRV for hosts and ports by priority and weight, then A/AAAA. An
//! explicit port skips NAPTR and SRV (RFC 3263 4.2).

use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig, ResolverOpts};
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::TokioAsyncResolver;
use std::net::SocketAddr;
use std::sync::OnceLock;

static RESOLVER: OnceLock<TokioAsyncResolver> = OnceLock::new();

/// Uses `server` instead of the system's name servers (tests, or a box without
/// resolv.conf).
pub fn init(server: Option<SocketAddr>) {
    let r = match server {
        Some(s) => {
            let group = NameServerConfigGroup::from_ips_clear(&[s.ip()], s.port(), true);
            TokioAsyncResolver::tokio(ResolverConfig::from_parts(None, vec![], group), opts())
        }
        None => match TokioAsyncResolver::tokio_from_system_conf() {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("no system resolver configuration ({e}); using none");
                TokioAsyncResolver::tokio(
                    ResolverConfig::from_parts(None, vec![], NameServerConfigGroup::new()),
                    opts(),
                )
            }
        },
    };
    let _ = RESOLVER.set(r);
}

fn opts() -> ResolverOpts {
    let mut o = ResolverOpts::default();
    o.timeout = std::time::Duration::from_secs(3);
    o.attempts = 2;
    o
}

/// Addresses of a SIP server, in the order to try.
pub async fn resolve(host: &str, port: u16, proto: sip::transport::Proto) -> Vec<SocketAddr> {
    use sip::transport::Proto;
    let Some(r) = RESOLVER.get() else {
        return Vec::new();
    };
    if port != 0 {
        return a_records(r, host, port).await;
    }
    let (want, srv, default_port) = match proto {
        Proto::Udp => ("SIP+D2U", "_sip._udp", 5060),
        Proto::Tcp => ("SIP+D2T", "_sip._tcp", 5060),
        Proto::Tls => ("SIPS+D2T", "_sips._tcp", 5061),
        // The box opens no WebSocket (providers and links are reached over UDP, TCP
        // or TLS).
        Proto::Wss => return Vec::new(),
    };
    let mut srv_name = format!("{srv}.{host}");
    // NAPTR: the replacement for our transport, lowest order then preference.
    if let Ok(l) = r.lookup(host, RecordType::NAPTR).await {
        let mut best: Option<(u16, u16, String)> = None;
        for rd in l.iter() {
            if let RData::NAPTR(n) = rd {
                let service = String::from_utf8_lossy(n.services()).to_ascii_uppercase();
                let flags = String::from_utf8_lossy(n.flags()).to_ascii_lowercase();
                if service == want && flags == "s" {
                    let key = (n.order(), n.preference(), n.replacement().to_utf8());
                    if best.as_ref().is_none_or(|b| (key.0, key.1) < (b.0, b.1)) {
                        best = Some(key);
                    }
                }
            }
        }
        if let Some((_, _, name)) = best {
            srv_name = name.trim_end_matches('.').to_string();
        }
    }
    if let Ok(srv) = r.srv_lookup(srv_name.as_str()).await {
        let mut records: Vec<_> = srv
            .iter()
            .map(|s| {
                (
                    s.priority(),
                    std::cmp::Reverse(s.weight()),
                    s.target().to_utf8(),
                    s.port(),
                )
            })
            .collect();
        records.sort();
        let mut out = Vec::new();
        for (_, _, target, port) in records {
            out.extend(a_records(r, target.trim_end_matches('.'), port).await);
        }
        if !out.is_empty() {
            return out;
        }
    }
    a_records(r, host, default_port).await
}

async fn a_records(r: &TokioAsyncResolver, host: &str, port: u16) -> Vec<SocketAddr> {
    if let Ok(ip) = host.parse() {
        return vec![SocketAddr::new(ip, port)];
    }
    match r.lookup_ip(host).await {
        Ok(l) => l.iter().map(|ip| SocketAddr::new(ip, port)).collect(),
        Err(_) => Vec::new(),
    }
}
