//! IP address groups (Kerio 26): named sets of hosts, networks, address ranges and other
//! groups, defined once and named wherever access is decided (the firewall's services,
//! provisioning, accounts' allowed addresses).

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::IpAddr;

/// Items per group.
pub const MAX_IP_ITEMS: usize = 256;

/// One entry of a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum IpItem {
    /// One computer: `192.168.15.3`, `2001:db8::7`.
    Host {
        address: String,
        #[serde(default)]
        description: String,
    },
    /// A subnet: `192.168.1.0/24`.
    Network {
        network: String,
        #[serde(default)]
        description: String,
    },
    /// The first and the last address, both included, of one family.
    Range {
        from: String,
        to: String,
        #[serde(default)]
        description: String,
    },
    /// Every address of another group.
    Group {
        group: String,
        #[serde(default)]
        description: String,
    },
}

/// An IP address group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpGroup {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub items: Vec<IpItem>,
}

/// `a.b.c.d/n` or `x::/n` as (network address, prefix length); host bits must be zero.
pub fn parse_network(s: &str) -> Option<(IpAddr, u8)> {
    let (a, n) = s.split_once('/')?;
    let a: IpAddr = a.parse().ok()?;
    let n: u8 = n.parse().ok()?;
    let bits = if a.is_ipv4() { 32 } else { 128 };
    if n > bits || to_u128(a) & !mask(n, bits) != 0 {
        return None;
    }
    Some((a, n))
}

fn to_u128(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u32::from(v) as u128,
        IpAddr::V6(v) => u128::from(v),
    }
}

fn mask(n: u8, bits: u8) -> u128 {
    let all: u128 = if bits == 32 {
        u32::MAX as u128
    } else {
        u128::MAX
    };
    // n = 0: every bit is a host bit (and 1 << 128 would overflow).
    if n == 0 {
        0
    } else {
        all & !((1u128 << (bits - n)) - 1)
    }
}

/// An IPv4-mapped IPv6 address (a dual-stack socket's view) as IPv4.
fn canonical(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V6(v) => v.to_ipv4_mapped().map_or(a, IpAddr::V4),
        v4 => v4,
    }
}

impl IpItem {
    /// What is wrong with the item by itself.
    pub(crate) fn problem(&self) -> Option<String> {
        let mapped = |s: &str| {
            s.split('/')
                .next()
                .and_then(|a| a.parse::<std::net::Ipv6Addr>().ok())
                .is_some_and(|a| a.to_ipv4_mapped().is_some())
        };
        if self.description().contains(';') {
            return Some("a description has no ;".into());
        }
        match self {
            IpItem::Network { network: a, .. } | IpItem::Range { from: a, .. } | IpItem::Range { to: a, .. }
                if mapped(a) =>
            {
                Some(format!("{a}: write IPv4-mapped addresses as IPv4"))
            }
            IpItem::Host { address, .. } => address
                .parse::<IpAddr>()
                .is_err()
                .then(|| format!("{address:?} is not an IP address")),
            IpItem::Network { network, .. } => parse_network(network).is_none().then(|| {
                format!("{network:?} is not a network (address/prefix with the host bits zero)")
            }),
            IpItem::Range { from, to, .. } => match (from.parse::<IpAddr>(), to.parse::<IpAddr>())
            {
                (Ok(f), Ok(t)) if f.is_ipv4() == t.is_ipv4() && to_u128(f) <= to_u128(t) => None,
                _ => Some(format!(
                    "{from} - {to} is not a range (two addresses of one family, the first not above the last)"
                )),
            },
            IpItem::Group { .. } => None,
        }
    }

    pub fn description(&self) -> &str {
        match self {
            IpItem::Host { description, .. }
            | IpItem::Network { description, .. }
            | IpItem::Range { description, .. }
            | IpItem::Group { description, .. } => description,
        }
    }
}

/// The groups `names` reach: those groups and every group they name, each once (so
/// circles and diamonds cost nothing); unknown names reach nothing.
pub fn reached<'a>(groups: &'a [IpGroup], names: &[&str]) -> Vec<&'a IpGroup> {
    let by_name: HashMap<&str, &IpGroup> = groups.iter().map(|g| (g.name.as_str(), g)).collect();
    let mut seen = std::collections::HashSet::new();
    let mut todo: Vec<&str> = names.to_vec();
    let mut out = Vec::new();
    while let Some(n) = todo.pop() {
        if !seen.insert(n) {
            continue;
        }
        let Some(g) = by_name.get(n) else { continue };
        out.push(*g);
        todo.extend(g.items.iter().filter_map(|i| match i {
            IpItem::Group { group, .. } => Some(group.as_str()),
            _ => None,
        }));
    }
    out
}

/// Whether `ip` is in group `name` of `groups` (false for an unknown group).
pub fn group_contains(groups: &[IpGroup], name: &str, ip: IpAddr) -> bool {
    let ip = canonical(ip);
    reached(groups, &[name]).into_iter().any(|g| holds(g, ip))
}

