//! SIPp conformance set: the RFC 3665 basic call flows that apply to a B2BUA and the
//! RFC 4317 offer/answer examples that apply to audio. A SIPp phone (101, with digest)
//! calls out through the box to a SIPp provider; every message the box sends to either
//! is checked header by header with SIPp's regexp actions, not only its status code.

use e2e::*;
use serde_json::json;

const PW: &str = "Secret-101x";

/// The caller's SDP (RFC 4317 style): `m` is the m-line(s) after the session part.
fn sdp(m: &str) -> String {
    format!("v=0\no=- 1 1 IN IP4 [local_ip]\ns=-\nc=IN IP4 [local_ip]\nt=0 0\n{m}")
}

const AUDIO: &str = "m=audio [media_port] RTP/AVP 0 8 101\na=rtpmap:0 PCMU/8000\na=rtpmap:8 PCMA/8000\na=rtpmap:101 telephone-event/8000\na=fmtp:101 0-16\na=sendrecv\n";

/// One check: `regexp` must match in `header` (or in the body when `header` is
/// "body", the whole message when "msg").
struct Check(&'static str, String);

fn checks(list: &[Check], tag: &str) -> (String, Vec<String>) {
    let mut xml = String::new();
    let mut vars = Vec::new();
    for (i, Check(header, re)) in list.iter().enumerate() {
        let var = format!("{tag}{i}");
        // POSIX extended expressions (SIPp's): '.' takes newlines, '^' is the start of
        // the text (a line end is matched as "not a digit or space"); header values may
        // keep a leading space.
        let re = if *header != "body" && *header != "msg" {
            re.strip_prefix('^')
                .map(|r| format!("^ *{r}"))
                .unwrap_or(re.clone())
        } else {
            re.clone()
        };
        let re = re
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('"', "&quot;");
        assert!(
            !re.contains(['\r', '\n']),
            "SIPp reads no character references"
        );
        let place = match *header {
            "body" => "search_in=\"body\"".to_string(),
            "msg" => "search_in=\"msg\"".to_string(),
            h => format!("search_in=\"hdr\" header=\"{h}:\""),
        };
        xml.push_str(&format!(
            "<ereg regexp=\"{re}\" {place} check_it=\"true\" assign_to=\"{var}\"/>"
        ));
        vars.push(var);
    }
    (xml, vars)
}

fn c(header: &'static str, re: &str) -> Check {
    Check(header, re.to_string())
}

/// What every response to a dialog-creating INVITE (101-299) must carry.
fn dialog_response(sdp: bool) -> Vec<Check> {
    let mut v = vec![
        c("To", ";tag="),
        c("Contact", "^<sip:[^>]+>"),
        c("Allow", "INVITE.*ACK.*CANCEL.*BYE"),
        c("Content-Length", "^[0-9]+$"),
        c("Record-Route", "^<sip:[0-9.]+:[0-9]+;lr>$"),
    ];
    if sdp {
        v.push(c("Content-Type", "^application/sdp$"));
        v.push(c("msg", "Supported:"));
        v.push(c("body", "^v=0.*o=pbxd [0-9]+ [0-9]+ IN IP4 127\\.0\\.0\\.1.*s=.*c=IN IP4 127\\.0\\.0\\.1.*t=0 0.*m=audio "));
    }
    v
}

/// What every request the box sends must carry.
fn request_basics(method: &str) -> Vec<Check> {
    vec![
        c("Via", "^SIP/2\\.0/UDP [0-9.]+:[0-9]+;branch=z9hG4bK"),
        c("Max-Forwards", "^70$"),
        c("CSeq", &format!("^[0-9]+ {method}$")),
        c("Content-Length", "^[0-9]+$"),
    ]
}

/// Builds a scenario from steps; every assigned variable is referenced at the end.
struct Scenario {
    xml: String,
    vars: Vec<String>,
    n: usize,
}

impl Scenario {
    fn new() -> Self {
        Scenario {
            xml: String::new(),
            vars: Vec::new(),
            n: 0,
        }
    }

    fn raw(&mut self, s: &str) -> &mut Self {
        self.xml.push_str(s);
        self.xml.push('\n');
        self
    }

    fn send(&mut self, msg: &str) -> &mut Self {
        self.raw(&format!("<send retrans=\"500\"><![CDATA[\n{msg}]]></send>"))
    }

    /// Sends a message that is not retransmitted (a provisional or a non-INVITE answer).
    fn send_once(&mut self, msg: &str) -> &mut Self {
        self.raw(&format!("<send><![CDATA[\n{msg}]]></send>"))
    }

    /// The provider takes the BYE and answers 200.
    fn bye_answered(&mut self) -> &mut Self {
        self.raw("<recv request=\"BYE\"/>");
        self.send_once(&provider_reply("200 OK", "", ""))
    }

    fn recv(&mut self, what: &str, list: &[Check]) -> &mut Self {
        self.recv_with(what, "", list)
    }

    /// `recv` with more attributes (e.g. `auth="true"`).
    fn recv_with(&mut self, what: &str, attrs: &str, list: &[Check]) -> &mut Self {
        self.recv_actions(what, attrs, list, "")
    }

    /// `recv` with more actions after the checks.
    fn recv_actions(&mut self, what: &str, attrs: &str, list: &[Check], more: &str) -> &mut Self {
        self.n += 1;
        let (mut actions, vars) = checks(list, &format!("v{}_", self.n));
        actions.push_str(more);
        self.vars.extend(vars);
        let (kind, value) = what.split_once(' ').unwrap();
        self.raw(&format!(
            "<recv {kind}=\"{value}\" {attrs}><action>{actions}</action></recv>"
        ))
    }

    fn build(&self) -> String {
        let refs = if self.vars.is_empty() {
            String::new()
        } else {
            format!("<Reference variables=\"{}\"/>\n", self.vars.join(","))
        };
        format!(
            "<?xml version=\"1.0\" encoding=\"ISO-8859-1\" ?>\n<scenario name=\"c\">\n{}{refs}</scenario>\n",
            self.xml
        )
    }
}

/// A request from the phone (101) in the dialog of its INVITE.
fn phone_request(method: &str, cseq: u32, extra: &str, body: &str) -> String {
    let ct = if body.is_empty() {
        String::new()
    } else {
        "Content-Type: application/sdp\n".into()
    };
    let to = if method == "INVITE" && cseq <= 2 {
        "To: <sip:[service]@[remote_ip]>".to_string()
    } else {
        "[last_To:]".to_string()
    };
    format!(
        "{method} sip:[service]@[remote_ip]:[remote_port] SIP/2.0\nVia: SIP/2.0/UDP [local_ip]:[local_port];branch=[branch]\nFrom: <sip:101@[remote_ip]>;tag=[pid]P[call_number]\n{to}\nCall-ID: [call_id]\nCSeq: {cseq} {method}\nContact: <sip:101@[local_ip]:[local_port]>\nMax-Forwards: 70\n{extra}{ct}Content-Length: [len]\n\n{body}"
    )
}

/// The phone's INVITE, challenged once (407), then sent with credentials. `rr` adds a
/// Record-Route as a proxy in front of the phone would.
fn phone_invite(s: &mut Scenario, body: &str) {
    let rr = "Record-Route: <sip:[local_ip]:[local_port];lr>\n";
    s.send(&phone_request("INVITE", 1, rr, body));
    s.raw("<recv response=\"100\" optional=\"true\"/>");
    s.recv_with(
        "response 407",
        "auth=\"true\"",
        &[
            c("Proxy-Authenticate", "^Digest .*realm=\"pbx\".*nonce="),
            c("To", ";tag="),
        ],
    );
    s.raw("<send><![CDATA[\nACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0\n[last_Via:]\nFrom: <sip:101@[remote_ip]>;tag=[pid]P[call_number]\n[last_To:]\nCall-ID: [call_id]\nCSeq: 1 ACK\nMax-Forwards: 70\nContent-Length: 0\n\n]]></send>");
    s.send(&phone_request(
        "INVITE",
        2,
        &format!("{rr}[authentication username=101 password={PW}]\n"),
        body,
    ));
    s.raw("<recv response=\"100\" optional=\"true\"/>");
}

/// The phone's call (audio offer), answered by 200 with every dialog header, and ACKed.
fn phone_call_answered(s: &mut Scenario) {
    phone_invite(s, &sdp(AUDIO));
    s.raw("<recv response=\"180\" optional=\"true\"/>");
    s.recv("response 200", &dialog_response(true));
    phone_ack(s, 2, "");
}

fn phone_ack(s: &mut Scenario, cseq: u32, body: &str) {
    let ct = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\n"
    };
    s.raw(&format!("<send><![CDATA[\nACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0\nVia: SIP/2.0/UDP [local_ip]:[local_port];branch=[branch]\nFrom: <sip:101@[remote_ip]>;tag=[pid]P[call_number]\n[last_To:]\nCall-ID: [call_id]\nCSeq: {cseq} ACK\nMax-Forwards: 70\n{ct}Content-Length: [len]\n\n{body}]]></send>"));
}

