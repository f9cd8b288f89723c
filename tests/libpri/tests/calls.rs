//! Our Q.931 call control against libpri's: calls both ways with either side as the
//! network, en-bloc and overlap, clearing from either side, a full E1 (30 calls) and a
//! full T1 (23), glare, RESTART, and the link failing under a call.

use isdn::call::{self, CallId, Event, Outgoing, Side};
use isdn::dchan::Dchannel;
use isdn::q921;
use libpri_peer::*;
use std::collections::HashMap;
use std::ffi::c_int;
use std::time::{Duration, Instant};

/// libpri as the network, EuroISDN E1; we are the user.
fn e1_user() -> (Peer, Dchannel) {
    let p = Peer::pri(PRI_NETWORK, PRI_SWITCH_EUROISDN_E1);
    let d = Dchannel::new(q921::Config::pri(false), call::Config::e1(Side::User));
    (p, d)
}

/// libpri as the user, NI-2 T1; we are the network.
fn t1_network() -> (Peer, Dchannel) {
    let p = Peer::pri(PRI_CPE, PRI_SWITCH_NI2);
    let d = Dchannel::new(q921::Config::pri(true), call::Config::t1(Side::Network));
    (p, d)
}

fn up(p: &mut Peer, d: &mut Dchannel) {
    d.start(Instant::now());
    let ok = p.drive(d, Duration::from_secs(10), |p, d, _| {
        p.pri_up() && d.lapd.is_up()
    });
    assert!(ok, "link not up\n{}", libpri_log());
}

/// The switchboard both tests drive: default reactions of each side, and what it saw.
#[derive(Default)]
struct Board {
    /// libpri's calls: pointer -> channel.
    pri_calls: HashMap<PriCall, c_int>,
    /// Called digits libpri collected per call (overlap).
    pri_digits: HashMap<PriCall, String>,
    /// libpri answers calls offered to it once it has this many digits.
    pri_wants: usize,
    /// libpri asks for more digits instead of taking an incomplete number.
    pri_overlap: bool,
    pri_rings: usize,
    pri_answered: usize,
    pri_ringing: usize,
    pri_hangups: Vec<c_int>,
    pri_restarts: Vec<c_int>,
    pri_restart_acks: usize,
    /// Digits to send after SETUP ACKNOWLEDGE, per libpri call.
    pri_rest: HashMap<PriCall, String>,
    /// What we saw.
    ours_setup: Vec<(CallId, u8, String, Option<String>)>,
    ours_digits: HashMap<CallId, String>,
    /// We answer a call offered to us once it has this many digits.
    ours_wants: usize,
    ours_answered: Vec<CallId>,
    ours_connected: usize,
    ours_ended: Vec<(CallId, u8)>,
    ours_alerting: usize,
    ours_restarted: Vec<(Option<u8>, bool, bool)>,
    ours_errors: Vec<String>,
    /// Our link going up (true) and down (false).
    ours_link: Vec<bool>,
    /// Sent after MoreDigits, per our call.
    ours_rest: HashMap<CallId, String>,
    /// libpri calls whose clearing was counted.
    pri_gone: std::collections::HashSet<PriCall>,
}

impl Board {
    fn new(wants: usize) -> Board {
        Board {
            pri_wants: wants,
            ours_wants: wants,
            ..Board::default()
        }
    }

    /// libpri places a call (see [`Peer::call`]) and the board remembers its channel.
    fn pri_call(&mut self, p: &mut Peer, called: &str, ch: c_int, complete: bool) -> PriCall {
        let c = p.call(called, "5550199", ch, true, complete);
        self.pri_calls.insert(c, ch);
        c
    }

    fn free_pri_channel(&self, want: c_int, channels: &[u8]) -> c_int {
        let busy: Vec<c_int> = self.pri_calls.values().copied().collect();
        if !busy.contains(&want) {
            return want;
        }
        channels
            .iter()
            .map(|c| c_int::from(*c))
            .find(|c| !busy.contains(c))
            .unwrap_or(want)
    }

    fn pri_take(&mut self, p: &mut Peer, call: PriCall, ch: c_int) {
        p.proceeding(call, ch);
        p.alerting(call, ch);
        p.answer(call, ch);
    }

