// SIP over secure WebSocket (RFC 7118) from a real browser: JsSIP and SIP.js, bundled
// with esbuild and run in Debian's Chromium on a page of the box, register two
// extensions at wss://<box>/ws; a third, whose account does not allow WSS, is refused
// with the reason. The Rust test (e2e websocket.rs) then calls both from a pjsua2
// phone: each browser phone checks the INVITE it got header by header and declines it
// busy (the INVITEs offer WebRTC: tests/web/webrtc_call.mjs makes real calls). Both
// unregister at the end.
import { run, base, bundle } from "./harness.mjs";
import assert from "node:assert/strict";

const env = (k) => {
  const v = process.env[k];
  assert.ok(v, `${k} is not set`);
  return v;
};
const domain = env("SIP_DOMAIN");
const wsUrl = base.replace(/^https:/, "wss:") + "/ws";

const script = await bundle(
  'import * as JsSIP from "jssip"; import * as SIP from "sip.js";' +
    "window.JsSIP = JsSIP.default ?? JsSIP; window.SIP = SIP;",
);

await run(
  async (page) => {
    page.on("console", (m) => console.log(`page: ${m.text()}`));
    // On a page of the box (whose policy forbids inline scripts: the bundle goes in
    // through the debugger, and the WebSocket is the page's own origin, 'self').
    await page.goto(`${base}/admin`);
    await page.evaluate(script);
    const params = {
      wsUrl,
      domain,
      a: [env("USER_A"), env("PW_A")],
      b: [env("USER_B"), env("PW_B")],
      c: [env("USER_C"), env("PW_C")],
      callers: [env("CALLER_A"), env("CALLER_B")],
    };
    const r = await page.evaluate(async (p) => {
      const { JsSIP, SIP } = window;
      const within = (ms, what, promise) =>
        Promise.race([
          promise,
          new Promise((_, no) => setTimeout(() => no(new Error(`${what}: no answer in ${ms} ms`)), ms)),
        ]);
      const headers = (get) => ({
        via: get("Via"),
        contact: get("Contact"),
        to: get("To"),
        from: get("From"),
        contentType: get("Content-Type"),
        recordRoute: get("Record-Route") || "",
      });
      const out = {};

      // JsSIP: registers A, which takes WSS.
      const jssip = (user, pw) =>
        new JsSIP.UA({
          sockets: [new JsSIP.WebSocketInterface(p.wsUrl)],
          uri: `sip:${user}@${p.domain}`,
          password: pw,
          register: false,
          session_timers: false,
          register_expires: 300,
        });
      const ua = jssip(...p.a);
      const invited = new Promise((yes) =>
        ua.on("newRTCSession", (e) => {
          if (e.originator !== "remote") return;
          const req = e.request;
          yes({ ...headers((n) => req.getHeader(n)), ruri: String(req.ruri), sdp: req.body || "" });
          e.session.terminate({ status_code: 486, reason_phrase: "Busy Here" });
        }),
      );
      const started = (u) =>
        within(10000, "JsSIP connect", new Promise((yes) => { u.on("connected", yes); u.start(); }));
      await started(ua);
      out.jssipRegistered = await within(
        10000,
        "JsSIP REGISTER",
        new Promise((yes) => {
          ua.on("registered", (e) => yes({ status: e.response.status_code, contact: e.response.getHeader("Contact") }));
          ua.on("registrationFailed", (e) => yes({ failed: e.cause, status: e.response && e.response.status_code }));
          ua.register();
        }),
      );

      // JsSIP: C's account keeps the default transports (no WSS): refused, with why.
      const refused = jssip(...p.c);
      await started(refused);
      out.refused = await within(
        10000,
        "refused REGISTER",
        new Promise((yes) => {
          refused.on("registered", () => yes({ registered: true }));
          refused.on("registrationFailed", (e) =>
            yes({ status: e.response && e.response.status_code, reason: e.response && e.response.reason_phrase }),
          );
          refused.register();
        }),
      );
      refused.stop();

      // SIP.js: registers B.
      let sipjsInvite;
      const sipjsInvited = new Promise((yes) => (sipjsInvite = yes));
      const sipjs = new SIP.UserAgent({
        uri: SIP.UserAgent.makeURI(`sip:${p.b[0]}@${p.domain}`),
        transportOptions: { server: p.wsUrl },
        authorizationUsername: p.b[0],
        authorizationPassword: p.b[1],
        logLevel: "warn",
        delegate: {
          onInvite: (inv) => {
            const req = inv.request;
            sipjsInvite({ ...headers((n) => req.getHeader(n)), ruri: String(req.ruri), sdp: req.body || "" });
            inv.reject({ statusCode: 486 });
          },
        },
      });
      await within(10000, "SIP.js connect", sipjs.start());
      const registerer = new SIP.Registerer(sipjs, { expires: 300 });
      out.sipjsRegistered = await within(
        10000,
        "SIP.js REGISTER",
        new Promise((yes) => {
          registerer.stateChange.addListener((s) => {
            if (s === SIP.RegistererState.Registered) yes(true);
          });
          registerer.register({ requestDelegate: { onReject: (r) => yes({ rejected: r.message.statusCode }) } });
        }),
      );

      // The Rust side sees both registrations and calls A, then B.
      out.jssipInvite = await within(60000, "INVITE to JsSIP", invited);
      out.sipjsInvite = await within(60000, "INVITE to SIP.js", sipjsInvited);

      // Both leave.
      out.jssipUnregistered = await within(
        10000,
        "JsSIP unREGISTER",
        new Promise((yes) => {
          ua.on("unregistered", () => yes(true));
          ua.unregister();
        }),
      );
      ua.stop();
      await within(10000, "SIP.js unREGISTER", registerer.unregister());
      await sipjs.stop();
      return out;
    }, params);
    console.log(JSON.stringify(r, null, 1));

    // Registered through the box's WebSocket, with the contact the box keeps.
    assert.equal(r.jssipRegistered.status, 200, JSON.stringify(r.jssipRegistered));
    assert.match(r.jssipRegistered.contact, /transport=ws/i);
    assert.equal(r.sipjsRegistered, true, JSON.stringify(r.sipjsRegistered));
    assert.equal(r.refused.status, 403, JSON.stringify(r.refused));
    assert.match(r.refused.reason, /transport not allowed/);

    // The box's INVITEs over WSS (RFC 7118 5, 7): its Via names WSS and its web
    // address, its Contact the ws transport, the request goes to the registered contact.
    const web = new URL(base).host;
    for (const [who, inv, user, caller] of [
      ["JsSIP", r.jssipInvite, params.a[0], params.callers[0]],
      ["SIP.js", r.sipjsInvite, params.b[0], params.callers[1]],
    ]) {
      assert.match(inv.via, new RegExp(`^SIP/2\\.0/WSS ${web.replace(/\./g, "\\.")};branch=z9hG4bK`), `${who} Via: ${inv.via}`);
      assert.match(inv.contact, new RegExp(`^<sip:[^@>]+@${web.replace(/\./g, "\\.")};transport=ws>`), `${who} Contact: ${inv.contact}`);
      assert.match(inv.ruri, /\.invalid/, `${who} R-URI ${inv.ruri}: the registered contact`);
      assert.match(inv.ruri, /transport=ws/i, `${who} R-URI ${inv.ruri}`);
      assert.match(inv.to, new RegExp(`sip:${user}@`), `${who} To: ${inv.to}`);
      assert.match(inv.from, new RegExp(`sip:${caller}@`), `${who} From: ${inv.from}`);
      assert.equal(inv.contentType, "application/sdp", `${who} Content-Type`);
      // A browser is offered WebRTC: ICE-lite, DTLS-SRTP, its one host candidate.
      assert.match(inv.sdp, /^m=audio \d+ UDP\/TLS\/RTP\/SAVPF /m, `${who} SDP`);
      for (const a of [/^a=ice-lite$/m, /^a=ice-ufrag:\S{4,}$/m, /^a=ice-pwd:\S{22,}$/m,
        /^a=fingerprint:sha-256 ([0-9A-F]{2}:){31}[0-9A-F]{2}$/m, /^a=setup:actpass$/m,
        /^a=rtcp-mux$/m, /^a=candidate:1 1 udp \d+ 127\.0\.0\.1 \d+ typ host$/m]) {
        assert.match(inv.sdp, a, `${who} SDP`);
      }
      assert.doesNotMatch(inv.sdp, /a=crypto|telephone-event/, `${who} SDP`);
      assert.equal(inv.recordRoute, "", `${who} Record-Route`);
    }

    assert.equal(r.jssipUnregistered, true);
  },
  ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"],
);
