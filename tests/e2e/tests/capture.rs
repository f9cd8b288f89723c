//! The packet capture (Kerio 22.1 "Packet sniffer") against the real daemon and tcpdump:
//! a call between a baresip and a pjsua2 phone captured on loopback, stopped,
//! downloaded, and read back by `tcpdump -r` (the INVITE and the call's RTP are in it);
//! a capture that stops itself at its size cap; bad requests refused; the Network page
//! in Chromium.

use e2e::*;
use serde_json::json;
use std::net::UdpSocket;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const PW: &str = "Capture-Admin-1!";

fn refs(h: &[String]) -> Vec<&str> {
    h.iter().map(String::as_str).collect()
}

fn start(pbx: &Pbxd, h: &[String], body: serde_json::Value) -> HttpAnswer {
    pbx.https(
        "POST",
        "/api/v1/system/capture",
        Some(&body.to_string()),
        &refs(h),
    )
}

fn read_back(file: &Path, args: &[&str]) -> String {
    let o = Command::new("tcpdump")
        .args(["-nn", "-r"])
        .arg(file)
        .args(args)
        .output()
        .expect("tcpdump");
    assert!(
        o.status.success(),
        "tcpdump -r: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn download(pbx: &Pbxd, h: &[String], to: &Path) {
    let a = pbx.https_via(
        &[],
        &["-o", to.to_str().unwrap()],
        "GET",
        "/api/v1/system/capture/download",
        None,
        &refs(h),
    );
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(
        a.header("content-type").as_deref(),
        Some("application/vnd.tcpdump.pcap")
    );
    assert!(a.header("content-disposition").is_some_and(|d| d
        .starts_with("attachment; filename=\"capture-")
        && d.ends_with(".pcap\"")));
}

#[test]
fn a_captured_call_downloads_as_a_pcap_that_tcpdump_reads() {
    let pbx = Pbxd::start();
    let h = pbx.admin_session(PW);
    // Bad requests name their field and start nothing.
    for (bad, status, text) in [
        (json!({"interface": "nope0"}), 400, "interface"),
        (json!({"interface": "lo", "seconds": 0}), 400, "seconds"),
        (json!({"interface": "lo", "max_mib": 500}), 400, "max_mib"),
        (
            json!({"interface": "lo", "filter": "-w /etc/passwd"}),
            400,
            "filter",
        ),
        (
            json!({"interface": "lo", "filter": "port port port"}),
            422,
            "tcpdump refused",
        ),
        (json!({"interface": "lo", "colour": "blue"}), 400, "colour"),
    ] {
        let r = start(&pbx, &h, bad.clone());
        assert_eq!(r.status, status, "{bad}: {r:?}");
        assert!(r.body.contains(text), "{bad}: {r:?}");
    }
    let s = pbx
        .https("GET", "/api/v1/system/capture", None, &refs(&h))
        .json();
    assert_eq!(s["state"], "idle", "{s}");

    add_ext(&pbx, "101");
    add_ext(&pbx, "102");
    let r = start(
        &pbx,
        &h,
        json!({"interface": "lo", "filter": "udp", "seconds": 120, "max_mib": 20}),
    );
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(r.json()["state"], "running");
    let again = start(&pbx, &h, json!({"interface": "lo"}));
    assert_eq!(again.status, 409, "{again:?}");

    let mut a = phone(&pbx, "101", "Secret-101x", 440, false, "PCMU");
    let b = phone_of(Kind::Pjsua2, &pbx, "102", "Secret-102x", 1000, true, "PCMU");
    connect(&mut a, &b, &pbx, "102");
    std::thread::sleep(Duration::from_secs(2));
    a.command("hangup", "");
    closed_reason(&b);

    let r = pbx.https("POST", "/api/v1/system/capture/stop", None, &refs(&h));
    assert_eq!(r.status, 200, "{r:?}");
    let s = r.json();
    assert_eq!(s["state"], "done", "{s}");
    assert_eq!(s["why"], "stopped by the administrator", "{s}");
    assert!(s["packets"].as_u64().unwrap() > 100, "{s}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("call.pcap");
    download(&pbx, &h, &file);
    assert_eq!(
        std::fs::metadata(&file).unwrap().len(),
        s["bytes"].as_u64().unwrap()
    );
    // The signalling, whole.
    let ascii = read_back(&file, &["-A"]);
    assert!(
        ascii.contains("INVITE sip:102@"),
        "no INVITE in the capture"
    );
    assert!(ascii.contains("SIP/2.0 200 OK"), "no 200 OK in the capture");
    assert!(
        ascii.contains("BYE sip:"),
        "no BYE in the capture: {:?}",
        ascii
            .lines()
            .filter(|l| l.contains("SIP/2.0") || l.contains("CSeq"))
            .collect::<Vec<_>>()
    );
    // The media: G.711 packets of 20 ms (160 bytes and a 12-byte RTP header), both ways.
    let lines = read_back(&file, &[]);
    let rtp: Vec<&str> = lines
        .lines()
        .filter(|l| l.ends_with("UDP, length 172"))
        .collect();
    assert!(rtp.len() > 150, "{} RTP packets:\n{lines}", rtp.len());

    // The security log says who captured.
    let sec = pbx
        .https("GET", "/api/v1/logs/security", None, &refs(&h))
        .body;
    assert!(sec.contains("packet capture started on lo (udp)"), "{sec}");
    // Deleted: nothing to download.
    let r = pbx.https("DELETE", "/api/v1/system/capture", None, &refs(&h));
    assert_eq!(r.status, 204, "{r:?}");
    let r = pbx.https("GET", "/api/v1/system/capture/download", None, &refs(&h));
    assert_eq!(r.status, 404, "{r:?}");
    let r = pbx.https("POST", "/api/v1/system/capture/stop", None, &refs(&h));
    assert_eq!(r.status, 409, "{r:?}");
}

#[test]
fn a_capture_stops_itself_at_its_size_cap() {
    let pbx = Pbxd::start();
    let h = pbx.admin_session(PW);
    // A port nothing listens on, on a loopback address of its own.
    let port = free_port();
    let filter = format!("udp and dst port {port} and dst host 127.0.0.91");
    let r = start(
        &pbx,
        &h,
        json!({"interface": "lo", "filter": filter, "seconds": 60, "max_mib": 1}),
    );
    assert_eq!(r.status, 202, "{r:?}");
    let s = UdpSocket::bind("127.0.0.90:0").unwrap();
    let payload = vec![0x5a; 1000];
    // Paced (a burst of thousands at once may overrun the capture's buffer), and more
    // than the cap holds.
    for i in 0..3000 {
        let _ = s.send_to(&payload, ("127.0.0.91", port));
        if i % 50 == 49 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let done = wait_until(Duration::from_secs(10), || {
        pbx.https("GET", "/api/v1/system/capture", None, &refs(&h))
            .json()["state"]
            == "done"
    });
    let st = pbx
        .https("GET", "/api/v1/system/capture", None, &refs(&h))
        .json();
    assert!(done, "{st}");
    assert_eq!(st["why"], "the file reached 1 MiB", "{st}");
    let bytes = st["bytes"].as_u64().unwrap();
    assert!(bytes <= 1 << 20 && bytes > 900_000, "{st}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cap.pcap");
    download(&pbx, &h, &file);
    // Whole packets only: tcpdump reads every one without complaint.
    let lines = read_back(&file, &[]);
    let n = lines
        .lines()
        .filter(|l| l.contains("UDP, length 1000"))
        .count() as u64;
    assert_eq!(n, st["packets"].as_u64().unwrap(), "{st}");
}

/// Chromium on the Network page (tests/web/network.mjs): the interfaces listed, a
/// capture started, stopped, downloaded and deleted.
#[test]
fn the_network_page_captures_packets() {
    let pbx = Pbxd::start();
    pbx.admin_session(PW);
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("page.pcap");
    let sip_port = pbx.sip.port().to_string();
    browser_via(
        &pbx,
        &[],
        "network.mjs",
        &[
            ("ADMIN_PW", PW),
            ("SAVE_TO", saved.to_str().unwrap()),
            ("SIP_PORT", &sip_port),
        ],
    );
    // A capture with whatever the page's time caught: a file tcpdump reads.
    read_back(&saved, &[]);
}
