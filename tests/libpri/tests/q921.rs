//! Our Q.921 against libpri's: the link comes up with either side as the network, on
//! PRI and on BRI with TEI management; I frames cross both ways (libpri answers a
//! STATUS ENQUIRY); a cut line takes the link down on both sides and it comes back.

use isdn::q921::{Config, Event, Lapd};
use libpri_peer::*;
use std::time::Duration;

fn up(p: &Peer, l: &Lapd) -> bool {
    p.pri_up() && l.is_up()
}

fn run_until_up(p: &mut Peer, l: &mut Lapd, secs: u64) {
    l.start(std::time::Instant::now());
    wait_up(p, l, secs);
}

fn wait_up(p: &mut Peer, l: &mut Lapd, secs: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while std::time::Instant::now() < deadline && !up(p, l) {
        p.run(l, Duration::from_millis(100), |_| false);
    }
    assert!(
        up(p, l),
        "link not up: ours {:?}, libpri events {:?}\n{}",
        p.our_events,
        p.pri_events,
        libpri_log()
    );
}

/// A Q.931 STATUS ENQUIRY for a call reference nobody uses: libpri must answer it.
fn status_enquiry(cref: u8) -> Vec<u8> {
    vec![0x08, 0x01, cref, 0x75]
}

fn replies(p: &Peer) -> usize {
    p.our_events
        .iter()
        .filter(|e| matches!(e, Event::Data(d) if d.first() == Some(&0x08)))
        .count()
}

#[test]
fn libpri_network_and_we_the_user_on_a_pri() {
    let mut p = Peer::pri(PRI_NETWORK, PRI_SWITCH_EUROISDN_E1);
    let mut l = Lapd::new(Config::pri(false));
    run_until_up(&mut p, &mut l, 10);
    // Twenty messages: more than the window of 7, each answered by libpri's Q.931.
    for i in 1..=20u8 {
        l.send(std::time::Instant::now(), status_enquiry(i));
    }
    p.run(&mut l, Duration::from_secs(5), |p| replies(p) >= 20);
    assert!(replies(&p) >= 20, "{:?}\n{}", p.our_events, libpri_log());
    assert!(up(&p, &l));
    // Our Q.931 decoder reads libpri's answers: a call reference nobody uses gets a
    // clearing message with cause 81 (invalid call reference value) or a STATUS.
    for e in &p.our_events {
        if let Event::Data(d) = e {
            let m = isdn::q931::Message::parse(d).unwrap_or_else(|err| panic!("{d:02x?}: {err}"));
            assert!(
                matches!(
                    m.msg_type,
                    isdn::q931::MsgType::ReleaseComplete | isdn::q931::MsgType::Status
                ),
                "{m:?}"
            );
            assert!(m.call_ref.from_destination, "{m:?}");
            assert!(m.cause().is_some(), "{m:?}");
        }
    }
}

#[test]
fn libpri_the_user_and_we_the_network_on_a_pri() {
    let mut p = Peer::pri(PRI_CPE, PRI_SWITCH_NI2);
    let mut l = Lapd::new(Config::pri(true));
    run_until_up(&mut p, &mut l, 10);
    l.send(std::time::Instant::now(), status_enquiry(5));
    p.run(&mut l, Duration::from_secs(3), |p| replies(p) >= 1);
    assert_eq!(replies(&p), 1, "{:?}\n{}", p.our_events, libpri_log());
}

#[test]
fn a_cut_line_takes_the_link_down_and_it_comes_back() {
    let mut p = Peer::pri(PRI_NETWORK, PRI_SWITCH_EUROISDN_E1);
    let mut l = Lapd::new(Config::pri(false));
    run_until_up(&mut p, &mut l, 10);
    p.cut = true;
    // T203 (10 s) then T200 x N200: both sides give up within about 15 s.
    p.run(&mut l, Duration::from_secs(20), |p| {
        !p.pri_up() && p.our_events.iter().any(|e| matches!(e, Event::Down(_)))
    });
    assert!(!p.pri_up(), "libpri still up: {:?}", p.pri_events);
    assert!(!l.is_up(), "{:?}", p.our_events);
    p.cut = false;
    wait_up(&mut p, &mut l, 10);
    // And it carries messages again.
    l.send(std::time::Instant::now(), status_enquiry(9));
    p.run(&mut l, Duration::from_secs(3), |p| replies(p) >= 1);
    assert_eq!(replies(&p), 1, "{:?}", p.our_events);
}

#[test]
fn bri_point_to_multipoint_tei_assignment_both_ways() {
    // libpri is the network and hands us a TEI.
    let mut p = Peer::bri(PRI_NETWORK, PRI_SWITCH_EUROISDN_E1, true);
    let mut l = Lapd::new(Config::bri_ptmp(false, 99));
    run_until_up(&mut p, &mut l, 15);
    let tei = l.tei().unwrap();
    assert!((64..=126).contains(&tei), "{tei}");
    // libpri is the terminal and asks us for one.
    let mut p = Peer::bri(PRI_CPE, PRI_SWITCH_EUROISDN_E1, true);
    let mut l = Lapd::new(Config::bri_ptmp(true, 0));
    run_until_up(&mut p, &mut l, 15);
    assert!(l.tei().is_some());
}
