fn main() {
    let text = std::fs::read_to_string(std::env::args().nth(1).unwrap()).unwrap();
    let msg = text.replace("\r\n", "\n").replace('\n', "\r\n");
    let t = std::time::Instant::now();
    for _ in 0..100 {
        sip::parse(msg.as_bytes()).unwrap();
    }
    println!("parse: {:?} each", t.elapsed() / 100);
    let t = std::time::Instant::now();
    for _ in 0..100 {
        let _ = rsip::SipMessage::try_from(msg.as_bytes());
    }
    println!("rsip alone: {:?} each", t.elapsed() / 100);
}
