//! A D-channel: LAPD ([`crate::q921`]) carrying Q.931 call control
//! ([`crate::call`]). Frames in and out, call events out, one clock. A span driver
//! (DAHDI or the virtual span) owns one and moves its frames.

use crate::call::{self, Calls, Event};
use crate::q921::{self, Lapd};
use std::collections::VecDeque;
use std::time::Instant;

pub struct Dchannel {
    pub lapd: Lapd,
    pub calls: Calls,
    events: VecDeque<Event>,
}

impl Dchannel {
    pub fn new(link: q921::Config, calls: call::Config) -> Dchannel {
        Dchannel {
            lapd: Lapd::new(link),
            calls: Calls::new(calls),
            events: VecDeque::new(),
        }
    }

    /// Brings the link up (and keeps it up).
    pub fn start(&mut self, now: Instant) {
        self.lapd.start(now);
        self.pump(now);
    }

    /// One frame from the line (no flags, no FCS).
    pub fn receive(&mut self, now: Instant, frame: &[u8]) {
        self.lapd.receive(now, frame);
        self.pump(now);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.lapd.poll_timeout().is_some_and(|t| t <= now) {
            self.lapd.handle_timeout(now);
        }
        if self.calls.poll_timeout().is_some_and(|t| t <= now) {
            self.calls.handle_timeout(now);
        }
        self.pump(now);
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.lapd.poll_timeout(), self.calls.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Moves Q.931 messages into LAPD and LAPD's news into call control. Call it
    /// after giving `calls` a command.
    pub fn pump(&mut self, now: Instant) {
        loop {
            let mut moved = false;
            while let Some(m) = self.calls.poll_transmit() {
                self.lapd.send(now, m);
                moved = true;
            }
            while let Some(e) = self.lapd.poll_event() {
                moved = true;
                match e {
                    q921::Event::Up => {
                        self.calls.link_up(now);
                        self.events.push_back(Event::Link {
                            up: true,
                            why: "established".into(),
                        });
                    }
                    q921::Event::Reestablished => {
                        self.calls.link_reset(now);
                        self.events.push_back(Event::Link {
                            up: true,
                            why: "re-established".into(),
                        });
                    }
                    q921::Event::Down(why) => {
                        self.calls.link_down(now);
                        self.events.push_back(Event::Link { up: false, why });
                    }
                    q921::Event::Data(d) => self.calls.receive(now, &d),
                    q921::Event::TeiAssigned(_) => {}
                    q921::Event::Error(e) => self.events.push_back(Event::Error(e)),
                }
            }
            while let Some(e) = self.calls.poll_event() {
                self.events.push_back(e);
            }
            if !moved {
                break;
            }
        }
    }

    /// Frames for the line.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.lapd.poll_transmit()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
}