    /// The default reactions; returns nothing, the test's own `done` decides.
    fn on(&mut self, p: &mut Peer, d: &mut Dchannel, i: &Input, channels: &[u8]) {
        let now = Instant::now();
        match i {
            Input::Pri(e) => {
                let k = e.call;
                match e.e {
                    PRI_EVENT_RING => {
                        self.pri_rings += 1;
                        // An exclusive channel from the network is taken even if a call
                        // of libpri's own holds it: the network's call wins (Q.931
                        // 5.7) and libpri's call will be refused.
                        let ch = if e.flexible {
                            self.free_pri_channel(e.channel, channels)
                        } else {
                            e.channel
                        };
                        self.pri_calls.insert(k, ch);
                        self.pri_digits.insert(k, e.called.clone());
                        if e.called.len() >= self.pri_wants || e.complete || !self.pri_overlap {
                            self.pri_take(p, e.call, ch);
                        } else {
                            p.need_more_info(e.call, ch);
                        }
                    }
                    PRI_EVENT_INFO_RECEIVED => {
                        let ch = self.pri_calls.get(&k).copied().unwrap_or(e.channel);
                        let s = self.pri_digits.entry(k).or_default();
                        s.push_str(&e.called);
                        if s.len() >= self.pri_wants {
                            self.pri_take(p, e.call, ch);
                        }
                    }
                    PRI_EVENT_SETUP_ACK => {
                        if let Some(rest) = self.pri_rest.remove(&k) {
                            p.information(e.call, &rest);
                        }
                    }
                    PRI_EVENT_RINGING => self.pri_ringing += 1,
                    PRI_EVENT_ANSWER => self.pri_answered += 1,
                    PRI_EVENT_HANGUP_REQ | PRI_EVENT_HANGUP => {
                        self.pri_calls.remove(&k);
                        if self.pri_gone.insert(k) {
                            self.pri_hangups.push(e.cause);
                        }
                        p.hangup(e.call, e.cause);
                    }
                    PRI_EVENT_RESTART => self.pri_restarts.push(e.channel),
                    PRI_EVENT_RESTART_ACK => self.pri_restart_acks += 1,
                    _ => {}
                }
            }
            Input::Ours(e) => match e {
                Event::Setup {
                    call,
                    channel,
                    called,
                    calling,
                    complete,
                    ..
                } => {
                    self.ours_setup.push((
                        *call,
                        *channel,
                        called.clone(),
                        calling.as_ref().map(|c| c.digits.clone()),
                    ));
                    self.ours_digits.insert(*call, called.clone());
                    if *complete || called.len() >= self.ours_wants {
                        d.calls.proceeding(now, *call);
                        d.calls.alerting(now, *call, false);
                        d.calls.connect(now, *call);
                    } else {
                        d.calls.more_digits(now, *call);
                    }
                }
                Event::Digits { call, digits, .. } => {
                    let s = self.ours_digits.entry(*call).or_default();
                    s.push_str(digits);
                    if s.len() >= self.ours_wants {
                        d.calls.proceeding(now, *call);
                        d.calls.alerting(now, *call, false);
                        d.calls.connect(now, *call);
                    }
                }
                Event::MoreDigits { call } => {
                    if let Some(rest) = self.ours_rest.remove(call) {
                        d.calls.information(now, *call, &rest, true);
                    }
                }
                Event::Alerting { .. } => self.ours_alerting += 1,
                Event::Answered { call } => self.ours_answered.push(*call),
                Event::Connected { .. } => self.ours_connected += 1,
                Event::Ended { call, cause } => self.ours_ended.push((*call, *cause)),
                Event::Restarted {
                    channel,
                    by_peer,
                    acknowledged,
                } => self
                    .ours_restarted
                    .push((*channel, *by_peer, *acknowledged)),
                Event::Error(e) => self.ours_errors.push(e.clone()),
                Event::Link { up, .. } => self.ours_link.push(*up),
                _ => {}
            },
        }
        d.pump(now);
    }
}

fn e1_channels() -> Vec<u8> {
    (1..=31).filter(|c| *c != 16).collect()
}

/// Runs until `done`, failing with both sides' story if it does not come.
fn drive(
    p: &mut Peer,
    d: &mut Dchannel,
    b: &mut Board,
    secs: u64,
    channels: &[u8],
    mut done: impl FnMut(&Board, &Dchannel) -> bool,
) {
    let ok = p.drive(d, Duration::from_secs(secs), |p, d, i| {
        if let Some(i) = i {
            b.on(p, d, &i, channels);
        }
        done(b, d)
    });
    assert!(
        ok,
        "not done: ended {:?}, errors {:?}, pri hangups {:?}, pri events {:?}\n{}",
        b.ours_ended,
        b.ours_errors,
        b.pri_hangups,
        p.pri_events.iter().filter(|e| **e > 2).collect::<Vec<_>>(),
        libpri_log()
    );
}

