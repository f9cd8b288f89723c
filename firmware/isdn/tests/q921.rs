//! Two LAPD ends joined by an in-memory wire on a virtual clock: establishment,
//! windows, lost frames, a cut line, TEI assignment, and garbage.

use isdn::q921::{Config, Event, Frame, Kind, Lapd, State, Unnumbered};
use std::time::{Duration, Instant};

struct Wire {
    now: Instant,
    user: Lapd,
    net: Lapd,
    /// Frames from user to network and back, as sent.
    log: Vec<(bool, Frame)>,
    user_events: Vec<Event>,
    net_events: Vec<Event>,
    /// Drops every frame while set (the cable is out).
    cut: bool,
    /// Drops the nth frame from the user (counted from 0), once.
    drop_user_frame: Option<usize>,
    user_sent: usize,
}

impl Wire {
    fn new(user: Config, net: Config) -> Wire {
        Wire {
            now: Instant::now(),
            user: Lapd::new(user),
            net: Lapd::new(net),
            log: Vec::new(),
            user_events: Vec::new(),
            net_events: Vec::new(),
            cut: false,
            drop_user_frame: None,
            user_sent: 0,
        }
    }

    /// Moves frames both ways until nothing is left to move.
    fn pump(&mut self) {
        for _ in 0..10_000 {
            let mut moved = false;
            while let Some(f) = self.user.poll_transmit() {
                moved = true;
                self.log.push((true, Frame::parse(&f).unwrap()));
                let n = self.user_sent;
                self.user_sent += 1;
                if self.cut || self.drop_user_frame == Some(n) {
                    continue;
                }
                self.net.receive(self.now, &f);
            }
            while let Some(f) = self.net.poll_transmit() {
                moved = true;
                self.log.push((false, Frame::parse(&f).unwrap()));
                if !self.cut {
                    self.user.receive(self.now, &f);
                }
            }
            while let Some(e) = self.user.poll_event() {
                self.user_events.push(e);
            }
            while let Some(e) = self.net.poll_event() {
                self.net_events.push(e);
            }
            if !moved {
                return;
            }
        }
        panic!("the two ends never stopped talking");
    }

    /// Advances the clock in steps, firing timers.
    fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            self.pump();
            let next = [self.user.poll_timeout(), self.net.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    self.user.handle_timeout(self.now);
                    self.net.handle_timeout(self.now);
                }
                _ => break,
            }
        }
        self.now = end;
        self.pump();
    }

    fn data(events: &[Event]) -> Vec<Vec<u8>> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Data(d) => Some(d.clone()),
                _ => None,
            })
            .collect()
    }
}

#[test]
fn frames_round_trip_and_garbage_is_refused() {
    for bytes in [
        vec![0x00, 0x01, 0x7f],             // SABME P, SAPI 0, C/R 0, TEI 0
        vec![0x02, 0x01, 0x73],             // UA F
        vec![0x00, 0x01, 0x02, 0x05, 8, 1], // I N(S)=1 N(R)=2 P=1
        vec![0x02, 0x01, 0x01, 0x07],       // RR N(R)=3 F
        vec![0xfc, 0xff, 0x03, 0x0f, 0x12, 0x34, 1, 0xff], // TEI request
    ] {
        let f = Frame::parse(&bytes).unwrap();
        assert_eq!(f.encode(), bytes, "{f:?}");
    }
    for bad in [
        vec![],
        vec![0x00],
        vec![0x01, 0x01, 0x7f],       // EA bit in the first octet
        vec![0x00, 0x00, 0x7f],       // no EA bit in the second
        vec![0x00, 0x01, 0x0d, 0x00], // unknown supervisory
        vec![0x00, 0x01, 0x7f, 0x00], // SABME with an information field
        vec![0x00, 0x01, 0x00],       // I frame without N(R)
    ] {
        assert!(Frame::parse(&bad).is_err(), "{bad:?}");
    }
    let mut long = vec![0x00, 0x01, 0x00, 0x00];
    long.extend(std::iter::repeat_n(0u8, 261));
    assert!(Frame::parse(&long).is_err());
}

