//! The configuration document (the REST API's PUT, an uploaded file, the store): any
//! text is a valid configuration or a list of field errors; a valid one prints and
//! reads back the same, as does the store's copy without default fields, and makes a
//! snapshot.
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
    let stored = config::to_stored_vec(&c);
    let stored = std::str::from_utf8(&stored).expect("the stored copy is UTF-8");
    let stored = Config::from_json(stored).expect("the stored copy reads back");
    assert_eq!(c, stored);
    let _ = Snapshot::new(1, c);
});
