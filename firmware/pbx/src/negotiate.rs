//! SDP offer/answer across the two legs of a call: what we offer the callee, what we
//! answer the caller, and the relay's payload mapping between them.

use media::sdp::{Audio, Codec};
use media::{PtMap, Xcode};
use std::net::IpAddr;

fn g711(name: &str) -> Option<u8> {
    if name.eq_ignore_ascii_case("PCMU") {
        Some(0)
    } else if name.eq_ignore_ascii_case("PCMA") {
        Some(8)
    } else {
        None
    }
}

fn static_codec(name: &str) -> Codec {
    Codec {
        pt: g711(name).unwrap_or(0),
        name: name.to_ascii_uppercase(),
        rate: 8000,
        fmtp: None,
    }
}

/// The offer sent to a party whose account allows `allowed` codecs (preferred first),
/// made from the other party's offer. `None` when no codec can work.
pub fn offer(from: &Audio, allowed: &[String], ip: IpAddr, port: u16) -> Option<Audio> {
    let mut codecs: Vec<Codec> = Vec::new();
    for name in allowed {
        if let Some(c) = from
            .codecs
            .iter()
            .find(|c| !c.is_dtmf() && c.name.eq_ignore_ascii_case(name))
        {
            codecs.push(c.clone());
        }
    }
    // No codec in common: offer the allowed G.711 law and transcode from the other one.
    if codecs.is_empty() && from.codecs.iter().any(|c| g711(&c.name).is_some()) {
        for name in allowed {
            if g711(name).is_some() {
                codecs.push(static_codec(name));
            }
        }
    }
    if codecs.is_empty() {
        return None;
    }
    if let Some(te) = from.dtmf() {
        codecs.push(te.clone());
    }
    Some(Audio {
        addr: ip,
        port,
        codecs,
        direction: from.direction,
        ptime: from.ptime,
        index: 0,
        rejected: Vec::new(),
        secure: false,
        crypto: Vec::new(),
        webrtc: None,
    })
}

/// What stands for the offer of a caller whose INVITE had none (late offer, RFC 3261
/// 13.2.1): the G.711 codecs its side allows, preferred first, and telephone-events,
/// at no address yet. The callee is offered from it as from any offer; the caller gets
/// the box's offer in the 200 and answers in the ACK.
/// `None` when the side allows no G.711 codec.
pub fn late_offer(allowed: &[String]) -> Option<Audio> {
    let mut codecs: Vec<Codec> = allowed
        .iter()
        .filter(|n| g711(n).is_some())
        .map(|n| static_codec(n))
        .collect();
    if codecs.is_empty() {
        return None;
    }
    codecs.push(Codec {
        pt: 101,
        name: "telephone-event".into(),
        rate: 8000,
        fmtp: Some("0-16".into()),
    });
    Some(Audio {
        addr: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        port: 0,
        codecs,
        direction: media::sdp::Direction::SendRecv,
        ptime: None,
        index: 0,
        rejected: Vec::new(),
        secure: false,
        crypto: Vec::new(),
        webrtc: None,
    })
}

/// Our `offer` cut down to what `answer` chose from it (its codec, and
/// telephone-events when both have them): the session with that side from now on, and
/// what a re-INVITE without SDP offers it again.
pub fn narrow(offer: &Audio, answer: &Audio) -> Audio {
    let chosen = answer.codecs.iter().find(|c| !c.is_dtmf());
    let mut codecs: Vec<Codec> = offer
        .codecs
        .iter()
        .filter(|c| !c.is_dtmf())
        .filter(|c| chosen.is_some_and(|a| a.name.eq_ignore_ascii_case(&c.name)))
        .take(1)
        .cloned()
        .collect();
    if codecs.is_empty() {
        return offer.clone();
    }
    if let (Some(te), Some(_)) = (offer.dtmf(), answer.dtmf()) {
        codecs.push(te.clone());
    }
    Audio {
        codecs,
        ..offer.clone()
    }
}

/// Result of matching an answer against the original offer.
#[derive(Debug, Clone)]
pub struct Bridged {
    /// The answer to send back to the offerer.
    pub answer: Audio,
    /// Payload mapping offerer -> answerer.
    pub forward: PtMap,
    /// Payload mapping answerer -> offerer.
    pub backward: PtMap,
    /// True when G.711 is transcoded.
    pub transcoding: bool,
}

