//! The conference mixer on a real relay: four parties on loopback, each sending its own
//! tone; each hears the three others and not itself; a muted one is heard by nobody
//! and still hears the rest; an entry tone reaches everyone; a party that leaves stops
//! hearing and being heard.

use media::dtmf::tone_power;
use media::{g711, Clip, Relay};
use std::net::UdpSocket;
use std::time::{Duration, Instant};

const TONES: [f64; 4] = [440.0, 1000.0, 700.0, 1400.0];

struct Party {
    sock: UdpSocket,
    ep: media::Endpoint,
    tone: f64,
    alaw: bool,
    seq: u16,
    phase: usize,
}

impl Party {
    fn send_frame(&mut self) {
        let mut p = vec![0x80, if self.alaw { 8 } else { 0 }];
        p.extend_from_slice(&self.seq.to_be_bytes());
        p.extend_from_slice(&(self.seq as u32 * 160).to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 7]);
        for _ in 0..160 {
            let t = self.phase as f64 / 8000.0;
            let s = ((2.0 * std::f64::consts::PI * self.tone * t).sin() * 6000.0) as i16;
            p.push(if self.alaw {
                g711::linear_to_alaw(s)
            } else {
                g711::linear_to_ulaw(s)
            });
            self.phase += 1;
        }
        self.seq = self.seq.wrapping_add(1);
        let to = format!("127.0.0.1:{}", self.ep.port);
        self.sock.send_to(&p, to).unwrap();
    }

    /// Everything received so far, decoded.
    fn drain(&self) -> Vec<i16> {
        let mut out = Vec::new();
        let mut buf = [0u8; 2048];
        while let Ok((n, _)) = self.sock.recv_from(&mut buf) {
            if n < 12 || buf[1] & 0x7f != if self.alaw { 8 } else { 0 } {
                continue;
            }
            out.extend(buf[12..n].iter().map(|b| {
                if self.alaw {
                    g711::alaw_to_linear(*b)
                } else {
                    g711::ulaw_to_linear(*b)
                }
            }));
        }
        out
    }
}

/// Every party sends for `secs`, paced at 20 ms; answers what each heard.
fn talk(parties: &mut [Party], secs: f64) -> Vec<Vec<i16>> {
    for p in parties.iter() {
        p.drain();
    }
    let start = Instant::now();
    let mut heard = vec![Vec::new(); parties.len()];
    let frames = (secs * 50.0) as u32;
    for n in 0..frames {
        for p in parties.iter_mut() {
            p.send_frame();
        }
        let due = start + Duration::from_millis(20 * (n as u64 + 1));
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        for (h, p) in heard.iter_mut().zip(parties.iter()) {
            h.extend(p.drain());
        }
    }
    heard
}

fn power(heard: &[i16], f: f64) -> f64 {
    // The last second: the jitter buffers have filled by then.
    let from = heard.len().saturating_sub(8000);
    tone_power(&heard[from..], 8000, f)
}

#[test]
fn each_party_hears_the_others_and_not_itself() {
    let relay = Relay::new("127.0.0.1".parse().unwrap(), 31800, 31899);
    let mixer = relay.mixer();
    let mut parties: Vec<Party> = TONES
        .iter()
        .enumerate()
        .map(|(i, &tone)| {
            let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
            sock.set_nonblocking(true).unwrap();
            let ep = relay.open().unwrap();
            ep.set_remote(Some(sock.local_addr().unwrap()), true);
            // Two speak A-law, two µ-law: the mixer encodes for each.
            let alaw = i % 2 == 1;
            assert!(ep.join(&mixer, if alaw { 8 } else { 0 }, alaw));
            Party {
                sock,
                ep,
                tone,
                alaw,
                seq: 1,
                phase: 0,
            }
        })
        .collect();
    assert_eq!(mixer.len(), 4);

    let heard = talk(&mut parties, 2.0);
    for (i, h) in heard.iter().enumerate() {
        assert!(h.len() > 12000, "party {i} heard {} samples", h.len());
        let own = power(h, TONES[i]);
        for (j, &t) in TONES.iter().enumerate() {
            if j != i {
                let p = power(h, t);
                assert!(
                    p > 1e9 && p > 100.0 * own.max(1.0),
                    "party {i} and the {t} Hz of party {j}: {p:e} against its own {own:e}"
                );
            }
        }
    }

    // Party 0 muted: nobody hears 440 Hz, and party 0 still hears the others.
    mixer.set_muted(parties[0].ep.id(), true);
    let heard = talk(&mut parties, 1.5);
    for (i, h) in heard.iter().enumerate().skip(1) {
        let muted = power(h, TONES[0]);
        let other = power(h, TONES[if i == 1 { 2 } else { 1 }]);
        assert!(
            other > 1000.0 * muted.max(1.0),
            "party {i} still hears the muted one"
        );
    }
    assert!(power(&heard[0], TONES[1]) > 1e9);
    mixer.set_muted(parties[0].ep.id(), false);

    // An entry tone reaches everyone, once.
    for p in &parties {
        p.drain();
    }
    std::thread::sleep(Duration::from_millis(100));
    mixer.tone(Clip::tone(&[2000.0], 300, 0, 0.3));
    let heard = talk(&mut parties, 0.6);
    for (i, h) in heard.iter().enumerate() {
        assert!(
            tone_power(h, 8000, 2000.0) > 1e9,
            "party {i} missed the tone"
        );
    }

    // Party 3 leaves: the others no longer hear it, and it hears nothing more.
    parties[3].ep.leave();
    assert_eq!(mixer.len(), 3);
    let heard = talk(&mut parties, 1.5);
    assert!(
        heard[3].is_empty(),
        "a party that left still hears the conference"
    );
    for h in &heard[..3] {
        let (gone, other) = (
            power(h, TONES[3]),
            power(h, TONES[2]).max(power(h, TONES[1])),
        );
        assert!(
            other > 1000.0 * gone.max(1.0),
            "the party that left is still heard: {gone:e} against {other:e}"
        );
    }

    // Dropping the last handle ends the mixer: endpoints dropped leave it too.
    drop(parties);
    assert_eq!(mixer.len(), 0);
}
