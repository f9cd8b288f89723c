//! The do-not-disturb code: a phone that dials it switches its extension's do not
//! disturb the other way; the box asks for the change (the configuration is the
//! daemon's, `Request::DoNotDisturb`), says "do not disturb activated" or
//! "... de-activated" and hangs up.

use super::{AppEvent, Application, Context};

#[derive(Debug)]
pub struct DndSwitch {
    ext: String,
    on: bool,
    /// Prompts left to say, last first.
    left: Vec<&'static str>,
}

impl DndSwitch {
    /// Switches extension `ext`'s do not disturb to `on`.
    pub fn new(ext: &str, on: bool) -> DndSwitch {
        DndSwitch {
            ext: ext.to_string(),
            on,
            left: vec![
                if on { "activated" } else { "de-activated" },
                "do-not-disturb",
            ],
        }
    }
}

impl Application for DndSwitch {
    fn name(&self) -> &'static str {
        "do not disturb"
    }

    fn handle(&mut self, event: AppEvent, cx: &mut Context) {
        if let AppEvent::Started = event {
            cx.request(crate::Request::DoNotDisturb {
                ext: self.ext.clone(),
                on: self.on,
            });
        }
        if matches!(event, AppEvent::Started | AppEvent::PlayDone) {
            match self.left.pop() {
                Some(p) => cx.play_prompt(p),
                None => cx.hang_up(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(app: &mut DndSwitch, ev: AppEvent) -> Vec<String> {
        crate::app::said(app, ev)
    }

    #[test]
    fn the_switch_is_asked_for_said_and_the_call_ends() {
        let mut app = DndSwitch::new("101", true);
        let started = run(&mut app, AppEvent::Started);
        assert_eq!(started.len(), 2, "{started:?}");
        assert!(started[0].contains(r#"DoNotDisturb { ext: "101", on: true }"#));
        assert_eq!(started[1], "do-not-disturb");
        assert_eq!(run(&mut app, AppEvent::PlayDone), ["activated"]);
        assert_eq!(run(&mut app, AppEvent::PlayDone), ["hang up"]);
        // Keys do nothing.
        assert!(run(&mut app, AppEvent::Dtmf('1')).is_empty());
        let mut off = DndSwitch::new("102", false);
        run(&mut off, AppEvent::Started);
        assert_eq!(run(&mut off, AppEvent::PlayDone), ["de-activated"]);
    }
}