/// Builds the answer for the offerer (`offer`) from the other party's answer (`answer`).
pub fn bridge(offer: &Audio, answer: &Audio, ip: IpAddr, port: u16) -> Option<Bridged> {
    let chosen = answer.codecs.iter().find(|c| !c.is_dtmf())?;
    let mut forward = PtMap::default();
    let mut backward = PtMap::default();
    let mut transcoding = false;
    let mine = if let Some(c) = offer
        .codecs
        .iter()
        .find(|c| !c.is_dtmf() && c.name.eq_ignore_ascii_case(&chosen.name))
    {
        c.clone()
    } else {
        // The answerer picked the other G.711 law: transcode.
        let theirs = g711(&chosen.name)?;
        let c = offer
            .codecs
            .iter()
            .find(|c| g711(&c.name).is_some_and(|p| p != theirs))?
            .clone();
        transcoding = true;
        c
    };
    let (fx, bx) = match (transcoding, g711(&mine.name)) {
        (true, Some(0)) => (Xcode::UlawToAlaw, Xcode::AlawToUlaw),
        (true, _) => (Xcode::AlawToUlaw, Xcode::UlawToAlaw),
        _ => (Xcode::None, Xcode::None),
    };
    forward.set(mine.pt, chosen.pt, fx);
    backward.set(chosen.pt, mine.pt, bx);
    let mut codecs = vec![mine];
    if let (Some(a), Some(o)) = (answer.dtmf(), offer.dtmf()) {
        forward.set(o.pt, a.pt, Xcode::None);
        backward.set(a.pt, o.pt, Xcode::None);
        codecs.push(o.clone());
    }
    Some(Bridged {
        answer: Audio {
            addr: ip,
            port,
            codecs,
            direction: answer.direction,
            ptime: answer.ptime.or(offer.ptime),
            // The answer has the offer's m-lines, the ones not taken with port 0.
            index: offer.index,
            rejected: offer.rejected.clone(),
            secure: false,
            crypto: Vec::new(),
            webrtc: None,
        },
        forward,
        backward,
        transcoding,
    })
}

/// The payload maps that join two sessions already running (each side's, as the box
/// described it to that side): from `a` to `b`, from `b` to `a`, and whether G.711 is
/// transcoded. `None` when the codecs differ and are not both G.711.
pub fn join(a: &Audio, b: &Audio) -> Option<(PtMap, PtMap, bool)> {
    let ca = a.codecs.iter().find(|c| !c.is_dtmf())?;
    let cb = b.codecs.iter().find(|c| !c.is_dtmf())?;
    let (mut ab, mut ba) = (PtMap::default(), PtMap::default());
    let transcoding = !ca.name.eq_ignore_ascii_case(&cb.name);
    let (x_ab, x_ba) = if transcoding {
        match (g711(&ca.name)?, g711(&cb.name)?) {
            (0, 8) => (Xcode::UlawToAlaw, Xcode::AlawToUlaw),
            _ => (Xcode::AlawToUlaw, Xcode::UlawToAlaw),
        }
    } else {
        (Xcode::None, Xcode::None)
    };
    ab.set(ca.pt, cb.pt, x_ab);
    ba.set(cb.pt, ca.pt, x_ba);
    if let (Some(da), Some(db)) = (a.dtmf(), b.dtmf()) {
        ab.set(da.pt, db.pt, Xcode::None);
        ba.set(db.pt, da.pt, Xcode::None);
    }
    Some((ab, ba, transcoding))
}

/// The box's own answer to `offer` (an application answering): the offer's first G.711
/// codec that `allowed` names (what a player can play), with telephone-events when
/// offered. `None` when there is no such codec.
pub fn answer_local(offer: &Audio, allowed: &[String], ip: IpAddr, port: u16) -> Option<Audio> {
    let codec = offer
        .codecs
        .iter()
        .find(|c| {
            g711(&c.name).is_some() && allowed.iter().any(|a| a.eq_ignore_ascii_case(&c.name))
        })?
        .clone();
    let mut codecs = vec![codec];
    if let Some(d) = offer.dtmf() {
        codecs.push(d.clone());
    }
    Some(Audio {
        addr: ip,
        port,
        codecs,
        direction: offer.direction.reverse(),
        ptime: offer.ptime,
        index: offer.index,
        rejected: offer.rejected.clone(),
        secure: false,
        crypto: Vec::new(),
        webrtc: None,
    })
}

/// Answers two offers so that their parties can talk to each other through the box
/// (call pickup: the ringing caller's offer and the picker's): `a`'s first codec that
/// `b` also has, else G.711 transcoded. Returns the answer to `a`, the answer to `b`
/// and the payload maps `a` to `b` and `b` to `a`, and whether G.711 is transcoded.
#[allow(clippy::type_complexity)]
pub fn answer_both(
    a: &Audio,
    b: &Audio,
    (a_ip, a_port): (IpAddr, u16),
    (b_ip, b_port): (IpAddr, u16),
) -> Option<(Audio, Audio, PtMap, PtMap, bool)> {
    let audio = |o: &Audio| {
        o.codecs
            .iter()
            .filter(|c| !c.is_dtmf())
            .cloned()
            .collect::<Vec<_>>()
    };
    let (la, lb) = (audio(a), audio(b));
    let (ca, cb) = la
        .iter()
        .find_map(|ca| {
            lb.iter()
                .find(|cb| cb.name.eq_ignore_ascii_case(&ca.name))
                .map(|cb| (ca.clone(), cb.clone()))
        })
        .or_else(|| {
            let ca = la.iter().find(|c| g711(&c.name).is_some())?;
            let cb = lb.iter().find(|c| g711(&c.name).is_some())?;
            Some((ca.clone(), cb.clone()))
        })?;
    let answer = |o: &Audio, c: Codec, other: &Audio, addr: IpAddr, port: u16| {
        let mut codecs = vec![c];
        if let (Some(d), Some(_)) = (o.dtmf(), other.dtmf()) {
            codecs.push(d.clone());
        }
        Audio {
            addr,
            port,
            codecs,
            direction: o.direction.reverse(),
            ptime: o.ptime,
            index: o.index,
            rejected: o.rejected.clone(),
            secure: false,
            crypto: Vec::new(),
            webrtc: None,
        }
    };
    let ans_a = answer(a, ca, b, a_ip, a_port);
    let ans_b = answer(b, cb, a, b_ip, b_port);
    let (ab, ba, x) = join(&ans_a, &ans_b)?;
    Some((ans_a, ans_b, ab, ba, x))
}