/// An en-bloc call to `called`, on `channel` or the next free one.
fn out(called: &str, channel: Option<u8>) -> Outgoing {
    Outgoing {
        called: called.into(),
        channel,
        complete: true,
        ..Outgoing::default()
    }
}

fn place(d: &mut Dchannel, called: &str, calling: &str, complete: bool) -> CallId {
    let now = Instant::now();
    let id = d
        .calls
        .setup(
            now,
            Outgoing {
                called: called.into(),
                calling: Some(isdn::q931::PartyNumber::new(calling)),
                complete,
                ..Outgoing::default()
            },
        )
        .expect("setup");
    d.pump(now);
    id
}

#[test]
fn calls_both_ways_with_libpri_as_the_network_and_clearing_from_either_side() {
    let (mut p, mut d) = e1_user();
    up(&mut p, &mut d);
    let ch = e1_channels();
    let mut b = Board::new(3);

    // libpri calls us en-bloc; we ring and answer; libpri hangs up.
    let c = b.pri_call(&mut p, "201", 1, true);
    drive(&mut p, &mut d, &mut b, 5, &ch, |b, _| {
        b.pri_answered == 1 && b.ours_connected == 1
    });
    assert_eq!(b.ours_setup.len(), 1);
    let (id, chan, called, calling) = b.ours_setup[0].clone();
    assert_eq!((chan, called.as_str()), (1, "201"));
    assert_eq!(calling.as_deref(), Some("5550199"));
    assert!(d.calls.is_active(id));
    assert_eq!(b.pri_ringing, 1);
    p.hangup(c, 16);
    drive(&mut p, &mut d, &mut b, 5, &ch, |_, d| d.calls.is_empty());
    assert_eq!(b.ours_ended, vec![(id, 16)]);

    // We call libpri; libpri answers; we hang up with cause 16.
    let id = place(&mut d, "5550100", "0101", true);
    drive(&mut p, &mut d, &mut b, 5, &ch, |b, _| {
        b.ours_answered.len() == 1
    });
    assert_eq!(b.ours_answered, vec![id]);
    assert_eq!(b.ours_alerting, 1);
    assert_eq!(d.calls.channel(id), Some(1), "the network's choice");
    d.calls.hangup(Instant::now(), id, 16);
    d.pump(Instant::now());
    drive(&mut p, &mut d, &mut b, 5, &ch, |b, d| {
        d.calls.is_empty() && b.pri_hangups.len() == 2
    });
    assert_eq!(b.pri_hangups, vec![16, 16]);
    // Our own clearing is not reported back to us.
    assert_eq!(b.ours_ended.len(), 1);

    // libpri finds the called party busy: the cause reaches us.
    let mut b2 = Board::new(99);
    let id = place(&mut d, "5550111", "0101", true);
    let ok = p.drive(&mut d, Duration::from_secs(5), |p, d, i| {
        if let Some(Input::Pri(e)) = &i {
            if e.e == PRI_EVENT_RING {
                p.proceeding(e.call, e.channel);
                p.hangup(e.call, 17);
                return false;
            }
        }
        if let Some(i) = i {
            b2.on(p, d, &i, &ch);
        }
        !b2.ours_ended.is_empty()
    });
    assert!(
        ok,
        "{:?} {:?} {:?}\n{}",
        p.pri_events,
        b2.ours_errors,
        d.calls.len(),
        libpri_log()
    );
    assert_eq!(b2.ours_ended, vec![(id, 17)]);
    assert_eq!(isdn::q931::cause_to_sip(17), 486);
}

