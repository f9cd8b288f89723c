// WebRTC calls with real audio from Debian's Chromium: JsSIP (bundled with esbuild, run
// on a page of the box) registers over wss://<box>/ws and its fake microphone plays a
// tone (TONE_FILE). It calls CALLEE (a pjsua2 phone that answers by itself and plays its
// own tone), listens to the call through Web Audio and hangs up; then the Rust side
// (e2e webrtc.rs) calls it from a baresip phone and it answers and listens again. Each
// time the browser checks that the media is DTLS-SRTP (its transport's DTLS state and
// SRTP cipher) over ICE with the box, G.711, and that the loudest of the test tones it
// hears is the phone's. The phones' recordings are checked by the Rust side.
// The first call prefers G.711 as the portal's phone does by default (PCMU and PCMA
// first on the page's own audio line); the baresip call and a second call to pjsua2
// prefer Opus (Chromium's own order, and the portal phone's when its user chooses it):
// the browser then sends and receives Opus, which the box turns into G.711 for the
// phones.
import { run, base, bundle, assertWebRtcAudio, fakeMicrophone } from "./harness.mjs";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

const env = (k) => {
  const v = process.env[k];
  assert.ok(v, `${k} is not set`);
  return v;
};
const wsUrl = base.replace(/^https:/, "wss:") + "/ws";

const script = await bundle(
  'import * as JsSIP from "jssip"; window.JsSIP = JsSIP.default ?? JsSIP;',
);

const probe = readFileSync(new URL("./webrtc_probe.js", import.meta.url), "utf8");

const params = {
  wsUrl,
  domain: env("SIP_DOMAIN"),
  user: env("USER_A"),
  password: env("PW_A"),
  callee: env("CALLEE"),
  calleeTone: Number(env("CALLEE_TONE")),
  callerTone: Number(env("CALLER_TONE")),
  tones: env("TONES").split(",").map(Number),
};