#[cfg(test)]
mod tests {
    use super::*;
    use media::sdp::Direction;

    fn audio(codecs: &[(u8, &str)]) -> Audio {
        Audio {
            addr: "10.0.0.5".parse().unwrap(),
            port: 4000,
            codecs: codecs
                .iter()
                .map(|(pt, n)| Codec {
                    pt: *pt,
                    name: n.to_string(),
                    rate: 8000,
                    fmtp: None,
                })
                .collect(),
            direction: Direction::SendRecv,
            ptime: None,
            index: 0,
            rejected: Vec::new(),
            secure: false,
            crypto: Vec::new(),
            webrtc: None,
        }
    }

    #[test]
    fn common_codec_passes_through() {
        let a = audio(&[(0, "PCMU"), (8, "PCMA"), (101, "telephone-event")]);
        let o = offer(
            &a,
            &["PCMA".into(), "PCMU".into()],
            "10.0.0.1".parse().unwrap(),
            20000,
        )
        .unwrap();
        assert_eq!(
            o.codecs.iter().map(|c| c.pt).collect::<Vec<_>>(),
            [8, 0, 101]
        );
        let b_answer = audio(&[(8, "PCMA"), (96, "telephone-event")]);
        let br = bridge(&a, &b_answer, "10.0.0.1".parse().unwrap(), 20002).unwrap();
        assert!(!br.transcoding);
        assert_eq!(
            br.answer.codecs.iter().map(|c| c.pt).collect::<Vec<_>>(),
            [8, 101]
        );
        assert_eq!(br.forward.0[101], (96, Xcode::None));
        assert_eq!(br.backward.0[96], (101, Xcode::None));
    }

    #[test]
    fn no_common_g711_transcodes() {
        let a = audio(&[(0, "PCMU")]);
        let o = offer(&a, &["PCMA".into()], "10.0.0.1".parse().unwrap(), 20000).unwrap();
        assert_eq!(o.codecs[0].name, "PCMA");
        let br = bridge(
            &a,
            &audio(&[(8, "PCMA")]),
            "10.0.0.1".parse().unwrap(),
            20002,
        )
        .unwrap();
        assert!(br.transcoding);
        assert_eq!(br.answer.codecs[0].name, "PCMU");
        assert_eq!(br.forward.0[0], (8, Xcode::UlawToAlaw));
        assert_eq!(br.backward.0[8], (0, Xcode::AlawToUlaw));
    }

    /// linphone offers telephone-event at 48, 16 and 8 kHz; the box must take the 8 kHz
    /// one (the phone heard no digits when it took the first).
    #[test]
    fn telephone_events_at_8khz_only() {
        let mut a = audio(&[
            (0, "PCMU"),
            (99, "telephone-event"),
            (100, "telephone-event"),
            (101, "telephone-event"),
        ]);
        a.codecs[1].rate = 48000;
        a.codecs[2].rate = 16000;
        let o = offer(&a, &["PCMU".into()], "10.0.0.1".parse().unwrap(), 1).unwrap();
        assert_eq!(o.codecs.iter().map(|c| c.pt).collect::<Vec<_>>(), [0, 101]);
        let br = bridge(
            &a,
            &audio(&[(0, "PCMU"), (96, "telephone-event")]),
            "10.0.0.1".parse().unwrap(),
            2,
        )
        .unwrap();
        assert_eq!(
            br.answer.codecs.iter().map(|c| c.pt).collect::<Vec<_>>(),
            [0, 101]
        );
        assert_eq!(br.backward.0[96], (101, Xcode::None));
    }

    #[test]
    fn the_session_is_narrowed_to_the_answer() {
        let offered = audio(&[(8, "PCMA"), (0, "PCMU"), (101, "telephone-event")]);
        let n = narrow(&offered, &audio(&[(0, "PCMU"), (96, "telephone-event")]));
        assert_eq!(n.codecs.iter().map(|c| c.pt).collect::<Vec<_>>(), [0, 101]);
        let n = narrow(&offered, &audio(&[(8, "PCMA")]));
        assert_eq!(n.codecs.iter().map(|c| c.pt).collect::<Vec<_>>(), [8]);
        assert!(late_offer(&["G722".into()]).is_none());
    }

    #[test]
    fn nothing_in_common() {
        let a = audio(&[(9, "G722")]);
        assert!(offer(&a, &["PCMA".into()], "10.0.0.1".parse().unwrap(), 1).is_none());
    }
}
