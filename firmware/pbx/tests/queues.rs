//! Call queues on the exchange core and a virtual clock: each strategy's choice of
//! agent over many calls, an agent's no-answer timeout, wrap-up time, priorities
//! between queues sharing agents, dynamic agents, and the figures.

mod common;

use common::*;
use config::QueueStrategy;
use pbx::Settings;
use std::time::Duration;

const C: &str = "127.0.0.1:7003";
const D: &str = "127.0.0.1:7004";
const AGENTS: [(&str, &str); 3] = [("102", B), ("103", C), ("104", D)];

fn cfg(edit: impl FnOnce(&mut config::Queue)) -> config::Config {
    let mut c = config();
    for n in ["104", "105"] {
        c.extensions.push(config::Extension::new(n));
        c.accounts
            .push(config::SipAccount::new(n, &format!("Secret-{n}x"), n));
    }
    let mut q = config::Queue::new("700", &["102", "103", "104"]);
    edit(&mut q);
    c.queues.push(q);
    c
}

fn rig_with(c: config::Config) -> Rig {
    let mut rig = Rig::without_sockets_with(Settings::default(), c, 1000);
    for (user, at) in AGENTS {
        let r = do_register(&mut rig, user, at, 3600, sip::auth::Algorithm::Md5);
        assert!(r.starts_with("SIP/2.0 200"), "{r}");
    }
    rig
}

/// `user` at `from` calls `to` as call `cid`; the box answers and gets its ACK.
fn enter(rig: &mut Rig, user: &str, from: &str, to: &str, cid: &str) {
    let ok = call_as(rig, user, from, to, cid);
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    let to_hdr = header(&ok, "To").unwrap();
    rig.send(
        from,
        &format!(
            "ACK sip:{to}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bK{cid}ack;rport\r\nFrom: <sip:{user}@127.0.0.1>;tag=t{cid}\r\nTo: {to_hdr}\r\nCall-ID: {cid}\r\nCSeq: 2 ACK\r\nContent-Length: 0\r\n\r\n"
        ),
    );
}

/// The agents the box sent an INVITE to since the last look, and those INVITEs;
/// each phone answers 180 Ringing.
fn rung(rig: &mut Rig) -> Vec<(&'static str, String)> {
    let mut v: Vec<(&'static str, String)> = Vec::new();
    for (user, at) in AGENTS {
        for m in rig.take(at) {
            let cid = header(&m, "Call-ID").unwrap_or("").to_string();
            if m.starts_with("INVITE ")
                && !v
                    .iter()
                    .any(|(_, x)| header(x, "Call-ID") == Some(cid.as_str()))
            {
                v.push((user, m));
            }
        }
    }
    for (user, inv) in &v {
        let at = AGENTS.iter().find(|(u, _)| u == user).unwrap().1;
        rig.send(
            at,
            &answer_at(
                inv,
                "180 Ringing",
                &format!("ag{user}"),
                "",
                &format!("{user}@{at}"),
            ),
        );
    }
    v
}

fn answer_as(rig: &mut Rig, user: &str, inv: &str) {
    let at = AGENTS.iter().find(|(u, _)| *u == user).unwrap().1;
    rig.send(
        at,
        &answer_at(
            inv,
            "200 OK",
            &format!("ag{user}"),
            SDP,
            &format!("{user}@{at}"),
        ),
    );
}

fn stats(rig: &Rig) -> pbx::QueueInfo {
    rig.pbx.queues(rig.now)[0].clone()
}

/// Runs `n` callers one after the other through queue 700; each call is answered
/// by the agent rung (a single agent for the one-at-a-time strategies) and ends
/// after a minute. Returns who was rung first for each call.
fn order_over(strategy: QueueStrategy, n: usize) -> Vec<&'static str> {
    let mut rig = rig_with(cfg(|q| q.strategy = strategy));
    let mut firsts = Vec::new();
    for i in 0..n {
        enter(&mut rig, "101", A, "700", &format!("q{i}"));
        let got = rung(&mut rig);
        assert!(!got.is_empty(), "call {i}: nobody rang");
        if strategy == QueueStrategy::RingAll {
            assert_eq!(got.len(), 3, "ring all rings every agent");
        } else {
            assert_eq!(got.len(), 1, "{strategy:?} rings one agent at a time");
        }
        firsts.push(got[0].0);
        answer_as(&mut rig, got[0].0, &got[0].1);
        let calls = rig.pbx.calls(rig.now);
        assert_eq!(calls.len(), 1, "{calls:?}");
        rig.advance(Duration::from_secs(60));
        rig.pbx.hang_up_call(rig.now, calls[0].id);
        rig.advance(Duration::from_secs(40));
        rig.out.clear();
    }
    let s = stats(&rig);
    assert_eq!(s.answered as usize, n);
    assert_eq!(s.abandoned, 0);
    firsts
}