#[test]
fn overlap_dialing_both_ways() {
    let (mut p, mut d) = e1_user();
    p.set_overlap(true);
    up(&mut p, &mut d);
    let ch = e1_channels();
    let mut b = Board::new(7);
    b.pri_overlap = true;

    // libpri sends "2", then "01" after our SETUP ACKNOWLEDGE; we take 201 once we
    // have it (our board wants 3 digits for this call).
    b.ours_wants = 3;
    let c = b.pri_call(&mut p, "2", 3, false);
    b.pri_rest.insert(c, "01".into());
    drive(&mut p, &mut d, &mut b, 5, &ch, |b, _| b.pri_answered == 1);
    assert_eq!(b.ours_setup[0].2, "2");
    let id = b.ours_setup[0].0;
    assert_eq!(b.ours_digits[&id], "201");
    p.hangup(c, 16);
    drive(&mut p, &mut d, &mut b, 5, &ch, |_, d| d.calls.is_empty());

    // We send "5", libpri asks for more, we send the rest with sending complete.
    let id = place(&mut d, "5", "0101", false);
    b.ours_rest.insert(id, "550100".into());
    drive(&mut p, &mut d, &mut b, 5, &ch, |b, _| {
        b.ours_answered.len() == 1
    });
    let digits: Vec<&String> = b.pri_digits.values().collect();
    assert_eq!(digits, vec!["5550100"]);
    d.calls.hangup(Instant::now(), id, 16);
    d.pump(Instant::now());
    drive(&mut p, &mut d, &mut b, 5, &ch, |_, d| d.calls.is_empty());
}

#[test]
fn thirty_calls_fill_an_e1() {
    let (mut p, mut d) = e1_user();
    up(&mut p, &mut d);
    let ch = e1_channels();
    let mut b = Board::new(3);
    let ids: Vec<CallId> = (0..30)
        .map(|i| place(&mut d, &format!("55501{i:02}"), "0101", true))
        .collect();
    drive(&mut p, &mut d, &mut b, 20, &ch, |b, _| {
        b.ours_answered.len() == 30
    });
    let mut chans: Vec<u8> = ids.iter().filter_map(|i| d.calls.channel(*i)).collect();
    chans.sort();
    assert_eq!(chans, ch, "every B-channel once");
    // A 31st finds no channel.
    let err = d
        .calls
        .setup(Instant::now(), out("5550199", None))
        .unwrap_err();
    assert_eq!(err.cause(), 34);
    // libpri hangs all of them up.
    let calls: Vec<PriCall> = b.pri_calls.keys().copied().collect();
    for c in calls {
        p.hangup(c, 16);
    }
    drive(&mut p, &mut d, &mut b, 20, &ch, |_, d| d.calls.is_empty());
    assert_eq!(b.ours_ended.len(), 30);
    assert!(
        b.ours_ended.iter().all(|(_, c)| *c == 16),
        "{:?}",
        b.ours_ended
    );
}

#[test]
fn twenty_three_calls_fill_a_t1_with_us_as_the_network() {
    let (mut p, mut d) = t1_network();
    up(&mut p, &mut d);
    let ch: Vec<u8> = (1..=23).collect();
    let mut b = Board::new(3);
    for c in 1..=23 {
        b.pri_call(&mut p, &format!("2{c:02}"), c, true);
    }
    drive(&mut p, &mut d, &mut b, 20, &ch, |b, _| b.pri_answered == 23);
    let mut chans: Vec<u8> = b.ours_setup.iter().map(|s| s.1).collect();
    chans.sort();
    assert_eq!(chans, ch);
    // We hang all of them up as the network.
    let ids: Vec<CallId> = b.ours_setup.iter().map(|s| s.0).collect();
    for id in ids {
        d.calls.hangup(Instant::now(), id, 16);
    }
    d.pump(Instant::now());
    drive(&mut p, &mut d, &mut b, 20, &ch, |b, d| {
        d.calls.is_empty() && b.pri_hangups.len() == 23
    });
    assert!(
        b.pri_hangups.iter().all(|c| *c == 16),
        "{:?}",
        b.pri_hangups
    );
    // And a call from the network to libpri on the T1 (u-law).
    let id = place(&mut d, "5550100", "0101", true);
    drive(&mut p, &mut d, &mut b, 5, &ch, |b, _| {
        b.ours_answered == vec![id]
    });
}

