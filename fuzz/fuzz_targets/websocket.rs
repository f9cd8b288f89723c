//! SIP over WebSocket (RFC 7118): what a browser sends after the opening handshake, read
//! the way the box reads it (tungstenite with `sip::transport::ws_config`): nothing
//! panics, each message's SIP parse returns, and reading ends. (The 64 KiB message
//! limit is beyond the inputs' 4 KiB: a unit test in `sip::transport` covers it.)
#![no_main]
use libfuzzer_sys::fuzz_target;
use sip::transport::ws_config;
use std::io::{Cursor, Read, Write};
use tungstenite::protocol::{Role, WebSocket};
use tungstenite::Message;

/// The browser's side: reads the input, takes whatever the box writes (pongs, close).
struct Browser(Cursor<Vec<u8>>);

impl Read for Browser {
    fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(b)
    }
}

impl Write for Browser {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let mut ws = WebSocket::from_raw_socket(
        Browser(Cursor::new(data.to_vec())),
        Role::Server,
        Some(ws_config()),
    );
    // Every read consumes input or ends: a bound far above what 4 KiB can hold.
    for _ in 0..10_000 {
        match ws.read() {
            Ok(Message::Text(t)) => {
                let _ = sip::parse(t.as_bytes());
            }
            Ok(Message::Binary(b)) => {
                let _ = sip::parse(&b);
            }
            Ok(_) => {}
            Err(_) => return,
        }
    }
    panic!("reading never ended");
});
