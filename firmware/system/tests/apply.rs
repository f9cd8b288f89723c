//! Network settings applied through netlink in a network namespace this test makes
//! (with eth0 on a veth pair), checked with ip(8) from outside: the address, the default
//! route, a change that removes both, resolv.conf and the host name file; and DHCP:
//! busybox udhcpc with the image's script against dnsmasq in a second namespace.

use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use system::apply::{Applier, Net};
use system::network::{InterfaceSettings, NetworkSettings};
use system::testing::Netns;

/// Runs `f` on a thread inside the namespace.
fn run_in<T: Send + 'static>(ns: &Netns, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = ns.path();
    std::thread::spawn(move || {
        let file = std::fs::File::open(path).unwrap();
        nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        f()
    })
    .join()
    .unwrap()
}

fn apply(ns: &Netns, root: &std::path::Path, s: NetworkSettings) -> Vec<String> {
    let a = Applier {
        root: root.to_path_buf(),
        run_dir: root.join("run"),
        set_hostname: false,
        dhcp_client: vec!["busybox".into(), "udhcpc".into()],
        dhcp_script: std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../rootfs-overlay/usr/share/udhcpc/default.script"),
    };
    run_in(ns, move || {
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
    let Some(ns) = Netns::new("pbxsys") else {
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
    let addr = ns.eth0();
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
    let addr = ns.eth0();
    assert!(
        addr.contains("10.10.10.1/24") && !addr.contains("192.168.77.10"),
        "{addr}"
    );
    let route = ns.show(&["-4", "route", "show", "default"]);
    assert!(route.trim().is_empty(), "{route}");
}

#[test]
fn dhcp_takes_a_lease_from_dnsmasq_and_static_settings_stop_it() {
    use std::process::{Command, Stdio};
    let Some(ns) = Netns::new("pbxdhc") else {
        assert!(
            !nix::unistd::Uid::effective().is_root(),
            "root must be able to"
        );
        return;
    };
    // The LAN: far0 in a namespace of its own with dnsmasq as the DHCP server.
    let lan = format!("pbxlan{}", std::process::id());
    let ip = |a: &[&str]| {
        let o = Command::new("ip").args(a).output().unwrap();
        assert!(o.status.success(), "ip {a:?}: {o:?}");
    };
    ip(&["netns", "add", &lan]);
    struct Del(String);
    impl Drop for Del {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        }
    }
    let _lan = Del(lan.clone());
    ip(&["-n", &ns.name, "link", "set", "far0", "netns", &lan]);
    ip(&["-n", &lan, "addr", "add", "10.88.0.1/24", "dev", "far0"]);
    ip(&["-n", &lan, "link", "set", "far0", "up"]);
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("etc")).unwrap();
    let mut dnsmasq = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lan,
            "dnsmasq",
            "--no-daemon",
            "--conf-file=/dev/null",
        ])
        .args([
            "--interface=far0",
            "--bind-interfaces",
            "--port=0",
            "--user=root",
        ])
        .arg("--dhcp-range=10.88.0.50,10.88.0.60,255.255.255.0,1h")
        .arg("--dhcp-option=option:router,10.88.0.1")
        .arg("--dhcp-option=option:dns-server,10.88.0.53")
        .arg(format!(
            "--dhcp-leasefile={}",
            root.path().join("leases").display()
        ))
        .arg(format!(
            "--pid-file={}",
            root.path().join("dnsmasq.pid").display()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run dnsmasq");

    let mut s = NetworkSettings::factory("eth0");
    s.interfaces[0] = InterfaceSettings {
        name: "eth0".into(),
        dhcp: true,
        address: None,
        prefix: 0,
        gateway: None,
    };
    let notes = apply(&ns, root.path(), s);
    assert_eq!(notes, vec!["eth0: asking DHCP for an address"]);
    let pid = root.path().join("run/udhcpc.eth0.pid");
    let mut leased = false;
    for _ in 0..100 {
        leased = ns.eth0().contains("10.88.0.5") || ns.eth0().contains("10.88.0.60");
        if leased {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(leased, "no lease: {}", ns.eth0());
    assert!(pid.exists(), "udhcpc keeps running to renew");
    let route = ns.show(&["-4", "route", "show", "default"]);
    assert!(route.contains("via 10.88.0.1 dev eth0"), "{route}");
    let resolv = std::fs::read_to_string(root.path().join("etc/resolv.conf")).unwrap();
    assert!(resolv.contains("nameserver 10.88.0.53"), "{resolv}");

    // Static again: the client is stopped and its lease goes with it.
    let udhcpc: i32 = std::fs::read_to_string(&pid)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    apply(&ns, root.path(), NetworkSettings::factory("eth0"));
    let a = ns.eth0();
    assert!(
        a.contains("10.10.10.1/24") && !a.contains("10.88.0."),
        "{a}"
    );
    assert!(!pid.exists());
    let mut gone = false;
    for _ in 0..50 {
        gone = nix::sys::signal::kill(nix::unistd::Pid::from_raw(udhcpc), None).is_err();
        if gone {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(gone, "udhcpc {udhcpc} still runs");
    let _ = dnsmasq.kill();
    let _ = dnsmasq.wait();
}
