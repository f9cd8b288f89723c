//! Phone provisioning end to end: real TFTP clients (tftp-hpa, atftp) against pbxd,
//! hostile packets, the pbxctl contract with Kerio's CSV, a restart NOTIFY to a
//! registered phone, and a phone's boot in network namespaces with dnsmasq handing out
//! option 66.

use e2e::*;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const PHONE_PW: &str = "Ph0ne-Secret!42";

fn enable(pbx: &Pbxd, first: &str, auto: bool) {
    let mut args = vec![
        "provisioning",
        "set",
        "--enable",
        "--first-extension",
        first,
    ];
    if auto {
        args.push("--auto-create");
    }
    args.extend(["--phone-password", PHONE_PW]);
    pbx.ctl_ok(&args);
}

/// tftp-hpa: `get` of one file, octet mode; the file's text or the client's complaint.
fn tftp_hpa(server: SocketAddr, name: &str, prefix: &[&str]) -> Result<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("out");
    let mut cmd = match prefix.split_first() {
        Some((p, rest)) => {
            let mut c = Command::new(p);
            c.args(rest).arg("tftp");
            c
        }
        None => Command::new("tftp"),
    };
    let o = cmd
        .args(["-m", "octet"])
        .arg(server.ip().to_string())
        .arg(server.port().to_string())
        .arg("-c")
        .arg("get")
        .arg(name)
        .arg(&local)
        .stdin(Stdio::null())
        .output()
        .expect("run tftp (Debian tftp-hpa)");
    let err = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    match std::fs::read(&local) {
        Ok(b) if err.trim().is_empty() => Ok(String::from_utf8_lossy(&b).into_owned()),
        _ => Err(err),
    }
}

/// atftp with options; the bytes it got.
fn atftp(server: SocketAddr, name: &str, options: &[&str]) -> Result<Vec<u8>, String> {
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("out");
    let mut c = Command::new("atftp");
    for o in options {
        c.args(["--option", o]);
    }
    let o = c
        .args(["--tftp-timeout", "1", "-g", "-r", name, "-l"])
        .arg(&local)
        .arg(server.ip().to_string())
        .arg(server.port().to_string())
        .stdin(Stdio::null())
        .output()
        .expect("run atftp (Debian atftp)");
    if o.status.success() {
        Ok(std::fs::read(&local).unwrap())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ))
    }
}

/// Sends one raw packet to the server and returns the answer (from any port).
fn raw(server: SocketAddr, packet: &[u8]) -> Vec<u8> {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.send_to(packet, server).unwrap();
    let mut buf = [0u8; 1024];
    let (n, _) = s.recv_from(&mut buf).expect("an answer to a bad packet");
    buf[..n].to_vec()
}

fn error_code(p: &[u8]) -> Option<u16> {
    (p.len() >= 4 && p[..2] == [0, 5]).then(|| u16::from_be_bytes([p[2], p[3]]))
}

fn rrq(name: &[u8], mode: &[u8]) -> Vec<u8> {
    let mut p = vec![0, 1];
    p.extend_from_slice(name);
    p.push(0);
    p.extend_from_slice(mode);
    p.push(0);
    p
}

/// `key$: value` or `key: "value"` out of a configuration file.
fn setting(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim().trim_end_matches('$') == key).then(|| v.trim().trim_matches('"').to_string())
        })
        .unwrap_or_else(|| panic!("no {key} in:\n{text}"))
}