/// A group's addresses as (first, last) ranges: IPv4, then IPv6.
pub type GroupRanges = (Vec<(u32, u32)>, Vec<(u128, u128)>);

/// Every address of group `name` (its own items and the groups it names, each once) as
/// sorted, merged ranges of first and last address: IPv4 apart from IPv6. An unknown
/// group has none. What the firewall's address sets are made of.
pub fn group_ranges(groups: &[IpGroup], name: &str) -> GroupRanges {
    let (mut v4, mut v6) = (Vec::new(), Vec::new());
    for g in reached(groups, &[name]) {
        for i in &g.items {
            let r = match i {
                IpItem::Host { address, .. } => address
                    .parse::<IpAddr>()
                    .ok()
                    .map(canonical)
                    .map(|a| (a.is_ipv4(), to_u128(a), to_u128(a))),
                IpItem::Network { network, .. } => parse_network(network).map(|(a, n)| {
                    let bits = if a.is_ipv4() { 32 } else { 128 };
                    let lo = to_u128(a);
                    let all = if bits == 32 {
                        u32::MAX as u128
                    } else {
                        u128::MAX
                    };
                    (a.is_ipv4(), lo, lo | (all & !mask(n, bits)))
                }),
                IpItem::Range { from, to, .. } => {
                    match (from.parse::<IpAddr>(), to.parse::<IpAddr>()) {
                        (Ok(f), Ok(t))
                            if f.is_ipv4() == t.is_ipv4() && to_u128(f) <= to_u128(t) =>
                        {
                            Some((f.is_ipv4(), to_u128(f), to_u128(t)))
                        }
                        _ => None,
                    }
                }
                IpItem::Group { .. } => None,
            };
            match r {
                Some((true, lo, hi)) => v4.push((lo, hi)),
                Some((false, lo, hi)) => v6.push((lo, hi)),
                None => {}
            }
        }
    }
    let v4 = merge(v4)
        .into_iter()
        .map(|(a, b)| (a as u32, b as u32))
        .collect();
    (v4, merge(v6))
}

