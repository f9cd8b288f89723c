//! SRTP with SDES keys (RFC 3711, RFC 4568) per side of a call: each dialog that speaks
//! it has the box's own key, which every session description the box gives that side
//! carries, and the party's key from its latest offer or answer. The endpoint facing
//! the side is keyed with both, so the relay decrypts and encrypts only where the two
//! sides of a call differ.

use media::sdp::{Audio, Crypto};
use media::srtp::Suite;

/// SRTP with one side.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct LegSrtp {
    /// The tag of the `a=crypto` line agreed (an answer repeats the offer's).
    pub tag: u32,
    pub suite: Suite,
    /// The box's master key and salt: what goes to the party is protected with it.
    pub ours: [u8; media::srtp::KEY_LEN],
    /// The party's, once its offer or answer came.
    pub theirs: Option<[u8; media::srtp::KEY_LEN]>,
    /// The m-line says RTP/SAVP (an offer of plain RTP/AVP with keys is answered so).
    pub savp: bool,
    /// The side must encrypt (an account that encrypts calls, an interface or link
    /// that encrypts audio): its keys may never be dropped, even best-effort ones.
    pub required: bool,
    /// The side is a browser: WebRTC (ICE-lite, DTLS-SRTP) instead of SDES keys, and
    /// the fields above are unused.
    pub webrtc: Option<Box<LegWebRtc>>,
}

/// WebRTC with one side (a browser phone): the box's ICE credentials, the browser's
/// credentials and certificate fingerprint once its offer or answer came, and who
/// opens the DTLS handshake.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct LegWebRtc {
    pub ufrag: String,
    pub pwd: String,
    /// The browser's ICE username fragment, password and fingerprint.
    pub theirs: Option<(String, String, String)>,
    /// The box opens the handshake (the browser said `setup:passive`).
    pub active: bool,
    /// The box's description is an offer still unanswered: it says `setup:actpass`.
    pub offering: bool,
    pub mid: Option<String>,
    pub bundle: bool,
    /// The box's address in the descriptions it gives the side (its host candidate).
    pub local: Option<std::net::IpAddr>,
    /// The browser prefers Opus (its last offer or answer listed it first): the leg
    /// speaks it, and its edge turns it into the G.711 law `law` (a payload type, 0 or
    /// 8) that the rest of the call knows the leg by.
    pub opus: Option<media::sdp::Codec>,
    pub law: u8,
    /// The browser listed Opus and no G.711 law: the box answers Opus alone.
    pub opus_only: bool,
}

impl LegWebRtc {
    fn new(local: Option<std::net::IpAddr>) -> LegWebRtc {
        let (ufrag, pwd) = media::webrtc::new_ice_credentials();
        LegWebRtc {
            ufrag,
            pwd,
            theirs: None,
            active: false,
            offering: true,
            mid: Some("0".into()),
            bundle: false,
            local,
            opus: None,
            law: 0,
            opus_only: false,
        }
    }

    /// What a browser's offer or answer (with `codecs`) says of itself.
    fn take(&mut self, w: &media::sdp::WebRtc, codecs: &[media::sdp::Codec], answer: bool) {
        self.opus = w.opus.clone();
        self.opus_only = w.opus_only;
        // The law the browser's description kept (`sdp::parse` keeps G.711 and events
        // only on a WebRTC stream).
        self.law = codecs.iter().find_map(|c| c.g711_pt()).unwrap_or(0);
        // The same credentials again (a re-offer for hold): the session stands. New
        // ones are an ICE restart of the browser's: taken on the same session. The
        // box keeps its own (RFC 8839 4.4.1.1.2 would renew them in the answer; an
        // ICE-lite box's checks come only from the browser).
        self.theirs = Some((w.ufrag.clone(), w.pwd.clone(), w.fingerprint.clone()));
        // An offer's actpass or active makes the box passive (RFC 5763 5: the
        // answerer of actpass should be active, but an ICE-lite box waits for the
        // browser, which is always the one to connect); passive makes it active.
        self.active = w.setup == media::sdp::Setup::Passive;
        if !answer {
            self.mid = w.mid.clone();
            self.bundle = w.bundle;
        }
        self.offering = false;
    }
}

