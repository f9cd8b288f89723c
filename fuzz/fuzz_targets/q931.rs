//! Q.931: any bytes decode or give the cause to answer; what decodes encodes again.
#![no_main]
use isdn::q931::Message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Message::parse(data) {
        let again = Message::parse(&m.encode()).expect("our own encoding decodes");
        assert_eq!(again.msg_type, m.msg_type);
        let _ = (
            m.called(),
            m.calling(),
            m.channel(),
            m.cause(),
            m.bearer(),
            m.display(),
        );
    }
});