#[test]
fn real_tftp_clients_fetch_configurations_and_hostile_requests_get_errors() {
    let pbx = Pbxd::start();
    // Disabled by default: nothing is served.
    let e = tftp_hpa(pbx.tftp, "SIPDefault.cnf", &[]).unwrap_err();
    assert!(e.contains("disabled"), "{e}");
    enable(&pbx, "200", true);

    // A Cisco 7940 boots: shared file, then its own, any letter case for the MAC.
    let d = tftp_hpa(pbx.tftp, "SIPDefault.cnf", &[]).unwrap();
    assert!(d.contains("proxy1_address: \"127.0.0.1\""), "{d}");
    let c = tftp_hpa(pbx.tftp, "SIP001AA0BE1ECD.cnf", &[]).unwrap();
    assert_eq!(setting(&c, "line1_name"), "200");
    assert_eq!(setting(&c, "line1_authname"), "200");
    assert_eq!(setting(&c, "line1_password"), PHONE_PW);
    assert_eq!(setting(&c, "proxy1_port"), pbx.sip.port().to_string());
    let again = atftp(
        pbx.tftp,
        "sip001aa0be1ecd.cnf",
        &["blksize 1428", "tsize 0"],
    )
    .unwrap();
    assert_eq!(String::from_utf8(again).unwrap(), c);
    let list = pbx.ctl_ok(&["phone", "list"]);
    assert!(
        list.contains("00:1a:a0:be:1e:cd")
            && list.contains("794X")
            && list.contains("provisioned")
            && list.contains("200"),
        "{list}"
    );

    // A firmware image of several hundred blocks, uploaded over HTTPS, fetched with the
    // default 512-octet blocks, with 1428-octet blocks and with a window of 8.
    let headers = pbx.admin_session("Adm1n-Secret!x");
    let image: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &image).unwrap();
    let mut curl = Command::new("curl");
    curl.args([
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-X",
        "PUT",
        "--cacert",
    ])
    .arg(pbx.data.path().join("web/cert.pem"))
    .arg("--data-binary")
    .arg(format!("@{}", file.path().display()));
    for h in &headers {
        curl.args(["-H", h]);
    }
    let out = curl
        .arg(format!(
            "https://{}/api/v1/provisioning/firmware/794X/P0S3-08-12-00.loads",
            pbx.web
        ))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "201", "{out:?}");
    let os = tftp_hpa(pbx.tftp, "OS79XX.TXT", &[]).unwrap();
    assert_eq!(os.trim(), "P0S3-08-12-00");
    for opts in [
        &[][..],
        &["blksize 1428"][..],
        &["blksize 1428", "windowsize 8", "tsize 0", "timeout 2"][..],
    ] {
        let got = atftp(pbx.tftp, "P0S3-08-12-00.loads", opts).unwrap();
        assert!(got == image, "atftp {opts:?}: {} bytes", got.len());
    }
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new("tftp")
        .args(["-m", "octet", "127.0.0.1"])
        .arg(pbx.tftp.port().to_string())
        .args(["-c", "get", "P0S3-08-12-00.loads"])
        .arg(dir.path().join("img"))
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(std::fs::read(dir.path().join("img")).unwrap() == image);

    // Hostile and malformed requests: an error packet each, and the server goes on.
    let wrq = {
        let mut p = rrq(b"SIP001AA0BE1ECD.cnf", b"octet");
        p[1] = 2;
        p
    };
    assert_eq!(error_code(&raw(pbx.tftp, &wrq)), Some(2), "write refused");
    for name in [
        &b"../etc/passwd"[..],
        b"/etc/passwd",
        b"..\\x",
        b"a/../../etc/shadow",
    ] {
        assert_eq!(
            error_code(&raw(pbx.tftp, &rrq(name, b"octet"))),
            Some(2),
            "{name:?}"
        );
    }
    assert_eq!(
        error_code(&raw(pbx.tftp, &rrq(b"nothing.cfg", b"octet"))),
        Some(1)
    );
    for bad in [
        &b"\x00\x01SIP\x00x.cnf\x00octet\x00"[..],
        b"\x00\x01file-without-terminator",
        b"\x00",
        b"\x00\x04\x00\x01",
        b"\x00\x01\xff\xfe\x00octet\x00",
        b"\x00\x01f\x00mail\x00",
    ] {
        assert_eq!(error_code(&raw(pbx.tftp, bad)), Some(4), "{bad:?}");
    }
    let e = tftp_hpa(pbx.tftp, "../etc/passwd", &[]).unwrap_err();
    assert!(e.contains("paths are not served"), "{e}");
    assert!(
        tftp_hpa(pbx.tftp, "SIPDefault.cnf", &[]).is_ok(),
        "still serving"
    );
    // The same file over HTTPS, with the same rules.
    let a = pbx.https("GET", "/prov/SIP001AA0BE1ECD.cnf", None, &[]);
    assert_eq!(a.status, 200);
    assert!(a.body.contains("line1_password: \"Ph0ne-Secret!42\""));
    assert!(a.body.contains("proxy1_address: \"127.0.0.1\""));
    assert_eq!(
        pbx.https("GET", "/prov/..%2f..%2fetc%2fpasswd", None, &[])
            .status,
        403
    );
    assert_eq!(pbx.https("GET", "/prov/nothing.cfg", None, &[]).status, 404);
    pbx.ctl_ok(&["status"]);
}

