//! Time zone and NTP settings: validation with the field named, the file on /data, and
//! the system files written under a scratch root that holds the real zoneinfo.

use system::time::{apply, TimeFile, TimeSettings};

fn root() -> tempfile::TempDir {
    let r = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(r.path().join("usr/share")).unwrap();
    std::os::unix::fs::symlink("/usr/share/zoneinfo", r.path().join("usr/share/zoneinfo")).unwrap();
    r
}

fn ts(tz: &str, ntp: &[&str]) -> TimeSettings {
    TimeSettings {
        timezone: tz.into(),
        ntp: ntp.iter().map(|s| s.to_string()).collect(),
    }
}

#[test]
fn bad_settings_name_their_field() {
    let r = root();
    assert!(TimeSettings::default().validate(r.path()).is_ok());
    assert!(ts("Europe/Prague", &["ntp.example.net", "192.0.2.10"])
        .validate(r.path())
        .is_ok());
    for (s, field, words) in [
        (ts("", &[]), "timezone", "not a time zone name"),
        (
            ts("../../etc/passwd", &[]),
            "timezone",
            "not a time zone name",
        ),
        (ts("/etc/passwd", &[]), "timezone", "not a time zone name"),
        (ts("Europe/Atlantis", &[]), "timezone", "unknown time zone"),
        (
            ts("Europe/Prague; rm -rf /", &[]),
            "timezone",
            "not a time zone name",
        ),
        (ts("UTC", &["-bad.example"]), "ntp", "not a host name"),
        (ts("UTC", &["a b"]), "ntp", "not a host name"),
        (ts("UTC", &["a", "b", "c", "d", "e"]), "ntp", "at most 4"),
    ] {
        let e = s.validate(r.path()).expect_err(&format!("{s:?}"));
        assert_eq!(e.field, field, "{s:?}");
        assert!(e.message.contains(words), "{s:?}: {e}");
    }
}

#[test]
fn saved_on_data_and_damage_is_reported() {
    let r = root();
    let data = tempfile::tempdir().unwrap();
    let f = TimeFile::in_data_dir(data.path());
    assert_eq!(f.load().unwrap(), None);
    assert!(f.save(&ts("Mars/Olympus", &[]), r.path()).is_err());
    assert_eq!(f.load().unwrap(), None, "an invalid setting is not saved");
    let s = ts("America/New_York", &["time.example.org"]);
    f.save(&s, r.path()).unwrap();
    assert_eq!(f.load().unwrap(), Some(s));
    std::fs::write(data.path().join("system/time.json"), "{\"timezone\": 3").unwrap();
    let e = f.load().unwrap_err();
    assert!(e.contains("time.json is damaged"), "{e}");
}

#[test]
fn applied_as_localtime_timezone_and_timesyncd_servers() {
    let r = root();
    let notes = apply(
        &ts("Europe/Prague", &["ntp1.example.net", "192.0.2.10"]),
        r.path(),
    )
    .unwrap();
    assert!(
        notes
            .iter()
            .any(|n| n == "NTP ntp1.example.net, 192.0.2.10"),
        "{notes:?}"
    );
    let etc = r.path().join("etc");
    assert_eq!(
        std::fs::read_link(etc.join("localtime")).unwrap(),
        std::path::Path::new("/usr/share/zoneinfo/Europe/Prague")
    );
    assert_eq!(
        std::fs::read_to_string(etc.join("timezone")).unwrap(),
        "Europe/Prague\n"
    );
    let d = std::fs::read_to_string(etc.join("systemd/timesyncd.conf.d/pbx.conf")).unwrap();
    assert!(
        d.contains("NTP=ntp1.example.net 192.0.2.10\n") && d.contains("FallbackNTP=\n"),
        "{d}"
    );
    // Changed again: the link is replaced, NTP off leaves no server (and no fallback).
    apply(&TimeSettings::default(), r.path()).unwrap();
    assert_eq!(
        std::fs::read_link(etc.join("localtime")).unwrap(),
        std::path::Path::new("/usr/share/zoneinfo/UTC")
    );
    let d = std::fs::read_to_string(etc.join("systemd/timesyncd.conf.d/pbx.conf")).unwrap();
    assert!(d.contains("NTP=\n"), "{d}");
    assert!(apply(&ts("Nowhere/Town", &[]), r.path()).is_err());
}
