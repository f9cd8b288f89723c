//! Network settings applied through netlink in a network namespace this test makes
//! (with eth0 on a veth pair), checked with ip(8) from outside: the address, the default
//! route, a change that removes both, resolv.conf and the host name file.

use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::process::Command;
use system::apply::{Applier, Net};
use system::network::{InterfaceSettings, NetworkSettings};

struct Ns(String);

impl Ns {
    fn new() -> Option<Ns> {
        let name = format!("pbxsys{}", std::process::id());
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .ok()?
            .success();
        if !ok {
            return None;
        }
        let ns = Ns(name);
        // A veth pair (this kernel has no dummy links): eth0 and its far end, up.
        let out = ns.ip(&[
            "link", "add", "eth0", "type", "veth", "peer", "name", "far0",
        ]);
        assert!(out.status.success(), "{out:?}");
        assert!(ns.ip(&["link", "set", "far0", "up"]).status.success());
        Some(ns)
    }

    fn ip(&self, args: &[&str]) -> std::process::Output {
        Command::new("ip")
            .arg("-n")
            .arg(&self.0)
            .args(args)
            .output()
            .unwrap()
    }

    fn show(&self, args: &[&str]) -> String {
        String::from_utf8_lossy(&self.ip(args).stdout).to_string()
    }

    /// Runs `f` on a thread inside the namespace with its own tokio runtime.
    fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/var/run/netns/{}", self.0);
        std::thread::spawn(move || {
            let file = std::fs::File::open(path).unwrap();
            nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            f()
        })
        .join()
        .unwrap()
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn apply(ns: &Ns, root: &std::path::Path, s: NetworkSettings) -> Vec<String> {
    let a = Applier {
        root: root.to_path_buf(),
        run_dir: root.join("run"),
        set_hostname: false,
        ..Applier::default()
    };
    ns.run(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let net = Net::open().unwrap();
            let notes = net.apply(&a, &s).await.unwrap();
            // What the console shows comes back the same way.
            let links = net.links().await.unwrap();
            let eth0 = links.iter().find(|l| l.name == "eth0").unwrap();
            assert!(eth0.up);
            notes
        })
    })
}

#[test]
fn static_settings_are_applied_and_replaced() {
    let Some(ns) = Ns::new() else {
        eprintln!("skipped: cannot create a network namespace (needs root)");
        assert!(
            !nix::unistd::Uid::effective().is_root(),
            "root must be able to"
        );
        return;
    };
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("etc")).unwrap();
    let mut s = NetworkSettings::factory("eth0");
    s.hostname = "pbx-office".into();
    s.interfaces[0] = InterfaceSettings {
        name: "eth0".into(),
        dhcp: false,
        address: Some(Ipv4Addr::new(192, 168, 77, 10)),
        prefix: 24,
        gateway: Some(Ipv4Addr::new(192, 168, 77, 1)),
    };
    s.dns = vec![Ipv4Addr::new(192, 168, 77, 1), Ipv4Addr::new(9, 9, 9, 9)];
    s.interfaces.push(InterfaceSettings {
        name: "eth1".into(),
        dhcp: false,
        address: Some(Ipv4Addr::new(10, 1, 1, 1)),
        prefix: 24,
        gateway: None,
    });
    let notes = apply(&ns, root.path(), s.clone());
    assert_eq!(notes, vec!["eth1: no such interface on this box"]);
    let addr = ns.show(&["-4", "-o", "addr", "show", "dev", "eth0"]);
    assert!(addr.contains("192.168.77.10/24"), "{addr}");
    let route = ns.show(&["-4", "route", "show", "default"]);
    assert!(route.contains("via 192.168.77.1 dev eth0"), "{route}");
    let resolv = std::fs::read_to_string(root.path().join("etc/resolv.conf")).unwrap();
    assert!(
        resolv.contains("nameserver 192.168.77.1\nnameserver 9.9.9.9\n"),
        "{resolv}"
    );
    assert_eq!(
        std::fs::read_to_string(root.path().join("etc/hostname")).unwrap(),
        "pbx-office\n"
    );

    // Back to the factory address: the old address and the default route are gone.
    let f = NetworkSettings::factory("eth0");
    apply(&ns, root.path(), f);
    let addr = ns.show(&["-4", "-o", "addr", "show", "dev", "eth0"]);
    assert!(
        addr.contains("10.10.10.1/24") && !addr.contains("192.168.77.10"),
        "{addr}"
    );
    let route = ns.show(&["-4", "route", "show", "default"]);
    assert!(route.trim().is_empty(), "{route}");
}
