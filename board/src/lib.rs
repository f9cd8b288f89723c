//! Board support: what differs between the boxes the firmware runs on.
//!
//! Owns: the board profiles (which consoles, NICs, LEDs, buttons, watchdog, audio device
//! and telephony cards a model has), the hardware watchdog device, the serial console's
//! line settings. Must not touch: configuration, SIP, the store.

pub mod audio;
pub mod panel;
pub mod profile;
pub mod serial;
pub mod watchdog;

pub use profile::{Profile, PROFILES};
