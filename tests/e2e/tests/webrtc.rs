//! WebRTC calls with a real browser (tests/web/webrtc_call.mjs): JsSIP in Chromium,
//! registered over wss://<box>/ws with a fake microphone playing 1000 Hz, calls a
//! pjsua2 phone (440 Hz) and is called by a baresip phone (1400 Hz). The box is
//! ICE-lite and speaks DTLS-SRTP with the browser (checked in the browser's own
//! statistics), plain RTP with the phones; each side hears the other's tone (the
//! browser through Web Audio, the phones on their recordings). On the wire (tcpdump on
//! loopback) the browser's legs carry DTLS and SRTP that decodes to no tone, while the
//! phones' plain legs carry the tones in clear. The baresip call and a second call to
//! pjsua2 prefer Opus in the browser: the browser's leg carries Opus (payload type 111
//! on the wire, both ways), which the box turns into G.711 for the phone.

use e2e::*;
use serde_json::json;
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

#[test]
fn a_browser_calls_a_phone_and_a_phone_calls_the_browser_with_audio_both_ways() {
    let pbx = Pbxd::start();
    let pw = add_exts(&pbx, &["101", "102", "103"]);
    edit_config(&pbx, |v| {
        for a in v["accounts"].as_array_mut().unwrap() {
            if a["extension"] == "101" {
                a["transports"] = json!(["udp", "tcp", "tls", "wss"]);
            }
        }
    });
    let pjsua = phone_of(Kind::Pjsua2, &pbx, "102", &pw[1], 440, true, "PCMU,PCMA");
    let mut baresip = phone(&pbx, "103", &pw[2], 1400, false, "PCMU,PCMA");
    let dir = tempfile::tempdir().unwrap();
    let tone = dir.path().join("browser-1000.wav");
    write_tone_wav(&tone, 1000, 20);
    let tones: Vec<String> = TONES.iter().map(|t| format!("{t}")).collect();
    // What goes through the box's media ports, both ways.
    let pcap = dir.path().join("media.pcap");
    let dump = capture(
        &pcap,
        &format!("udp and portrange {}-{}", pbx.rtp.0, pbx.rtp.1),
    );

    std::thread::scope(|s| {
        let phones = s.spawn(|| {
            // The browser's call: pjsua2 answers it by itself; the browser hangs up.
            assert!(
                pjsua
                    .wait_event("CALL_ESTABLISHED", Duration::from_secs(60))
                    .is_some(),
                "the browser's call never reached pjsua2: {:?}\n{}",
                pjsua.events(),
                pbx.log_text()
            );
            closed_reason(&pjsua);
            pjsua.clear_events();
            // Then baresip calls the browser, which answers (in Opus) and hangs up.
            dial(&mut baresip, &pbx, "101");
            assert!(
                baresip
                    .wait_event("CALL_ESTABLISHED", Duration::from_secs(30))
                    .is_some(),
                "the browser never answered baresip: {:?}",
                baresip.events()
            );
            closed_reason(&baresip);
            // Then the browser calls pjsua2 again, in Opus.
            assert!(
                pjsua
                    .wait_event("CALL_ESTABLISHED", Duration::from_secs(60))
                    .is_some(),
                "the browser's Opus call never reached pjsua2: {:?}",
                pjsua.events()
            );
            closed_reason(&pjsua);
        });
        browser_via(
            &pbx,
            &[],
            "webrtc_call.mjs",
            &[
                ("SIP_DOMAIN", "127.0.0.1"),
                ("USER_A", "101"),
                ("PW_A", &pw[0]),
                ("CALLEE", "102"),
                ("CALLEE_TONE", "440"),
                ("CALLER_TONE", "1400"),
                ("TONES", &tones.join(",")),
                ("TONE_FILE", tone.to_str().unwrap()),
            ],
        );
        phones.join().unwrap();
    });
    // Each phone heard the browser's microphone, in G.711 and through Opus.
    assert_heard(&pjsua, 1000.0);
    assert_heard(&baresip, 1000.0);
    let heard = pjsua.heard();
    assert_eq!(heard.len(), 2, "pjsua2's recordings: {heard:?}");
    let (tone, loud) = dominant_tone_at(&heard[0], &TONES, 0.25);
    assert!(
        tone == 1000.0 && loud > 8000,
        "pjsua2's G.711 call: {tone} Hz, {loud}"
    );
    stop_capture(dump);
    srtp_on_the_wire(&pcap, pbx.rtp);
    let log = pbx.log_text();
    assert!(
        log.contains("WebRTC leg") && log.contains("connected"),
        "{log}"
    );
    assert!(!log.contains("panicked"), "{log}");
}

