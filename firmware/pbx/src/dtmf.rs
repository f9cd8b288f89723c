//! Keypad digits sent by SIP INFO (`application/dtmf-relay`, `application/dtmf`), as
//! some phones and providers do instead of RFC 4733: the box takes them out of the
//! signalling and sends each to the other party the way that party's session carries
//! digits, as RFC 4733 telephone-events when it negotiated them, else as the two tones
//! in its audio. So a phone set to "SIP INFO" reaches a provider's voice menu, and a
//! digit is never lost between two phones that chose different methods.

use crate::calls::Side;
use crate::Pbx;

/// Shortest and longest digit sent on (a zero or absurd Duration still gives a digit
/// every receiver hears, and never mutes a call for long).
const MIN_MS: u32 = 40;
const MAX_MS: u32 = 2000;
/// A digit whose INFO gives no duration.
const DEFAULT_MS: u32 = 160;

/// What an INFO body asks for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Info {
    /// A keypad digit (RFC 4733 event 0-15) and how long, in ms.
    Digit(u8, u32),
    /// Not a digit INFO: answered 200 and otherwise left alone (legacy INFO carries
    /// many things, and RFC 6086's packages are not used by the phones we meet).
    Other,
}

/// Reads an INFO's body by its Content-Type. `Err` names what is wrong with a digit
/// INFO that cannot be understood (answered 400).
pub(crate) fn parse_info(content_type: Option<&str>, body: &[u8]) -> Result<Info, &'static str> {
    let ty = content_type
        .and_then(|t| t.split(';').next())
        .map(|t| t.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let text = || std::str::from_utf8(body).map_err(|_| "the DTMF body is not text");
    match ty.as_str() {
        // Signal=5\r\nDuration=160 (the de facto format; Cisco writes * and # as 10, 11).
        "application/dtmf-relay" => {
            let mut signal = None;
            let mut ms = DEFAULT_MS;
            for line in text()?.lines() {
                let Some((k, v)) = line.split_once('=') else {
                    continue;
                };
                let v = v.trim();
                match k.trim().to_ascii_lowercase().as_str() {
                    "signal" => signal = Some(v),
                    "duration" => ms = v.parse().map_err(|_| "Duration is not a number")?,
                    _ => {}
                }
            }
            let ev = digit(signal.ok_or("no Signal")?).ok_or("Signal is not a keypad digit")?;
            Ok(Info::Digit(ev, ms.clamp(MIN_MS, MAX_MS)))
        }
        // RFC 2976's example type: the body is the digit itself.
        "application/dtmf" => {
            let ev = digit(text()?.trim()).ok_or("the body is not a keypad digit")?;
            Ok(Info::Digit(ev, DEFAULT_MS))
        }
        _ => Ok(Info::Other),
    }
}

/// A digit as an INFO names it: `0`-`9`, `*`, `#`, `A`-`D`, or 10 and 11 for `*`, `#`.
fn digit(s: &str) -> Option<u8> {
    match s {
        "10" => Some(10),
        "11" => Some(11),
        _ => {
            let mut c = s.chars();
            let (Some(d), None) = (c.next(), c.next()) else {
                return None;
            };
            media::dtmf::digit_event(d)
        }
    }
}

impl Pbx {
    /// Sends digit `ev` from `from` to the other side of answered call `id`: RFC 4733
    /// events when the box's session with that side has telephone-event, else in-band.
    /// Nothing is sent while the call is on hold (the music goes on undisturbed).
    pub(crate) fn send_digit(&mut self, id: u64, from: Side, ev: u8, ms: u32) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let to = from.other();
        if call.answered.is_none() || call.held_by.is_some() || call.transfer.is_some() {
            return;
        }
        let Some(ep) = call.ep(to) else {
            return;
        };
        let Some(session) = call.dialog_ref(to).sent_sdp.as_ref() else {
            return;
        };
        if let Some(te) = session.dtmf() {
            // The payload type the relay gives the sender's events towards this side
            // (an answer may number telephone-event otherwise than the box's offer).
            let map = if to == Side::B {
                &call.maps.0
            } else {
                &call.maps.1
            };
            let pt = call
                .dialog_ref(from)
                .sent_sdp
                .as_ref()
                .and_then(|s| s.dtmf())
                .map_or(te.pt, |own| map.0[own.pt as usize & 0x7f].0);
            // Digits sent while one is still going are queued behind it.
            ep.send_digit(ev, ms, pt);
        } else if ep.playing() {
            // In-band, a digit still sounding is not cut short: this one is dropped.
        } else if let Some(c) = session.codecs.iter().find(|c| !c.is_dtmf()) {
            let alaw = c.name.eq_ignore_ascii_case("PCMA");
            if alaw || c.name.eq_ignore_ascii_case("PCMU") {
                if let Some(clip) = media::dtmf::tone_clip(ev, ms) {
                    ep.play_once(clip, c.pt, alaw);
                }
            }
        }
        tracing::debug!(call = id, from = ?from, digit = ?media::dtmf::digit_char(ev), "DTMF by INFO sent on");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_bodies_are_read() {
        let relay = Some("application/dtmf-relay");
        assert_eq!(
            parse_info(relay, b"Signal=5\r\nDuration=250\r\n"),
            Ok(Info::Digit(5, 250))
        );
        assert_eq!(
            parse_info(relay, b"Signal= #\nDuration= 100"),
            Ok(Info::Digit(11, 100))
        );
        assert_eq!(
            parse_info(relay, b"signal=10\r\n"),
            Ok(Info::Digit(10, DEFAULT_MS))
        );
        assert_eq!(
            parse_info(relay, b"Signal=d\r\nDuration=0"),
            Ok(Info::Digit(15, MIN_MS))
        );
        assert_eq!(
            parse_info(relay, b"Signal=1\r\nDuration=99999999"),
            Ok(Info::Digit(1, MAX_MS))
        );
        assert_eq!(
            parse_info(Some("Application/DTMF; x=y"), b"7\r\n"),
            Ok(Info::Digit(7, DEFAULT_MS))
        );
        assert_eq!(
            parse_info(Some("application/media_control+xml"), b"<x/>"),
            Ok(Info::Other)
        );
        assert_eq!(parse_info(None, b""), Ok(Info::Other));
        assert_eq!(
            parse_info(Some("application/octet-stream"), b"\xff\xfe"),
            Ok(Info::Other),
            "only digit bodies need be text"
        );
        for bad in [
            &b"Duration=100"[..],
            b"Signal=12",
            b"Signal=55",
            b"Signal=x",
            b"Signal=1\r\nDuration=-5",
            b"Signal=1\r\nDuration=1e3",
            b"\xff\xfe",
        ] {
            assert!(parse_info(relay, bad).is_err(), "{bad:?}");
        }
        assert!(parse_info(Some("application/dtmf"), b"").is_err());
        assert!(parse_info(Some("application/dtmf"), b"12").is_err());
    }
}