#[test]
fn glare_on_the_same_channel() {
    // We are the network: libpri (user) and we both take channel 5 at once. The
    // network's call keeps it; libpri's call is refused with cause 44.
    let (mut p, mut d) = t1_network();
    up(&mut p, &mut d);
    let ch: Vec<u8> = (1..=23).collect();
    let mut b = Board::new(3);
    let now = Instant::now();
    let ours = d.calls.setup(now, out("5550100", Some(5))).unwrap();
    b.pri_call(&mut p, "201", 5, true);
    d.pump(now);
    drive(&mut p, &mut d, &mut b, 5, &ch, |b, _| {
        b.ours_answered.len() == 1 && b.pri_hangups.contains(&44)
    });
    assert_eq!(d.calls.channel(ours), Some(5));
    assert!(b.ours_setup.is_empty(), "libpri's call must not reach us");

    // We are the user: libpri (network) and we both want channel 7. We only said
    // "preferred", so the network puts our call elsewhere and both calls go through.
    let (mut p, mut d) = e1_user();
    up(&mut p, &mut d);
    let ch = e1_channels();
    let mut b = Board::new(3);
    let now = Instant::now();
    let ours = d.calls.setup(now, out("5550100", None)).unwrap();
    assert_eq!(d.calls.channel(ours), Some(1));
    b.pri_call(&mut p, "201", 1, true);
    d.pump(now);
    drive(&mut p, &mut d, &mut b, 5, &ch, |b, _| {
        b.ours_answered.len() == 1 && b.pri_answered == 1
    });
    let mine = d.calls.channel(ours).unwrap();
    let other = d.calls.channel(b.ours_setup[0].0).unwrap();
    assert_ne!(mine, other, "two calls on one channel");
    assert_eq!(other, 1, "the network's exclusive choice wins");
}

#[test]
fn restart_of_a_channel_and_of_the_interface() {
    let (mut p, mut d) = e1_user();
    up(&mut p, &mut d);
    let ch = e1_channels();
    let mut b = Board::new(3);
    b.pri_call(&mut p, "201", 5, true);
    drive(&mut p, &mut d, &mut b, 5, &ch, |b, _| b.ours_connected == 1);
    // libpri restarts channel 5: our call on it ends, libpri gets the acknowledgement.
    p.reset(5);
    drive(&mut p, &mut d, &mut b, 5, &ch, |b, _| {
        b.pri_restart_acks == 1
    });
    assert_eq!(b.ours_restarted, vec![(Some(5), true, true)]);
    assert_eq!(b.ours_ended.len(), 1);
    assert!(d.calls.is_empty());
    // We restart the whole interface: libpri acknowledges.
    d.calls.restart(Instant::now(), None);
    d.pump(Instant::now());
    drive(&mut p, &mut d, &mut b, 5, &ch, |b, _| {
        b.ours_restarted.len() == 2
    });
    assert_eq!(b.ours_restarted[1], (None, false, true));
    // A call still goes through afterwards.
    place(&mut d, "5550100", "0101", true);
    drive(&mut p, &mut d, &mut b, 5, &ch, |b, _| {
        b.ours_answered.len() == 1
    });
}

#[test]
fn the_link_failing_under_calls() {
    let (mut p, mut d) = e1_user();
    up(&mut p, &mut d);
    let ch = e1_channels();
    let mut b = Board::new(3);
    // One answered call, and one that only rings (libpri never answers it).
    b.pri_call(&mut p, "201", 1, true);
    drive(&mut p, &mut d, &mut b, 5, &ch, |b, _| b.ours_connected == 1);
    let answered = b.ours_setup[0].0;
    b.ours_wants = 99;
    let ringing = place(&mut d, "5550100", "0101", true);
    let ok = p.drive(&mut d, Duration::from_secs(5), |p, d, i| {
        if let Some(Input::Pri(e)) = &i {
            if e.e == PRI_EVENT_RING {
                p.proceeding(e.call, e.channel);
                p.alerting(e.call, e.channel);
                return false;
            }
        }
        if let Some(i) = i {
            b.on(p, d, &i, &ch);
        }
        b.ours_alerting == 1
    });
    assert!(ok);
    p.cut = true;
    drive(&mut p, &mut d, &mut b, 25, &ch, |b, _| {
        b.ours_link.last() == Some(&false)
    });
    // The ringing call is cleared at once; the answered one waits for the link (T309).
    assert_eq!(
        b.ours_ended,
        vec![(ringing, 41)],
        "{:?} {}",
        b.ours_link,
        d.calls.len()
    );
    assert!(d.calls.is_active(answered));
    p.cut = false;
    // Back up: libpri dropped its calls with the link, so ours is cleared when we
    // check it with STATUS; a new call then works.
    drive(&mut p, &mut d, &mut b, 20, &ch, |_, d| {
        d.lapd.is_up() && d.calls.is_empty()
    });
    assert_eq!(b.ours_ended.len(), 2, "{:?}", b.ours_ended);
    place(&mut d, "5550100", "0101", true);
    b.pri_wants = 3;
    drive(&mut p, &mut d, &mut b, 10, &ch, |b, _| {
        b.ours_answered.len() == 1
    });
}

