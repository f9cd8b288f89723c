//! Call parking: slots a call waits in (hearing music) until any phone dials the slot,
//! and the feature code that parks in the first free slot and says which.

use serde::{Deserialize, Serialize};

/// Where parked calls wait.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Parking {
    /// The slots, dialled to pick a parked call up (and transferred to, to park in
    /// that one): 1 to 8 digits, `*` and `#` each, at most 50.
    #[serde(default)]
    pub slots: Vec<String>,
    /// Seconds a parked call waits before it rings whoever parked it again.
    #[serde(default = "two_minutes")]
    pub timeout_seconds: u32,
}

fn two_minutes() -> u32 {
    120
}

impl Parking {
    /// What a document without parking has: no slots.
    pub fn off() -> Parking {
        Parking {
            slots: Vec::new(),
            timeout_seconds: two_minutes(),
        }
    }
}

impl Default for Parking {
    /// A new box: slots `*71` to `*79`.
    fn default() -> Self {
        Parking {
            slots: (1..=9).map(|n| format!("*7{n}")).collect(),
            timeout_seconds: two_minutes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{Config, Extension, Parking};

    fn problems(f: impl FnOnce(&mut Config)) -> Vec<String> {
        let mut c = Config::default();
        f(&mut c);
        match c.validate() {
            Ok(()) => Vec::new(),
            Err(e) => {
                e.0.iter()
                    .map(|e| format!("{}: {}", e.field, e.message))
                    .collect()
            }
        }
    }

    #[test]
    fn slots_are_checked_against_codes_numbers_and_each_other() {
        assert!(problems(|_| {}).is_empty());
        assert_eq!(Config::default().parking.slots.len(), 9);
        assert_eq!(Config::default().feature_codes.park, "*70");
        // A document without parking has none, and no park code.
        let old: Config = serde_json::from_str(
            r#"{"format":"pbx-config","version":1,"feature_codes":{"pickup":"*8","directed_pickup":"**"}}"#,
        ).unwrap();
        assert_eq!(old.parking, Parking::off());
        assert!(old.feature_codes.park.is_empty());
        // Nor a do-not-disturb code; a new box has one clear of the slots.
        assert!(old.feature_codes.do_not_disturb.is_empty());
        assert_eq!(Config::default().feature_codes.do_not_disturb, "*60");
        for (f, says) in [
            (
                Box::new(|c: &mut Config| c.parking.slots.push("*71".into()))
                    as Box<dyn FnOnce(&mut Config)>,
                "same as",
            ),
            (
                Box::new(|c: &mut Config| c.parking.slots.push("*7a".into())),
                "digits",
            ),
            (
                Box::new(|c: &mut Config| c.parking.slots.push("*97".into())),
                "same as",
            ),
            (
                Box::new(|c: &mut Config| c.parking.slots.push("**5".into())),
                "begin with",
            ),
            (
                Box::new(|c: &mut Config| c.parking.timeout_seconds = 5),
                "10 to 3600",
            ),
            (
                Box::new(|c: &mut Config| {
                    c.parking.slots.push("700".into());
                    c.extensions.push(Extension::new("700"));
                }),
                "conflicts with number 700",
            ),
            (
                Box::new(|c: &mut Config| {
                    c.parking.slots = (0..51).map(|n| format!("#{n}")).collect()
                }),
                "at most 50",
            ),
        ] {
            let p = problems(f);
            assert!(p.iter().any(|m| m.contains(says)), "{says}: {p:?}");
        }
    }
}
