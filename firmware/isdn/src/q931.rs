//! Q.931 messages: the header (protocol discriminator, call reference, message type),
//! information elements kept in order (typed accessors for the ones call control
//! uses), encoding, and the mapping of causes to and from SIP responses (RFC 3398).
//!
//! Decoding never panics; what is wrong is reported with the cause a STATUS (or
//! RELEASE COMPLETE) should carry back (Q.931 5.8).

/// Q.931's protocol discriminator.
pub const PD_Q931: u8 = 0x08;

/// Message types used by call control.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MsgType {
    Alerting,
    CallProceeding,
    Progress,
    Setup,
    Connect,
    SetupAcknowledge,
    ConnectAcknowledge,
    Disconnect,
    Release,
    ReleaseComplete,
    Restart,
    RestartAcknowledge,
    Facility,
    Notify,
    StatusEnquiry,
    Information,
    Status,
    Other(u8),
}

impl MsgType {
    pub fn code(self) -> u8 {
        match self {
            MsgType::Alerting => 0x01,
            MsgType::CallProceeding => 0x02,
            MsgType::Progress => 0x03,
            MsgType::Setup => 0x05,
            MsgType::Connect => 0x07,
            MsgType::SetupAcknowledge => 0x0d,
            MsgType::ConnectAcknowledge => 0x0f,
            MsgType::Disconnect => 0x45,
            MsgType::Restart => 0x46,
            MsgType::Release => 0x4d,
            MsgType::RestartAcknowledge => 0x4e,
            MsgType::ReleaseComplete => 0x5a,
            MsgType::Facility => 0x62,
            MsgType::Notify => 0x6e,
            MsgType::StatusEnquiry => 0x75,
            MsgType::Information => 0x7b,
            MsgType::Status => 0x7d,
            MsgType::Other(c) => c,
        }
    }

    pub fn from_code(c: u8) -> MsgType {
        [
            MsgType::Alerting,
            MsgType::CallProceeding,
            MsgType::Progress,
            MsgType::Setup,
            MsgType::Connect,
            MsgType::SetupAcknowledge,
            MsgType::ConnectAcknowledge,
            MsgType::Disconnect,
            MsgType::Restart,
            MsgType::Release,
            MsgType::RestartAcknowledge,
            MsgType::ReleaseComplete,
            MsgType::Facility,
            MsgType::Notify,
            MsgType::StatusEnquiry,
            MsgType::Information,
            MsgType::Status,
        ]
        .into_iter()
        .find(|m| m.code() == c)
        .unwrap_or(MsgType::Other(c))
    }
}

/// Information element identifiers (codeset 0).
pub mod ie {
    pub const SENDING_COMPLETE: u8 = 0xa1;
    pub const BEARER_CAPABILITY: u8 = 0x04;
    pub const CAUSE: u8 = 0x08;
    pub const CALL_STATE: u8 = 0x14;
    pub const CHANNEL_ID: u8 = 0x18;
    pub const FACILITY: u8 = 0x1c;
    pub const PROGRESS: u8 = 0x1e;
    pub const NOTIFICATION: u8 = 0x27;
    pub const DISPLAY: u8 = 0x28;
    pub const DATE_TIME: u8 = 0x29;
    pub const KEYPAD: u8 = 0x2c;
    pub const SIGNAL: u8 = 0x34;
    pub const CONNECTED_NUMBER: u8 = 0x4c;
    pub const CALLING_NUMBER: u8 = 0x6c;
    pub const CALLED_NUMBER: u8 = 0x70;
    pub const REDIRECTING_NUMBER: u8 = 0x74;
    pub const RESTART_INDICATOR: u8 = 0x79;
    pub const LOW_LAYER: u8 = 0x7c;
    pub const HIGH_LAYER: u8 = 0x7d;
}

/// One information element as it came, in its codeset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ie {
    pub codeset: u8,
    pub id: u8,
    /// Contents (for a single-octet element, empty; the value is in `id`).
    pub data: Vec<u8>,
}

