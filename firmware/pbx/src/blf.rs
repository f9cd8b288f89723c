//! Busy lamps: what a phone's BLF key shows of an extension or a parking slot. A phone
//! subscribes (`crate::mwi`) with `Event: dialog` (RFC 4235, what desk phones' BLF keys
//! use) or `Event: presence` (RFC 3856 with PIDF and RPID, what softphones' buddy
//! lists use) to the extension or slot in its Request-URI; the box sends the state at
//! once and again whenever it changes: idle, ringing (with the ringing dialog's
//! Call-ID and tags, so a key press can pick the call up with `Replaces`), in a call,
//! or a call parked in the slot.
//!
//! The states are worked out after each input the core handles, in one pass over the
//! calls, only while some lamp is subscribed.

use crate::calls::{LegState, Side};
use crate::mwi::{Package, Subscription};
use crate::Pbx;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Instant;

/// What a lamp shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LineState {
    Idle,
    /// A phone of the extension rings: the box's dialog with it, seen from the phone
    /// (its tag local, the box's remote), and who calls.
    Ringing {
        call_id: String,
        local_tag: String,
        remote_tag: String,
        caller: String,
    },
    /// In a call, or calling.
    Busy,
    /// A call waits in the slot: who.
    Parked {
        caller: String,
    },
}

impl LineState {
    fn rank(&self) -> u8 {
        match self {
            LineState::Idle => 0,
            LineState::Busy | LineState::Parked { .. } => 1,
            LineState::Ringing { .. } => 2,
        }
    }
}

/// An extension's lamp on the operator panel ([`Pbx::lamps`]).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Lamp {
    pub number: String,
    pub name: String,
    /// `idle`, `ringing`, `busy`, `dnd` (do not disturb, not in a call) or `offline`.
    pub state: &'static str,
    /// Who calls a ringing extension.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub caller: String,
}

/// Whether a lamp of `package` would say the same of `a` and `b`: presence has no
/// dialog identifiers, so a ringing dialog getting its tag changes nothing there.
fn same(package: Package, a: &LineState, b: &LineState) -> bool {
    match package {
        Package::Presence => std::mem::discriminant(a) == std::mem::discriminant(b),
        _ => a == b,
    }
}

/// The `tag` parameter of a From or To value ("" when it has none yet).
fn tag(v: &str) -> String {
    sip::message::header_param(v, "tag")
        .unwrap_or("")
        .to_string()
}

/// `s` with XML's five special characters escaped.
fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// The NOTIFY body of a lamp subscription in state `state`.
pub(crate) fn body(sub: &Subscription, state: &LineState, host: SocketAddr) -> String {
    let entity = xml(&format!("sip:{}@{host}", sub.ext));
    match sub.package {
        Package::Dialog => {
            let dialog = match state {
                LineState::Idle => String::new(),
                // A watcher that may not pick the call up sees only that it rings.
                LineState::Ringing { call_id, .. } if call_id.is_empty() => format!(
                    "<dialog id=\"{}-ringing\" direction=\"recipient\">\n<state>early</state>\n</dialog>\n",
                    xml(&sub.ext)
                ),
                LineState::Ringing {
                    call_id,
                    local_tag,
                    remote_tag,
                    caller,
                } => format!(
                    "<dialog id=\"{}\" call-id=\"{}\" local-tag=\"{}\" remote-tag=\"{}\" direction=\"recipient\">\n<state>early</state>\n<remote><identity>{}</identity></remote>\n</dialog>\n",
                    xml(call_id),
                    xml(call_id),
                    xml(local_tag),
                    xml(remote_tag),
                    xml(&format!("sip:{caller}@{host}")),
                ),
                LineState::Busy => format!(
                    "<dialog id=\"{}-busy\">\n<state>confirmed</state>\n</dialog>\n",
                    xml(&sub.ext)
                ),
                LineState::Parked { caller } => format!(
                    "<dialog id=\"{}-parked\" direction=\"recipient\">\n<state>confirmed</state>\n<remote><identity>{}</identity></remote>\n</dialog>\n",
                    xml(&sub.ext),
                    xml(&format!("sip:{caller}@{host}")),
                ),
            };
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<dialog-info xmlns=\"urn:ietf:params:xml:ns:dialog-info\" version=\"{}\" state=\"full\" entity=\"{entity}\">\n{dialog}</dialog-info>\n",
                sub.version
            )
        }
        Package::Presence => {
            let (note, activity) = match state {
                LineState::Idle => ("Idle", ""),
                LineState::Ringing { .. } => ("Ringing", ""),
                LineState::Busy => ("On the phone", "<rpid:on-the-phone/>"),
                LineState::Parked { .. } => ("Parked", "<rpid:on-the-phone/>"),
            };
            let person = if activity.is_empty() {
                format!("<dm:person id=\"p\"><dm:note>{note}</dm:note></dm:person>")
            } else {
                format!("<dm:person id=\"p\"><rpid:activities>{activity}</rpid:activities><dm:note>{note}</dm:note></dm:person>")
            };
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\" xmlns:rpid=\"urn:ietf:params:xml:ns:pidf:rpid\" entity=\"{entity}\">\n<tuple id=\"line\"><status><basic>open</basic></status><note>{note}</note></tuple>\n{person}\n</presence>\n"
            )
        }
        Package::MessageSummary => String::new(),
    }
}

