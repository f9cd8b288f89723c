//! Busy lamps end to end: a pjsua2 phone watches an extension and a parking slot
//! (SUBSCRIBE with Event: presence, as a softphone's buddy list does) and sees the
//! extension ring, be in a call and go idle as calls come and go, and the slot hold a
//! parked call; SIPp subscribes to the dialog package (RFC 4235) as a desk phone's BLF
//! key does and reads the dialog-info documents.

use e2e::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(15);

/// The statuses the watcher saw for `uri`, in order.
fn seen(p: &Phone, uri: &str) -> Vec<String> {
    p.events()
        .iter()
        .filter(|e| e["type"] == "BUDDY")
        .filter_map(|e| e["param"].as_str())
        .filter_map(|s| s.strip_prefix(uri))
        .map(|s| s.trim().to_string())
        // pjsua's own "unknown" before the first NOTIFY.
        .filter(|s| s != "?")
        .collect()
}

fn wait_seen(p: &Phone, uri: &str, status: &str) {
    assert!(
        wait_until(T, || seen(p, uri).last().is_some_and(|s| s == status)),
        "{uri} never showed {status}: {:?}",
        seen(p, uri)
    );
}

#[test]
fn a_watching_phone_sees_an_extension_ring_talk_and_go_idle_and_a_slot_fill() {
    let pbx = Pbxd::start();
    for n in ["101", "102", "103"] {
        pbx.ctl_ok(&["extension", "add", n, "--password", &format!("Secret-{n}x")]);
    }
    let mut w = phone_of(
        Kind::Pjsua2,
        &pbx,
        "103",
        "Secret-103x",
        700,
        false,
        "PCMU,PCMA",
    );
    let ext = format!("sip:102@{}", pbx.sip);
    let slot = format!("sip:*71@{}", pbx.sip);
    w.command("watch", &ext);
    w.command("watch", &slot);
    wait_seen(&w, &ext, "Idle");
    wait_seen(&w, &slot, "Idle");
    let mut a = phone_of(
        Kind::Baresip,
        &pbx,
        "101",
        "Secret-101x",
        440,
        false,
        "PCMU,PCMA",
    );
    let mut b = phone_of(
        Kind::Baresip,
        &pbx,
        "102",
        "Secret-102x",
        1000,
        false,
        "PCMU,PCMA",
    );
    dial(&mut a, &pbx, "102");
    assert!(b.wait_event("CALL_INCOMING", T).is_some());
    wait_seen(&w, &ext, "Ringing");
    b.command("accept", "");
    assert!(a.wait_event("CALL_ESTABLISHED", T).is_some());
    wait_seen(&w, &ext, "On the phone");
    // 102 parks the call in *71: the slot's lamp shows it, 102 is idle.
    b.command("transfer", &format!("sip:*71@{}", pbx.sip));
    wait_seen(&w, &slot, "Parked");
    wait_seen(&w, &ext, "Idle");
    a.command("hangup", "");
    closed_reason(&a);
    wait_seen(&w, &slot, "Idle");
    let ext_states = seen(&w, &ext);
    println!(
        "102's lamp: {ext_states:?}; *71's lamp: {:?}",
        seen(&w, &slot)
    );
    assert_eq!(ext_states, ["Idle", "Ringing", "On the phone", "Idle"]);
}