#[test]
fn a_pri_link_comes_up_and_carries_messages_both_ways_in_order() {
    let mut w = Wire::new(Config::pri(false), Config::pri(true));
    w.user.start(w.now);
    w.advance(Duration::from_millis(10));
    assert!(w.user.is_up() && w.net.is_up());
    assert_eq!(w.user_events, vec![Event::Up]);
    assert_eq!(w.net_events, vec![Event::Up]);
    // C/R: the user's SABME is a command with C/R 0; the network's UA a response with 0.
    assert!(
        !w.log[0].1.cr
            && matches!(
                w.log[0].1.kind,
                Kind::U {
                    u: Unnumbered::Sabme,
                    pf: true,
                    ..
                }
            )
    );
    assert!(!w.log[1].1.cr);
    // 300 messages each way: N(S) wraps past 127 and the window (7) holds them back.
    for i in 0..300u32 {
        w.user.send(w.now, i.to_be_bytes().to_vec());
        w.net.send(w.now, (1000 + i).to_be_bytes().to_vec());
    }
    w.advance(Duration::from_millis(10));
    let got: Vec<u32> = Wire::data(&w.net_events)
        .iter()
        .map(|d| u32::from_be_bytes(d[..4].try_into().unwrap()))
        .collect();
    assert_eq!(got, (0..300).collect::<Vec<_>>());
    let got: Vec<u32> = Wire::data(&w.user_events)
        .iter()
        .map(|d| u32::from_be_bytes(d[..4].try_into().unwrap()))
        .collect();
    assert_eq!(got, (1000..1300).collect::<Vec<_>>());
    // Never more than 7 I frames from one side without an acknowledgement between.
    let mut outstanding = 0;
    for (from_user, f) in &w.log {
        match (&f.kind, from_user) {
            (Kind::I { .. }, true) => {
                outstanding += 1;
                assert!(outstanding <= 7);
            }
            (Kind::I { .. } | Kind::S { .. }, false) => outstanding = 0,
            _ => {}
        }
    }
    // Quiet for longer than T203: an RR poll keeps the link and it stays up.
    w.advance(Duration::from_secs(25));
    assert!(w.user.is_up() && w.net.is_up());
    assert!(!w.user_events.iter().any(|e| matches!(e, Event::Down(_))));
}

#[test]
fn a_lost_i_frame_is_recovered_by_reject_and_a_lost_last_one_by_t200() {
    let mut w = Wire::new(Config::pri(false), Config::pri(true));
    w.user.start(w.now);
    w.advance(Duration::from_millis(10));
    // Frame 0 was the SABME; frame 2 is the second I frame below.
    w.drop_user_frame = Some(2);
    for i in 0..5u8 {
        w.user.send(w.now, vec![i]);
    }
    w.advance(Duration::from_millis(10));
    assert!(w.log.iter().any(|(u, f)| !u
        && matches!(
            f.kind,
            Kind::S {
                s: isdn::q921::Supervisory::Rej,
                ..
            }
        )));
    assert_eq!(
        Wire::data(&w.net_events),
        (0..5u8).map(|i| vec![i]).collect::<Vec<_>>()
    );
    // The last frame of a burst lost: nothing follows to reveal the gap; T200 does.
    let before = w.user_sent;
    w.drop_user_frame = Some(before);
    w.user.send(w.now, vec![9]);
    w.advance(Duration::from_millis(10));
    assert_eq!(Wire::data(&w.net_events).len(), 5);
    w.advance(Duration::from_secs(3));
    assert_eq!(Wire::data(&w.net_events).last(), Some(&vec![9]));
    assert!(w.user.is_up());
}