#[tokio::test]
async fn each_strategy_picks_its_agent_over_many_calls() {
    // Round robin with memory: in turn.
    assert_eq!(
        order_over(QueueStrategy::RoundRobin, 7),
        ["102", "103", "104", "102", "103", "104", "102"]
    );
    // Least recently called: the one who answered longest ago (never first).
    assert_eq!(
        order_over(QueueStrategy::LongestIdle, 6),
        ["102", "103", "104", "102", "103", "104"]
    );
    // Fewest calls: each takes its share.
    let f = order_over(QueueStrategy::FewestCalls, 9);
    for a in ["102", "103", "104"] {
        assert_eq!(f.iter().filter(|x| **x == a).count(), 3, "{f:?}");
    }
    // Random: everyone gets calls, not in a fixed turn.
    let r = order_over(QueueStrategy::Random, 30);
    for a in ["102", "103", "104"] {
        assert!(r.iter().filter(|x| **x == a).count() >= 4, "{r:?}");
    }
    assert_ne!(&r[..6], ["102", "103", "104", "102", "103", "104"]);
    // Ring all: everybody, and the first to answer takes it.
    order_over(QueueStrategy::RingAll, 3);
}

#[tokio::test]
async fn an_agent_who_does_not_answer_is_passed_over_and_the_others_stop_ringing() {
    let mut rig = rig_with(cfg(|q| {
        q.strategy = QueueStrategy::RoundRobin;
        q.ring_seconds = 10;
    }));
    enter(&mut rig, "101", A, "700", "na");
    assert_eq!(rung(&mut rig)[0].0, "102");
    // 102 rings 10 s: cancelled, and 103 rings.
    rig.advance(Duration::from_secs(11));
    assert!(rig.take(B).iter().any(|m| m.starts_with("CANCEL ")));
    let next = rung(&mut rig);
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].0, "103");
    // 103 declines: 104 rings at once.
    rig.send(
        C,
        &answer_at(&next[0].1, "603 Decline", "x", "", &format!("103@{C}")),
    );
    let next = rung(&mut rig);
    assert_eq!(next[0].0, "104");
    let s = stats(&rig);
    assert_eq!(s.waiting.len(), 1);
    assert_eq!(s.waiting[0].ringing, ["104"]);
    let missed: Vec<u64> = s.agents.iter().map(|a| a.missed).collect();
    assert_eq!(missed, [1, 1, 0]);
    // Ring all: one answers, the others get CANCEL.
    let mut rig = rig_with(cfg(|_| {}));
    enter(&mut rig, "101", A, "700", "ra");
    let got = rung(&mut rig);
    answer_as(&mut rig, "103", &got[1].1);
    assert!(rig.take(B).iter().any(|m| m.starts_with("CANCEL ")));
    assert!(rig.take(D).iter().any(|m| m.starts_with("CANCEL ")));
    assert!(!rig.take(C).iter().any(|m| m.starts_with("CANCEL ")));
    assert_eq!(rig.pbx.calls(rig.now)[0].state, "answered");
    assert!(stats(&rig).waiting.is_empty());
}

