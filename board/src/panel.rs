//! The front panel of boards that have one (Raspberry Pi 4): status LEDs and the
//! factory-reset button on GPIO through rppal. Holding the button for the profile's
//! time (10 s) asks for a factory reset; a shorter press does nothing.

use crate::profile::Profile;
use rppal::gpio::{Gpio, InputPin, Level, OutputPin};
use std::time::{Duration, Instant};

/// Tells a held button from a press: fires once when the button has been down without
/// a break for `hold`, and again only after it was released.
#[derive(Debug)]
pub struct HoldDetector {
    hold: Duration,
    down_since: Option<Instant>,
    fired: bool,
}

impl HoldDetector {
    pub fn new(hold: Duration) -> HoldDetector {
        HoldDetector {
            hold,
            down_since: None,
            fired: false,
        }
    }

    /// One sample of the button; true once per hold.
    pub fn sample(&mut self, pressed: bool, now: Instant) -> bool {
        if !pressed {
            self.down_since = None;
            self.fired = false;
            return false;
        }
        let since = *self.down_since.get_or_insert(now);
        if !self.fired && now.duration_since(since) >= self.hold {
            self.fired = true;
            return true;
        }
        false
    }
}

/// The board's LEDs and reset button, opened through rppal.
pub struct Panel {
    leds: Vec<(&'static str, OutputPin)>,
    button: Option<(InputPin, HoldDetector)>,
}

impl Panel {
    /// Opens the GPIO LEDs and buttons `profile` names. `Ok(None)` when it has none;
    /// an error when it has some but GPIO cannot be reached (not a Pi, no /dev/gpiomem).
    pub fn open(profile: &Profile) -> Result<Option<Panel>, String> {
        let gpio_leds: Vec<_> = profile
            .leds
            .iter()
            .filter_map(|l| Some((l.role, l.gpio?)))
            .collect();
        if gpio_leds.is_empty() && profile.buttons.is_empty() {
            return Ok(None);
        }
        let gpio = Gpio::new().map_err(|e| format!("GPIO: {e}"))?;
        let mut leds = Vec::new();
        for (role, pin) in gpio_leds {
            let p = gpio
                .get(pin)
                .map_err(|e| format!("GPIO {pin} ({role} LED): {e}"))?
                .into_output_low();
            leds.push((role, p));
        }
        let button = match profile.buttons.iter().find(|b| b.role == "factory-reset") {
            Some(b) => Some((
                gpio.get(b.gpio)
                    .map_err(|e| format!("GPIO {} (reset button): {e}", b.gpio))?
                    .into_input_pullup(),
                HoldDetector::new(Duration::from_secs(u64::from(b.hold_secs))),
            )),
            None => None,
        };
        Ok(Some(Panel { leds, button }))
    }

    /// Lights or darkens the LED with this role (`status`, `line`).
    pub fn set(&mut self, role: &str, on: bool) {
        for (r, p) in &mut self.leds {
            if *r == role {
                p.write(if on { Level::High } else { Level::Low });
            }
        }
    }

    /// Samples the reset button (active low); true once when it has been held long
    /// enough.
    pub fn reset_held(&mut self, now: Instant) -> bool {
        match &mut self.button {
            Some((pin, d)) => d.sample(pin.is_low(), now),
            None => false,
        }
    }
}