fn phone_bye(s: &mut Scenario, cseq: u32) {
    s.send(&format!("BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0\nVia: SIP/2.0/UDP [local_ip]:[local_port];branch=[branch]\nFrom: <sip:101@[remote_ip]>;tag=[pid]P[call_number]\n[last_To:]\nCall-ID: [call_id]\nCSeq: {cseq} BYE\nMax-Forwards: 70\nContent-Length: 0\n\n"));
    s.recv("response 200", &[c("CSeq", &format!("^{cseq} BYE$"))]);
}

/// A response from the provider to the last request.
fn provider_reply(status: &str, extra: &str, body: &str) -> String {
    let ct = if body.is_empty() {
        String::new()
    } else {
        "Content-Type: application/sdp\n".into()
    };
    format!("SIP/2.0 {status}\n[last_Via:]\n[last_From:]\n[last_To:];tag=[pid]V[call_number]\n[last_Call-ID:]\n[last_CSeq:]\nContact: <sip:555@[local_ip]:[local_port]>\n{extra}{ct}Content-Length: [len]\n\n{body}")
}

fn provider_answer() -> String {
    sdp("m=audio [media_port] RTP/AVP 8 101\na=rtpmap:8 PCMA/8000\na=rtpmap:101 telephone-event/8000\na=sendrecv\n")
}