#[tokio::test]
async fn wrap_up_time_keeps_an_agent_out_after_a_call() {
    let mut rig = rig_with(cfg(|q| q.wrapup_seconds = 30));
    enter(&mut rig, "101", A, "700", "w1");
    let got = rung(&mut rig);
    answer_as(&mut rig, "102", &got[0].1);
    let id = rig.pbx.calls(rig.now)[0].id;
    rig.advance(Duration::from_secs(20));
    rig.pbx.hang_up_call(rig.now, id);
    rig.advance(Duration::from_secs(5));
    rig.out.clear();
    // Within 102's 30 s of wrap-up: only 103 and 104 ring.
    enter(&mut rig, "101", A, "700", "w2");
    let who: Vec<&str> = rung(&mut rig).into_iter().map(|x| x.0).collect();
    assert_eq!(who, ["103", "104"]);
    let s = stats(&rig);
    assert_eq!(s.agents[0].state, "wrap-up");
    let id = s.waiting[0].call;
    rig.pbx.hang_up_call(rig.now, id);
    assert_eq!(stats(&rig).abandoned, 1);
    rig.advance(Duration::from_secs(30));
    rig.out.clear();
    enter(&mut rig, "101", A, "700", "w3");
    assert_eq!(rung(&mut rig).len(), 3);
}

#[tokio::test]
async fn callers_wait_for_a_free_agent_in_order_and_leave_as_abandoned() {
    let mut rig = rig_with(cfg(|q| q.agents = vec!["102".into()]));
    enter(&mut rig, "101", A, "700", "o1");
    let first = rung(&mut rig);
    answer_as(&mut rig, "102", &first[0].1);
    // 102 is busy: two more callers wait, in order.
    enter(&mut rig, "103", C, "700", "o2");
    enter(&mut rig, "104", D, "700", "o3");
    assert!(rung(&mut rig).is_empty());
    let s = stats(&rig);
    let waiting: Vec<(&str, usize)> = s
        .waiting
        .iter()
        .map(|w| (w.number.as_str(), w.position))
        .collect();
    assert_eq!(waiting, [("103", 1), ("104", 2)]);
    assert_eq!(s.agents[0].state, "in call");
    // The first caller hangs up while waiting: abandoned; the other moves up.
    rig.advance(Duration::from_secs(5));
    rig.pbx.hang_up_call(rig.now, s.waiting[0].call);
    let s = stats(&rig);
    assert_eq!(
        (s.abandoned, s.waiting.len(), s.waiting[0].position),
        (1, 1, 1)
    );
    // 102 is free again: the waiting caller rings it.
    let busy = rig.pbx.calls(rig.now)[0].id;
    rig.pbx.hang_up_call(rig.now, busy);
    rig.advance(Duration::from_secs(2));
    let next = rung(&mut rig);
    assert_eq!(next.len(), 1);
    assert!(next[0].1.contains("From: <sip:104@"), "{}", next[0].1);
    answer_as(&mut rig, "102", &next[0].1);
    let s = stats(&rig);
    assert_eq!((s.answered, s.abandoned), (2, 1));
    assert!(s.longest_wait >= 7, "{s:?}");
}

#[tokio::test]
async fn a_higher_priority_queue_gets_a_shared_agent_first() {
    let mut c = cfg(|q| q.agents = vec!["102".into()]);
    let mut vip = config::Queue::new("701", &["102"]);
    vip.priority = 5;
    c.queues.push(vip);
    let mut rig = rig_with(c);
    // 102 is in a call from 104.
    let ok = call_as(&mut rig, "104", D, "102", "busy");
    assert!(!ok.starts_with("SIP/2.0 4"), "{ok}");
    let inv = rung(&mut rig).pop().unwrap().1;
    answer_as(&mut rig, "102", &inv);
    enter(&mut rig, "101", A, "700", "low");
    enter(&mut rig, "103", C, "701", "high");
    assert!(rung(&mut rig).is_empty());
    let busy = rig
        .pbx
        .calls(rig.now)
        .into_iter()
        .find(|c| c.callee == "102")
        .unwrap()
        .id;
    rig.pbx.hang_up_call(rig.now, busy);
    rig.advance(Duration::from_secs(2));
    let next = rung(&mut rig);
    assert_eq!(next.len(), 1);
    assert!(
        next[0].1.contains("From: <sip:103@"),
        "the VIP caller first"
    );
}