#[test]
fn a_cut_line_takes_the_link_down_and_it_comes_back() {
    let mut w = Wire::new(Config::pri(true), Config::pri(false));
    // Both sides want the link: both send SABME at once.
    let now = w.now;
    w.user.start(now);
    w.net.start(now);
    w.advance(Duration::from_millis(10));
    assert!(w.user.is_up() && w.net.is_up());
    w.cut = true;
    w.user.send(w.now, b"lost".to_vec());
    // T200 x (N200 + 1) and T203: both notice within 15 s.
    w.advance(Duration::from_secs(15));
    assert!(!w.user.is_up() && !w.net.is_up());
    assert!(w.user_events.iter().any(|e| matches!(e, Event::Down(_))));
    assert!(w.net_events.iter().any(|e| matches!(e, Event::Down(_))));
    // Plugged in again: the link comes back by itself and the queued message arrives.
    w.cut = false;
    w.advance(Duration::from_secs(5));
    assert!(w.user.is_up() && w.net.is_up());
    assert_eq!(Wire::data(&w.net_events), vec![b"lost".to_vec()]);
}

#[test]
fn release_and_refusal() {
    let mut w = Wire::new(Config::pri(false), Config::pri(true));
    w.user.start(w.now);
    w.advance(Duration::from_millis(10));
    w.user.stop(w.now);
    w.advance(Duration::from_millis(10));
    assert_eq!(w.user.state(), State::TeiAssigned);
    assert_eq!(w.net.state(), State::TeiAssigned);
    assert!(matches!(w.net_events.last(), Some(Event::Down(_))));
    // The peer answers DM to a SABME: not up, and tried again later.
    let mut a = Lapd::new(Config::pri(false));
    let now = Instant::now();
    a.start(now);
    let sabme = a.poll_transmit().unwrap();
    assert_eq!(sabme, vec![0x00, 0x01, 0x7f]);
    a.receive(now, &[0x00, 0x01, 0x1f]); // DM F=1 from the network (response, C/R 0)
    assert!(!a.is_up());
    assert!(matches!(a.poll_event(), Some(Event::Down(_))));
    a.handle_timeout(now + Duration::from_secs(2));
    assert_eq!(a.poll_transmit(), Some(vec![0x00, 0x01, 0x7f]));
}

#[test]
fn bri_terminals_get_a_tei_from_the_network() {
    let mut w = Wire::new(Config::bri_ptmp(false, 7), Config::bri_ptmp(true, 0));
    assert_eq!(w.user.state(), State::TeiUnassigned);
    w.user.send(w.now, b"SETUP".to_vec());
    w.advance(Duration::from_millis(10));
    assert_eq!(w.user.tei(), Some(64));
    assert!(w.user_events.contains(&Event::TeiAssigned(64)));
    assert!(w.user.is_up() && w.net.is_up());
    assert_eq!(Wire::data(&w.net_events), vec![b"SETUP".to_vec()]);
    // The network removes the TEI: the terminal asks again and comes back.
    let remove = Frame {
        sapi: 63,
        cr: true,
        tei: 127,
        kind: Kind::U {
            u: Unnumbered::Ui,
            pf: false,
            info: vec![0x0f, 0, 0, 6, (64 << 1) | 1],
        },
    };
    w.user.receive(w.now, &remove.encode());
    assert_eq!(w.user.tei(), None);
    w.advance(Duration::from_secs(3));
    assert!(w.user.tei().is_some());
}

#[test]
fn malformed_and_foreign_frames_never_break_the_link() {
    let mut w = Wire::new(Config::pri(false), Config::pri(true));
    w.user.start(w.now);
    w.advance(Duration::from_millis(10));
    // Deterministic junk: every length up to 40, every first octet.
    let mut x: u32 = 1;
    for len in 0..40 {
        for _ in 0..50 {
            let junk: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            // Frames for another TEI or SAPI are ignored; broken ones reported.
            if junk.len() >= 2 && junk[1] >> 1 == 0 && junk[0] >> 2 == 0 {
                continue; // could be a real frame for this link
            }
            w.user.receive(w.now, &junk);
        }
    }
    w.user.send(w.now, b"still here".to_vec());
    w.advance(Duration::from_millis(10));
    assert!(w.user.is_up());
    assert_eq!(Wire::data(&w.net_events), vec![b"still here".to_vec()]);
}