impl LineState {
    /// What a watcher that may not pick the call up is shown: no caller, no dialog.
    pub(crate) fn redacted(self) -> LineState {
        match self {
            LineState::Ringing { .. } => LineState::Ringing {
                call_id: String::new(),
                local_tag: String::new(),
                remote_tag: String::new(),
                caller: String::new(),
            },
            other => other,
        }
    }
}

impl Pbx {
    /// Whether the phone of `sub` may see who calls the extension it watches and pick
    /// the call up (its pickup groups; a slot's lamp hides nothing).
    pub(crate) fn may_see_calls(&self, sub: &Subscription) -> bool {
        let snap = &self.snapshot;
        let Some(watched) = snap.extension(&sub.ext) else {
            return true;
        };
        snap.account(&sub.username)
            .and_then(|a| snap.extension(&a.extension))
            .is_some_and(|me| me.may_pick_up(watched))
    }

    /// What the lamp of extension or slot `res` shows now.
    pub(crate) fn line_state(&self, res: &str) -> LineState {
        let watched: HashSet<&str> = std::iter::once(res).collect();
        self.line_states(&watched)
            .remove(res)
            .unwrap_or(LineState::Idle)
    }

    /// The lamps of `watched` that are not idle, in one pass over the calls.
    fn line_states(&self, watched: &HashSet<&str>) -> HashMap<String, LineState> {
        let snap = &self.snapshot;
        let mut out: HashMap<String, LineState> = HashMap::new();
        let mut set = |ext: String, s: LineState| {
            if !watched.contains(ext.as_str()) {
                return;
            }
            if out.get(&ext).is_none_or(|old| s.rank() > old.rank()) {
                out.insert(ext, s);
            }
        };
        let ext_of = |account: &str| snap.account(account).map(|a| a.extension.clone());
        for c in self.calls.values().filter(|c| !c.finished) {
            // A parker has left its side of the call.
            let gone = c.transfer.as_ref().filter(|t| t.by_gone).map(|t| t.by);
            if gone != Some(Side::A) {
                if let Some(e) = ext_of(&c.caller_account) {
                    set(e, LineState::Busy);
                }
            }
            for (i, l) in c.legs.iter().enumerate() {
                let Some(e) = ext_of(&l.account) else {
                    continue;
                };
                match l.state {
                    LegState::Calling | LegState::Ringing if !l.cancel_wanted => {
                        set(
                            e,
                            LineState::Ringing {
                                call_id: l.dialog.call_id.clone(),
                                local_tag: tag(&l.dialog.remote),
                                remote_tag: tag(&l.dialog.local),
                                caller: c.caller_ext.clone(),
                            },
                        );
                    }
                    LegState::Answered if c.answered == Some(i) && gone != Some(Side::B) => {
                        set(e, LineState::Busy)
                    }
                    _ => {}
                }
            }
        }
        for (slot, (id, _)) in &self.parked {
            let caller = self
                .calls
                .get(id)
                .and_then(|c| {
                    let t = c.transfer.as_ref()?;
                    Some(match t.by.other() {
                        Side::A => c.caller_ext.clone(),
                        Side::B => c.answered.map(|i| c.legs[i].number(snap))?,
                    })
                })
                .unwrap_or_default();
            set(slot.clone(), LineState::Parked { caller });
        }
        out
    }

    /// Every extension's lamp for the operator panel, in configuration order: `idle`,
    /// `ringing` (with who calls), `busy` (in a call or calling), `dnd` (do not
    /// disturb, not in a call, registered or not), or `offline` (idle with no phone
    /// registered). One pass over the calls.
    pub fn lamps(&self) -> Vec<Lamp> {
        let snap = self.snapshot.clone();
        let watched: HashSet<&str> = snap
            .config
            .extensions
            .iter()
            .map(|e| e.number.as_str())
            .collect();
        let mut states = self.line_states(&watched);
        snap.config
            .extensions
            .iter()
            .map(|e| {
                let (state, caller) = match states.remove(&e.number) {
                    Some(LineState::Ringing { caller, .. }) => ("ringing", caller),
                    Some(LineState::Busy) | Some(LineState::Parked { .. }) => {
                        ("busy", String::new())
                    }
                    Some(LineState::Idle) | None if e.do_not_disturb => ("dnd", String::new()),
                    Some(LineState::Idle) | None => {
                        let registered = snap
                            .accounts_of(&e.number)
                            .any(|a| self.registrations.contains_key(&a.username));
                        (if registered { "idle" } else { "offline" }, String::new())
                    }
                };
                Lamp {
                    number: e.number.clone(),
                    name: e.display_name().to_string(),
                    state,
                    caller,
                }
            })
            .collect()
    }

