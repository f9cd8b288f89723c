//! The front panel: the hold logic on a virtual clock, and what happens off a Pi.

use board::panel::{HoldDetector, Panel};
use board::Profile;
use std::time::{Duration, Instant};

#[test]
fn only_a_ten_second_hold_asks_for_a_factory_reset() {
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let mut d = HoldDetector::new(Duration::from_secs(10));
    // Pressed 9.9 s, released: nothing.
    for ms in (0..=9_900).step_by(100) {
        assert!(!d.sample(true, at(ms)));
    }
    assert!(!d.sample(false, at(10_000)));
    // A fresh hold counts from its own start, fires once at 10 s, not again while held.
    let mut fired = Vec::new();
    for ms in (10_100..=25_000).step_by(100) {
        if d.sample(true, at(ms)) {
            fired.push(ms);
        }
    }
    assert_eq!(fired, [20_100]);
    // Released and held again: fires again.
    assert!(!d.sample(false, at(25_100)));
    assert!(!d.sample(true, at(25_200)));
    assert!(d.sample(true, at(35_200)));
}

#[test]
fn boards_without_a_panel_open_none_and_off_a_pi_gpio_is_an_error() {
    assert!(Panel::open(Profile::by_name("qemu-x86_64").unwrap())
        .unwrap()
        .is_none());
    if !std::path::Path::new("/dev/gpiomem").exists() {
        let e = Panel::open(Profile::by_name("rpi4").unwrap())
            .err()
            .expect("no GPIO here");
        assert!(e.starts_with("GPIO"), "{e}");
    }
}