/// The INVITE the provider gets: every header a dialog-creating request needs, an SDP
/// offer on the box's address with `m` as its m-line.
fn provider_invite_checks(m: &str) -> Vec<Check> {
    let mut v = request_basics("INVITE");
    v.extend([
        c("msg", "^INVITE sip:555@127\\.0\\.0\\.5:[0-9]+ SIP/2\\.0"),
        c("Contact", "^<sip:[^>]+>$"),
        c("Content-Type", "^application/sdp$"),
        c("Allow", "INVITE.*ACK.*CANCEL.*BYE.*OPTIONS"),
        c("msg", "Supported:"),
        c("To", "^<sip:555@"),
        c("From", ";tag="),
        c("body", &format!("c=IN IP4 127\\.0\\.0\\.1.*{m}")),
    ]);
    v
}

/// A box with 101 and a provider on 127.0.0.5 reached with the prefix 0 (which asks
/// for digest credentials when it challenges).
fn setup(provider_port: u16) -> Pbxd {
    let pbx = Pbxd::start();
    pbx.ctl_ok(&["extension", "add", "101", "--password", PW]);
    edit_config(&pbx, |v| {
        v["sip_interfaces"] = json!([{"name": "carrier", "host": "127.0.0.5",
            "port": provider_port, "keepalive": 0,
            "username": "trunkuser", "password": "Provider-Pass-1"}]);
        v["outbound_routes"] =
            json!([{"prefix": "0", "interfaces": ["carrier"], "called_rewrite": {"strip": 1}}]);
    });
    pbx
}

