//! The firewall (Kerio 22.2) in force through nftables: the settings and the IP address
//! groups become one table, `inet pbx`, written as nftables' JSON and loaded by
//! `nft -j -f -` in one transaction (the old table goes and the new one comes at once,
//! or nothing changes), then read back with `nft -j list table inet pbx`.
//!
//! The chain accepts everything but the services restricted: a packet for a restricted
//! service's port is accepted from its group's addresses and otherwise dropped (UDP, no
//! answer at all, as for a scanner) or refused (TCP, a reset). Loopback and the replies
//! to the box's own requests (a provider answering its REGISTER) always pass. The web
//! admin, the user portal and provisioning over HTTPS share the web port: nftables
//! admits the union of their groups there, the web server holds each path to its own;
//! there only new connections are refused, so the answer to the request that made a
//! change still reaches the administrator (the web server refuses that connection's
//! next requests if the change shut its address out).

use config::{group_ranges, Config, Firewall};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

/// The table the box owns; nothing else of the host's rules is touched.
pub const TABLE: &str = "pbx";

/// The box's listening ports, which the services are made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ports {
    /// SIP over UDP and TCP.
    pub sip: u16,
    /// SIP over TLS (None: off).
    pub sip_tls: Option<u16>,
    /// HTTPS (web admin, portal, provisioning) and the plain HTTP redirect.
    pub web: Vec<u16>,
    /// TFTP.
    pub tftp: Option<u16>,
    /// The relay's RTP range, both ends included.
    pub rtp: (u16, u16),
}

/// What the page shows of the firewall in force.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Status {
    /// Whether this daemon puts the firewall in force (`--firewall`; off on a
    /// development machine, where the settings are only saved).
    pub enabled: bool,
    /// The configuration revision last put in force.
    pub revision: Option<u64>,
    /// Rules of the table as nftables listed it back after loading (0: no table, as
    /// when nothing is restricted).
    pub rules: usize,
    /// Why the last change could not be put in force.
    pub error: Option<String>,
}

/// How the daemon loads rules and what happened last.
pub struct Enforcer {
    nft: PathBuf,
    status: Mutex<Status>,
}

fn proto_match(proto: &str, port: Value) -> Value {
    json!({"match": {"op": "==", "left": {"payload": {"protocol": proto, "field": "dport"}}, "right": port}})
}

fn ports_value(ports: &[u16]) -> Option<Value> {
    match ports {
        [] => None,
        [p] => Some(json!(p)),
        many => Some(json!({"set": many})),
    }
}