#[test]
fn a_call_each_way_on_a_bri() {
    let mut p = Peer::bri(PRI_NETWORK, PRI_SWITCH_EUROISDN_E1, true);
    let mut d = Dchannel::new(
        q921::Config::bri_ptmp(false, 7),
        call::Config::bri(Side::User, call::Variant::Etsi),
    );
    up(&mut p, &mut d);
    let ch = vec![1, 2];
    let mut b = Board::new(3);
    let c = b.pri_call(&mut p, "201", 1, true);
    drive(&mut p, &mut d, &mut b, 10, &ch, |b, _| b.pri_answered == 1);
    let id = place(&mut d, "5550100", "0101", true);
    drive(&mut p, &mut d, &mut b, 10, &ch, |b, _| {
        b.ours_answered == vec![id]
    });
    assert_eq!(d.calls.channel(id), Some(2));
    p.hangup(c, 16);
    d.calls.hangup(Instant::now(), id, 16);
    d.pump(Instant::now());
    drive(&mut p, &mut d, &mut b, 10, &ch, |_, d| d.calls.is_empty());
}

/// The network sends SETUP the moment its data link comes up (libpri does, and so do
/// telcos after a line restart): the call must not be lost to the link's set-up, also
/// when our SABMEs went unanswered for a while first (a line that was down), so that
/// both sides' SABMEs cross once it is back.
#[test]
fn a_setup_sent_the_moment_the_link_comes_up_is_answered() {
    for we_start_first in [true, false] {
        let (mut p, mut d) = e1_user();
        if we_start_first {
            p.cut = true;
            d.start(Instant::now());
            p.drive(&mut d, Duration::from_millis(2500), |_, _, _| false);
            p.cut = false;
        }
        let ch = e1_channels();
        let mut b = Board::new(3);
        let mut called = false;
        let mut started = we_start_first;
        let ok = p.drive(&mut d, Duration::from_secs(15), |p, d, i| {
            if !started {
                started = true;
                d.start(Instant::now());
            }
            if let Some(Input::Pri(e)) = &i {
                if e.e == PRI_EVENT_DCHAN_UP && !called {
                    called = true;
                    b.pri_call(p, "201", 1, true);
                    return false;
                }
            }
            if let Some(i) = i {
                b.on(p, d, &i, &ch);
            }
            b.pri_answered == 1 && b.ours_connected == 1
        });
        assert!(
            ok,
            "start first {we_start_first}: ended {:?}, errors {:?}, link {:?}, pri hangups {:?}\n{}",
            b.ours_ended,
            b.ours_errors,
            b.ours_link,
            b.pri_hangups,
            libpri_log()
        );
        assert_eq!(b.ours_setup.len(), 1);
    }
}

/// The data link is reset under an answered call (our side recovers from a frame with
/// an impossible N(R) by SABME, which libpri takes as a reset): the call is checked
/// with STATUS ENQUIRY, libpri's STATUS keeps it, and it still clears normally.
#[test]
fn an_answered_call_survives_a_data_link_reset() {
    let (mut p, mut d) = e1_user();
    up(&mut p, &mut d);
    let ch = e1_channels();
    let mut b = Board::new(3);
    let c = b.pri_call(&mut p, "201", 1, true);
    drive(&mut p, &mut d, &mut b, 5, &ch, |b, _| {
        b.ours_connected == 1 && b.pri_answered == 1
    });
    let id = b.ours_setup[0].0;
    // An I frame from "the network" acknowledging frames we never sent.
    let bogus = q921::Frame {
        sapi: 0,
        cr: true,
        tei: 0,
        kind: q921::Kind::I {
            ns: 0,
            nr: 100,
            p: false,
            info: vec![],
        },
    };
    d.receive(Instant::now(), &bogus.encode());
    drive(&mut p, &mut d, &mut b, 10, &ch, |b, d| {
        !b.ours_link.is_empty() && d.lapd.is_up()
    });
    assert_eq!(b.ours_link, vec![true], "re-established, never down");
    // Time for the enquiry and its answer (and past T322 twice); the call is still
    // there on both sides.
    p.drive(&mut d, Duration::from_secs(9), |p, d, i| {
        if let Some(i) = i {
            b.on(p, d, &i, &ch);
        }
        false
    });
    assert!(d.calls.is_active(id), "ended: {:?}", b.ours_ended);
    assert!(b.ours_ended.is_empty(), "{:?}", b.ours_ended);
    p.hangup(c, 16);
    drive(&mut p, &mut d, &mut b, 5, &ch, |_, d| d.calls.is_empty());
    assert_eq!(b.ours_ended, vec![(id, 16)]);
}
