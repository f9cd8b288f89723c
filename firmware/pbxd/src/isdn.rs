//! The ISDN interfaces' gateways (crate `spans`): one task per enabled interface,
//! started, restarted and stopped as the configuration changes; and the snapshot the
//! core works from, in which each ISDN interface is a SIP provider at its gateway's
//! loopback address.

use config::{Config, IsdnInterface, Snapshot};
use spans::gateway::{self, GatewayConfig, SpanStatus, Status};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;

struct Running {
    iface: IsdnInterface,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    status: Status,
}

pub struct Spans {
    core: SocketAddr,
    running: HashMap<String, Running>,
}

impl Spans {
    /// `core` is pbxd's SIP address as the gateways reach it.
    pub fn new(sip: SocketAddr) -> Spans {
        let ip = if sip.ip().is_unspecified() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            sip.ip()
        };
        Spans {
            core: SocketAddr::new(ip, sip.port()),
            running: HashMap::new(),
        }
    }

    /// The core's view of `snap`: each running ISDN interface added as a SIP provider
    /// at its gateway's address.
    pub fn for_core(&self, snap: Arc<Snapshot>) -> Arc<Snapshot> {
        if snap.config.isdn_interfaces.is_empty() {
            return snap;
        }
        let mut c: Config = snap.config.clone();
        for iface in &snap.config.isdn_interfaces {
            if let Some(r) = self.running.get(&iface.name) {
                c.sip_interfaces
                    .push(iface.as_sip(&r.addr.ip().to_string(), r.addr.port()));
            }
        }
        Arc::new(Snapshot::new(snap.revision, c))
    }

    /// Starts what is new or changed, stops what is gone or disabled.
    pub fn reconcile(&mut self, cfg: &Config) {
        let wanted: HashMap<&str, (usize, &IsdnInterface)> = cfg
            .isdn_interfaces
            .iter()
            .enumerate()
            .filter(|(_, i)| i.enabled)
            .map(|(n, i)| (i.name.as_str(), (n, i)))
            .collect();
        self.running.retain(|name, r| {
            let keep = wanted
                .get(name.as_str())
                .is_some_and(|(n, i)| **i == r.iface && spans::gateway_ip(*n) == r.addr.ip());
            if !keep {
                tracing::info!(interface = %name, "stopping ISDN span");
                let _ = r.stop.send(true);
            }
            keep
        });
        for (name, (n, iface)) in wanted {
            if self.running.contains_key(name) {
                continue;
            }
            let sock = match std::net::UdpSocket::bind((spans::gateway_ip(n), 0)) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(interface = %name, "cannot bind the span's gateway: {e}");
                    continue;
                }
            };
            let Ok(addr) = sock.local_addr() else {
                continue;
            };
            let (stop, rx) = watch::channel(false);
            let status: Status = Default::default();
            tracing::info!(interface = %name, gateway = %addr, "starting ISDN span");
            let g = GatewayConfig {
                iface: iface.clone(),
                sip: sock,
                core: self.core,
            };
            tokio::spawn(gateway::run(g, status.clone(), rx));
            self.running.insert(
                name.to_string(),
                Running {
                    iface: iface.clone(),
                    addr,
                    stop,
                    status,
                },
            );
        }
    }

    /// Each running span's state.
    pub fn status(&self) -> HashMap<String, SpanStatus> {
        self.running
            .iter()
            .map(|(n, r)| {
                let s = r.status.lock().unwrap_or_else(|p| p.into_inner()).clone();
                (n.clone(), s)
            })
            .collect()
    }

    /// Every configured ISDN interface's state as JSON, by name: the gateway's for
    /// those running, else why not ("disabled", or "not running" when it failed).
    pub fn states(&self, cfg: &Config) -> serde_json::Map<String, serde_json::Value> {
        let live = self.status();
        cfg.isdn_interfaces
            .iter()
            .map(|i| {
                let v = match live.get(&i.name) {
                    Some(s) => serde_json::to_value(s).expect("serialises"),
                    None => serde_json::json!({
                        "link_up": false,
                        "calls": 0,
                        "channels_busy": [],
                        "detail": if i.enabled { "not running (see the log)" } else { "disabled" },
                    }),
                };
                (i.name.clone(), v)
            })
            .collect()
    }

    pub fn stop_all(&mut self) {
        for r in self.running.values() {
            let _ = r.stop.send(true);
        }
    }
}
