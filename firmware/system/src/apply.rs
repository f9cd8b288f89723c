//! Puts network settings into force through the kernel's netlink interface (rtnetlink):
//! links up, IPv4 addresses replaced, the default route; DHCP by the DHCP client the
//! image ships (busybox udhcpc); DNS servers into `resolv.conf`; the host name.

use crate::network::{write_atomic, NetworkSettings};
use futures_util::TryStreamExt;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::route::{RouteAttribute, RouteMessage};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::{Handle, LinkUnspec, RouteMessageBuilder};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::Command;

/// Where and how settings are applied.
#[derive(Debug, Clone)]
pub struct Applier {
    /// Files are written under this root (`/` on the box; a folder in tests).
    pub root: PathBuf,
    /// The DHCP client's command (busybox udhcpc), started per DHCP interface.
    pub dhcp_client: Vec<String>,
    /// The script udhcpc runs to put a lease into force.
    pub dhcp_script: PathBuf,
    /// Where the DHCP clients' pid files go.
    pub run_dir: PathBuf,
    /// Set the kernel's host name too (off in tests outside a UTS namespace).
    pub set_hostname: bool,
}

impl Default for Applier {
    fn default() -> Applier {
        Applier {
            root: PathBuf::from("/"),
            dhcp_client: vec!["/sbin/udhcpc".into()],
            dhcp_script: PathBuf::from("/usr/share/udhcpc/default.script"),
            run_dir: PathBuf::from("/run"),
            set_hostname: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Invalid(#[from] crate::network::Invalid),
    #[error("netlink: {0}")]
    Netlink(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

fn nl(e: rtnetlink::Error) -> ApplyError {
    ApplyError::Netlink(e.to_string())
}

/// What one interface looks like now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkState {
    pub name: String,
    pub up: bool,
    pub addresses: Vec<(Ipv4Addr, u8)>,
}

/// A netlink connection on the current thread's network namespace.
pub struct Net {
    handle: Handle,
}

impl Net {
    /// Opens the connection; its driver runs on the current tokio runtime.
    pub fn open() -> Result<Net, ApplyError> {
        let (conn, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(conn);
        Ok(Net { handle })
    }

    async fn index(&self, name: &str) -> Result<Option<u32>, ApplyError> {
        let mut s = self.handle.link().get().match_name(name.into()).execute();
        match s.try_next().await {
            Ok(Some(l)) => Ok(Some(l.header.index)),
            Ok(None) => Ok(None),
            // The kernel answers ENODEV for a name it does not know.
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -19 => Ok(None),
            Err(e) => Err(nl(e)),
        }
    }

    /// Every link with its IPv4 addresses (loopback left out).
    pub async fn links(&self) -> Result<Vec<LinkState>, ApplyError> {
        use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags};
        let mut out = Vec::new();
        let mut s = self.handle.link().get().execute();
        while let Some(l) = s.try_next().await.map_err(nl)? {
            if l.header.flags.contains(LinkFlags::Loopback) {
                continue;
            }
            let name = l
                .attributes
                .iter()
                .find_map(|a| match a {
                    LinkAttribute::IfName(n) => Some(n.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            let addresses = self
                .v4_addresses(l.header.index)
                .await?
                .iter()
                .filter_map(|m| addr_of(m).map(|a| (a, m.header.prefix_len)))
                .collect();
            out.push(LinkState {
                name,
                up: l.header.flags.contains(LinkFlags::Up),
                addresses,
            });
        }
        Ok(out)
    }

    async fn v4_addresses(&self, index: u32) -> Result<Vec<AddressMessage>, ApplyError> {
        let mut s = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute();
        let mut v = Vec::new();
        while let Some(m) = s.try_next().await.map_err(nl)? {
            if m.header.family == AddressFamily::Inet {
                v.push(m);
            }
        }
        Ok(v)
    }

    /// The IPv4 default gateway of the main table, if any.
    pub async fn default_gateway(&self) -> Result<Option<Ipv4Addr>, ApplyError> {
        Ok(self.default_routes().await?.iter().find_map(|r| {
            r.attributes.iter().find_map(|a| match a {
                RouteAttribute::Gateway(rtnetlink::packet_route::route::RouteAddress::Inet(g)) => {
                    Some(*g)
                }
                _ => None,
            })
        }))
    }

    async fn default_routes(&self) -> Result<Vec<RouteMessage>, ApplyError> {
        let mut s = self
            .handle
            .route()
            .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
            .execute();
        let mut v = Vec::new();
        while let Some(r) = s.try_next().await.map_err(nl)? {
            if r.header.destination_prefix_length == 0 && r.header.table == 254 {
                v.push(r);
            }
        }
        Ok(v)
    }

    /// Applies the settings; interfaces the box does not have are reported in the
    /// returned notes, not fatal (a profile may list a NIC a smaller box lacks).
    pub async fn apply(&self, a: &Applier, s: &NetworkSettings) -> Result<Vec<String>, ApplyError> {
        s.validate()?;
        let mut notes = Vec::new();
        for i in &s.interfaces {
            let Some(idx) = self.index(&i.name).await? else {
                notes.push(format!("{}: no such interface on this box", i.name));
                continue;
            };
            stop_dhcp(a, &i.name);
            self.handle
                .link()
                .set(LinkUnspec::new_with_index(idx).up().build())
                .execute()
                .await
                .map_err(nl)?;
            // Routes through this interface go with its old addresses.
            for r in self.default_routes().await? {
                let via_us = r
                    .attributes
                    .iter()
                    .any(|x| matches!(x, RouteAttribute::Oif(o) if *o == idx));
                if via_us {
                    self.handle.route().del(r).execute().await.map_err(nl)?;
                }
            }
            for m in self.v4_addresses(idx).await? {
                self.handle.address().del(m).execute().await.map_err(nl)?;
            }
            if i.dhcp {
                notes.push(start_dhcp(a, &i.name, s)?);
                continue;
            }
            let addr = i.address.expect("validated: static has an address");
            self.handle
                .address()
                .add(idx, IpAddr::V4(addr), i.prefix)
                .execute()
                .await
                .map_err(nl)?;
            if let Some(g) = i.gateway {
                let route = RouteMessageBuilder::<Ipv4Addr>::new()
                    .gateway(g)
                    .output_interface(idx)
                    .build();
                self.handle
                    .route()
                    .add(route)
                    .replace()
                    .execute()
                    .await
                    .map_err(nl)?;
            }
        }
        write_dns(a, s)?;
        write_atomic(
            &a.root.join("etc/hostname"),
            format!("{}\n", s.hostname).as_bytes(),
        )?;
        if a.set_hostname {
            nix::unistd::sethostname(&s.hostname).map_err(std::io::Error::from)?;
        }
        Ok(notes)
    }
}

fn addr_of(m: &AddressMessage) -> Option<Ipv4Addr> {
    m.attributes.iter().find_map(|a| match a {
        AddressAttribute::Address(IpAddr::V4(v)) => Some(*v),
        _ => None,
    })
}

/// Static DNS servers into resolv.conf; with none, the DHCP client's script owns it.
fn write_dns(a: &Applier, s: &NetworkSettings) -> std::io::Result<()> {
    if s.dns.is_empty() && s.interfaces.iter().any(|i| i.dhcp) {
        return Ok(());
    }
    let mut text = String::from("# written by the PBX from its network settings\n");
    for d in &s.dns {
        text.push_str(&format!("nameserver {d}\n"));
    }
    write_atomic(&a.root.join("etc/resolv.conf"), text.as_bytes())
}

fn pid_file(a: &Applier, ifname: &str) -> PathBuf {
    a.run_dir.join(format!("udhcpc.{ifname}.pid"))
}

fn stop_dhcp(a: &Applier, ifname: &str) {
    let pf = pid_file(a, ifname);
    if let Some(pid) = std::fs::read_to_string(&pf)
        .ok()
        .and_then(|t| t.trim().parse::<i32>().ok())
    {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    let _ = std::fs::remove_file(pf);
}

fn start_dhcp(a: &Applier, ifname: &str, s: &NetworkSettings) -> Result<String, ApplyError> {
    std::fs::create_dir_all(&a.run_dir)?;
    let (prog, args) = a
        .dhcp_client
        .split_first()
        .ok_or_else(|| std::io::Error::other("no DHCP client configured"))?;
    // -b: on into the background whether a lease came at once or not; the script
    // (rootfs-overlay/usr/share/udhcpc/default.script) puts each lease into force.
    let status = Command::new(prog)
        .args(args)
        .arg("-i")
        .arg(ifname)
        .arg("-b")
        .arg("-p")
        .arg(pid_file(a, ifname))
        .arg("-s")
        .arg(&a.dhcp_script)
        .arg("-x")
        .arg(format!("hostname:{}", s.hostname))
        .env("RESOLV_CONF", a.root.join("etc/resolv.conf"))
        // DNS servers set by hand win over the lease's.
        .env("PBX_DHCP_DNS", if s.dns.is_empty() { "1" } else { "0" })
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map_err(|e| std::io::Error::other(format!("starting the DHCP client {prog}: {e}")))?;
    if !status.success() {
        return Err(ApplyError::Io(std::io::Error::other(format!(
            "the DHCP client for {ifname} failed ({status})"
        ))));
    }
    Ok(format!("{ifname}: asking DHCP for an address"))
}