await run(
  async (page) => {
    page.on("console", (m) => console.log(`page: ${m.text()}`));
    await page.goto(`${base}/admin`);
    await page.evaluate(script);
    await page.evaluate(probe);
    const r = await page.evaluate(async (p) => {
      const { JsSIP } = window;
      const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
      const within = (ms, what, promise) =>
        Promise.race([
          promise,
          new Promise((_, no) => setTimeout(() => no(new Error(`${what}: nothing in ${ms} ms`)), ms)),
        ]);
      const listen = (pc, ms) => window.webrtcProbe.listen(pc, p.tones, ms);
      const transport = (pc) => window.webrtcProbe.transport(pc);

      const ua = new JsSIP.UA({
        sockets: [new JsSIP.WebSocketInterface(p.wsUrl)],
        uri: `sip:${p.user}@${p.domain}`,
        password: p.password,
        register: false,
        session_timers: false,
        register_expires: 300,
      });
      const incoming = new Promise((yes) =>
        ua.on("newRTCSession", (e) => {
          if (e.originator === "remote") yes(e.session);
        }),
      );
      await within(10000, "connect", new Promise((yes) => { ua.on("connected", yes); ua.start(); }));
      await within(10000, "REGISTER", new Promise((yes, no) => {
        ua.on("registered", yes);
        ua.on("registrationFailed", (e) => no(new Error(`REGISTER failed: ${e.cause}`)));
        ua.register();
      }));
      const options = {
        mediaConstraints: { audio: true, video: false },
        pcConfig: { iceServers: [] },
      };
      const out = {};
      // Opus, or G.711, first on the audio line of the page's own offer or answer
      // (phone.js's "prefer").
      const prefer = (session, opus) =>
        session.on("sdp", (e) => {
          if (e.originator !== "local") return;
          const pt = (e.sdp.match(/a=rtpmap:(\d+) opus\/48000/) || [])[1];
          const first = opus ? [pt] : ["0", "8"];
          e.sdp = e.sdp.replace(/^(m=audio \S+ \S+)((?: \d+)+)(\r?)$/m, (all, head, pts, cr) => {
            const rest = pts.trim().split(" ").filter((x) => !first.includes(x));
            return `${head} ${[...first, ...rest].join(" ")}${cr}`;
          });
        });
      // As the answerer, Chromium sends the offer's first codec (the box's: G.711),
      // so two seconds after a call it answered is up the page offers again with Opus
      // first (phone.js does the same): then Opus goes both ways.
      const preferOpus = (session) => {
        prefer(session, true);
        session.on("confirmed", () => {
          if (session.direction === "incoming") {
            setTimeout(() => { if (session.isEstablished()) session.renegotiate(); }, 2000);
          }
        });
      };

      // The browser calls the pjsua2 phone, which answers.
      const session = ua.call(`sip:${p.callee}@${p.domain}`, options);
      prefer(session, false);
      await within(20000, "call answered", new Promise((yes, no) => {
        session.on("confirmed", yes);
        session.on("failed", (e) => no(new Error(`call failed: ${e.cause} ${e.message && e.message.status_code}`)));
      }));
      await sleep(1000);
      out.outgoing = await listen(session.connection, 3000);
      out.outgoingMedia = await transport(session.connection);
      session.terminate();

      // The baresip phone calls the browser, which answers.
      const call = await within(60000, "incoming call", incoming);
      out.incomingSdp = call._request ? call._request.body || "" : "";
      preferOpus(call);
      call.answer(options);
      await within(20000, "answered call confirmed", new Promise((yes, no) => {
        call.on("confirmed", yes);
        call.on("failed", (e) => no(new Error(`answer failed: ${e.cause}`)));
      }));
      await sleep(3000);
      out.incoming = await listen(call.connection, 3000);
      out.incomingMedia = await transport(call.connection);
      call.terminate();
      await sleep(500);

      // The browser calls the pjsua2 phone again, preferring Opus.
      const again = ua.call(`sip:${p.callee}@${p.domain}`, options);
      preferOpus(again);
      await within(20000, "Opus call answered", new Promise((yes, no) => {
        again.on("confirmed", yes);
        again.on("failed", (e) => no(new Error(`Opus call failed: ${e.cause}`)));
      }));
      await sleep(1000);
      out.opus = await listen(again.connection, 3000);
      out.opusMedia = await transport(again.connection);
      again.terminate();
      await sleep(500);
      await within(10000, "unREGISTER", new Promise((yes) => { ua.on("unregistered", yes); ua.unregister(); }));
      ua.stop();
      return out;
    }, params);
    console.log(JSON.stringify(r, null, 1));

    const g711 = /^audio\/(PCMU|PCMA)$/;
    const opus = /^audio\/opus$/;
    for (const [what, power, media, tone, codec] of [
      ["browser to pjsua2", r.outgoing, r.outgoingMedia, params.calleeTone, g711],
      ["baresip to browser, Opus", r.incoming, r.incomingMedia, params.callerTone, opus],
      ["browser to pjsua2, Opus", r.opus, r.opusMedia, params.calleeTone, opus],
    ]) {
      assertWebRtcAudio(what, power, media, tone, params.tones, codec);
    }
    // The box offers the browser G.711 first and Opus after it (opus/48000/2, FEC).
    const mline = r.incomingSdp.match(/^m=audio \d+ UDP\/TLS\/RTP\/SAVPF ([\d ]+)\r?$/m);
    assert.ok(mline, r.incomingSdp);
    assert.match(mline[1], /^(0|8)\b.* 111$/, r.incomingSdp);
    assert.match(r.incomingSdp, /a=rtpmap:111 opus\/48000\/2/);
    assert.match(r.incomingSdp, /a=fmtp:111 minptime=10;useinbandfec=1/);
  },
  fakeMicrophone(env("TONE_FILE")),
);