#[tokio::test]
async fn dynamic_agents_log_in_and_out_with_codes() {
    let mut rig = rig_with(cfg(|q| {
        q.agents = vec![];
        q.dynamic_agents = true;
        q.login_code = "7001".into();
        q.logout_code = "7002".into();
        q.refuse_when_empty = true;
        q.fallback = "104".into();
    }));
    // No agent: a caller goes to the fallback (104 rings) and counts as redirected.
    enter(&mut rig, "101", A, "700", "e1");
    let got = rung(&mut rig);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "104");
    assert_eq!(stats(&rig).redirected, 1);
    let id = rig.pbx.calls(rig.now)[0].id;
    rig.pbx.hang_up_call(rig.now, id);
    rig.advance(Duration::from_secs(2));
    rig.out.clear();
    // 103 logs in with the code and gets the next caller.
    enter(&mut rig, "103", C, "7001", "login");
    let s = stats(&rig);
    assert_eq!(s.agents.len(), 1);
    assert!(s.agents[0].dynamic && s.agents[0].extension == "103");
    let login = rig.pbx.calls(rig.now)[0].id;
    rig.pbx.hang_up_call(rig.now, login);
    rig.advance(Duration::from_secs(2));
    rig.out.clear();
    enter(&mut rig, "101", A, "700", "e2");
    let got = rung(&mut rig);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "103");
    // Logging out from pbxctl's side takes it off.
    assert!(rig.pbx.queue_login(rig.now, "700", "103", false));
    assert!(stats(&rig).agents.is_empty());
    assert!(!rig.pbx.queue_login(rig.now, "700", "999", true));
}

#[tokio::test]
async fn an_agent_who_declines_is_offered_the_caller_again_only_after_a_pause() {
    let mut rig = rig_with(cfg(|q| q.agents = vec!["102".into()]));
    enter(&mut rig, "101", A, "700", "dec");
    let got = rung(&mut rig);
    assert_eq!(got.len(), 1);
    rig.send(
        B,
        &answer_at(&got[0].1, "486 Busy Here", "x", "", &format!("102@{B}")),
    );
    rig.advance(Duration::from_secs(3));
    assert!(rung(&mut rig).is_empty(), "rung again at once");
    rig.advance(Duration::from_secs(3));
    assert_eq!(rung(&mut rig).len(), 1, "offered again after the pause");
    assert_eq!(stats(&rig).agents[0].missed, 1);
}