#[test]
fn a_link_that_never_comes_up_holds_a_bounded_queue() {
    let mut a = Lapd::new(Config::pri(false));
    let now = Instant::now();
    for i in 0..isdn::q921::MAX_QUEUE + 10 {
        a.send(now, (i as u32).to_be_bytes().to_vec());
    }
    let mut dropped = 0;
    while let Some(e) = a.poll_event() {
        if matches!(e, Event::Error(ref m) if m.contains("dropped")) {
            dropped += 1;
        }
    }
    assert_eq!(dropped, 10);
    // The peer answers at last: the first 1024 arrive, in order.
    let mut w = Wire::new(Config::pri(false), Config::pri(true));
    w.user = a;
    w.advance(Duration::from_secs(2));
    let got = Wire::data(&w.net_events);
    assert_eq!(got.len(), isdn::q921::MAX_QUEUE);
    assert_eq!(got.last().unwrap(), &(1023u32).to_be_bytes().to_vec());
}

/// The network's link comes up first (its SABME answered while ours, sent before it
/// listened, went nowhere) and it sends a SETUP at once: the frame is read, our SABME
/// is not sent again to reset the network's link, and a late UA to it is no error.
#[test]
fn an_i_frame_right_after_crossed_sabmes_is_read() {
    let mut w = Wire::new(Config::pri(false), Config::pri(true));
    // Ours goes out on a cut line.
    w.cut = true;
    w.user.start(w.now);
    w.pump();
    w.cut = false;
    w.net.start(w.now);
    w.net.send(w.now, b"SETUP".to_vec());
    w.pump();
    assert!(w.user.is_up() && w.net.is_up());
    assert_eq!(Wire::data(&w.user_events), vec![b"SETUP".to_vec()]);
    w.advance(Duration::from_secs(5));
    let sabmes = w
        .log
        .iter()
        .filter(|(from_user, f)| {
            *from_user
                && matches!(
                    f.kind,
                    Kind::U {
                        u: Unnumbered::Sabme,
                        ..
                    }
                )
        })
        .count();
    assert_eq!(sabmes, 1, "our SABME went out again: {:?}", w.log);
    assert!(
        !w.net_events
            .iter()
            .any(|e| matches!(e, Event::Reestablished)),
        "the network's link was reset: {:?}",
        w.net_events
    );
    // Both SABMEs reach the other side at once: each answers the other, both up,
    // neither reports an error for the UA that follows.
    let mut w = Wire::new(Config::pri(false), Config::pri(true));
    w.user.start(w.now);
    w.net.start(w.now);
    w.pump();
    w.advance(Duration::from_secs(1));
    assert!(w.user.is_up() && w.net.is_up());
    for e in w.user_events.iter().chain(&w.net_events) {
        assert!(!matches!(e, Event::Error(_)), "{e:?}");
    }
}

/// A SABME in multiple-frame operation resets the link: layer 3 hears a
/// re-establishment (not a fresh link), so that it checks its calls.
#[test]
fn a_reset_by_the_peer_is_reported_as_reestablished() {
    let mut w = Wire::new(Config::pri(false), Config::pri(true));
    w.user.start(w.now);
    w.advance(Duration::from_secs(1));
    assert!(w.user.is_up() && w.net.is_up());
    w.user_events.clear();
    w.net_events.clear();
    // The network restarts its link layer.
    w.net = Lapd::new(Config::pri(true));
    w.net.start(w.now);
    w.advance(Duration::from_secs(1));
    assert!(w.user.is_up() && w.net.is_up());
    assert!(
        w.user_events
            .iter()
            .any(|e| matches!(e, Event::Reestablished)),
        "{:?}",
        w.user_events
    );
    assert!(!w.user_events.iter().any(|e| matches!(e, Event::Up)));
    assert_eq!(w.user.state(), State::Established);
}