/// The call reference: its value and the flag (set in messages from the side that
/// did not allocate it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallRef {
    pub value: u16,
    pub from_destination: bool,
    /// Octets of the value: 0 (the global/dummy reference), 1 (BRI) or 2 (PRI).
    pub len: u8,
}

impl CallRef {
    pub fn global(len: u8) -> CallRef {
        CallRef {
            value: 0,
            from_destination: false,
            len,
        }
    }
}

/// A Q.931 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub call_ref: CallRef,
    pub msg_type: MsgType,
    pub ies: Vec<Ie>,
}

/// Why a message was not understood, with the cause to answer (Q.931 5.8).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Too short or not Q.931: ignored, no answer (5.8.1, 5.8.2).
    #[error("not a Q.931 message: {0}")]
    Ignore(&'static str),
    /// Answer STATUS (or RELEASE COMPLETE) with this cause.
    #[error("{why} (cause {cause})")]
    Cause { cause: u8, why: String },
}

/// The call reference and message type of bytes that may not decode as a whole, so
/// that an error can be answered on the right call (Q.931 5.8).
pub fn header(b: &[u8]) -> Option<(CallRef, u8)> {
    if b.len() < 3 || b[0] != PD_Q931 || b[1] & 0xf0 != 0 || b[1] & 0x0f > 2 {
        return None;
    }
    let crl = (b[1] & 0x0f) as usize;
    let cr = b.get(2..2 + crl)?;
    let mt = *b.get(2 + crl)?;
    let (from_destination, value) = match crl {
        0 => (false, 0),
        1 => (cr[0] & 0x80 != 0, u16::from(cr[0] & 0x7f)),
        _ => (cr[0] & 0x80 != 0, u16::from_be_bytes([cr[0] & 0x7f, cr[1]])),
    };
    Some((
        CallRef {
            value,
            from_destination,
            len: crl as u8,
        },
        mt,
    ))
}

impl Message {
    pub fn new(call_ref: CallRef, msg_type: MsgType) -> Message {
        Message {
            call_ref,
            msg_type,
            ies: Vec::new(),
        }
    }

    pub fn parse(b: &[u8]) -> Result<Message, DecodeError> {
        if b.len() < 3 {
            return Err(DecodeError::Ignore("shorter than a header"));
        }
        if b[0] != PD_Q931 {
            return Err(DecodeError::Ignore("protocol discriminator is not Q.931"));
        }
        let Some((call_ref, mt)) = header(b) else {
            return Err(DecodeError::Ignore(
                "call reference length over 2 or truncated",
            ));
        };
        let crl = call_ref.len as usize;
        if mt & 0x80 != 0 {
            return Err(DecodeError::Ignore("message type escape"));
        }
        let mut m = Message {
            call_ref,
            msg_type: MsgType::from_code(mt),
            ies: Vec::new(),
        };
        let mut i = 3 + crl;
        let (mut codeset, mut locked) = (0u8, 0u8);
        while i < b.len() {
            let id = b[i];
            i += 1;
            if id & 0x80 != 0 {
                // Single-octet elements; shift changes the codeset.
                if id & 0xf0 == 0x90 {
                    let new = id & 0x07;
                    if id & 0x08 != 0 {
                        codeset = new; // non-locking: the next element only
                        continue;
                    }
                    locked = new;
                    codeset = new;
                    continue;
                }
                m.ies.push(Ie {
                    codeset,
                    id,
                    data: Vec::new(),
                });
                codeset = locked;
                continue;
            }
            let Some(&len) = b.get(i) else {
                return Err(DecodeError::Cause {
                    cause: 100,
                    why: format!("element {id:#04x} has no length"),
                });
            };
            i += 1;
            let end = i + len as usize;
            if end > b.len() {
                return Err(DecodeError::Cause {
                    cause: 100,
                    why: format!("element {id:#04x} runs past the end"),
                });
            }
            m.ies.push(Ie {
                codeset,
                id,
                data: b[i..end].to_vec(),
            });
            codeset = locked;
            i = end;
        }
        if let MsgType::Other(c) = m.msg_type {
            return Err(DecodeError::Cause {
                cause: 97,
                why: format!("message type {c:#04x} is not known"),
            });
        }
        Ok(m)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![PD_Q931, self.call_ref.len];
        let flag = if self.call_ref.from_destination {
            0x80
        } else {
            0
        };
        match self.call_ref.len {
            0 => {}
            1 => b.push(flag | (self.call_ref.value as u8 & 0x7f)),
            _ => {
                let v = self.call_ref.value.to_be_bytes();
                b.push(flag | (v[0] & 0x7f));
                b.push(v[1]);
            }
        }
        b.push(self.msg_type.code());
        for e in &self.ies {
            if e.codeset != 0 {
                b.push(0x98 | e.codeset); // non-locking shift: this element only
            }
            b.push(e.id);
            if e.id & 0x80 == 0 {
                // A length octet: contents over 255 octets cannot be sent.
                let n = e.data.len().min(255);
                b.push(n as u8);
                b.extend_from_slice(&e.data[..n]);
            }
        }
        b
    }

