//! WebRTC calls with a real browser (tests/web/webrtc_call.mjs): JsSIP in Chromium,
//! registered over wss://<box>/ws with a fake microphone playing 1000 Hz, calls a
//! pjsua2 phone (440 Hz) and is called by a baresip phone (1400 Hz). The box is
//! ICE-lite and speaks DTLS-SRTP with the browser (checked in the browser's own
//! statistics), plain RTP with the phones; each side hears the other's tone (the
//! browser through Web Audio, the phones on their recordings).

use e2e::*;
use serde_json::json;
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
            // Then baresip calls the browser, which answers and hangs up.
            dial(&mut baresip, &pbx, "101");
            assert!(
                baresip
                    .wait_event("CALL_ESTABLISHED", Duration::from_secs(30))
                    .is_some(),
                "the browser never answered baresip: {:?}",
                baresip.events()
            );
            closed_reason(&baresip);
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
    // Each phone heard the browser's microphone.
    assert_heard(&pjsua, 1000.0);
    assert_heard(&baresip, 1000.0);
    let log = pbx.log_text();
    assert!(
        log.contains("WebRTC leg") && log.contains("connected"),
        "{log}"
    );
    assert!(!log.contains("panicked"), "{log}");
}