impl std::fmt::Debug for LegWebRtc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LegWebRtc({} active={})", self.ufrag, self.active)
    }
}

/// Why a plain or SDES offer is refused on a dialog with a browser.
pub(crate) const STAYS_WEBRTC: &str =
    "this call is WebRTC: offer DTLS-SRTP (UDP/TLS/RTP/SAVPF) again";

impl std::fmt::Debug for LegSrtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LegSrtp({} {})", self.tag, self.suite.name())
    }
}

/// What the box offers a side that must encrypt: RTP/SAVP with one key of the suite
/// every phone speaks.
pub(crate) fn offered() -> LegSrtp {
    LegSrtp {
        tag: 1,
        suite: Suite::Aes128Sha1_80,
        ours: media::srtp::new_key(),
        theirs: None,
        savp: true,
        required: true,
        webrtc: None,
    }
}

/// What the box offers a browser (a phone registered over WebSocket): WebRTC, with
/// `local` as its host candidate's address.
pub(crate) fn offered_webrtc(local: std::net::IpAddr) -> LegSrtp {
    LegSrtp {
        webrtc: Some(Box::new(LegWebRtc::new(Some(local)))),
        ..offered()
    }
}

/// Notes the box's address on a WebRTC side (where its host candidate is).
pub(crate) fn locate(s: &mut Option<LegSrtp>, local: std::net::IpAddr) {
    if let Some(w) = s.as_mut().and_then(|x| x.webrtc.as_mut()) {
        w.local = Some(local);
    }
}

/// Why a phone's plain offer is refused when its extension encrypts calls.
pub(crate) const ACCOUNT_ENCRYPTS: &str =
    "this account encrypts calls: offer SRTP (RTP/SAVP with a=crypto)";
/// Why a plain offer from an interface or link that encrypts audio is refused.
pub(crate) const INTERFACE_ENCRYPTS: &str =
    "this interface encrypts audio: offer SRTP (RTP/SAVP with a=crypto)";

/// A side's offer (an INVITE's, or a re-INVITE's on a dialog with `s`): SRTP when it
/// holds a key the box speaks, plain when it holds none and may be plain. `must` is
/// `Some(why)` when the side must encrypt ([`ACCOUNT_ENCRYPTS`],
/// [`INTERFACE_ENCRYPTS`]): a plain offer is refused with that reason. The box's key
/// stays for the dialog's life. `Err` is the reason for a 488.
pub(crate) fn take_offer(
    s: &mut Option<LegSrtp>,
    offer: &Audio,
    must: Option<&'static str>,
) -> Result<(), &'static str> {
    let required = must.is_some();
    // A browser's offer: WebRTC for the dialog's life (it satisfies a side that must
    // encrypt: DTLS-SRTP).
    if let Some(w) = offer.webrtc.as_deref() {
        match s.as_mut().and_then(|x| x.webrtc.as_mut()) {
            Some(x) => x.take(w, &offer.codecs, false),
            None => {
                let mut x = LegWebRtc::new(None);
                x.take(w, &offer.codecs, false);
                *s = Some(LegSrtp {
                    webrtc: Some(Box::new(x)),
                    ..offered()
                });
            }
        }
        return Ok(());
    }
    if s.as_ref().is_some_and(|x| x.webrtc.is_some()) {
        return Err(STAYS_WEBRTC);
    }
    // The line with the tag agreed before, else the first the box speaks.
    let pick = s
        .as_ref()
        .and_then(|x| {
            offer
                .crypto
                .iter()
                .find(|c| c.tag == x.tag && c.suite == x.suite)
        })
        .or_else(|| offer.crypto.first());
    match (pick, s.as_mut()) {
        (Some(c), Some(x)) => {
            if c.suite != x.suite {
                // Another suite is another crypto context: the box's key is new too.
                x.ours = media::srtp::new_key();
            }
            x.tag = c.tag;
            x.suite = c.suite;
            x.theirs = Some(c.key);
            x.savp = offer.secure;
            x.required |= required;
            Ok(())
        }
        (Some(c), None) => {
            *s = Some(LegSrtp {
                tag: c.tag,
                suite: c.suite,
                ours: media::srtp::new_key(),
                theirs: Some(c.key),
                savp: offer.secure,
                required,
                webrtc: None,
            });
            Ok(())
        }
        // Best-effort keys on RTP/AVP may be dropped again (some phones do on hold),
        // unless the side must encrypt.
        (None, Some(x)) if !x.savp && !required && !x.required => {
            *s = None;
            Ok(())
        }
        (None, Some(_)) => Err("this call is encrypted: offer SRTP (a=crypto) again"),
        (None, None) if offer.secure => {
            Err("no SRTP crypto suite the box speaks (AES_CM_128_HMAC_SHA1_80 or _32)")
        }
        (None, None) => must.map_or(Ok(()), Err),
    }
}