/// The browser's legs (the flows that carried a DTLS handshake) hold SRTP only: no
/// packet the size of plain 20 ms G.711 (172 bytes), and in each direction no second of
/// them decodes to a tone; a phone's plain RTP holds the browser's 1000 Hz in clear.
fn srtp_on_the_wire(pcap: &Path, range: (u16, u16)) {
    let ours = |p: u16| (range.0..=range.1).contains(&p);
    // Flows by (the box's port, the peer's port), each way apart.
    let mut flows: HashMap<(u16, u16), [Vec<Vec<u8>>; 2]> = HashMap::new();
    for (src, dst, data) in udp_payloads(pcap) {
        let (key, way) = if ours(src) {
            ((src, dst), 0)
        } else {
            ((dst, src), 1)
        };
        flows.entry(key).or_default()[way].push(data);
    }
    // RTP (RFC 5761's demultiplexing: version 2, payload type below 64, or Opus's 111
    // where RTCP's 200-206 cannot be), more than a header and an SRTP tag.
    let rtp = |d: &&Vec<u8>| {
        d.len() > 28 && d[0] & 0xc0 == 0x80 && (d[1] & 0x7f < 64 || d[1] & 0x7f == 111)
    };
    // The largest share of `hz` in one second of a direction's payloads, and the median.
    let shares = |pkts: &[Vec<u8>], hz: f64| -> (f64, f64) {
        let media: Vec<u8> = pkts
            .iter()
            .filter(rtp)
            .flat_map(|d| d[12..].to_vec())
            .collect();
        let mut s: Vec<f64> = media.chunks(8000).map(|c| tone_share(c, hz)).collect();
        s.sort_by(f64::total_cmp);
        (
            s.last().copied().unwrap_or(0.0),
            s.get(s.len() / 2).copied().unwrap_or(0.0),
        )
    };
    let (mut srtp_packets, mut clear, mut browser_flows) = (0, 0.0f64, 0);
    // Browser flows with Opus each way (the RTP header is clear in SRTP).
    // Opus packets on the browsers' legs, by the box's port, each way (a browser that
    // moved to another port of its own has two flows on one leg).
    let mut opus_legs: HashMap<u16, [usize; 2]> = HashMap::new();
    for (&(port, _), ways) in &flows {
        // A browser's flow: a DTLS handshake record (content type 22, version 1.x), or
        // ICE checks (STUN's magic cookie: a browser may move to another of its ports,
        // e.g. after a re-offer, where its checks go on but no handshake).
        let dtls = ways.iter().flatten().any(|d| {
            (d.len() > 13 && d[0] == 22 && d[1] == 0xfe)
                || (d.len() >= 20 && d[0] < 2 && d[4..8] == [0x21, 0x12, 0xa4, 0x42])
        });
        if !dtls {
            for pkts in ways {
                clear = clear.max(shares(pkts, 1000.0).1);
            }
            continue;
        }
        browser_flows += 1;
        let leg = opus_legs.entry(port).or_default();
        for (way, pkts) in ways.iter().enumerate() {
            leg[way] += pkts
                .iter()
                .filter(rtp)
                .filter(|d| d[1] & 0x7f == 111)
                .count();
        }
        for pkts in ways {
            let media: Vec<&Vec<u8>> = pkts.iter().filter(rtp).collect();
            srtp_packets += media.len();
            let plain = media.iter().filter(|d| d.len() == 172).count();
            assert_eq!(plain, 0, "{plain} plain-sized RTP packets on a browser leg");
            for hz in [1000.0, 440.0, 1400.0] {
                let (most, _) = shares(pkts, hz);
                assert!(
                    most < 0.05,
                    "a second of the browser's SRTP decodes to {hz} Hz ({most})"
                );
            }
        }
    }
    let opus: Vec<&[usize; 2]> = opus_legs.values().filter(|w| w[0] + w[1] > 0).collect();
    eprintln!(
        "on the wire: {browser_flows} browser flows, {srtp_packets} SRTP packets; Opus packets (out, in) on browser legs {opus:?}; 1000 Hz share {clear:.3} on a phone's leg"
    );
    // Two calls of about 4 s each in Opus (a box port may serve both, one after the
    // other): each way carries well over one call's worth.
    let (out, inn) = opus.iter().fold((0, 0), |(o, i), w| (o + w[0], i + w[1]));
    assert!(
        out > 300 && inn > 300,
        "Opus on the browsers' legs: {out} packets out, {inn} in"
    );
    assert!(
        browser_flows >= 3,
        "no DTLS on {browser_flows} flows: {} flows",
        flows.len()
    );
    assert!(srtp_packets >= 400, "{srtp_packets} SRTP packets");
    assert!(
        clear > 0.2,
        "no phone's RTP carries the browser's tone: {clear}"
    );
}
