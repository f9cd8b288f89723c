//! A call answered by an application (`crate::app`): the box answers the caller with
//! its own endpoint, listens there for keypad digits, hands the application what
//! happens and carries out what it asks.

use crate::app::{Action, AppEvent, Application, Context};
use crate::calls::Side;
use crate::{negotiate, Pbx};
use std::time::Instant;

/// Wrong voicemail PINs keyed for one box within [`PIN_WINDOW`] that lock it (three a
/// call: a second call gets two more tries).
const PIN_TRIES: u32 = 5;
const PIN_WINDOW: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// Wrong PINs keyed for one conference room within [`PIN_WINDOW`], by anyone, that
/// lock it: more than a voicemail box, since a room's participants share its PIN.
const ROOM_PIN_TRIES: u32 = 10;

/// The application answering a call, and what the exchange keeps for it.
pub(crate) struct AppLeg {
    /// Taken out while it handles an event.
    pub app: Option<Box<dyn Application>>,
    /// When its timer comes.
    pub timer: Option<Instant>,
    /// The caller's codec: payload type, and A-law (else µ-law).
    pub codec: (u8, bool),
}

impl Pbx {
    /// The application a dialled number reaches, if it is one's feature code: the
    /// echo test, the voicemail menu of the caller's own box, or a message left
    /// directly in an extension's box. Only the box's own phones reach them.
    pub(crate) fn application(
        &self,
        dialled: &str,
        origin: &crate::route::Origin,
    ) -> Option<Box<dyn Application>> {
        if let Some(app) = self.local_app(dialled) {
            return Some(app);
        }
        let fc = &self.snapshot.config.feature_codes;
        let crate::route::Origin::Phone(account) = origin else {
            return None;
        };
        if !fc.echo_test.is_empty() && dialled == fc.echo_test {
            return Some(Box::new(crate::app::EchoTest::new()));
        }
        if !fc.do_not_disturb.is_empty() && dialled == fc.do_not_disturb {
            let e = self.snapshot.extension(&account.extension)?;
            return Some(Box::new(crate::app::DndSwitch::new(
                &e.number,
                !e.do_not_disturb,
            )));
        }
        if !fc.park.is_empty() && dialled == fc.park {
            let slot = self.free_slot()?;
            return Some(Box::new(crate::app::ParkAnnounce::new(&slot)));
        }
        if !fc.voicemail.is_empty() && dialled == fc.voicemail {
            let ext = account.extension.clone();
            let e = self.snapshot.extension(&ext)?;
            if !e.voicemail || !store::voicemail::valid_box(&ext) {
                return None;
            }
            let mailbox = self.mailboxes.get(&ext).cloned().unwrap_or_default();
            let now = self.last_now;
            let locked = self.pin_failures.get(&ext).is_some_and(|(n, since)| {
                *n >= PIN_TRIES && now.saturating_duration_since(*since) < PIN_WINDOW
            });
            let menu = crate::app::VoicemailMenu::new(
                &ext,
                self.settings.voicemail_dir.clone(),
                &e.service_pin,
                mailbox.messages,
                mailbox.temp_greeting,
                self.boxes(),
            );
            return Some(Box::new(if locked { menu.locked() } else { menu }));
        }
        let target = dialled
            .strip_prefix(fc.voicemail_direct.as_str())
            .filter(|_| !fc.voicemail_direct.is_empty())?;
        self.boxes()
            .into_iter()
            .find(|(b, _)| b == target)
            .map(|(b, temp)| {
                let dir = store::voicemail::box_dir(&self.settings.voicemail_dir, &b);
                Box::new(
                    crate::app::LeaveMessage::new(dir, crate::app::Greeting::Unavailable)
                        .with_temp_greeting(temp),
                ) as Box<dyn Application>
            })
    }