/// The nftables JSON document that puts `fw` in force for `ports`: replaces the table
/// (or removes it when nothing is restricted). `config` gives the groups.
pub fn ruleset(config: &Config, ports: &Ports) -> Value {
    let fw: &Firewall = &config.firewall;
    let table = json!({"family": "inet", "name": TABLE});
    // add + delete makes sure there was one to delete: the same document works on a
    // fresh host and on one that has the table.
    let mut cmds = vec![
        json!({"add": {"table": table}}),
        json!({"delete": {"table": table}}),
    ];
    if !fw.restricts() {
        return json!({ "nftables": cmds });
    }
    cmds.push(json!({"add": {"table": table}}));
    cmds.push(
        json!({"add": {"chain": {"family": "inet", "table": TABLE, "name": "input",
        "type": "filter", "hook": "input", "prio": 0, "policy": "accept"}}}),
    );
    let rule = |expr: Vec<Value>, comment: &str| json!({"add": {"rule": {"family": "inet", "table": TABLE, "chain": "input", "comment": comment, "expr": expr}}});
    cmds.push(rule(
        vec![
            json!({"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "lo"}}),
            json!({"accept": null}),
        ],
        "the box itself",
    ));
    cmds.push(rule(
        vec![
            json!({"match": {"op": "==", "left": {"ct": {"key": "direction"}}, "right": "reply"}}),
            json!({"accept": null}),
        ],
        "answers to the box's own requests",
    ));
    // The web port's groups: any of the three unrestricted leaves the port open.
    let web_groups: Vec<&str> = [&fw.web_admin, &fw.user_portal, &fw.provisioning]
        .into_iter()
        .map(String::as_str)
        .collect();
    let web_open = web_groups.iter().any(|g| g.is_empty());
    let mut services: Vec<(&str, &str, Vec<&str>, Option<Value>)> = vec![
        (
            "sip_udp",
            "udp",
            vec![fw.sip_udp.as_str()],
            Some(json!(ports.sip)),
        ),
        (
            "sip_tcp",
            "tcp",
            vec![fw.sip_tcp.as_str()],
            Some(json!(ports.sip)),
        ),
        (
            "sip_tls",
            "tcp",
            vec![fw.sip_tls.as_str()],
            ports.sip_tls.map(|p| json!(p)),
        ),
        (
            "rtp",
            "udp",
            vec![fw.rtp.as_str()],
            Some(json!({"range": [ports.rtp.0, ports.rtp.1]})),
        ),
        (
            "tftp",
            "udp",
            vec![fw.provisioning.as_str()],
            ports.tftp.map(|p| json!(p)),
        ),
    ];
    if !web_open {
        let mut g = web_groups.clone();
        g.sort_unstable();
        g.dedup();
        services.push(("web", "tcp", g, ports_value(&ports.web)));
    }
    for (name, proto, groups, port) in services {
        let Some(port) = port else { continue };
        if groups.iter().any(|g| g.is_empty()) {
            continue;
        }
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for g in &groups {
            let (a, b) = group_ranges(&config.ip_groups, g);
            v4.extend(a.into_iter().map(|(x, y)| (x as u128, y as u128)));
            v6.extend(b);
        }
        for (family, addrs, ty, field) in [
            ("v4", v4, "ipv4_addr", "ip"),
            ("v6", v6, "ipv6_addr", "ip6"),
        ] {
            if addrs.is_empty() {
                continue;
            }
            let set = format!("{name}_{family}");
            let elem: Vec<Value> = addrs
                .into_iter()
                .map(|(lo, hi)| {
                    let text = |x: u128| {
                        if family == "v4" {
                            Ipv4Addr::from(x as u32).to_string()
                        } else {
                            Ipv6Addr::from(x).to_string()
                        }
                    };
                    if lo == hi {
                        json!(text(lo))
                    } else {
                        json!({"range": [text(lo), text(hi)]})
                    }
                })
                .collect();
            cmds.push(
                json!({"add": {"set": {"family": "inet", "table": TABLE, "name": set,
                "type": ty, "flags": ["interval"], "auto-merge": true, "elem": elem}}}),
            );
            cmds.push(rule(
                vec![
                    proto_match(proto, port.clone()),
                    json!({"match": {"op": "==", "left": {"payload": {"protocol": field, "field": "saddr"}}, "right": format!("@{set}")}}),
                    json!({"accept": null}),
                ],
                &format!("{name} from {}", groups.join(", ")),
            ));
        }
        let mut expr = vec![proto_match(proto, port)];
        if name == "web" {
            // Only new connections: the one that carried the change gets its answer
            // (the web server holds every request to the groups itself).
            expr.push(
                json!({"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": "new"}}),
            );
        }
        expr.push(if proto == "tcp" {
            json!({"reject": {"type": "tcp reset"}})
        } else {
            json!({"drop": null})
        });
        cmds.push(rule(expr, &format!("{name} from elsewhere")));
    }
    json!({ "nftables": cmds })
}

impl Enforcer {
    /// An enforcer running `nft` (a path or a name on PATH).
    pub fn new(nft: impl Into<PathBuf>) -> Enforcer {
        Enforcer {
            nft: nft.into(),
            status: Mutex::new(Status {
                enabled: true,
                ..Status::default()
            }),
        }
    }

    /// A daemon that leaves the host's firewall alone (a development machine).
    pub fn disabled() -> Enforcer {
        Enforcer {
            nft: PathBuf::new(),
            status: Mutex::new(Status::default()),
        }
    }

    pub fn status(&self) -> Status {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Loads `ruleset` (blocking: nft runs as a child) and lists the table back; the
    /// outcome is kept for [`Enforcer::status`] under `revision`.
    pub fn apply(&self, revision: u64, ruleset: &Value) -> Result<usize, String> {
        if !self.status().enabled {
            return Ok(0);
        }
        let r = self.load(ruleset).and_then(|()| self.listed_rules());
        let mut st = self.status.lock().unwrap_or_else(|p| p.into_inner());
        st.revision = Some(revision);
        match &r {
            Ok(n) => {
                st.rules = *n;
                st.error = None;
            }
            Err(e) => st.error = Some(e.clone()),
        }
        r
    }

    /// A newer configuration made the same rules: they are its too.
    pub fn unchanged(&self, revision: u64) {
        let mut st = self.status.lock().unwrap_or_else(|p| p.into_inner());
        if st.error.is_none() {
            st.revision = Some(revision);
        }
    }

    fn run(&self, args: &[&str], input: Option<&[u8]>) -> Result<Vec<u8>, String> {
        let mut child = Command::new(&self.nft)
            .args(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.nft.display()))?;
        // Its answers are read as they come (a listing may pass a pipe's 64 KiB).
        let drain = |r: Option<Box<dyn std::io::Read + Send>>| {
            std::thread::spawn(move || {
                let mut v = Vec::new();
                if let Some(mut r) = r {
                    let _ = r.read_to_end(&mut v);
                }
                v
            })
        };
        let out = drain(child.stdout.take().map(|o| Box::new(o) as _));
        let err = drain(child.stderr.take().map(|e| Box::new(e) as _));
        let fed = match (input, child.stdin.take()) {
            (Some(data), Some(mut stdin)) => stdin.write_all(data),
            _ => Ok(()),
        };
        // nft answers in milliseconds; one that hangs is killed rather than waited for.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let status = loop {
            match child.try_wait() {
                Ok(Some(st)) => break Some(st),
                Ok(None) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
            }
        };
        let (out, err) = (
            out.join().unwrap_or_default(),
            err.join().unwrap_or_default(),
        );
        let Some(status) = status else {
            return Err("nft did not finish within 20 seconds".into());
        };
        if !status.success() {
            return Err(format!(
                "nft refused the rules: {}",
                String::from_utf8_lossy(&err).trim()
            ));
        }
        fed.map_err(|e| format!("cannot feed nft: {e}"))?;
        Ok(out)
    }

    fn load(&self, ruleset: &Value) -> Result<(), String> {
        let doc = serde_json::to_vec(ruleset).expect("JSON serialises");
        self.run(&["-j", "-f", "-"], Some(&doc)).map(|_| ())
    }

    /// Rules in the box's table now (0 when there is no table).
    fn listed_rules(&self) -> Result<usize, String> {
        let out = self.run(&["-j", "list", "tables", "inet"], None)?;
        if !table_listed(&out) {
            return Ok(0);
        }
        let out = self.run(&["-j", "list", "table", "inet", TABLE], None)?;
        let v: Value = serde_json::from_slice(&out)
            .map_err(|e| format!("nft listed something that is not JSON: {e}"))?;
        Ok(count_rules(&v))
    }
}

