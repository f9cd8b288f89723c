//! The phones CSV an administrator uploads (Kerio's format): any bytes give lines with
//! their errors or a clean refusal; an import is all or nothing, and what it accepts
//! leaves a configuration that still validates.
#![no_main]
use config::{Config, Extension, SipAccount};
use libfuzzer_sys::fuzz_target;

fn config() -> Config {
    let mut c = Config::default();
    for n in ["101", "102", "103"] {
        c.extensions.push(Extension::new(n));
        c.accounts
            .push(SipAccount::new(n, &format!("Secret-{n}x"), n));
    }
    c
}

fuzz_target!(|data: &[u8]| {
    let mut c = config();
    let Ok(lines) = provision::phones::preview(&c, data) else {
        return;
    };
    let before = c.clone();
    match provision::phones::import(&mut c, data, None) {
        Ok(_) => c
            .validate()
            .expect("an accepted import leaves a valid configuration"),
        Err(_) => assert_eq!(c, before, "a refused import changed the configuration"),
    }
    let _ = lines;
});
