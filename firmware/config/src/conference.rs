//! Conference rooms (Kerio 13): a number callers dial to meet, optionally behind a PIN,
//! with a participant limit and tones when someone joins or leaves.

use serde::{Deserialize, Serialize};

/// The most participants a room takes (the mixer's limit).
pub const MAX_CONFERENCE: u32 = 64;

/// A conference room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conference {
    /// The number callers dial, from inside or (through a DID) outside.
    pub number: String,
    #[serde(default)]
    pub description: String,
    /// Digits every participant keys (then `#`) to get in; empty: none asked.
    #[serde(default)]
    pub pin: String,
    /// The most participants at once; 0: the box's limit ([`MAX_CONFERENCE`]).
    #[serde(default)]
    pub max_participants: u32,
    /// Everyone hears a rising tone when someone joins and a falling one when someone
    /// leaves.
    #[serde(default = "yes")]
    pub tones: bool,
}

fn yes() -> bool {
    true
}

impl Conference {
    /// How many participants the room takes.
    pub fn limit(&self) -> usize {
        match self.max_participants {
            0 => MAX_CONFERENCE as usize,
            n => n.min(MAX_CONFERENCE) as usize,
        }
    }

    /// What is wrong with the room by itself, as (field, message).
    pub(crate) fn problems(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        if !crate::is_digits(&self.number) || self.number.len() > 20 {
            v.push(("number", "must be 1 to 20 digits".into()));
        }
        if self.description.len() > 200 || self.description.chars().any(char::is_control) {
            v.push((
                "description",
                "must be at most 200 characters on one line".into(),
            ));
        }
        if !self.pin.is_empty() && (!crate::is_digits(&self.pin) || self.pin.len() > 12) {
            v.push(("pin", "must be 1 to 12 digits, or empty for none".into()));
        }
        if self.max_participants == 1 || self.max_participants > MAX_CONFERENCE {
            v.push((
                "max_participants",
                format!("must be 2 to {MAX_CONFERENCE}, or 0 for the box's limit"),
            ));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_are_checked() {
        let ok = Conference {
            number: "800".into(),
            description: "Weekly sales".into(),
            pin: "1234".into(),
            max_participants: 0,
            tones: true,
        };
        assert!(ok.problems().is_empty());
        assert_eq!(ok.limit(), 64);
        let wrong = |f: fn(&mut Conference), field: &str| {
            let mut c = ok.clone();
            f(&mut c);
            assert!(
                c.problems().iter().any(|(x, _)| *x == field),
                "{field}: {:?}",
                c.problems()
            );
        };
        wrong(|c| c.number = "8a".into(), "number");
        wrong(|c| c.number = String::new(), "number");
        wrong(|c| c.pin = "12#4".into(), "pin");
        wrong(|c| c.pin = "1".repeat(13), "pin");
        wrong(|c| c.max_participants = 1, "max_participants");
        wrong(|c| c.max_participants = 65, "max_participants");
        wrong(|c| c.description = "two\nlines".into(), "description");
        let c: Conference = serde_json::from_str(r#"{"number":"801"}"#).unwrap();
        assert!(c.tones && c.pin.is_empty() && c.limit() == 64);
        assert!(serde_json::from_str::<Conference>(r#"{"number":"801","room":1}"#).is_err());
    }
}