/// Whether `nft -j list tables` names the box's table.
fn table_listed(out: &[u8]) -> bool {
    serde_json::from_slice::<Value>(out)
        .ok()
        .and_then(|v| v.get("nftables").and_then(Value::as_array).cloned())
        .unwrap_or_default()
        .iter()
        .any(|o| o["table"]["name"] == TABLE && o["table"]["family"] == "inet")
}

/// Rules in an `nft -j list` answer.
pub fn count_rules(listed: &Value) -> usize {
    listed["nftables"]
        .as_array()
        .map_or(0, |a| a.iter().filter(|o| o.get("rule").is_some()).count())
}

#[cfg(test)]
mod tests {
    use super::*;
    use config::{IpGroup, IpItem};

    fn ports() -> Ports {
        Ports {
            sip: 5060,
            sip_tls: Some(5061),
            web: vec![4021, 80],
            tftp: Some(69),
            rtp: (10000, 20000),
        }
    }

    fn config() -> Config {
        Config {
            ip_groups: vec![
                IpGroup {
                    name: "Office".into(),
                    description: String::new(),
                    items: vec![
                        IpItem::Network {
                            network: "192.168.1.0/24".into(),
                            description: String::new(),
                        },
                        IpItem::Host {
                            address: "2001:db8::5".into(),
                            description: String::new(),
                        },
                    ],
                },
                IpGroup {
                    name: "Provider".into(),
                    description: String::new(),
                    items: vec![IpItem::Range {
                        from: "203.0.113.10".into(),
                        to: "203.0.113.12".into(),
                        description: String::new(),
                    }],
                },
            ],
            ..Config::default()
        }
    }

    fn rules(v: &Value) -> Vec<&Value> {
        v["nftables"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["add"].get("rule"))
            .collect()
    }

    #[test]
    fn nothing_restricted_removes_the_table() {
        let v = ruleset(&config(), &ports());
        let cmds = v["nftables"].as_array().unwrap();
        assert_eq!(cmds.len(), 2);
        assert!(cmds[1]["delete"]["table"]["name"] == TABLE);
    }

