//! Deterministic mutation fuzzing of the parser on stable Rust: every RFC 4475 vector,
//! mutated many ways, must be parsed or refused without a panic, and the helpers the
//! stack uses on refused or accepted messages must not panic either.

use rsip::message::HasHeaders;
use std::path::Path;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn corpus() -> Vec<Vec<u8>> {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/rfc4475");
    let mut v = Vec::new();
    for kind in ["valid", "invalid"] {
        for e in std::fs::read_dir(base.join(kind)).unwrap() {
            v.push(std::fs::read(e.unwrap().path()).unwrap());
        }
    }
    v
}

const TOKENS: &[&[u8]] = &[
    b"\r\n",
    b":",
    b";",
    b",",
    b"<",
    b">",
    b"\"",
    b"\\",
    b" ",
    b"\t",
    b"=",
    b"@",
    b"%",
    b"/",
    b"\r\n ",
    b"\xc3\xa9",
    b"\xff",
    b"\0",
    b"SIP/2.0",
    b"Content-Length: 99999999999\r\n",
];

fn mutate(rng: &mut Rng, msg: &[u8]) -> Vec<u8> {
    let mut m = msg.to_vec();
    for _ in 0..1 + rng.below(4) {
        if m.is_empty() {
            m.push(b'x');
        }
        let at = rng.below(m.len());
        match rng.below(5) {
            0 => m[at] = rng.next() as u8,
            1 => {
                m.remove(at);
            }
            2 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                m.splice(at..at, t.iter().copied());
            }
            3 => m.truncate(at),
            _ => {
                // Duplicate a slice somewhere else.
                let end = (at + rng.below(40)).min(m.len());
                let chunk = m[at..end].to_vec();
                let to = rng.below(m.len());
                m.splice(to..to, chunk);
            }
        }
    }
    m
}

#[test]
fn mutated_messages_never_panic() {
    let corpus = corpus();
    // FUZZ_SEED / FUZZ_ROUNDS let a developer run longer; CI runs the fixed seed.
    let seed = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_1234_abcd_0001u64);
    let rounds = std::env::var("FUZZ_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60_000usize);
    let mut rng = Rng(seed | 1);
    let (mut ok, mut refused) = (0, 0);
    for i in 0..rounds {
        let m = mutate(&mut rng, &corpus[i % corpus.len()]);
        match sip::parse(&m) {
            Ok(msg) => {
                ok += 1;
                let h = msg.headers();
                let _ = sip::message::key(h);
                for name in [
                    "Via",
                    "Contact",
                    "From",
                    "To",
                    "Authorization",
                    "Proxy-Authorization",
                ] {
                    for v in sip::message::get_all(h, name) {
                        let _ = sip::message::uri_user(sip::message::uri_part(v));
                        let _ = sip::message::header_param(v, "tag");
                        let _ = sip::auth::parse_credentials(v);
                    }
                }
                let _ = msg.to_string();
            }
            Err(e) => {
                refused += 1;
                let _ = sip::message::reject_unparsed(&m, &e);
            }
        }
        let _ = sip::message::stream_frame_len(&m);
    }
    // Both paths were exercised.
    assert!(ok > 1000 && refused > 1000, "ok {ok}, refused {refused}");
}