/// A side's answer to an offer of the box's: on an SRTP dialog it must carry a key
/// under the tag and suite the box offered. `Err` when it does not.
pub(crate) fn take_answer(s: &mut Option<LegSrtp>, answer: &Audio) -> Result<(), &'static str> {
    let Some(x) = s.as_mut() else {
        return Ok(());
    };
    if let Some(w) = x.webrtc.as_mut() {
        return match answer.webrtc.as_deref() {
            Some(a) => {
                w.take(a, &answer.codecs, true);
                Ok(())
            }
            None => Err("the answer is not WebRTC (DTLS-SRTP) as the box offered"),
        };
    }
    match answer
        .crypto
        .iter()
        .find(|c| c.tag == x.tag && c.suite == x.suite)
    {
        // The box's own key sent back would encrypt both directions alike.
        Some(c) if c.key == x.ours => Err("the answer repeats the box's own SRTP key"),
        Some(c) => {
            x.theirs = Some(c.key);
            Ok(())
        }
        None => Err("the answer has no SRTP key for the box's offer"),
    }
}

/// `audio` as this side gets it: RTP/SAVP (or AVP) with the box's key on an SRTP
/// dialog, plain otherwise.
pub(crate) fn dress(audio: &Audio, s: &Option<LegSrtp>) -> Audio {
    let mut a = audio.clone();
    a.webrtc = None;
    match s {
        Some(LegSrtp {
            webrtc: Some(w), ..
        }) => {
            use media::sdp::Setup;
            a.secure = true;
            a.crypto.clear();
            // G.711 (what the rest of the call carries): a browser speaks both laws.
            // Keypad digits come as SIP INFO: no telephone-event. Opus first when the
            // leg speaks it; after G.711 in an offer, for a browser that prefers it.
            a.codecs.retain(|c| c.g711_pt().is_some());
            let opus = w
                .opus
                .clone()
                .or_else(|| w.offering.then(media::sdp::opus_offer));
            a.webrtc = Some(Box::new(media::sdp::WebRtc {
                ufrag: w.ufrag.clone(),
                pwd: w.pwd.clone(),
                fingerprint: media::webrtc::fingerprint().unwrap_or_default().to_string(),
                setup: match (w.offering, w.active) {
                    (true, _) => Setup::ActPass,
                    (false, true) => Setup::Active,
                    (false, false) => Setup::Passive,
                },
                mid: w.mid.clone(),
                bundle: w.bundle,
                lite: true,
                opus_first: w.opus.is_some(),
                opus,
                // Opus alone in an answer to a browser that listed no law (its leg
                // still becomes one for the rest of the call).
                opus_only: w.opus_only && !w.offering,
            }));
        }
        Some(x) => {
            a.secure = x.savp;
            a.crypto = vec![Crypto {
                tag: x.tag,
                suite: x.suite,
                key: x.ours,
            }];
        }
        None => {
            a.secure = false;
            a.crypto.clear();
        }
    }
    a
}