    #[test]
    fn a_restricted_service_accepts_its_group_and_drops_the_rest() {
        let mut c = config();
        c.firewall.sip_udp = "Office".into();
        c.firewall.sip_tls = "Provider".into();
        let v = ruleset(&c, &ports());
        let r = rules(&v);
        let comments: Vec<&str> = r.iter().map(|r| r["comment"].as_str().unwrap()).collect();
        assert_eq!(
            comments,
            [
                "the box itself",
                "answers to the box's own requests",
                "sip_udp from Office",
                "sip_udp from Office",
                "sip_udp from elsewhere",
                "sip_tls from Provider",
                "sip_tls from elsewhere",
            ]
        );
        // UDP is dropped, TCP refused with a reset.
        assert_eq!(r[4]["expr"][1], json!({"drop": null}));
        assert_eq!(r[6]["expr"][1], json!({"reject": {"type": "tcp reset"}}));
        assert_eq!(r[5]["expr"][0]["match"]["right"], json!(5061));
        let sets: Vec<&Value> = v["nftables"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["add"].get("set"))
            .collect();
        assert_eq!(sets[0]["name"], "sip_udp_v4");
        assert_eq!(
            sets[0]["elem"],
            json!([{"range": ["192.168.1.0", "192.168.1.255"]}])
        );
        assert_eq!(sets[1]["name"], "sip_udp_v6");
        assert_eq!(sets[1]["elem"], json!(["2001:db8::5"]));
        assert_eq!(
            sets[2]["elem"],
            json!([{"range": ["203.0.113.10", "203.0.113.12"]}])
        );
    }

    #[test]
    fn the_web_port_is_held_only_when_all_three_of_its_services_are() {
        let mut c = config();
        c.firewall.web_admin = "Office".into();
        c.firewall.provisioning = "Office".into();
        let v = ruleset(&c, &ports());
        let names: Vec<String> = rules(&v)
            .iter()
            .map(|r| r["comment"].as_str().unwrap().to_string())
            .collect();
        // The portal is open: the web port stays open (the web server holds /admin);
        // TFTP is provisioning's own.
        assert!(names.iter().all(|n| !n.starts_with("web")), "{names:?}");
        assert!(names.contains(&"tftp from elsewhere".to_string()));
        c.firewall.user_portal = "Provider".into();
        let v = ruleset(&c, &ports());
        let r = rules(&v);
        let web: Vec<&&Value> = r
            .iter()
            .filter(|r| r["comment"].as_str().unwrap().starts_with("web"))
            .collect();
        assert_eq!(web[0]["comment"], "web from Office, Provider");
        assert_eq!(
            web[0]["expr"][0]["match"]["right"],
            json!({"set": [4021, 80]})
        );
        assert_eq!(web.len(), 3);
        assert_eq!(
            web[2]["expr"][1]["match"]["left"],
            json!({"ct": {"key": "state"}})
        );
    }

    #[test]
    fn an_empty_group_of_a_family_only_drops() {
        let mut c = config();
        c.firewall.rtp = "Provider".into();
        let v = ruleset(&c, &ports());
        let r = rules(&v);
        assert_eq!(r.len(), 4, "{r:?}");
        assert_eq!(
            r[3]["expr"][0]["match"]["right"],
            json!({"range": [10000, 20000]})
        );
    }

    #[test]
    fn a_missing_nft_is_an_error_not_a_panic() {
        let e = Enforcer::new("/nonexistent/nft");
        let err = e.apply(3, &json!({"nftables": []})).unwrap_err();
        assert!(err.contains("cannot run"), "{err}");
        let st = e.status();
        assert_eq!(st.revision, Some(3));
        assert!(st.error.is_some());
        assert_eq!(Enforcer::disabled().apply(1, &json!({})), Ok(0));
    }

    #[test]
    fn listing_counts_rules_and_finds_the_table() {
        let listed = json!({"nftables": [{"metainfo": {}}, {"table": {"family": "inet", "name": "pbx"}},
            {"chain": {}}, {"rule": {}}, {"rule": {}}]});
        assert_eq!(count_rules(&listed), 2);
        assert!(table_listed(listed.to_string().as_bytes()));
        assert!(!table_listed(
            b"{\"nftables\": [{\"table\": {\"family\": \"ip\", \"name\": \"pbx\"}}]}"
        ));
        assert!(!table_listed(b"not json"));
    }
}
