//! For tests only (nothing on the box calls it): a network namespace with `eth0` on a
//! veth pair (the far end `far0` up) and loopback up, made with ip(8) and deleted when
//! dropped, so settings can be applied to a real kernel without touching the host.

use std::process::{Command, Output};

pub struct Netns {
    pub name: String,
}

impl Netns {
    /// `None` when namespaces cannot be made here (not root).
    pub fn new(prefix: &str) -> Option<Netns> {
        let name = format!("{prefix}{}", std::process::id());
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .ok()?
            .success();
        if !ok {
            return None;
        }
        let ns = Netns { name };
        // A veth pair (some kernels have no dummy links): eth0 and its far end, up.
        for a in [
            &[
                "link", "add", "eth0", "type", "veth", "peer", "name", "far0",
            ][..],
            &["link", "set", "far0", "up"],
            &["link", "set", "lo", "up"],
        ] {
            let out = ns.ip(a);
            assert!(out.status.success(), "ip {a:?}: {out:?}");
        }
        Some(ns)
    }

    /// `ip -n <ns> ARGS`.
    pub fn ip(&self, args: &[&str]) -> Output {
        Command::new("ip")
            .arg("-n")
            .arg(&self.name)
            .args(args)
            .output()
            .expect("run ip (iproute2)")
    }

    /// What `ip -n <ns> ARGS` prints.
    pub fn show(&self, args: &[&str]) -> String {
        String::from_utf8_lossy(&self.ip(args).stdout).to_string()
    }

    /// eth0's IPv4 addresses as `ip -o` prints them.
    pub fn eth0(&self) -> String {
        self.show(&["-4", "-o", "addr", "show", "dev", "eth0"])
    }

    /// Where `ip netns` keeps it (for setns).
    pub fn path(&self) -> String {
        format!("/var/run/netns/{}", self.name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}