#[test]
fn sipp_reads_dialog_info_as_a_blf_key_would() {
    let pbx = Pbxd::start();
    for n in ["101", "102", "103"] {
        pbx.ctl_ok(&["extension", "add", n, "--password", &format!("Secret-{n}x")]);
    }
    // SIPp (as 103) subscribes to 102's dialog state: idle (no dialog), then early when
    // 102 is rung, early again with 102's tag once its phone answered 180 (the dialog
    // a BLF key would replace), then confirmed when it answers, then idle again.
    // Each NOTIFY is answered 200 as a phone would.
    const OK: &str = "  <send><![CDATA[\nSIP/2.0 200 OK\n[last_Via:]\n[last_From:]\n[last_To:]\n[last_Call-ID:]\n[last_CSeq:]\nContent-Length: 0\n\n]]></send>";
    let scenario = r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="blf">
  <send retrans="500"><![CDATA[
SUBSCRIBE sip:102@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
From: <sip:103@[remote_ip]>;tag=[pid]blf
To: <sip:102@[remote_ip]>
Call-ID: [call_id]
CSeq: 1 SUBSCRIBE
Contact: <sip:103@[local_ip]:[local_port]>
Event: dialog
Accept: application/dialog-info+xml
Expires: 600
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="401" auth="true"/>
  <send retrans="500"><![CDATA[
SUBSCRIBE sip:102@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
From: <sip:103@[remote_ip]>;tag=[pid]blf
To: <sip:102@[remote_ip]>
Call-ID: [call_id]
CSeq: 2 SUBSCRIBE
Contact: <sip:103@[local_ip]:[local_port]>
Event: dialog
Accept: application/dialog-info+xml
Expires: 600
[authentication username=103 password=Secret-103x]
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200"/>
  <recv request="NOTIFY">
    <action>
      <ereg regexp="version=.0. state=.full. entity=.sip:102@[^>]*>\s*./dialog-info" search_in="body" check_it="true" assign_to="idle"/>
      <ereg regexp="application/dialog-info\+xml" search_in="hdr" header="Content-Type:" check_it="true" assign_to="ct"/>
      <ereg regexp="active;expires=" search_in="hdr" header="Subscription-State:" check_it="true" assign_to="ss"/>
    </action>
  </recv>
OK_TO_NOTIFY
  <recv request="NOTIFY" timeout="20000">
    <action>
      <ereg regexp="version=.1..*call-id=.[^\"]+. local-tag=.[^\"]*. remote-tag=.[^\"]+. direction=.recipient.>\s*.state.early./state." search_in="body" check_it="true" assign_to="early"/>
    </action>
  </recv>
OK_TO_NOTIFY
  <recv request="NOTIFY" timeout="20000">
    <action>
      <ereg regexp="version=.2..*call-id=.[^\"]+. local-tag=.[^\"]+. remote-tag=.[^\"]+. direction=.recipient.>\s*.state.early./state." search_in="body" check_it="true" assign_to="tagged"/>
    </action>
  </recv>
OK_TO_NOTIFY
  <recv request="NOTIFY" timeout="20000">
    <action>
      <ereg regexp="version=.3..*.state.confirmed./state." search_in="body" check_it="true" assign_to="confirmed"/>
    </action>
  </recv>
OK_TO_NOTIFY
  <recv request="NOTIFY" timeout="20000">
    <action>
      <ereg regexp="version=.4.[^>]*>\s*./dialog-info" search_in="body" check_it="true" assign_to="idle2"/>
    </action>
  </recv>
OK_TO_NOTIFY
  <Reference variables="idle,ct,ss,early,tagged,confirmed,idle2"/>
</scenario>
"#
    .replace("OK_TO_NOTIFY", OK);
    let (child, sdir) = sipp_spawn(
        &scenario,
        &pbx.sip.to_string(),
        "127.0.0.1",
        free_port(),
        &["-m", "1"],
    );
    // The subscription is in place before the call.
    std::thread::sleep(Duration::from_secs(2));
    let mut a = phone_of(
        Kind::Baresip,
        &pbx,
        "101",
        "Secret-101x",
        440,
        false,
        "PCMU,PCMA",
    );
    let b = phone_of(
        Kind::Pjsua2,
        &pbx,
        "102",
        "Secret-102x",
        1000,
        false,
        "PCMU,PCMA",
    );
    dial(&mut a, &pbx, "102");
    assert!(b.wait_event("CALL_INCOMING", T).is_some());
    std::thread::sleep(Duration::from_secs(1));
    let mut b = b;
    b.command("accept", "");
    assert!(a.wait_event("CALL_ESTABLISHED", T).is_some());
    std::thread::sleep(Duration::from_secs(1));
    a.command("hangup", "");
    closed_reason(&a);
    sipp_wait("blf", child, &sdir);
}