/// Keys the endpoint facing the side. Before the party's key is known what it sends
/// cannot be read (a key nobody has), and what goes to it is already protected: an
/// SRTP side never gets plain audio.
pub(crate) fn key(ep: &media::Handle, s: &Option<LegSrtp>) {
    // A browser: its leg speaks WebRTC once its credentials are known, and is silent
    // until then.
    if let Some(w) = s.as_ref().and_then(|x| x.webrtc.as_deref()) {
        ep.set_webrtc(w.theirs.as_ref().map(|(ufrag, pwd, fp)| {
            media::webrtc::WebRtcParams {
                local: std::net::SocketAddr::new(
                    w.local
                        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)),
                    ep.port,
                ),
                ufrag: w.ufrag.clone(),
                pwd: w.pwd.clone(),
                their_ufrag: ufrag.clone(),
                their_pwd: pwd.clone(),
                fingerprint: fp.clone(),
                active: w.active,
                opus: w.opus.as_ref().map(|o| media::OpusParams {
                    pt: o.pt,
                    law_pt: w.law,
                }),
            }
        }));
        return;
    }
    ep.set_srtp(s.as_ref().map(|x| media::SrtpKeys {
        suite: x.suite,
        theirs: x.theirs.unwrap_or_else(media::srtp::new_key),
        ours: x.ours,
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn audio(secure: bool, crypto: &[(u32, Suite, u8)]) -> Audio {
        let mut a =
            media::sdp::parse(b"v=0\r\nc=IN IP4 10.0.0.2\r\nm=audio 4000 RTP/AVP 0\r\n").unwrap();
        a.secure = secure;
        a.crypto = crypto
            .iter()
            .map(|(tag, suite, k)| Crypto {
                tag: *tag,
                suite: *suite,
                key: [*k; media::srtp::KEY_LEN],
            })
            .collect();
        a
    }

    #[test]
    fn offers_answers_and_refusals() {
        use Suite::*;
        // A plain offer to a plain side: nothing; to an encrypting one: refused.
        let mut s = None;
        assert!(take_offer(&mut s, &audio(false, &[]), None).is_ok() && s.is_none());
        assert!(take_offer(&mut s, &audio(false, &[]), Some(ACCOUNT_ENCRYPTS)).is_err());
        // ... with the reason the side gives.
        assert_eq!(
            take_offer(&mut s, &audio(false, &[]), Some(INTERFACE_ENCRYPTS)),
            Err(INTERFACE_ENCRYPTS)
        );
        assert!(take_offer(&mut s, &audio(true, &[]), None).is_err());
        // A key: the first line the box speaks; the answer repeats its tag with the
        // box's key and the offer's profile.
        take_offer(
            &mut s,
            &audio(true, &[(3, Aes128Sha1_32, 7), (4, Aes128Sha1_80, 8)]),
            None,
        )
        .unwrap();
        let x = s.clone().unwrap();
        assert_eq!(
            (x.tag, x.suite, x.theirs, x.savp),
            (3, Aes128Sha1_32, Some([7; 30]), true)
        );
        let dressed = dress(&audio(false, &[]), &s);
        assert!(dressed.secure);
        assert_eq!(dressed.crypto.len(), 1);
        assert_eq!((dressed.crypto[0].tag, dressed.crypto[0].key), (3, x.ours));
        // A re-offer keeps the box's key, takes a new key of the party's, and may not
        // drop SRTP.
        take_offer(&mut s, &audio(true, &[(3, Aes128Sha1_32, 9)]), None).unwrap();
        assert_eq!(s.as_ref().unwrap().theirs, Some([9; 30]));
        assert_eq!(s.as_ref().unwrap().ours, x.ours);
        assert!(take_offer(&mut s, &audio(false, &[]), None).is_err());
        // A re-offer of another suite renews the box's key.
        take_offer(&mut s, &audio(true, &[(3, Aes128Sha1_80, 9)]), None).unwrap();
        assert_ne!(s.as_ref().unwrap().ours, x.ours);
        // Best-effort keys on RTP/AVP may go again; required ones may not.
        let mut be = None;
        take_offer(&mut be, &audio(false, &[(1, Aes128Sha1_80, 4)]), None).unwrap();
        assert!(be.as_ref().is_some_and(|x| !x.savp));
        assert!(take_offer(&mut be.clone(), &audio(false, &[]), Some(ACCOUNT_ENCRYPTS)).is_err());
        take_offer(&mut be, &audio(false, &[]), None).unwrap();
        assert!(be.is_none());
        // A side that must encrypt keeps even best-effort keys for the dialog's life:
        // its later plain re-offer (the re-INVITE path passes false) is refused.
        let mut must = None;
        take_offer(
            &mut must,
            &audio(false, &[(1, Aes128Sha1_80, 4)]),
            Some(ACCOUNT_ENCRYPTS),
        )
        .unwrap();
        assert!(take_offer(&mut must, &audio(false, &[]), None).is_err());
        assert!(must.is_some());
        // The box's offer: its answer must carry the offered tag and suite.
        let mut o = Some(offered());
        assert!(take_answer(&mut o, &audio(true, &[(2, Aes128Sha1_80, 1)])).is_err());
        assert!(take_answer(&mut o, &audio(true, &[(1, Aes128Sha1_32, 1)])).is_err());
        let mine = o.as_ref().unwrap().ours;
        let mut reflected = audio(true, &[(1, Aes128Sha1_80, 0)]);
        reflected.crypto[0].key = mine;
        assert!(take_answer(&mut o, &reflected).is_err(), "its own key back");
        take_answer(&mut o, &audio(true, &[(1, Aes128Sha1_80, 5)])).unwrap();
        assert_eq!(o.as_ref().unwrap().theirs, Some([5; 30]));
        // A plain dialog ignores keys in an answer and writes none.
        let mut p = None;
        take_answer(&mut p, &audio(true, &[(1, Aes128Sha1_80, 5)])).unwrap();
        assert!(p.is_none());
        let plain = dress(&audio(true, &[(1, Aes128Sha1_80, 5)]), &None);
        assert!(!plain.secure && plain.crypto.is_empty());
        assert!(!format!("{:?}", o).contains('5'), "no key in a log");
    }

    const FP: &str = "sha-256 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB:3C:5C:09:24:EB:0B:5B:B9:6B:5C:9A:4B";

    fn browser(setup: &str, ufrag: &str) -> Audio {
        let text = format!(
            "v=0\r\nc=IN IP4 0.0.0.0\r\na=group:BUNDLE a0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 0 8 126\r\n\
             a=rtpmap:111 opus/48000/2\r\na=rtpmap:126 telephone-event/8000\r\na=mid:a0\r\n\
             a=ice-ufrag:{ufrag}\r\na=ice-pwd:secretsecretsecretsecret\r\na=fingerprint:{FP}\r\n\
             a=setup:{setup}\r\n"
        );
        media::sdp::parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn a_browser_side_is_webrtc_for_the_dialogs_life() {
        use media::sdp::Setup;
        // A browser's offer: WebRTC, the box passive; it satisfies an account that
        // must encrypt.
        let mut s = None;
        take_offer(&mut s, &browser("actpass", "u1"), Some(ACCOUNT_ENCRYPTS)).unwrap();
        locate(&mut s, "192.0.2.7".parse().unwrap());
        let w = s.as_ref().unwrap().webrtc.clone().unwrap();
        assert_eq!(w.theirs.as_ref().map(|t| t.0.as_str()), Some("u1"));
        assert!(!w.active && !w.offering && w.bundle);
        assert_eq!(w.local, Some("192.0.2.7".parse().unwrap()));
        // The answer: the box's own credentials and fingerprint, passive, the offer's
        // mid, G.711 only, no SDES key.
        let dressed = dress(&browser("actpass", "u1"), &s);
        let d = dressed.webrtc.as_deref().unwrap();
        assert_eq!(
            (d.ufrag.as_str(), d.setup, d.mid.as_deref()),
            (w.ufrag.as_str(), Setup::Passive, Some("a0"))
        );
        assert!(d.lite && d.bundle && dressed.crypto.is_empty());
        assert_eq!(d.fingerprint, media::webrtc::fingerprint().unwrap());
        assert!(
            dressed.codecs.iter().all(|c| c.pt == 0 || c.pt == 8),
            "{:?}",
            dressed.codecs
        );
        // A re-offer (hold) keeps the box's credentials, and so does an ICE restart
        // of the browser's (its new ones are taken); a plain offer is refused.
        take_offer(&mut s, &browser("actpass", "u1"), None).unwrap();
        assert_eq!(s.as_ref().unwrap().webrtc.as_ref().unwrap().ufrag, w.ufrag);
        take_offer(&mut s, &browser("actpass", "u9"), None).unwrap();
        let r = s.as_ref().unwrap().webrtc.clone().unwrap();
        assert_eq!((&r.ufrag, &r.pwd), (&w.ufrag, &w.pwd));
        assert_eq!(r.theirs.as_ref().map(|t| t.0.as_str()), Some("u9"));
        assert_eq!(
            take_offer(&mut s, &audio(false, &[]), None),
            Err(STAYS_WEBRTC)
        );
        // A side that is not a browser gets no WebRTC attributes, whatever the other
        // side's description had.
        assert!(dress(&browser("actpass", "u1"), &None).webrtc.is_none());
        // The box's offer to a browser: actpass until answered; an answer that is not
        // WebRTC is refused; an active browser makes the box passive.
        let mut o = Some(offered_webrtc("192.0.2.7".parse().unwrap()));
        assert_eq!(
            dress(&audio(false, &[]), &o).webrtc.unwrap().setup,
            Setup::ActPass
        );
        assert!(take_answer(&mut o, &audio(true, &[(1, Suite::Aes128Sha1_80, 5)])).is_err());
        take_answer(&mut o, &browser("active", "u2")).unwrap();
        let w = o.as_ref().unwrap().webrtc.as_ref().unwrap();
        assert!(!w.active && !w.offering);
        assert_eq!(
            dress(&audio(false, &[]), &o).webrtc.unwrap().setup,
            Setup::Passive
        );
        take_answer(&mut o, &browser("passive", "u2")).unwrap();
        assert!(o.as_ref().unwrap().webrtc.as_ref().unwrap().active);
        assert!(
            !format!("{:?}", o).contains("secretsecret"),
            "no ICE password in a log"
        );
    }

    #[test]
    fn a_browser_that_prefers_opus_gets_it_at_the_legs_edge() {
        // The box's offer to a browser has Opus after G.711: the browser chooses.
        let mut o = Some(offered_webrtc("192.0.2.7".parse().unwrap()));
        let offer = dress(&audio(false, &[]), &o);
        let w = offer.webrtc.as_deref().unwrap();
        assert_eq!(w.opus, Some(media::sdp::opus_offer()));
        assert!(!w.opus_first);
        // Its answer prefers Opus (111 first): the leg speaks Opus, becoming PCMU,
        // and says so first from now on; the endpoint is told.
        take_answer(&mut o, &browser("active", "u2")).unwrap();
        let x = o.as_ref().unwrap().webrtc.as_deref().unwrap();
        assert_eq!((x.opus.as_ref().map(|c| c.pt), x.law), (Some(111), 0));
        let again = dress(&audio(false, &[]), &o);
        assert!(again.webrtc.as_deref().unwrap().opus_first);
        // A browser preferring G.711 (the phone page's default): no Opus, and none
        // in the box's answer.
        let g711 = |setup: &str| {
            let mut b = browser(setup, "u3");
            b.webrtc.as_mut().unwrap().opus = None;
            b
        };
        take_offer(&mut o, &g711("actpass"), None).unwrap();
        let x = o.as_ref().unwrap().webrtc.as_deref().unwrap();
        assert!(x.opus.is_none());
        assert_eq!(dress(&audio(false, &[]), &o).webrtc.unwrap().opus, None);
        // A browser offering Opus and no law: answered with Opus alone (RFC 3264
        // 6.1), its leg PCMU for the rest of the call.
        let mut only = browser("actpass", "u4");
        let text = String::from_utf8(media::sdp::write(1, 1, &only))
            .unwrap()
            .replace("SAVPF 111 0 126", "SAVPF 111 126");
        only = media::sdp::parse(text.as_bytes()).unwrap();
        take_offer(&mut o, &only, None).unwrap();
        let x = o.as_ref().unwrap().webrtc.as_deref().unwrap();
        assert_eq!((x.opus.as_ref().map(|c| c.pt), x.law), (Some(111), 0));
        let answer = media::sdp::write(1, 1, &dress(&audio(false, &[]), &o));
        let answer = String::from_utf8(answer).unwrap();
        assert!(
            answer.contains("m=audio 4000 UDP/TLS/RTP/SAVPF 111\r\n"),
            "{answer}"
        );
        assert!(!answer.contains("PCMU"), "{answer}");
        // One that lists a law too gets Opus first, then the law.
        take_offer(&mut o, &browser("actpass", "u4"), None).unwrap();
        let answer = media::sdp::write(1, 1, &dress(&audio(false, &[]), &o));
        let answer = String::from_utf8(answer).unwrap();
        assert!(answer.contains("/SAVPF 111 0\r\n"), "{answer}");
    }
}