/// Sorted ranges with the overlapping and touching ones joined.
fn merge(mut v: Vec<(u128, u128)>) -> Vec<(u128, u128)> {
    v.sort_unstable();
    let mut out: Vec<(u128, u128)> = Vec::with_capacity(v.len());
    for (lo, hi) in v {
        match out.last_mut() {
            Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

/// Whether one of the group's own addresses, networks or ranges holds `ip`.
fn holds(g: &IpGroup, ip: IpAddr) -> bool {
    let x = to_u128(ip);
    g.items.iter().any(|i| match i {
        IpItem::Host { address, .. } => address.parse::<IpAddr>().is_ok_and(|a| canonical(a) == ip),
        IpItem::Network { network, .. } => parse_network(network).is_some_and(|(a, n)| {
            let bits = if a.is_ipv4() { 32 } else { 128 };
            a.is_ipv4() == ip.is_ipv4() && x & mask(n, bits) == to_u128(a)
        }),
        IpItem::Range { from, to, .. } => match (from.parse::<IpAddr>(), to.parse::<IpAddr>()) {
            (Ok(f), Ok(t)) => f.is_ipv4() == ip.is_ipv4() && (to_u128(f)..=to_u128(t)).contains(&x),
            _ => false,
        },
        IpItem::Group { .. } => false,
    })
}

/// The groups that name themselves through others (each circle once, by a member).
pub(crate) fn circles(groups: &[IpGroup]) -> Vec<String> {
    let by_name: HashMap<&str, &IpGroup> = groups.iter().map(|g| (g.name.as_str(), g)).collect();
    let mut found = Vec::new();
    for g in groups {
        // Depth-first from g: does any path come back to g?
        let mut stack: Vec<(&str, usize)> = vec![(g.name.as_str(), 0)];
        let mut seen = std::collections::HashSet::new();
        while let Some((n, d)) = stack.pop() {
            let Some(x) = by_name.get(n) else { continue };
            for i in &x.items {
                if let IpItem::Group { group, .. } = i {
                    if group == &g.name {
                        found.push(g.name.clone());
                        stack.clear();
                        break;
                    }
                    if d < groups.len() && seen.insert(group.as_str()) {
                        stack.push((group.as_str(), d + 1));
                    }
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(a: &str) -> IpItem {
        IpItem::Host {
            address: a.into(),
            description: String::new(),
        }
    }

    #[test]
    fn hosts_networks_ranges_and_groups_hold_their_addresses() {
        let groups = vec![
            IpGroup {
                name: "Admins".into(),
                description: String::new(),
                items: vec![
                    host("192.168.15.3"),
                    IpItem::Network {
                        network: "10.1.0.0/16".into(),
                        description: String::new(),
                    },
                    IpItem::Range {
                        from: "172.16.0.10".into(),
                        to: "172.16.0.20".into(),
                        description: String::new(),
                    },
                    IpItem::Network {
                        network: "2001:db8::/32".into(),
                        description: String::new(),
                    },
                ],
            },
            IpGroup {
                name: "Office".into(),
                description: String::new(),
                items: vec![
                    IpItem::Group {
                        group: "Admins".into(),
                        description: String::new(),
                    },
                    host("192.168.15.4"),
                ],
            },
        ];
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        for (g, a, want) in [
            ("Admins", "192.168.15.3", true),
            ("Admins", "::ffff:192.168.15.3", true),
            ("Admins", "192.168.15.4", false),
            ("Admins", "10.1.255.255", true),
            ("Admins", "10.2.0.0", false),
            ("Admins", "172.16.0.20", true),
            ("Admins", "172.16.0.21", false),
            ("Admins", "2001:db8:1::5", true),
            ("Admins", "2001:db9::5", false),
            ("Office", "10.1.2.3", true),
            ("Office", "192.168.15.4", true),
            ("Office", "192.168.15.5", false),
            ("Nobody", "192.168.15.3", false),
        ] {
            assert_eq!(group_contains(&groups, g, ip(a)), want, "{g} {a}");
        }
        assert!(parse_network("0.0.0.0/0").is_some());
        assert!(parse_network("10.1.0.1/16").is_none());
        assert!(parse_network("10.1.0.0/33").is_none());
        assert!(parse_network("10.1.0.0").is_none());
        assert_eq!(circles(&groups), Vec::<String>::new());
    }

    #[test]
    fn circles_are_found_and_do_not_loop() {
        let g = |name: &str, other: &str| IpGroup {
            name: name.into(),
            description: String::new(),
            items: vec![IpItem::Group {
                group: other.into(),
                description: String::new(),
            }],
        };
        let groups = vec![g("a", "b"), g("b", "c"), g("c", "a"), g("d", "a")];
        let mut c = circles(&groups);
        c.sort();
        assert_eq!(c, ["a", "b", "c"]);
        assert!(!group_contains(&groups, "d", "10.0.0.1".parse().unwrap()));
        // Twenty levels, each naming the next 256 times: each is looked into once.
        let deep: Vec<IpGroup> = (0..20)
            .map(|n| IpGroup {
                name: format!("g{n}"),
                description: String::new(),
                items: if n == 19 {
                    vec![host("10.9.9.9")]
                } else {
                    (0..256)
                        .map(|_| IpItem::Group {
                            group: format!("g{}", n + 1),
                            description: String::new(),
                        })
                        .collect()
                },
            })
            .collect();
        assert!(group_contains(&deep, "g0", "10.9.9.9".parse().unwrap()));
        assert!(!group_contains(&deep, "g0", "10.9.9.8".parse().unwrap()));
    }

    #[test]
    fn ranges_flatten_nested_groups_and_merge() {
        let host = |a: &str| IpItem::Host {
            address: a.into(),
            description: String::new(),
        };
        let groups = vec![
            IpGroup {
                name: "Office".into(),
                description: String::new(),
                items: vec![
                    IpItem::Network {
                        network: "10.0.0.0/24".into(),
                        description: String::new(),
                    },
                    host("10.0.1.0"),
                    host("10.0.0.7"),
                    IpItem::Group {
                        group: "Admins".into(),
                        description: String::new(),
                    },
                    IpItem::Group {
                        group: "Office".into(),
                        description: String::new(),
                    },
                ],
            },
            IpGroup {
                name: "Admins".into(),
                description: String::new(),
                items: vec![
                    IpItem::Range {
                        from: "192.168.1.10".into(),
                        to: "192.168.1.20".into(),
                        description: String::new(),
                    },
                    host("2001:db8::1"),
                    IpItem::Network {
                        network: "2001:db8::/127".into(),
                        description: String::new(),
                    },
                ],
            },
        ];
        let (v4, v6) = group_ranges(&groups, "Office");
        let ip4 = |s: &str| u32::from(s.parse::<std::net::Ipv4Addr>().unwrap());
        assert_eq!(
            v4,
            vec![
                (ip4("10.0.0.0"), ip4("10.0.1.0")),
                (ip4("192.168.1.10"), ip4("192.168.1.20"))
            ]
        );
        let ip6 = |s: &str| u128::from(s.parse::<std::net::Ipv6Addr>().unwrap());
        assert_eq!(v6, vec![(ip6("2001:db8::"), ip6("2001:db8::1"))]);
        assert_eq!(group_ranges(&groups, "Nobody"), (vec![], vec![]));
        let all = IpGroup {
            name: "All".into(),
            description: String::new(),
            items: vec![IpItem::Network {
                network: "0.0.0.0/0".into(),
                description: String::new(),
            }],
        };
        assert_eq!(group_ranges(&[all], "All").0, vec![(0, u32::MAX)]);
    }
}
