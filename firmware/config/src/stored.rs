//! The stored copy of the configuration: the same JSON document, but the fields of the
//! entities a box has by the thousand (extensions, SIP accounts) that hold their default
//! are left out. Reading it back fills them in (each such field has a serde default equal
//! to what it leaves out), so the stored copy reads into the same [`Config`]; the API,
//! exports and the web keep serialising every field. Backups hold the store's sled trees,
//! so they carry the stored copy and read it the same way.
//!
//! So a field's serde default is now part of what every stored configuration (and every
//! backup) means: changing one changes the value of every extension or account that had
//! the old default, on upgrade. Such a change needs a migration of the stored document,
//! and `a_bare_stored_document_reads_as_the_defaults_it_always_meant` pins the values.
//!
//! An extension serialises to some 470 bytes, nearly all of them defaults; with 10,000
//! extensions the store wrote and serialised about 7 MB per configuration change
//! (issue 22.6).

use super::{Config, Transport, DEFAULT_CODECS, DEFAULT_PICKUP, DEFAULT_TRANSPORTS};
use std::cell::Cell;

thread_local! {
    /// Set while [`to_stored_vec`] serialises on this thread.
    static STORING: Cell<bool> = const { Cell::new(false) };
}

/// The configuration as the store keeps it (see the module's documentation).
pub fn to_stored_vec(cfg: &Config) -> Vec<u8> {
    struct Storing;
    impl Drop for Storing {
        fn drop(&mut self) {
            STORING.with(|s| s.set(false));
        }
    }
    STORING.with(|s| s.set(true));
    let _storing = Storing;
    // (Not re-entrant, and need not be: nothing serialises a configuration from inside
    // the serialisation of one.)
    serde_json::to_vec(cfg).expect("config serialises")
}

fn storing() -> bool {
    STORING.with(|s| s.get())
}

// What each `skip_serializing_if` asks: is this the stored copy, and does the field hold
// exactly the value its serde default would give back?

pub(crate) fn default<T: Default + PartialEq>(v: &T) -> bool {
    storing() && *v == T::default()
}

pub(crate) fn yes(v: &bool) -> bool {
    storing() && *v
}

pub(crate) fn no_answer(v: &u32) -> bool {
    storing() && *v == super::default_no_answer()
}

pub(crate) fn pickup(v: &[String]) -> bool {
    storing() && v.len() == 1 && v[0] == DEFAULT_PICKUP
}

pub(crate) fn transports(v: &[Transport]) -> bool {
    storing() && v == DEFAULT_TRANSPORTS
}