#[tokio::test]
async fn queues_falling_back_to_each_other_end_the_call() {
    let mut c = cfg(|q| {
        q.agents = vec![];
        q.dynamic_agents = true;
        q.login_code = "7001".into();
        q.logout_code = "7002".into();
        q.refuse_when_empty = true;
        q.fallback = "701".into();
    });
    let mut other = c.queues[0].clone();
    other.number = "701".into();
    other.login_code = "7011".into();
    other.logout_code = "7012".into();
    other.fallback = "700".into();
    c.queues.push(other);
    assert!(c.validate().is_ok(), "{:?}", c.validate());
    let mut rig = rig_with(c);
    // Each queue refuses and hands the caller to the other, a few times; then the box
    // hangs up (BYE after its 200) instead of looping for ever.
    rig.send(A, &format!("INVITE sip:700@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {A};branch=z9hG4bKloop1;rport\r\nFrom: <sip:101@127.0.0.1>;tag=tl\r\nTo: <sip:700@127.0.0.1>\r\nCall-ID: loop\r\nCSeq: 1 INVITE\r\nContact: <sip:101@{A}>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}", SDP.len()));
    let ch = rig
        .take(A)
        .into_iter()
        .find(|m| m.starts_with("SIP/2.0 407"))
        .unwrap();
    let auth = authorization(
        "Proxy-Authorization",
        header(&ch, "Proxy-Authenticate").unwrap(),
        "101",
        "Secret-101x",
        "INVITE",
        "sip:700@127.0.0.1",
        sip::auth::Algorithm::Md5,
    );
    rig.send(A, &format!("INVITE sip:700@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {A};branch=z9hG4bKloop2;rport\r\nFrom: <sip:101@127.0.0.1>;tag=tl\r\nTo: <sip:700@127.0.0.1>\r\nCall-ID: loop\r\nCSeq: 2 INVITE\r\nContact: <sip:101@{A}>\r\nMax-Forwards: 70\r\n{auth}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}", SDP.len()));
    let got = rig.take(A);
    assert!(got.iter().any(|m| m.starts_with("SIP/2.0 200")), "{got:?}");
    assert!(got.iter().any(|m| m.starts_with("BYE ")), "{got:?}");
    assert!(rig.pbx.calls(rig.now).is_empty());
    assert_eq!(stats(&rig).redirected, 3);
}

#[tokio::test]
async fn agents_logged_in_are_logged_out_when_the_queue_stops_taking_them() {
    let c = cfg(|q| {
        q.agents = vec!["104".into()];
        q.dynamic_agents = true;
        q.login_code = "7001".into();
        q.logout_code = "7002".into();
    });
    let mut rig = rig_with(c.clone());
    assert!(rig.pbx.queue_login(rig.now, "700", "103", true));
    assert_eq!(stats(&rig).agents.len(), 2);
    let mut off = c;
    off.queues[0].dynamic_agents = false;
    rig.pbx
        .set_snapshot(std::sync::Arc::new(config::Snapshot::new(2, off)));
    let agents: Vec<String> = stats(&rig)
        .agents
        .into_iter()
        .map(|a| a.extension)
        .collect();
    assert_eq!(agents, ["104"]);
}

#[tokio::test]
async fn a_queue_caller_ringing_an_agent_is_not_picked_up() {
    let mut rig = rig_with(cfg(|q| q.agents = vec!["102".into()]));
    enter(&mut rig, "101", A, "700", "pk");
    assert_eq!(rung(&mut rig).len(), 1);
    // 103 is in 102's pickup group (everybody is, by default) and dials the code.
    let got = call_as(&mut rig, "103", C, "*8", "pick");
    assert!(got.starts_with("SIP/2.0 404"), "{got}");
    assert_eq!(stats(&rig).waiting.len(), 1);
}

#[tokio::test]
async fn a_recording_queue_records_both_sides_of_an_answered_call() {
    let mut rig = rig_with(cfg(|q| q.record = true));
    enter(&mut rig, "101", A, "700", "rec");
    let got = rung(&mut rig);
    rig.commands.clear();
    answer_as(&mut rig, "103", &got[1].1);
    let recs: Vec<String> = rig
        .commands
        .iter()
        .filter_map(|c| match c {
            media::Command::Record { path, listen, .. } => {
                assert_eq!(listen.record, 8000 * 3600, "an hour at most");
                Some(path.display().to_string())
            }
            _ => None,
        })
        .collect();
    assert_eq!(recs.len(), 2, "{:?}", rig.commands);
    assert!(
        recs[0].starts_with("recordings/parts/") && recs[0].ends_with("-700-101-103-1-caller.wav"),
        "{recs:?}"
    );
    assert!(recs[1].ends_with("-700-101-103-1-agent.wav"), "{recs:?}");
}