    /// The application a local number of any origin reaches: an auto attendant or a
    /// conference room.
    pub(crate) fn local_app(&self, number: &str) -> Option<Box<dyn Application>> {
        if let Some(script) = self.snapshot.auto_attendant(number) {
            return Some(Box::new(crate::app::Attendant::new(
                script.clone(),
                self.attendant_env(),
            )));
        }
        if let Some(q) = self.snapshot.queue(number) {
            return Some(Box::new(crate::app::QueueCaller::new(
                q.clone(),
                self.settings.sounds_dir.clone(),
            )));
        }
        if let Some((q, login)) = self.snapshot.queue_code(number) {
            return Some(Box::new(crate::app::AgentLogin::new(&q.number, login)));
        }
        let room = self.snapshot.conference(number)?;
        let app = crate::app::ConferenceRoom::new(&room.number, &room.pin);
        let now = self.last_now;
        let locked = self
            .pin_failures
            .get(&crate::app::ConferenceRoom::pin_key(&room.number))
            .is_some_and(|(n, since)| {
                *n >= ROOM_PIN_TRIES && now.saturating_duration_since(*since) < PIN_WINDOW
            });
        Some(Box::new(if locked && !room.pin.is_empty() {
            app.locked()
        } else {
            app
        }))
    }

    /// The boxes a message can be left in (enabled extensions with voicemail on), with
    /// whether each has a temporary greeting.
    pub(crate) fn boxes(&self) -> Vec<(String, bool)> {
        self.snapshot
            .config
            .extensions
            .iter()
            .filter(|e| e.enabled && e.voicemail && store::voicemail::valid_box(&e.number))
            .map(|e| (e.number.clone(), self.has_temp_greeting(&e.number)))
            .collect()
    }

    /// What an auto attendant needs of the box.
    pub(crate) fn attendant_env(&self) -> crate::app::AttendantEnv {
        let cfg = &self.snapshot.config;
        crate::app::AttendantEnv {
            ranges: cfg.time_ranges.clone(),
            local_numbers: cfg
                .extensions
                .iter()
                .filter(|e| e.enabled)
                .map(|e| e.number.clone())
                .chain(cfg.ring_groups.iter().map(|g| g.number.clone()))
                .chain(cfg.conferences.iter().map(|c| c.number.clone()))
                .collect(),
            sounds: self.settings.sounds_dir.clone(),
            voicemail: self.settings.voicemail_dir.clone(),
            boxes: self.boxes(),
        }
    }

    pub(crate) fn has_temp_greeting(&self, ext: &str) -> bool {
        self.mailboxes.get(ext).is_some_and(|m| m.temp_greeting)
    }

