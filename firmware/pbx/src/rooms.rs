//! Conference rooms in the exchange: who is in which room, the tones everyone hears
//! when someone joins or leaves, and the administrator's live view with kick and mute.
//! The audio is the business of `media::Mixer`: a participant's endpoint joins the
//! room's mixer by name, and leaves it when the call ends (its endpoint closes).

use crate::app::AppEvent;
use crate::Pbx;
use serde::Serialize;
use std::time::Instant;

/// Someone in a conference room.
#[derive(Debug, Clone, Serialize)]
pub struct Participant {
    /// The call (as `pbxctl calls` lists it).
    pub call: u64,
    /// The caller's number and name.
    pub number: String,
    pub name: String,
    /// Seconds since it joined.
    pub seconds: u64,
    pub muted: bool,
    /// Muted by the administrator: the participant's own `*` does not unmute it.
    pub muted_by_admin: bool,
    #[serde(skip)]
    joined: Instant,
}

/// A room as the live view shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RoomInfo {
    pub number: String,
    pub description: String,
    pub limit: usize,
    pub participants: Vec<Participant>,
}

/// The tone everyone in a room hears when someone joins: rising.
fn entry_tone() -> media::Clip {
    two_tones(600.0, 900.0)
}

/// The tone when someone leaves: falling.
fn exit_tone() -> media::Clip {
    two_tones(900.0, 600.0)
}

fn two_tones(a: f64, b: f64) -> media::Clip {
    let mut s = media::Clip::tone(&[a], 150, 0, 0.2).samples().to_vec();
    s.extend_from_slice(media::Clip::tone(&[b], 150, 0, 0.2).samples());
    media::Clip::from_ulaw(s)
}

impl Pbx {
    /// Call `id` (answered by a conference application) joins room `room`.
    pub(crate) fn join_room(&mut self, now: Instant, id: u64, room: &str) {
        let Some(conf) = self.snapshot.conference(room) else {
            return self.app_event(now, id, AppEvent::Full);
        };
        let (limit, tones) = (conf.limit(), conf.tones);
        let parts = self.rooms.entry(room.to_string()).or_default();
        let others = parts.len();
        if others >= limit {
            tracing::info!(call = id, room, "the conference room is full");
            return self.app_event(now, id, AppEvent::Full);
        }
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let Some((pt, alaw)) = call.app.as_ref().map(|a| a.codec) else {
            return;
        };
        call.a_ep.join(room, pt, alaw);
        parts.push(Participant {
            call: id,
            number: call.caller_ext.clone(),
            name: call.caller_name.clone(),
            seconds: 0,
            muted: false,
            muted_by_admin: false,
            joined: now,
        });
        tracing::info!(call = id, room, others, "joined the conference");
        if tones && others > 0 {
            self.media.room_tone(room, entry_tone());
        }
        self.app_event(now, id, AppEvent::Joined { others });
    }

    /// Call `id` ended or left: out of its room, and the others hear it go.
    pub(crate) fn leave_room(&mut self, id: u64) {
        let Some(room) = self
            .rooms
            .iter()
            .find(|(_, p)| p.iter().any(|x| x.call == id))
            .map(|(r, _)| r.clone())
        else {
            return;
        };
        let parts = self.rooms.get_mut(&room).expect("found above");
        parts.retain(|p| p.call != id);
        let left = parts.len();
        if left == 0 {
            self.rooms.remove(&room);
        }
        tracing::info!(call = id, room, left, "left the conference");
        let tones = self.snapshot.conference(&room).is_none_or(|c| c.tones);
        if tones && left > 0 {
            self.media.room_tone(&room, exit_tone());
        }
    }

    fn participant(&mut self, id: u64) -> Option<&mut Participant> {
        self.rooms
            .values_mut()
            .flat_map(|r| r.iter_mut())
            .find(|p| p.call == id)
    }

    /// Call `id`'s caller keyed `*`: muted or unmuted, unless the administrator muted
    /// it; answers whether it is muted now.
    pub(crate) fn toggle_mute(&mut self, id: u64) -> bool {
        let Some(p) = self.participant(id) else {
            return false;
        };
        if !p.muted_by_admin {
            p.muted = !p.muted;
        }
        let muted = p.muted;
        if let Some(c) = self.calls.get(&id) {
            c.a_ep.mute(muted);
        }
        muted
    }

    /// Every configured room, with who is in it.
    pub fn conferences(&self, now: Instant) -> Vec<RoomInfo> {
        self.snapshot
            .config
            .conferences
            .iter()
            .map(|c| RoomInfo {
                number: c.number.clone(),
                description: c.description.clone(),
                limit: c.limit(),
                participants: self
                    .rooms
                    .get(&c.number)
                    .map(|parts| {
                        parts
                            .iter()
                            .map(|p| Participant {
                                seconds: now.saturating_duration_since(p.joined).as_secs(),
                                ..p.clone()
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect()
    }

    /// The administrator mutes or unmutes participant `call` of room `room`; false when
    /// it is not there.
    pub fn mute_participant(&mut self, room: &str, call: u64, muted: bool) -> bool {
        if !self
            .rooms
            .get(room)
            .is_some_and(|r| r.iter().any(|p| p.call == call))
        {
            return false;
        }
        tracing::info!(call, room, muted, "muted by the administrator");
        let Some(p) = self.participant(call) else {
            return false;
        };
        p.muted = muted;
        p.muted_by_admin = muted;
        if let Some(c) = self.calls.get(&call) {
            c.a_ep.mute(muted);
        }
        true
    }

    /// The administrator puts participant `call` out of room `room` (the box hangs
    /// up on it); false when it is not there.
    pub fn kick_participant(&mut self, now: Instant, room: &str, call: u64) -> bool {
        if !self
            .rooms
            .get(room)
            .is_some_and(|r| r.iter().any(|p| p.call == call))
        {
            return false;
        }
        tracing::info!(call, room, "put out of the conference by the administrator");
        let done = self.terminate(now, call);
        self.after_input(now);
        done
    }
}