#[test]
fn pbxctl_contract_csv_import_and_restart_notify() {
    let pbx = Pbxd::start();
    enable(&pbx, "100", false);
    let dir = tempfile::tempdir().unwrap();
    // Kerio's example from 10.3.
    let kerio = dir.path().join("kerio.csv");
    std::fs::write(
        &kerio,
        "00:1a:a0:be:1e:cd;Cisco;794X;111;112\n00:1b:b0:cd:e1:ca;Cisco;796X;115\n00:1c:c0:ab:a2:24;Linksys;SPA942;113;114\n",
    )
    .unwrap();
    let out = pbx.ctl_ok(&["phone", "import", kerio.to_str().unwrap(), "--dry-run"]);
    assert_eq!(out.matches(": ok").count(), 3, "{out}");
    assert!(
        pbx.ctl_ok(&["phone", "list"]).lines().count() == 1,
        "a dry run saves nothing"
    );
    pbx.ctl_ok(&["phone", "import", kerio.to_str().unwrap()]);
    let list = pbx.ctl_ok(&["phone", "list"]);
    for want in [
        "00:1a:a0:be:1e:cd",
        "00:1b:b0:cd:e1:ca",
        "00:1c:c0:ab:a2:24",
        "111,112",
        "113,114",
        "SPA942",
    ] {
        assert!(list.contains(want), "{want} in\n{list}");
    }
    // A file full of errors: every line named, nothing saved.
    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "00:1a:a0:be:1e:zz;Cisco;794X;120\n00:2a:a0:be:1e:cd;Cisco;7970;121\n00:3a:a0:be:1e:cd;Cisco;794X;122;123;124\n00:4a:a0:be:1e:cd;Cisco;794X;111\n00:1b:b0:cd:e1:ca;Cisco;796X;125\n",
    )
    .unwrap();
    let o = pbx.ctl(&["phone", "import", bad.to_str().unwrap()]);
    assert!(!o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    for want in [
        "line 1: 00:1a:a0:be:1e:zz Cisco 794X [120]: error: \"00:1a:a0:be:1e:zz\" is not a MAC address",
        "line 2",
        "unknown phone model",
        "at most 2 extensions",
        "extension 111 is taken by phone 00:1a:a0:be:1e:cd",
        "duplicate MAC 00:1b:b0:cd:e1:ca",
    ] {
        assert!(text.contains(want), "{want} in\n{text}");
    }
    assert!(!pbx.ctl_ok(&["extension", "list"]).contains("120"));
    // Manual add, removal refused while it has extensions, then allowed.
    pbx.ctl_ok(&[
        "phone",
        "add",
        "00:04:13:aa:bb:cc",
        "--model",
        "snom360",
        "--extension",
        "130",
        "--extension",
        "131",
    ]);
    let o = pbx.ctl(&["phone", "add", "00:04:13:aa:bb:cc", "--model", "snom360"]);
    assert!(!o.status.success(), "already there");
    let o = pbx.ctl(&["phone", "remove", "00:04:13:aa:bb:cc"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("remove them first"));
    let o = pbx.ctl(&[
        "phone",
        "add",
        "00:04:13:aa:bb:cd",
        "--model",
        "SPA922",
        "--extension",
        "140",
        "--extension",
        "141",
    ]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("at most 1"),
        "{o:?}"
    );

    // The phone of extension 111 registers with the credentials from its file; a restart
    // reaches it as a check-sync NOTIFY.
    let cnf = tftp_hpa(pbx.tftp, "SIP001AA0BE1ECD.cnf", &[]).unwrap();
    let (user, pw) = (
        setting(&cnf, "line1_authname"),
        setting(&cnf, "line1_password"),
    );
    assert_eq!(user, "111");
    let sip = pbx.sip;
    let port = free_port();
    let tmp = tempfile::tempdir().unwrap();
    let sipp_cmd = |scenario: &str, user: &str, pw: &str| {
        let mut c = Command::new("sipp");
        c.current_dir(tmp.path())
            .arg(sip.to_string())
            .arg("-sf")
            .arg(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("sipp")
                    .join(scenario),
            )
            .args([
                "-i",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-m",
                "1",
                "-l",
                "1",
            ])
            .args(["-s", user, "-au", user, "-ap", pw])
            .args([
                "-timeout",
                "30s",
                "-timeout_error",
                "-nostdin",
                "-trace_err",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    };
    // The phone registers from `port`; then it listens there, as a phone does.
    assert!(sipp_cmd("register.xml", &user, &pw)
        .status()
        .unwrap()
        .success());
    assert!(pbx.ctl_ok(&["registrations"]).contains("111"));
    let mut sipp: Child = sipp_cmd("notify_uas.xml", &user, &pw).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // A mistyped MAC is refused, not taken as "every phone".
    let o = pbx.ctl(&["phone", "restart", "00:1a:a0:be:1e"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not a MAC address"),
        "{o:?}"
    );
    let out = pbx.ctl_ok(&["phone", "restart", "00:1a:a0:be:1e:cd"]);
    assert!(out.contains("1 of 1"), "{out}");
    let done = wait_until(Duration::from_secs(20), || {
        matches!(sipp.try_wait(), Ok(Some(_)))
    });
    if !done {
        let _ = sipp.kill();
    }
    let st = sipp.wait().unwrap();
    let errors: String = std::fs::read_dir(tmp.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with("errors.log"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert!(
        st.success(),
        "SIPp did not get the NOTIFY: {st:?}\n{errors}\n{}",
        pbx.log_text()
    );
}

/// Network namespaces and veth made by the test; removed when dropped.
struct Net {
    box_ns: String,
    phone_ns: String,
    children: Vec<Child>,
}

impl Drop for Net {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in [&self.box_ns, &self.phone_ns] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn ip(args: &[&str]) {
    let o = Command::new("ip")
        .args(args)
        .output()
        .expect("run ip (iproute2)");
    assert!(
        o.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

const BOX_IP: &str = "10.77.0.1";

/// The phone's side of a boot: a DHCP client learns its address and option 66.
fn dhcp(net: &Net, dir: &Path, mac: &str) -> String {
    let dev = format!("vp{}", std::process::id() % 100_000);
    ip(&["-n", &net.phone_ns, "link", "set", &dev, "down"]);
    ip(&["-n", &net.phone_ns, "link", "set", &dev, "address", mac]);
    ip(&["-n", &net.phone_ns, "addr", "flush", "dev", &dev]);
    ip(&["-n", &net.phone_ns, "link", "set", &dev, "up"]);
    let script = dir.join("udhcpc.sh");
    let out = dir.join("lease");
    let _ = std::fs::remove_file(&out);
    std::fs::write(
        &script,
        format!(
            r#"#!/bin/sh
case "$1" in bound|renew) ip addr add "$ip/${{mask:-24}}" dev "$interface"; echo "$ip $tftp" > {} ;; esac
"#,
            out.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let o = Command::new("ip")
        .args([
            "netns",
            "exec",
            &net.phone_ns,
            "busybox",
            "udhcpc",
            "-i",
            &dev,
            "-f",
            "-q",
            "-n",
        ])
        .args(["-t", "10", "-T", "1", "-A", "1", "-O", "tftp", "-s"])
        .arg(&script)
        .output()
        .expect("run busybox udhcpc");
    let lease = std::fs::read_to_string(&out).unwrap_or_default();
    assert!(
        !lease.is_empty(),
        "no DHCP lease: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    lease
}

#[test]
fn a_phone_boots_with_dhcp_option_66_fetches_its_file_and_registers() {
    let id = std::process::id() % 100_000;
    let mut net = Net {
        box_ns: format!("pbxbox{id}"),
        phone_ns: format!("pbxphone{id}"),
        children: vec![],
    };
    let (vb, vp) = (format!("vb{id}"), format!("vp{id}"));
    ip(&["netns", "add", &net.box_ns]);
    ip(&["netns", "add", &net.phone_ns]);
    ip(&["link", "add", &vb, "type", "veth", "peer", "name", &vp]);
    ip(&["link", "set", &vb, "netns", &net.box_ns]);
    ip(&["link", "set", &vp, "netns", &net.phone_ns]);
    ip(&[
        "-n",
        &net.box_ns,
        "addr",
        "add",
        &format!("{BOX_IP}/24"),
        "dev",
        &vb,
    ]);
    ip(&["-n", &net.box_ns, "link", "set", &vb, "up"]);
    ip(&["-n", &net.box_ns, "link", "set", "lo", "up"]);
    ip(&["-n", &net.phone_ns, "link", "set", "lo", "up"]);
    let dir = tempfile::tempdir().unwrap();
    // The LAN's DHCP server points phones at the box (option 66).
    let dnsmasq = Command::new("ip")
        .args([
            "netns",
            "exec",
            &net.box_ns,
            "dnsmasq",
            "--no-daemon",
            "--conf-file=/dev/null",
        ])
        .arg(format!("--interface={vb}"))
        .args(["--bind-interfaces", "--port=0", "--user=root", "--log-dhcp"])
        .arg("--dhcp-range=10.77.0.50,10.77.0.60,255.255.255.0,1h")
        .arg(format!("--dhcp-option-force=66,{BOX_IP}"))
        .arg(format!(
            "--dhcp-leasefile={}",
            dir.path().join("leases").display()
        ))
        .arg(format!(
            "--pid-file={}",
            dir.path().join("dnsmasq.pid").display()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run dnsmasq");
    net.children.push(dnsmasq);
    // The box: pbxd inside its namespace, SIP and TFTP on the LAN address.
    let data = tempfile::tempdir().unwrap();
    let sip: SocketAddr = format!("{BOX_IP}:5060").parse().unwrap();
    let tftp_addr = format!("{BOX_IP}:69");
    let web_addr = format!("{BOX_IP}:4021");
    let pbx = Pbxd::launch(
        data,
        sip,
        &["--tftp", &tftp_addr, "--web", &web_addr],
        &["ip", "netns", "exec", &net.box_ns],
    );
    enable(&pbx, "300", true);

    // First phone, auto-create on: a Snom 360 fetches its files and registers.
    let lease = dhcp(&net, dir.path(), "00:04:13:aa:bb:cc");
    let (phone_ip, server) = lease.trim().split_once(' ').expect("address and option 66");
    assert_eq!(server, BOX_IP, "option 66 names the box");
    let tftp: SocketAddr = format!("{server}:69").parse().unwrap();
    let prefix = ["ip", "netns", "exec", net.phone_ns.as_str()];
    let generic = tftp_hpa(tftp, "snom360.htm", &prefix).unwrap();
    assert!(
        generic.contains("setting_server$: tftp://10.77.0.1/snom360-{mac}.htm"),
        "{generic}"
    );
    let file = tftp_hpa(tftp, "snom360-000413AABBCC.htm", &prefix).unwrap();
    let user = setting(&file, "user_name1");
    let pw = setting(&file, "user_pass1");
    assert_eq!(user, "300");
    assert_eq!(setting(&file, "user_host1"), "10.77.0.1:5060");
    let list = pbx.ctl_ok(&["phone", "list"]);
    assert!(
        list.contains("00:04:13:aa:bb:cc") && list.contains(phone_ip),
        "{list}"
    );
    assert!(pbx.ctl_ok(&["extension", "list"]).contains("300"));
    let register = |phone_ip: &str, user: &str, pw: &str| {
        let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("sipp/register.xml");
        let o = Command::new("ip")
            .args([
                "netns",
                "exec",
                &net.phone_ns,
                "sipp",
                &format!("{BOX_IP}:5060"),
            ])
            .arg("-sf")
            .arg(&scenario)
            .args(["-i", phone_ip, "-p", "5070", "-m", "1", "-l", "1"])
            .args(["-s", user, "-au", user, "-ap", pw])
            .args(["-timeout", "20s", "-timeout_error", "-nostdin"])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(o.status.success(), "register {user}: {o:?}");
    };
    register(phone_ip, &user, &pw);
    assert!(pbx.ctl_ok(&["registrations"]).contains(phone_ip));

    // Auto-create off: the next phone waits, pending, until the admin gives it a number.
    enable(&pbx, "300", false);
    let lease = dhcp(&net, dir.path(), "00:04:13:aa:bb:dd");
    let (phone_ip2, _) = lease.trim().split_once(' ').unwrap();
    let file = tftp_hpa(tftp, "snom360-000413AABBDD.htm", &prefix).unwrap();
    assert!(!file.contains("user_name1"), "{file}");
    let list = pbx.ctl_ok(&["phone", "list"]);
    let row = list
        .lines()
        .find(|l| l.contains("00:04:13:aa:bb:dd"))
        .expect("listed");
    assert!(row.contains("pending") && row.contains(phone_ip2), "{row}");
    pbx.ctl_ok(&[
        "phone",
        "add",
        "00:04:13:aa:bb:dd",
        "--model",
        "snom360",
        "--extension",
        "310",
    ]);
    let row = pbx.ctl_ok(&["phone", "list"]);
    assert!(
        row.lines()
            .any(|l| l.contains("00:04:13:aa:bb:dd") && l.contains("needed")),
        "{row}"
    );
    let file = tftp_hpa(tftp, "snom360-000413AABBDD.htm", &prefix).unwrap();
    assert_eq!(setting(&file, "user_name1"), "310");
    register(phone_ip2, "310", &setting(&file, "user_pass1"));
}