    pub fn get(&self, id: u8) -> Option<&[u8]> {
        self.ies
            .iter()
            .find(|e| e.codeset == 0 && e.id == id)
            .map(|e| e.data.as_slice())
    }

    pub fn has(&self, id: u8) -> bool {
        self.ies.iter().any(|e| e.codeset == 0 && e.id == id)
    }

    pub fn push(&mut self, id: u8, data: Vec<u8>) -> &mut Self {
        self.ies.push(Ie {
            codeset: 0,
            id,
            data,
        });
        self
    }

    /// A mandatory element, or the cause 96 answer (Q.931 5.8.6.1).
    pub fn need(&self, id: u8) -> Result<&[u8], DecodeError> {
        self.get(id).ok_or_else(|| DecodeError::Cause {
            cause: 96,
            why: format!("mandatory element {id:#04x} is missing"),
        })
    }

    pub fn cause(&self) -> Option<Cause> {
        self.get(ie::CAUSE).and_then(Cause::parse)
    }

    pub fn called(&self) -> Option<PartyNumber> {
        self.get(ie::CALLED_NUMBER)
            .and_then(PartyNumber::parse_called)
    }

    pub fn calling(&self) -> Option<PartyNumber> {
        self.get(ie::CALLING_NUMBER)
            .and_then(PartyNumber::parse_calling)
    }

    pub fn channel(&self) -> Option<ChannelId> {
        self.get(ie::CHANNEL_ID).and_then(ChannelId::parse)
    }

    pub fn bearer(&self) -> Option<Bearer> {
        self.get(ie::BEARER_CAPABILITY).and_then(Bearer::parse)
    }

    pub fn sending_complete(&self) -> bool {
        self.has(ie::SENDING_COMPLETE)
    }

    pub fn display(&self) -> Option<String> {
        // Network-specific: some switches put a charset octet first.
        self.get(ie::DISPLAY).map(|d| {
            let d = if d.first().is_some_and(|c| c & 0x80 != 0) {
                &d[1..]
            } else {
                d
            };
            String::from_utf8_lossy(d).into_owned()
        })
    }
}

/// Type of number (octet 3 bits 7-5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberType {
    Unknown,
    International,
    National,
    Network,
    Subscriber,
    Abbreviated,
    Other(u8),
}

impl NumberType {
    fn from_bits(b: u8) -> NumberType {
        match b {
            0 => NumberType::Unknown,
            1 => NumberType::International,
            2 => NumberType::National,
            3 => NumberType::Network,
            4 => NumberType::Subscriber,
            6 => NumberType::Abbreviated,
            x => NumberType::Other(x),
        }
    }

