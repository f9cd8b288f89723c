//! ISDN cards on the box (issue 21.4, Kerio 7) with what can be tested here: a sysfs of
//! the test's holding a TE122 (one E1 span) and a B410P (four BRI ports), and stand-ins
//! for `modprobe` and `dahdi_cfg` that write down how pbxd ran them. pbxd loads the
//! board's drivers, writes `system.conf` from the ISDN interfaces and runs `dahdi_cfg`
//! at start and after a change; the API, the Status page and the interface form list the
//! cards, their ports and alarms.

use e2e::*;
use serde_json::json;
use std::path::Path;
use std::time::Duration;

const PW: &str = "Dahdi-Admin-1!";

/// A card `dev` with spans of `(number, type, basechan, channels, alarms)`.
fn card(sys: &Path, dev: &str, kind: &str, spans: &[(u32, &str, u32, u32, &str)]) {
    let devdir = sys.join("devices/dahdi_devices").join(dev);
    std::fs::create_dir_all(&devdir).unwrap();
    std::fs::write(devdir.join("type"), format!("{kind}\n")).unwrap();
    std::fs::write(devdir.join("manufacturer"), "Digium\n").unwrap();
    std::fs::write(devdir.join("location"), "PCI Bus 02 Slot 01\n").unwrap();
    let bus = sys.join("bus/dahdi_spans/devices");
    std::fs::create_dir_all(&bus).unwrap();
    for (i, (n, t, base, chans, alarms)) in spans.iter().enumerate() {
        let d = devdir.join(format!("span-{n}"));
        std::fs::create_dir_all(&d).unwrap();
        for (k, v) in [
            ("name", format!("C/0/{}", i + 1)),
            ("desc", format!("{kind} Card 0 Span {}", i + 1)),
            ("spantype", t.to_string()),
            ("basechan", base.to_string()),
            ("channels", chans.to_string()),
            ("alarms", alarms.to_string()),
            ("local_spanno", (i + 1).to_string()),
        ] {
            std::fs::write(d.join(k), format!("{v}\n")).unwrap();
        }
        std::os::unix::fs::symlink(&d, bus.join(format!("span-{n}"))).unwrap();
    }
}

#[test]
fn the_cards_are_listed_and_system_conf_follows_the_isdn_interfaces() {
    let lab = tempfile::tempdir().unwrap();
    let sys = lab.path().join("sys");
    card(
        &sys,
        "pci:0000:02:00.0",
        "Wildcard TE122",
        &[(1, "E1", 1, 31, "0x8")],
    );
    card(
        &sys,
        "pci:0000:03:00.0",
        "Wildcard B410P",
        &[
            (2, "BRI_TE", 32, 3, "0x0"),
            (3, "BRI_TE", 35, 3, "0x0"),
            (4, "BRI_NT", 38, 3, "0x0"),
            (5, "BRI_TE", 41, 3, "0x0"),
        ],
    );
    let ran = lab.path().join("ran");
    let stand_in = lab.path().join("stand-in");
    std::fs::write(
        &stand_in,
        format!(
            "#!/bin/sh\necho \"$(basename $0) $*\" >> {}\n",
            ran.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &stand_in,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let (modprobe, dahdi_cfg) = (lab.path().join("modprobe"), lab.path().join("dahdi_cfg"));
    std::os::unix::fs::symlink(&stand_in, &modprobe).unwrap();
    std::os::unix::fs::symlink(&stand_in, &dahdi_cfg).unwrap();
    let conf = lab.path().join("etc/dahdi/system.conf");
    let pbx = Pbxd::start_in(
        tempfile::tempdir().unwrap(),
        free_port(),
        &[
            "--dahdi",
            "--sys",
            sys.to_str().unwrap(),
            "--dahdi-conf",
            conf.to_str().unwrap(),
            "--dahdi-cfg",
            dahdi_cfg.to_str().unwrap(),
            "--modprobe",
            modprobe.to_str().unwrap(),
            "--dahdi-drivers",
            "wcte12xp,wcb4xxp",
        ],
    );
    let log = || std::fs::read_to_string(&ran).unwrap_or_default();
    // At start: the drivers, then dahdi_cfg on a system.conf of no interface yet.
    assert!(
        wait_until(Duration::from_secs(10), || log().lines().count() == 2),
        "{}",
        log()
    );
    let c = conf.display();
    assert_eq!(
        log(),
        format!("modprobe -a dahdi wcte12xp wcb4xxp\ndahdi_cfg -c {c}\n")
    );

    // The provider's E1 on the TE122, a BRI port facing another PBX, one on a span the
    // box does not have.
    let dir = tempfile::tempdir().unwrap();
    for (name, span, line, side) in [
        ("telco", 1, "e1", "user"),
        ("office", 4, "bri", "network"),
        ("ghost", 9, "e1", "user"),
    ] {
        let f = dir.path().join(format!("{name}.json"));
        let i = json!({"name": name, "span": {"driver": "dahdi", "span": span},
            "line": line, "side": side, "switch_type": "euroisdn", "numbers": ["5550100"]});
        std::fs::write(&f, i.to_string()).unwrap();
        pbx.ctl_ok(&["isdn", "set", f.to_str().unwrap()]);
    }
    let written = wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(&conf).is_ok_and(|t| t.contains("span=4"))
    });
    let text = std::fs::read_to_string(&conf).unwrap_or_default();
    assert!(written, "{text}");
    assert!(
        text.contains("span=1,1,0,ccs,hdb3,crc4\nbchan=1-15,17-31\ndchan=16\n"),
        "{text}"
    );
    assert!(
        text.contains("span=4,0,0,ccs,ami\nbchan=38-39\nhardhdlc=40\n"),
        "{text}"
    );
    assert!(!text.contains("span=9"), "{text}");
    assert!(wait_until(Duration::from_secs(5), || log()
        .lines()
        .filter(|l| l.starts_with("dahdi_cfg -c"))
        .count()
        >= 2));
    assert!(wait_until(Duration::from_secs(5), || pbx
        .log_text()
        .contains("ghost: span 9 is not on this box")));

    // The cards as the API, the Status page and the interface form show them.
    let h = pbx.admin_session(PW);
    let h: Vec<&str> = h.iter().map(String::as_str).collect();
    let v = pbx.https("GET", "/api/v1/status/dahdi", None, &h).json();
    let cards = v["cards"].as_array().unwrap();
    assert_eq!(cards.len(), 2, "{v}");
    assert_eq!(cards[1]["kind"], "Wildcard B410P");
    assert_eq!(cards[1]["spans"], json!([2, 3, 4, 5]));
    assert_eq!(v["spans"][0]["alarms"], json!(["red"]), "{v}");
    assert_eq!(v["spans"][3]["port"], 3, "{v}");
    let status = pbx.https("GET", "/admin/status", None, &h).body;
    assert!(status.contains("id=\"dahdi-cards\""), "{status}");
    assert!(status.contains("Wildcard B410P"), "{status}");
    let form = pbx.https("GET", "/admin/routing/isdn/telco", None, &h).body;
    assert!(form.contains("list=\"dahdi-spans\""), "{form}");
    assert!(
        form.contains("span 3: Wildcard B410P Card 0 Span 2 port 2 (BRI_TE)"),
        "{form}"
    );
    assert!(form.contains("span 1: Wildcard TE122 Card 0 Span 1 port 1 (E1, alarm: red)"));
}
