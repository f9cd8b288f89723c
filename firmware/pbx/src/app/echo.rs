//! The echo test: a beep, then the caller hears itself (with the round trip through
//! the box) until it presses `#` or a minute has passed. A technician's check of a
//! phone's microphone, speaker and network path, as PBXs commonly offer (`*43` by
//! default, a feature code like the others).

use super::{AppEvent, Application, Context};
use std::time::Duration;

/// How long an echo test lasts at most.
pub const ECHO_LIMIT: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
pub struct EchoTest {
    echoing: bool,
}

impl EchoTest {
    pub fn new() -> EchoTest {
        EchoTest::default()
    }
}

/// The beep before the echo: 1400 Hz for a quarter of a second.
fn beep() -> media::Clip {
    media::Clip::tone(&[1400.0], 250, 0, 0.3)
}

impl Application for EchoTest {
    fn name(&self) -> &'static str {
        "echo test"
    }

    fn handle(&mut self, event: AppEvent, cx: &mut Context) {
        match event {
            AppEvent::Started => {
                cx.play_once(beep());
                cx.timer(ECHO_LIMIT);
            }
            AppEvent::PlayDone if !self.echoing => {
                self.echoing = true;
                cx.echo();
            }
            AppEvent::Dtmf('#') | AppEvent::Timer => cx.hang_up(),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::Action;
    use std::time::Instant;

    fn run(app: &mut EchoTest, ev: AppEvent) -> Vec<Action> {
        let mut cx = Context::new(Instant::now(), "101");
        app.handle(ev, &mut cx);
        cx.take_actions()
    }

    #[test]
    fn beeps_then_echoes_until_hash_or_the_limit() {
        let mut app = EchoTest::new();
        let a = run(&mut app, AppEvent::Started);
        assert!(matches!(a[0], Action::PlayOnce(ref c) if c.len() == 2000));
        assert!(matches!(a[1], Action::Timer(d) if d == ECHO_LIMIT));
        assert!(matches!(
            run(&mut app, AppEvent::PlayDone)[..],
            [Action::Echo]
        ));
        // Other digits are only echoed; a second PlayDone changes nothing.
        assert!(run(&mut app, AppEvent::Dtmf('5')).is_empty());
        assert!(run(&mut app, AppEvent::PlayDone).is_empty());
        assert!(matches!(
            run(&mut app, AppEvent::Dtmf('#'))[..],
            [Action::HangUp]
        ));
        let mut late = EchoTest::new();
        run(&mut late, AppEvent::Started);
        assert!(matches!(
            run(&mut late, AppEvent::Timer)[..],
            [Action::HangUp]
        ));
        assert!(run(&mut late, AppEvent::Hangup).is_empty());
    }
}