    fn bits(self) -> u8 {
        match self {
            NumberType::Unknown => 0,
            NumberType::International => 1,
            NumberType::National => 2,
            NumberType::Network => 3,
            NumberType::Subscriber => 4,
            NumberType::Abbreviated => 6,
            NumberType::Other(x) => x & 7,
        }
    }
}

/// Called or calling party number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartyNumber {
    pub ton: NumberType,
    /// Numbering plan (1 = ISDN/E.164, 9 = private, 0 = unknown).
    pub plan: u8,
    /// Calling number only: presentation allowed (false = restricted).
    pub presentation_allowed: bool,
    /// Calling number only: screening indicator (0 user-provided not screened, 3 network).
    pub screening: u8,
    pub digits: String,
}

impl PartyNumber {
    pub fn new(digits: &str) -> PartyNumber {
        PartyNumber {
            ton: NumberType::Unknown,
            plan: 1,
            presentation_allowed: true,
            screening: 0,
            digits: digits.to_string(),
        }
    }

    fn digits_of(b: &[u8]) -> String {
        b.iter()
            .map(|c| c & 0x7f)
            .filter(|c| c.is_ascii_digit() || *c == b'*' || *c == b'#')
            .map(char::from)
            .collect()
    }

    fn parse_called(d: &[u8]) -> Option<PartyNumber> {
        let o3 = *d.first()?;
        Some(PartyNumber {
            ton: NumberType::from_bits((o3 >> 4) & 7),
            plan: o3 & 0x0f,
            presentation_allowed: true,
            screening: 0,
            digits: Self::digits_of(&d[1..]),
        })
    }

    fn parse_calling(d: &[u8]) -> Option<PartyNumber> {
        let o3 = *d.first()?;
        let (pres, screen, rest) = if o3 & 0x80 == 0 {
            let o3a = *d.get(1)?;
            ((o3a >> 5) & 3, o3a & 3, &d[2..])
        } else {
            (0, 0, &d[1..])
        };
        Some(PartyNumber {
            ton: NumberType::from_bits((o3 >> 4) & 7),
            plan: o3 & 0x0f,
            presentation_allowed: pres == 0,
            screening: screen,
            digits: Self::digits_of(rest),
        })
    }

    pub fn encode_called(&self) -> Vec<u8> {
        let mut v = vec![0x80 | (self.ton.bits() << 4) | (self.plan & 0x0f)];
        v.extend(self.digits.bytes());
        v
    }

    pub fn encode_calling(&self) -> Vec<u8> {
        let pres = if self.presentation_allowed { 0 } else { 1 };
        let mut v = vec![
            (self.ton.bits() << 4) | (self.plan & 0x0f),
            0x80 | (pres << 5) | (self.screening & 3),
        ];
        v.extend(self.digits.bytes());
        v
    }
}

/// Cause (Q.850): location and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    pub location: u8,
    pub value: u8,
    pub diagnostic: Vec<u8>,
}

impl Cause {
    /// A cause from the private network serving the local user (a PBX's usual location).
    pub fn new(value: u8) -> Cause {
        Cause {
            location: 1,
            value,
            diagnostic: Vec::new(),
        }
    }

    fn parse(d: &[u8]) -> Option<Cause> {
        let o3 = *d.first()?;
        let mut i = 1;
        if o3 & 0x80 == 0 {
            i += 1; // recommendation octet 3a
        }
        let o4 = *d.get(i)?;
        Some(Cause {
            location: o3 & 0x0f,
            value: o4 & 0x7f,
            diagnostic: d.get(i + 1..).unwrap_or_default().to_vec(),
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut v = vec![0x80 | (self.location & 0x0f), 0x80 | (self.value & 0x7f)];
        v.extend_from_slice(&self.diagnostic);
        v
    }
}

/// Bearer capability: what the call carries and in which law.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bearer {
    /// Information transfer capability: 0 speech, 8 unrestricted digital, 16 3.1 kHz audio.
    pub capability: u8,
    /// User information layer 1: 2 = u-law, 3 = A-law; `None` when absent.
    pub law: Option<u8>,
}

impl Bearer {
    pub fn speech(alaw: bool) -> Bearer {
        Bearer {
            capability: 0,
            law: Some(if alaw { 3 } else { 2 }),
        }
    }