/// Runs the provider and then the phone scenario against a fresh box; both must pass.
fn run(name: &str, phone: &Scenario, provider: Option<&Scenario>, number: &str) {
    let pport = free_port();
    let pbx = setup(pport);
    let uas = provider.map(|p| {
        let (child, dir) = sipp_spawn(&p.build(), "", "127.0.0.5", pport, &["-m", "1"]);
        (child, dir)
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (uac, dir) = sipp_spawn(
        &phone.build(),
        &pbx.sip.to_string(),
        "127.0.0.1",
        free_port(),
        &["-m", "1", "-s", number, "-au", "101", "-ap", PW],
    );
    // The provider first: when it fails, its messages say why the phone failed too.
    if let Some((child, dir)) = uas {
        sipp_wait(&format!("{name}: the provider"), child, &dir);
    }
    sipp_wait(&format!("{name}: the phone"), uac, &dir);
    assert!(
        pbx.ctl_ok(&["calls"]).lines().count() == 1,
        "{name}: a call is left"
    );
}

/// RFC 3665 3.1 (through a B2BUA): successful call, the caller hangs up. Record-Route
/// on both sides: the box echoes the phone's and routes its BYE by the provider's.
#[test]
fn rfc3665_successful_call() {
    let mut p = Scenario::new();
    phone_invite(&mut p, &sdp(AUDIO));
    p.recv("response 180", &dialog_response(false));
    let mut ok = dialog_response(true);
    ok.push(c("body", "m=audio [0-9]+ RTP/AVP 8 101[^0-9 ]"));
    p.recv("response 200", &ok);
    phone_ack(&mut p, 2, "");
    p.raw("<pause milliseconds=\"500\"/>");
    phone_bye(&mut p, 3);

    let mut v = Scenario::new();
    v.recv(
        "request INVITE",
        &provider_invite_checks("m=audio [0-9]+ RTP/AVP (0 8|8 0) 101[^0-9 ]"),
    );
    v.send_once(&provider_reply("180 Ringing", "", ""));
    v.send(&provider_reply(
        "200 OK",
        "Record-Route: <sip:[local_ip]:[local_port];lr>\n",
        &provider_answer(),
    ));
    let mut ack = request_basics("ACK");
    ack.push(c("msg", "^ACK sip:555@127\\.0\\.0\\.5:[0-9]+ SIP/2\\.0"));
    ack.push(c("Route", "^<sip:127\\.0\\.0\\.5:[0-9]+;lr>$"));
    v.recv("request ACK", &ack);
    let mut bye = request_basics("BYE");
    bye.push(c("msg", "^BYE sip:555@127\\.0\\.0\\.5:[0-9]+ SIP/2\\.0"));
    bye.push(c("Route", "^<sip:127\\.0\\.0\\.5:[0-9]+;lr>$"));
    bye.push(c("To", ";tag="));
    v.recv("request BYE", &bye);
    v.send_once(&provider_reply("200 OK", "", ""));
    run("successful call", &p, Some(&v), "0555");
}

/// RFC 3665 3.6/3.7/3.10: the provider refuses; the phone hears why and the box ACKs
/// the refusal on the provider's side (same branch, hop by hop).
#[test]
fn rfc3665_unsuccessful_busy_unavailable_and_503() {
    for (status, want) in [
        ("486 Busy Here", "486"),
        ("480 Temporarily Unavailable", "480"),
        ("503 Service Unavailable", "500"),
    ] {
        let mut p = Scenario::new();
        phone_invite(&mut p, &sdp(AUDIO));
        p.raw("<recv response=\"180\" optional=\"true\"/>");
        p.recv(
            &format!("response {want}"),
            &[c("To", ";tag="), c("Content-Length", "^0$")],
        );
        p.raw("<send><![CDATA[\nACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0\n[last_Via:]\nFrom: <sip:101@[remote_ip]>;tag=[pid]P[call_number]\n[last_To:]\nCall-ID: [call_id]\nCSeq: 2 ACK\nMax-Forwards: 70\nContent-Length: 0\n\n]]></send>");
        let mut v = Scenario::new();
        v.recv("request INVITE", &provider_invite_checks("m=audio"));
        v.send_once(&provider_reply(status, "", ""));
        v.recv("request ACK", &[c("CSeq", "^1 ACK$"), c("To", ";tag=")]);
        run(status, &p, Some(&v), "0555");
    }
}

/// RFC 3665 3.3/3.8: unknown numbers and an extension nobody answers on.
#[test]
fn rfc3665_unknown_number_and_unregistered_extension() {
    for (number, want) in [("999", "404"), ("102", "480")] {
        let mut p = Scenario::new();
        phone_invite(&mut p, &sdp(AUDIO));
        p.recv(
            &format!("response {want}"),
            &[c("To", ";tag="), c("Content-Length", "^0$")],
        );
        p.raw("<send><![CDATA[\nACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0\n[last_Via:]\nFrom: <sip:101@[remote_ip]>;tag=[pid]P[call_number]\n[last_To:]\nCall-ID: [call_id]\nCSeq: 2 ACK\nMax-Forwards: 70\nContent-Length: 0\n\n]]></send>");
        let pport = free_port();
        let pbx = setup(pport);
        pbx.ctl_ok(&["extension", "add", "102", "--password", "Secret-102x"]);
        let (uac, dir) = sipp_spawn(
            &p.build(),
            &pbx.sip.to_string(),
            "127.0.0.1",
            free_port(),
            &["-m", "1", "-s", number, "-au", "101", "-ap", PW],
        );
        sipp_wait(&format!("{number}: the phone"), uac, &dir);
    }
}

/// RFC 3665 3.8 with CANCEL: the phone gives up while the provider rings; CANCEL is
/// answered 200 and the INVITE 487, and the provider gets a CANCEL matching its INVITE.
#[test]
fn rfc3665_cancel_while_ringing() {
    let mut p = Scenario::new();
    phone_invite(&mut p, &sdp(AUDIO));
    p.recv("response 180", &dialog_response(false));
    p.raw("<send><![CDATA[\nCANCEL sip:[service]@[remote_ip]:[remote_port] SIP/2.0\n[last_Via:]\nFrom: <sip:101@[remote_ip]>;tag=[pid]P[call_number]\nTo: <sip:[service]@[remote_ip]>\nCall-ID: [call_id]\nCSeq: 2 CANCEL\nMax-Forwards: 70\nContent-Length: 0\n\n]]></send>");
    p.recv("response 200", &[c("CSeq", "^2 CANCEL$"), c("To", ";tag=")]);
    p.recv("response 487", &[c("CSeq", "^2 INVITE$"), c("To", ";tag=")]);
    p.raw("<send><![CDATA[\nACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0\n[last_Via:]\nFrom: <sip:101@[remote_ip]>;tag=[pid]P[call_number]\n[last_To:]\nCall-ID: [call_id]\nCSeq: 2 ACK\nMax-Forwards: 70\nContent-Length: 0\n\n]]></send>");

    let mut v = Scenario::new();
    v.recv("request INVITE", &provider_invite_checks("m=audio"));
    v.send_once(&provider_reply("180 Ringing", "", ""));
    let mut cancel = request_basics("CANCEL");
    cancel.push(c("msg", "^CANCEL sip:555@127\\.0\\.0\\.5:[0-9]+ SIP/2\\.0"));
    cancel.push(c("CSeq", "^1 CANCEL$"));
    v.recv("request CANCEL", &cancel);
    v.send_once(&provider_reply("200 OK", "", ""));
    v.raw("<send><![CDATA[\nSIP/2.0 487 Request Terminated\n[last_Via:]\n[last_From:]\n[last_To:];tag=[pid]V[call_number]\n[last_Call-ID:]\nCSeq: 1 INVITE\nContent-Length: 0\n\n]]></send>");
    v.recv("request ACK", &[c("CSeq", "^1 ACK$")]);
    run("cancel", &p, Some(&v), "0555");
}

/// RFC 3665 3.x re-INVITE and RFC 4317 hold: the phone holds with sendonly, then with
/// inactive, then resumes; the box answers each itself (the provider's side hears
/// music on hold meanwhile and is not asked), typed, with the m-line the offer had.
/// A re-INVITE that is not about hold (a session refresh) reaches the provider.
#[test]
fn reinvite_hold_sendonly_inactive_and_resume() {
    let mut p = Scenario::new();
    phone_call_answered(&mut p);
    let mut cseq = 3;
    for (offer, answer) in [
        ("sendonly", "recvonly"),
        ("inactive", "inactive"),
        ("sendrecv", "sendrecv"),
        ("sendrecv", "sendrecv"),
    ] {
        let body = sdp(&AUDIO.replace("a=sendrecv", &format!("a={offer}")));
        p.send(&phone_request("INVITE", cseq, "", &body));
        p.raw("<recv response=\"100\" optional=\"true\"/>");
        p.recv(
            "response 200",
            &[
                c("Content-Type", "^application/sdp$"),
                c("Contact", "^<sip:"),
                c("CSeq", &format!("^{cseq} INVITE$")),
                c("body", &format!("a={answer}")),
            ],
        );
        phone_ack(&mut p, cseq, "");
        cseq += 1;
    }
    phone_bye(&mut p, cseq);

    let mut v = Scenario::new();
    v.recv("request INVITE", &provider_invite_checks("m=audio"));
    v.send(&provider_reply("200 OK", "", &provider_answer()));
    v.raw("<recv request=\"ACK\"/>");
    let mut inv = request_basics("INVITE");
    inv.push(c("Content-Type", "^application/sdp$"));
    inv.push(c("Contact", "^<sip:"));
    inv.push(c("body", "a=sendrecv"));
    v.recv("request INVITE", &inv);
    v.send(&provider_reply("200 OK", "", &provider_answer()));
    v.raw("<recv request=\"ACK\"/>");
    v.bye_answered();
    run("hold", &p, Some(&v), "0555");
}

/// RFC 3665 late offer (RFC 3261 13.2.1): no SDP in the INVITE; the box's 200 is the
/// offer, typed, and the phone's ACK carries the answer.
#[test]
fn late_offer_answered_in_the_ack() {
    let mut p = Scenario::new();
    phone_invite(&mut p, "");
    p.recv(
        "response 180",
        &[c("To", ";tag="), c("Content-Length", "^0$")],
    );
    let mut ok = dialog_response(true);
    ok.push(c("body", "m=audio [1-9][0-9]* RTP/AVP 8 101[^0-9 ]"));
    p.recv("response 200", &ok);
    phone_ack(
        &mut p,
        2,
        &sdp("m=audio [media_port] RTP/AVP 8 101\na=rtpmap:8 PCMA/8000\na=rtpmap:101 telephone-event/8000\na=sendrecv\n"),
    );
    p.raw("<pause milliseconds=\"1500\"/>");
    phone_bye(&mut p, 3);

    let mut v = Scenario::new();
    v.recv(
        "request INVITE",
        &provider_invite_checks("m=audio [0-9]+ RTP/AVP (0 8|8 0) 101[^0-9 ]"),
    );
    v.send_once(&provider_reply("180 Ringing", "", ""));
    v.send(&provider_reply("200 OK", "", &provider_answer()));
    v.raw("<recv request=\"ACK\"/>");
    // The ACK's answer was taken: the box does not hang up (it would send BYE both
    // ways for an ACK without a usable answer), so the BYE comes from the phone.
    v.bye_answered();
    run("late offer", &p, Some(&v), "0555");
}

/// RFC 4317 2.1/2.2 and 5: the phone offers more than the provider's interface allows
/// (G.729) and a video stream; the provider is offered only audio it can take, and the
/// phone's answer keeps both m-lines, the video one rejected with port 0.
#[test]
fn rfc4317_codec_subset_and_rejected_video() {
    let offer = sdp(&format!(
        "{}m=video [media_port+2] RTP/AVP 96\na=rtpmap:96 H264/90000\n",
        AUDIO
            .replace("RTP/AVP 0 8 101", "RTP/AVP 18 0 8 101")
            .replace("a=rtpmap:0 ", "a=rtpmap:18 G729/8000\na=rtpmap:0 ")
    ));
    let mut p = Scenario::new();
    phone_invite(&mut p, &offer);
    p.raw("<recv response=\"180\" optional=\"true\"/>");
    let mut ok = dialog_response(true);
    ok.push(c(
        "body",
        "m=audio [1-9][0-9]* RTP/AVP 8 101[^0-9 ].*m=video 0 RTP/AVP 96",
    ));
    p.recv("response 200", &ok);
    phone_ack(&mut p, 2, "");
    phone_bye(&mut p, 3);

    let mut v = Scenario::new();
    let inv = provider_invite_checks("m=audio [0-9]+ RTP/AVP (0 8|8 0) 101[^0-9 ]");
    // One m-line only, and no G.729: an offer with either goes to the failing branch.
    v.recv_actions(
        "request INVITE",
        "",
        &inv,
        "<ereg regexp=\"m=video|G729|RTP/AVP[ 0-9]* 18[^0-9]\" search_in=\"body\" assign_to=\"bad\"/>",
    );
    v.raw("<nop test=\"bad\" next=\"offered_too_much\"/>");
    v.send(&provider_reply("200 OK", "", &provider_answer()));
    v.raw("<recv request=\"ACK\"/>");
    v.raw("<recv request=\"BYE\"/>");
    v.raw(&format!(
        "<send next=\"end\"><![CDATA[\n{}]]></send>",
        provider_reply("200 OK", "", "")
    ));
    // Waiting for a request that never comes fails the scenario.
    v.raw("<label id=\"offered_too_much\"/>\n<recv request=\"NOTHING\" timeout=\"100\"/>\n<label id=\"end\"/>");
    v.vars.push("bad".into());
    run("codec subset", &p, Some(&v), "0555");
}

/// RFC 3665 3.x with a provider that challenges the box (RFC 3261 22.2): the INVITE
/// goes again with credentials and the next CSeq, the 401 and the 200 are each ACKed
/// with the CSeq of the INVITE they answer.
#[test]
fn a_challenging_provider_gets_acks_with_the_right_cseq() {
    let mut p = Scenario::new();
    phone_call_answered(&mut p);
    phone_bye(&mut p, 3);

    let mut v = Scenario::new();
    v.recv("request INVITE", &[c("CSeq", "^1 INVITE$")]);
    v.send_once(&provider_reply(
        "401 Unauthorized",
        "WWW-Authenticate: Digest realm=\"carrier\", nonce=\"n[call_number]x\"\n",
        "",
    ));
    v.recv("request ACK", &[c("CSeq", "^1 ACK$")]);
    v.recv_actions(
        "request INVITE",
        "",
        &[c("CSeq", "^2 INVITE$"), c("Authorization", "^Digest ")],
        "<verifyauth assign_to=\"ok\" username=\"trunkuser\" password=\"Provider-Pass-1\"/>",
    );
    v.vars.push("ok".into());
    v.raw("<nop test=\"ok\" next=\"good\"/>");
    v.raw("<recv request=\"NOTHING\" timeout=\"100\"/>\n<label id=\"good\"/>");
    v.send(&provider_reply("200 OK", "", &provider_answer()));
    v.recv("request ACK", &[c("CSeq", "^2 ACK$")]);
    v.bye_answered();
    run("challenge", &p, Some(&v), "0555");
}