pub(crate) fn codecs(v: &[String]) -> bool {
    storing()
        && v.iter()
            .map(String::as_str)
            .eq(DEFAULT_CODECS.iter().copied())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CallOrigin, CallerIdPresentation, Extension, ForwardCause, ForwardRule};
    use crate::{SipAccount, FORMAT, FORMAT_VERSION};

    fn config(extensions: Vec<Extension>, accounts: Vec<SipAccount>) -> Config {
        Config {
            extensions,
            accounts,
            ..Config::default()
        }
    }

    /// Every field away from its default (a skip that tested the wrong value would
    /// drop one of these and the document would read back different).
    fn unusual_extension() -> Extension {
        Extension {
            number: "102".into(),
            enabled: false,
            first_name: "Ann".into(),
            last_name: "Lee".into(),
            email: "ann@example.com".into(),
            mobile: "0700".into(),
            service_pin: "1234".into(),
            call_limit: 2,
            busy_level: 1,
            caller_id: CallerIdPresentation::Hide,
            encrypt_calls: true,
            forward: "103".into(),
            do_not_disturb: true,
            permission_group: "local".into(),
            call_waiting: false,
            forwarding: vec![ForwardRule {
                cause: ForwardCause::Busy,
                origin: CallOrigin::Any,
                to: "voicemail".into(),
            }],
            no_answer_seconds: 30,
            pickup_groups: vec![],
            pickup_from: vec!["default".into(), "sales".into()],
            voicemail: false,
            voicemail_email: true,
            voicemail_attach: false,
            voicemail_delete_sent: true,
        }
    }

    fn unusual_account() -> SipAccount {
        SipAccount {
            username: "b".into(),
            secret: "s3cret-s3cret".into(),
            enabled: false,
            extension: "102".into(),
            allowed_source: "127.0.0.0/8".into(),
            registration_check: true,
            nat: false,
            direct_media: true,
            transports: vec![Transport::Tls],
            codecs: vec!["PCMA".into(), "PCMU".into()],
        }
    }

    #[test]
    fn defaults_are_left_out_of_the_stored_copy_only() {
        let c = config(
            vec![Extension::new("101")],
            vec![SipAccount::new("a", "s3cret-s3cret", "101")],
        );
        let stored: serde_json::Value = serde_json::from_slice(&to_stored_vec(&c)).unwrap();
        assert_eq!(
            stored["extensions"][0],
            serde_json::json!({"number": "101"})
        );
        assert_eq!(
            stored["accounts"][0],
            serde_json::json!({"username": "a", "secret": "s3cret-s3cret", "extension": "101"})
        );
        assert_eq!(stored["format"], FORMAT);
        assert_eq!(stored["version"], FORMAT_VERSION);
        // Everything else serialises whole, before and after a stored copy was made.
        let api: serde_json::Value = serde_json::to_value(&c).unwrap();
        assert_eq!(api["extensions"][0]["call_waiting"], true);
        assert_eq!(api["extensions"][0]["pickup_groups"][0], "default");
        assert_eq!(api["accounts"][0]["codecs"][1], "PCMA");
        assert_eq!(
            api["accounts"][0]["transports"].as_array().unwrap().len(),
            3
        );
        let back: Config = serde_json::from_value(stored).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn a_bare_stored_document_reads_as_the_defaults_it_always_meant() {
        let c = Config::from_json(
            r#"{"format": "pbx-config", "version": 1,
                "extensions": [{"number": "101"}],
                "accounts": [{"username": "a", "secret": "s3cret-s3cret", "extension": "101"}]}"#,
        )
        .unwrap();
        let e = &c.extensions[0];
        assert!(e.enabled && e.call_waiting && e.voicemail && e.voicemail_attach);
        assert!(!e.encrypt_calls && !e.voicemail_email && !e.voicemail_delete_sent);
        assert!(!e.do_not_disturb);
        assert_eq!(
            (e.call_limit, e.busy_level, e.no_answer_seconds),
            (0, 0, 20)
        );
        assert_eq!(e.caller_id, CallerIdPresentation::Show);
        assert_eq!(e.pickup_groups, ["default"]);
        assert_eq!(e.pickup_from, ["default"]);
        assert!(e.forwarding.is_empty());
        for s in [
            &e.first_name,
            &e.last_name,
            &e.email,
            &e.mobile,
            &e.service_pin,
        ] {
            assert!(s.is_empty());
        }
        assert!(e.forward.is_empty() && e.permission_group.is_empty());
        let a = &c.accounts[0];
        assert!(a.enabled && a.nat && !a.registration_check && !a.direct_media);
        assert!(a.allowed_source.is_empty());
        assert_eq!(
            a.transports,
            [Transport::Udp, Transport::Tcp, Transport::Tls]
        );
        assert_eq!(a.codecs, ["PCMU", "PCMA"]);
        // And it is exactly what a new extension and account are.
        assert_eq!(*e, Extension::new("101"));
        assert_eq!(*a, SipAccount::new("a", "s3cret-s3cret", "101"));
    }

    #[test]
    fn every_field_away_from_its_default_is_kept() {
        let c = config(vec![unusual_extension()], vec![unusual_account()]);
        let stored: serde_json::Value = serde_json::from_slice(&to_stored_vec(&c)).unwrap();
        let whole: serde_json::Value = serde_json::to_value(&c).unwrap();
        assert_eq!(stored["extensions"], whole["extensions"]);
        assert_eq!(stored["accounts"], whole["accounts"]);
        let back: Config = serde_json::from_value(stored).unwrap();
        assert_eq!(back, c);
    }

    /// Each listed field of `$base` set back to its value in `$fresh` on its own reads
    /// back equal from the stored copy, so a field left out is always the one its serde
    /// default restores; the list names every field but the `$fixed` identifying ones.
    macro_rules! one_at_a_time {
        ($base:expr, $fresh:expr, $fixed:expr, $wrap:expr; $($f:ident),*) => {{
            let base = $base;
            let variants = vec![$({
                let mut v = base.clone();
                v.$f = $fresh.$f;
                v
            }),*];
            let fields = serde_json::to_value(&base).unwrap().as_object().unwrap().len();
            assert_eq!(variants.len() + $fixed, fields, "a field is missing from the list");
            for v in variants {
                assert_ne!(v, base);
                let c: Config = ($wrap)(v);
                let back: Config = serde_json::from_slice(&to_stored_vec(&c)).unwrap();
                assert_eq!(back, c);
            }
        }};
    }

    #[test]
    fn the_default_fields_one_at_a_time() {
        one_at_a_time!(
            unusual_extension(), Extension::new("102"), 1, |e| config(vec![e], vec![]);
            enabled,
            first_name,
            last_name,
            email,
            mobile,
            service_pin,
            call_limit,
            busy_level,
            caller_id,
            encrypt_calls,
            forward,
            do_not_disturb,
            permission_group,
            call_waiting,
            forwarding,
            no_answer_seconds,
            pickup_groups,
            pickup_from,
            voicemail,
            voicemail_email,
            voicemail_attach,
            voicemail_delete_sent
        );
        one_at_a_time!(
            unusual_account(),
            SipAccount::new("b", "s3cret-s3cret", "102"),
            3,
            |a| config(vec![], vec![a]);
            enabled,
            allowed_source,
            registration_check,
            nat,
            direct_media,
            transports,
            codecs
        );
    }
}