    /// Sends the lamps whose state changed since their last NOTIFY.
    pub(crate) fn blf_update(&mut self, now: Instant) {
        if !self.lamps {
            return;
        }
        let lamps: Vec<&Subscription> = self
            .subscriptions
            .values()
            .filter(|s| s.package != Package::MessageSummary)
            .collect();
        if lamps.is_empty() {
            self.lamps = false;
            return;
        }
        let watched: HashSet<&str> = lamps.iter().map(|s| s.ext.as_str()).collect();
        let states = self.line_states(&watched);
        let changed: Vec<Subscription> = lamps
            .into_iter()
            .filter(|s| {
                let mut now = states.get(&s.ext).cloned().unwrap_or(LineState::Idle);
                if !self.may_see_calls(s) {
                    now = now.redacted();
                }
                s.last
                    .as_ref()
                    .is_none_or(|last| !same(s.package, last, &now))
            })
            .cloned()
            .collect();
        for s in changed {
            self.notify_subscription(now, s, None);
        }
    }

    /// The early dialog a phone's INVITE with `Replaces` names (a BLF key pressed on a
    /// ringing colleague): the call and the ringing extension, if a phone of it rings
    /// in that dialog. The Call-ID must match; tags, when given, must be the dialog's
    /// (phones write them from either end, and an early dialog may have no phone tag
    /// yet, so either tag in either place is taken).
    pub(crate) fn ringing_dialog(&self, replaces: &sip::dialog::Replaces) -> Option<(u64, String)> {
        self.calls
            .values()
            .filter(|c| !c.finished && c.answered.is_none())
            .flat_map(|c| c.legs.iter().map(move |l| (c.id, l)))
            .find(|(_, l)| {
                let ours = [tag(&l.dialog.local), tag(&l.dialog.remote)];
                let named = [&replaces.to_tag, &replaces.from_tag];
                let tags_ok = named.iter().all(|t| t.is_empty())
                    || named
                        .iter()
                        .any(|t| !t.is_empty() && ours.iter().any(|o| o == *t));
                l.dialog.call_id == replaces.call_id
                    && tags_ok
                    && matches!(l.state, LegState::Calling | LegState::Ringing)
                    && !l.cancel_wanted
            })
            .and_then(|(id, l)| Some((id, self.snapshot.account(&l.account)?.extension.clone())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(package: Package, version: u32) -> Subscription {
        let mut s = crate::mwi::tests_subscription();
        s.package = package;
        s.username = "101".into();
        s.ext = "102".into();
        s.version = version;
        s
    }

    #[test]
    fn dialog_info_and_pidf_say_each_state() {
        let host: SocketAddr = "192.0.2.1:5060".parse().unwrap();
        let d = sub(Package::Dialog, 3);
        let idle = body(&d, &LineState::Idle, host);
        assert!(
            idle.contains("version=\"3\" state=\"full\" entity=\"sip:102@192.0.2.1:5060\""),
            "{idle}"
        );
        assert!(!idle.contains("<dialog "), "{idle}");
        let ringing = body(
            &d,
            &LineState::Ringing {
                call_id: "abc@x\"<".into(),
                local_tag: "phone".into(),
                remote_tag: "box".into(),
                caller: "101".into(),
            },
            host,
        );
        assert!(ringing.contains("call-id=\"abc@x&quot;&lt;\" local-tag=\"phone\" remote-tag=\"box\" direction=\"recipient\""), "{ringing}");
        assert!(ringing.contains("<state>early</state>"));
        assert!(ringing.contains("<identity>sip:101@192.0.2.1:5060</identity>"));
        assert!(body(&d, &LineState::Busy, host).contains("<state>confirmed</state>"));
        // A watcher that may not pick the call up: no caller, no dialog to replace.
        let hidden = body(
            &d,
            &LineState::Ringing {
                call_id: "abc".into(),
                local_tag: "phone".into(),
                remote_tag: "box".into(),
                caller: "101".into(),
            }
            .redacted(),
            host,
        );
        assert!(
            hidden.contains(
                "<dialog id=\"102-ringing\" direction=\"recipient\">\n<state>early</state>"
            ),
            "{hidden}"
        );
        assert!(
            !hidden.contains("abc") && !hidden.contains("101"),
            "{hidden}"
        );
        let p = sub(Package::Presence, 0);
        let busy = body(&p, &LineState::Busy, host);
        assert!(
            busy.contains("<basic>open</basic></status><note>On the phone</note>"),
            "{busy}"
        );
        assert!(busy.contains("<rpid:on-the-phone/>"));
        assert!(body(&p, &LineState::Idle, host).contains("<note>Idle</note>"));
        assert!(body(
            &p,
            &LineState::Parked {
                caller: "102".into()
            },
            host
        )
        .contains("<note>Parked</note>"));
    }
}
