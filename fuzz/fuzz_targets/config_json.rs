//! The configuration document (the REST API's PUT, an uploaded file, the store): any
//! text is a valid configuration or a list of field errors; a valid one prints and
//! reads back the same, and makes a snapshot.
#![no_main]
use config::{Config, Snapshot};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(c) = Config::from_json(text) else {
        return;
    };
    let again = Config::from_json(&c.to_json()).expect("our own JSON reads back");
    assert_eq!(c, again);
    let _ = Snapshot::new(1, c);
});