    fn parse(d: &[u8]) -> Option<Bearer> {
        let o3 = *d.first()?;
        let o4 = *d.get(1)?;
        let mut i = 2;
        if o4 & 0x1f == 0x18 {
            i += 1; // multirate: rate multiplier octet
        }
        let law = d
            .get(i)
            .filter(|o5| (*o5 >> 5) & 3 == 1)
            .map(|o5| o5 & 0x1f);
        Some(Bearer {
            capability: o3 & 0x1f,
            law,
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut v = vec![0x80 | self.capability, 0x90]; // circuit mode, 64 kbit/s
        if let Some(l) = self.law {
            v.push(0xa0 | l);
        }
        v
    }
}

/// Channel identification: which B-channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelId {
    /// PRI (interface type "other") or BRI.
    pub pri: bool,
    /// Exclusive: only this channel is acceptable.
    pub exclusive: bool,
    /// The channel number; `None` = any channel.
    pub channel: Option<u8>,
    /// The D-channel itself (not used for calls).
    pub dchannel: bool,
}

impl ChannelId {
    fn parse(d: &[u8]) -> Option<ChannelId> {
        let o3 = *d.first()?;
        let pri = o3 & 0x20 != 0;
        let exclusive = o3 & 0x08 != 0;
        let dchannel = o3 & 0x04 != 0;
        let sel = o3 & 0x03;
        let channel = if !pri {
            match sel {
                1 | 2 => Some(sel),
                _ => None,
            }
        } else if sel == 1 {
            // Octet 3.1 (coding/map) then the channel number (with its ext bit).
            let mut i = 1;
            if o3 & 0x40 != 0 {
                i += 1; // interface identifier present (not used on one span)
            }
            d.get(i + 1).map(|n| n & 0x7f)
        } else {
            None
        };
        Some(ChannelId {
            pri,
            exclusive,
            channel,
            dchannel,
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut o3 = 0x80 | if self.exclusive { 0x08 } else { 0 };
        if self.pri {
            o3 |= 0x20;
            match self.channel {
                Some(n) => vec![o3 | 1, 0x83, 0x80 | (n & 0x7f)],
                None => vec![o3 | 3],
            }
        } else {
            vec![o3 | self.channel.unwrap_or(3).min(3)]
        }
    }
}

/// The SIP response for a Q.850 cause (RFC 3398 7.2.4.1); 16 (normal clearing)
/// answers 480 when an INVITE is still open.
pub fn cause_to_sip(cause: u8) -> u16 {
    match cause {
        1..=3 | 26 => 404,
        17 => 486,
        18 => 408,
        19 | 20 | 31 | 16 => 480,
        21 | 55 | 57 | 87 => 403,
        22 | 23 => 410,
        27 => 502,
        28 => 484,
        29 | 69 | 79 => 501,
        34 | 38 | 41 | 42 | 47 | 58 | 88 => 503,
        65 | 70 => 488,
        102 => 504,
        _ => 500,
    }
}

/// The Q.850 cause for a SIP final response (RFC 3398 8.2.6.1).
pub fn sip_to_cause(status: u16) -> u8 {
    match status {
        400 | 481 | 500 | 503 => 41,
        401..=403 | 407 | 603 => 21,
        404 | 485 | 604 => 1,
        405 => 63,
        406 | 415 | 501 => 79,
        408 | 504 => 102,
        410 => 22,
        480 => 18,
        482 | 483 => 25,
        484 => 28,
        486 | 600 => 17,
        502 => 38,
        606 => 58,
        _ => 127,
    }
}