    /// Answers call `id` (its caller's offer already read) with `app`.
    pub(crate) fn start_app(&mut self, now: Instant, id: u64, app: Box<dyn Application>) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.late_offer {
            return self.fail_call(now, id, 488, "an application needs an SDP offer");
        }
        // An answer already sent with early media (a 183 relayed from a leg that rang)
        // is the one the 200 must repeat (RFC 3261 13.2.1): the application plays and
        // listens in its codec when that is G.711.
        let g711 = |a: &media::sdp::Audio| {
            a.codecs.iter().find(|c| !c.is_dtmf()).is_some_and(|c| {
                c.name.eq_ignore_ascii_case("PCMU") || c.name.eq_ignore_ascii_case("PCMA")
            })
        };
        let answer = match &call.a.sent_sdp {
            Some(early) if g711(early) => Some(early.clone()),
            Some(_) => None,
            None => negotiate::answer_local(
                &call.a_offer,
                &call.caller_codecs,
                call.a.local_addr.ip(),
                call.a_ep.port,
            ),
        };
        let Some(answer) = answer else {
            return self.fail_call(now, id, 488, "no G.711 codec in the offer");
        };
        let codec = answer
            .codecs
            .iter()
            .find(|c| !c.is_dtmf())
            .map(|c| (c.pt, c.name.eq_ignore_ascii_case("PCMA")))
            .unwrap_or((0, false));
        let events_pt = answer.dtmf().map(|d| d.pt);
        // A fallback to an application: early media from a leg that rang is cut.
        call.a_ep.disconnect();
        call.a_ep.listen(media::Listen {
            events_pt,
            inband: events_pt.is_none(),
            record: 0,
        });
        let name = app.name();
        call.app = Some(AppLeg {
            app: Some(app),
            timer: None,
            codec,
        });
        call.answered_here(now, name.to_string());
        self.answer_caller(now, id, answer);
        tracing::info!(call = id, app = name, "answered by an application");
        self.app_event(now, id, AppEvent::Started);
    }

    /// Gives the application of call `id` an event and carries out its actions.
    pub(crate) fn app_event(&mut self, now: Instant, id: u64, event: AppEvent) {
        let unix = self.unix(now);
        let place = self.queue_place(id);
        let default_music = self.hold_music();
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(mut app) = call.app.as_mut().and_then(|a| a.app.take()) else {
            return;
        };
        let mut cx = Context::new(now, &call.caller_ext);
        cx.call = id;
        cx.unix = unix;
        cx.local = unix as i64 + self.utc_offset;
        cx.queue = place;
        app.handle(event, &mut cx);
        if let Some(a) = call.app.as_mut() {
            a.app = Some(app);
        }
        for action in cx.take_actions() {
            let Some(call) = self.calls.get_mut(&id) else {
                return;
            };
            let Some(leg) = call.app.as_mut() else {
                return;
            };
            let (pt, alaw) = leg.codec;
            match action {
                Action::PlayOnce(clip) => call.a_ep.play_once(clip, pt, alaw),
                Action::PlayPrompt(name) => call.a_ep.play_prompt(&name, pt, alaw),
                Action::PlayFile { path, fallback } => {
                    call.a_ep.play_file(path, fallback.as_deref(), pt, alaw)
                }
                Action::Record { path, max } => {
                    let samples = (max.as_millis() as usize).saturating_mul(8);
                    call.a_ep.record(path, samples);
                }
                Action::StopRecording => call.a_ep.stop_recording(),
                Action::StopPlaying => call.a_ep.stop(),
                Action::Request(crate::Request::PinFailed { ext }) => {
                    let e = self.pin_failures.entry(ext.clone()).or_insert((0, now));
                    if now.saturating_duration_since(e.1) >= PIN_WINDOW {
                        *e = (0, now);
                    }
                    e.0 += 1;
                    if e.0 == PIN_TRIES || e.0 == ROOM_PIN_TRIES {
                        tracing::warn!(
                            what = ext,
                            tries = e.0,
                            "security: too many wrong PINs; locked for a while"
                        );
                    }
                }
                Action::Request(crate::Request::PinOk { ext }) => {
                    self.pin_failures.remove(&ext);
                }
                Action::Request(r) => self.requests.push_back(r),
                Action::Echo => {
                    let same = media::PtMap::default();
                    call.a_ep.connect(&call.a_ep, same, same);
                }
                Action::Timer(after) => {
                    leg.timer = Some(now + after);
                    self.arm_call(id);
                }
                Action::Dial { number, groups } => {
                    // The application ends; the caller hears ringback (425 Hz, 1 s in
                    // 5, ETSI) while the exchange rings the number as if dialled.
                    tracing::info!(call = id, number, "the application rings a number");
                    call.app = None;
                    call.a_ep.stop();
                    call.a_ep.listen(media::Listen::default());
                    call.a_ep
                        .play(media::Clip::tone(&[425.0], 1000, 4000, 0.25), pt, alaw);
                    let groups: Vec<String> =
                        std::iter::once(groups).filter(|g| !g.is_empty()).collect();
                    // A queue falling back to a queue that refuses at once (and back):
                    // counted like forwarding, so a loop ends.
                    let hops = call.plan.hops + 1;
                    if hops > crate::plan::MAX_HOPS {
                        tracing::warn!(call = id, number, "forwarding loop: hung up");
                        return self.hang_up(now, id, None);
                    }
                    self.start_plan(now, id, &number, hops, groups);
                    return;
                }
                Action::Join { room } => {
                    self.join_room(now, id, &room);
                    return;
                }
                Action::Music(music) => {
                    let music = if music.is_empty() {
                        default_music.clone()
                    } else {
                        music
                    };
                    call.a_ep.play_music(&music, pt, alaw);
                }
                Action::EnterQueue { queue } => {
                    self.enter_queue(now, id, &queue);
                    return;
                }
                Action::LeaveQueue => self.leave_queue(now, id, true),
                Action::AgentLogin { queue, login } => {
                    let ext = call.caller_ext.clone();
                    let ok =
                        call.caller_peer.is_none() && self.queue_login(now, &queue, &ext, login);
                    self.app_event(now, id, AppEvent::AgentLogged { ok });
                    return;
                }
                Action::ToggleMute => {
                    let muted = self.toggle_mute(id);
                    self.app_event(now, id, AppEvent::Muted(muted));
                    return;
                }
                Action::HangUp => {
                    tracing::debug!(call = id, "the application hung up");
                    call.app = None;
                    self.hang_up(now, id, Some(Side::B));
                    return;
                }
            }
        }
    }

    /// An event from a media endpoint (pbxd forwards the relay's).
    pub fn handle_media_event(&mut self, now: Instant, event: media::Event) {
        self.last_now = now;
        let (endpoint, ev) = match event {
            media::Event::Dtmf {
                endpoint, digit, ..
            } => (endpoint, AppEvent::Dtmf(digit)),
            media::Event::Recorded {
                endpoint,
                path,
                samples,
                ok,
            } => {
                tracing::info!(file = %path.display(), seconds = samples / 8000, ok, "recording written");
                if self.queue_recording_written(endpoint, &path, ok) {
                    return;
                }
                let greeting = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(store::voicemail::NEW_GREETING_PREFIX));
                let caller_there = self
                    .calls
                    .values()
                    .any(|c| c.app.is_some() && c.a_ep.id() == endpoint);
                if greeting && !caller_there {
                    // A greeting whose caller hung up before keeping it.
                    self.requests
                        .push_back(crate::Request::DiscardRecording { path });
                    return;
                }
                (endpoint, AppEvent::Recorded { path, samples, ok })
            }
            media::Event::PlayDone { endpoint } => {
                // A digit sent or a clip played once has ended: in-band digits by INFO
                // may follow.
                let ep = self.calls.values().find_map(|c| {
                    std::iter::once(&c.a_ep)
                        .chain(c.legs.iter().filter_map(|l| l.ep.as_ref()))
                        .find(|e| e.id() == endpoint)
                });
                if let Some(ep) = ep {
                    ep.play_done();
                }
                self.queue_whisper_done(endpoint);
                (endpoint, AppEvent::PlayDone)
            }
        };
        let found = self
            .calls
            .values()
            .find(|c| c.app.is_some() && c.a_ep.id() == endpoint)
            .map(|c| c.id);
        if let Some(id) = found {
            self.app_event(now, id, ev);
        }
        self.after_input(now);
    }

    /// The application's timer, when it is due.
    pub(crate) fn app_timeout(&mut self, now: Instant, id: u64) {
        let due = self
            .calls
            .get_mut(&id)
            .and_then(|c| c.app.as_mut())
            .filter(|a| a.timer.is_some_and(|t| t <= now))
            .map(|a| a.timer = None)
            .is_some();
        if due {
            self.app_event(now, id, AppEvent::Timer);
        }
    }

    /// A digit by SIP INFO for an application; false when the call has none (the
    /// digit then goes to the other side).
    pub(crate) fn app_info_digit(&mut self, now: Instant, id: u64, digit: char) -> bool {
        if self.calls.get(&id).is_none_or(|c| c.app.is_none()) {
            return false;
        }
        self.app_event(now, id, AppEvent::Dtmf(digit));
        true
    }

    /// The caller of an application's call hung up: the application's last event.
    pub(crate) fn app_caller_gone(&mut self, now: Instant, id: u64) {
        self.app_event(now, id, AppEvent::Hangup);
        if let Some(c) = self.calls.get_mut(&id) {
            c.app = None;
        }
    }
}
