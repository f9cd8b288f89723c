//! The provisioner against a real store: access rules, auto-created phones, per-vendor
//! files, restart flags and firmware.

use config::Snapshot;
use provision::{phones, Fetch, Provisioner, Via};
use std::net::IpAddr;
use std::sync::Arc;

fn setup(auto_create: bool) -> (tempfile::TempDir, Provisioner) {
    let dir = tempfile::tempdir().unwrap();
    let store = store::Store::open(dir.path()).unwrap();
    let (rev, cfg) = store.config().unwrap();
    let c = Arc::new(store::Configurator::new(
        store,
        Arc::new(Snapshot::new(rev, cfg)),
    ));
    c.change("test", "enable", 1, |c| {
        c.provisioning.enabled = true;
        c.provisioning.auto_create = auto_create;
        c.provisioning.first_extension = "200".into();
        c.provisioning.phone_password = "Ph0ne-Secret".into();
        c.provisioning.utc_offset = "+01:00".into();
        c.extensions.push(config::Extension::new("200"));
        Ok(())
    })
    .unwrap();
    let p = Provisioner::new(c, 5062, dir.path());
    (dir, p)
}

const PHONE: &str = "10.0.0.50";
const BOX: &str = "10.0.0.1";

fn get(p: &Provisioner, name: &str) -> Fetch {
    p.fetch(
        name,
        PHONE.parse().unwrap(),
        BOX.parse().unwrap(),
        Via::Tftp,
        100,
    )
}

fn text(f: Fetch) -> String {
    match f {
        Fetch::File(b) => String::from_utf8(b.to_vec()).unwrap(),
        other => panic!("expected a file, got {other:?}"),
    }
}

#[test]
fn a_new_cisco_gets_the_next_free_extension() {
    let (_d, p) = setup(true);
    let t = text(get(&p, "SIP001AA0BE1ECD.cnf"));
    assert!(t.contains("line1_name: \"201\""), "{t}");
    assert!(t.contains("line1_authname: \"201\""));
    assert!(t.contains("line1_password: \"Ph0ne-Secret\""));
    assert!(t.contains("proxy1_address: \"10.0.0.1\""));
    assert!(t.contains("proxy1_port: 5062"));
    assert!(t.contains("line2_name: \"\""), "a 794X has two lines");
    let snap = p.configurator().snapshot();
    assert_eq!(snap.config.phones[0].model, "794X");
    let rows = p.rows(&snap);
    assert_eq!(rows[0].extensions, vec!["201"]);
    assert_eq!(rows[0].ip.as_deref(), Some(PHONE));
    assert!(!rows[0].needs_restart);
    // The same phone again: same extension, nothing added.
    let again = text(get(&p, "sip001aa0be1ecd.cnf"));
    assert_eq!(again, t);
    assert_eq!(p.configurator().snapshot().config.extensions.len(), 2);
    // The shared file names the server and NTP; it does not add a phone.
    let d = text(get(&p, "SIPDefault.cnf"));
    assert!(
        d.contains("sntp_server: \"10.0.0.1\"") && d.contains("time_zone: \"CET\""),
        "{d}"
    );
}

#[test]
fn without_auto_create_the_phone_waits() {
    let (_d, p) = setup(false);
    let t = text(get(&p, "snom360-000413AABBCC.htm"));
    assert!(!t.contains("user_name1"), "{t}");
    assert!(t.contains("user_active1$: off"));
    let snap = p.configurator().snapshot();
    assert_eq!(snap.config.phones[0].model, "snom360");
    assert_eq!(p.rows(&snap)[0].state, config::PhoneState::Pending);
    // The admin assigns an extension: the phone needs a restart, and then gets it.
    p.configurator()
        .change("test", "assign", 2, |c| {
            phones::put_phone(c, "000413aabbcc", "snom360", &["300".into()]).map(|_| ())
        })
        .unwrap();
    let snap = p.configurator().snapshot();
    assert!(p.rows(&snap)[0].needs_restart);
    assert_eq!(
        p.restart_targets(&snap, &[]),
        vec![("300".to_string(), "check-sync;reboot=true".to_string())]
    );
    let t = text(get(&p, "snom360-000413aabbcc.htm"));
    assert!(
        t.contains("user_name1$: 300") && t.contains("user_host1$: 10.0.0.1:5062"),
        "{t}"
    );
    assert!(!p.rows(&p.configurator().snapshot())[0].needs_restart);
    // Renaming the extension changes the file: flagged again.
    p.configurator()
        .change("test", "rename", 3, |c| {
            c.extensions
                .iter_mut()
                .find(|e| e.number == "300")
                .unwrap()
                .first_name = "Ann".into();
            Ok(())
        })
        .unwrap();
    assert!(p.rows(&p.configurator().snapshot())[0].needs_restart);
}

