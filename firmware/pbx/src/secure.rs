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
}

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
    match s {
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
}