#[test]
fn access_rules() {
    let (_d, p) = setup(true);
    for name in [
        "../etc/passwd",
        "/etc/passwd",
        "a/b",
        "..",
        ".hidden",
        "x\u{1}y",
        "a\\b",
    ] {
        assert!(matches!(get(&p, name), Fetch::Denied(_)), "{name}");
    }
    assert!(matches!(get(&p, "passwd"), Fetch::NotFound(_)));
    assert!(
        matches!(get(&p, "OS79XX.TXT"), Fetch::NotFound(_)),
        "no image uploaded"
    );
    p.configurator()
        .change("test", "limit", 2, |c| {
            c.provisioning.allowed_sources = vec!["192.168.0.0/16".into()];
            Ok(())
        })
        .unwrap();
    assert!(matches!(get(&p, "SIPDefault.cnf"), Fetch::Denied(_)));
    let ok = p.fetch(
        "SIPDefault.cnf",
        "192.168.1.9".parse::<IpAddr>().unwrap(),
        BOX.parse().unwrap(),
        Via::Tftp,
        1,
    );
    assert!(matches!(ok, Fetch::File(_)));
    p.configurator()
        .change("test", "off", 3, |c| {
            c.provisioning.enabled = false;
            Ok(())
        })
        .unwrap();
    assert!(matches!(get(&p, "SIPDefault.cnf"), Fetch::Denied(_)));
}

#[test]
fn removed_phones_get_nothing() {
    let (_d, p) = setup(false);
    text(get(&p, "SIP001AA0BE1ECD.cnf"));
    p.configurator()
        .change("test", "remove", 2, |c| {
            phones::remove_phone(c, "001aa0be1ecd")
        })
        .unwrap();
    assert!(matches!(get(&p, "SIP001AA0BE1ECD.cnf"), Fetch::Denied(_)));
    assert_eq!(p.configurator().snapshot().config.phones.len(), 1);
}

#[test]
fn yealink_and_polycom_are_told_apart() {
    let (_d, p) = setup(true);
    // A Polycom MAC asking for <mac>.cfg gets Polycom's master file.
    let t = text(get(&p, "0004f2aabbcc.cfg"));
    assert!(t.contains("CONFIG_FILES=\"0004f2aabbcc-sip.cfg\""), "{t}");
    let t = text(get(&p, "0004f2aabbcc-sip.cfg"));
    assert!(t.contains("reg.1.auth.userId=\"201\""), "{t}");
    // An unknown vendor after Yealink's common file: Yealink.
    text(get(&p, "y000000000028.cfg"));
    let t = text(get(&p, "00aabbccddee.cfg"));
    assert!(t.contains("account.1.user_name = 202"), "{t}");
    assert!(t.contains("local_time.time_zone = +1"));
    let snap = p.configurator().snapshot();
    let models: Vec<_> = snap
        .config
        .phones
        .iter()
        .map(|p| p.model.as_str())
        .collect();
    assert_eq!(models, vec!["VVX", "T4X"]);
    // The Polycom phone does not get Yealink's file for its MAC.
    assert!(matches!(get(&p, "spa0004f2aabbcc.cfg"), Fetch::NotFound(_)));
}

#[test]
fn firmware_is_served_to_its_model() {
    let (_d, p) = setup(true);
    p.put_firmware("794X", "P0S3-08-12-00.loads", b"IMAGE")
        .unwrap();
    assert!(p.put_firmware("796X", "P0S3-08-12-00.loads", b"X").is_err());
    assert!(p.put_firmware("794X", "../x", b"X").is_err());
    assert!(p.put_firmware("794X", "SIPDefault.cnf", b"X").is_err());
    assert_eq!(text(get(&p, "OS79XX.TXT")).trim(), "P0S3-08-12-00");
    // Every phone fetching the image shares one copy in memory.
    let (Fetch::File(a), Fetch::File(b)) = (
        get(&p, "P0S3-08-12-00.loads"),
        get(&p, "P0S3-08-12-00.loads"),
    ) else {
        panic!("the image is served")
    };
    assert_eq!(&a[..], b"IMAGE");
    assert_eq!(a.as_ptr(), b.as_ptr());
    assert_eq!(text(get(&p, "P0S3-08-12-00.loads")), "IMAGE");
    // A phone known at that address as another model does not get it.
    text(get(&p, "snom360-000413AABBCC.htm"));
    assert!(matches!(get(&p, "P0S3-08-12-00.loads"), Fetch::NotFound(_)));
    assert_eq!(p.firmware_list().len(), 1);
    assert!(p.remove_firmware("794X"));
    assert!(p.firmware_list().is_empty());
}

#[test]
fn a_scheduled_restart_fires_once_when_due_and_outlives_a_restart() {
    let (d, p) = setup(false);
    assert_eq!(p.take_due_restart(1000), None);
    p.schedule_restart(Some((2000, vec!["000413aabbcc".into()])));
    assert_eq!(p.take_due_restart(1999), None);
    // The box restarts: the restart set for later is still there.
    let c = p.configurator().clone();
    drop(p);
    let p = Provisioner::new(c, 5062, d.path());
    assert_eq!(
        p.scheduled_restart(),
        Some((2000, vec!["000413aabbcc".to_string()]))
    );
    assert_eq!(
        p.take_due_restart(2000),
        Some(vec!["000413aabbcc".to_string()])
    );
    assert_eq!(p.take_due_restart(3000), None, "once");
    let c = p.configurator().clone();
    let p = Provisioner::new(c, 5062, d.path());
    assert_eq!(
        p.scheduled_restart(),
        None,
        "done, and not again after a restart"
    );
    p.schedule_restart(Some((2000, vec![])));
    p.schedule_restart(None);
    assert_eq!(p.take_due_restart(3000), None, "cancelled");
    let c = p.configurator().clone();
    let p = Provisioner::new(c, 5062, d.path());
    assert_eq!(p.scheduled_restart(), None, "cancelled for good");
}
