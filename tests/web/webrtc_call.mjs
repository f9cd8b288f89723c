// WebRTC calls with real audio from Debian's Chromium: JsSIP (bundled with esbuild, run
// on a page of the box) registers over wss://<box>/ws and its fake microphone plays a
// tone (TONE_FILE). It calls CALLEE (a pjsua2 phone that answers by itself and plays its
// own tone), listens to the call through Web Audio and hangs up; then the Rust side
// (e2e webrtc.rs) calls it from a baresip phone and it answers and listens again. Each
// time the browser checks that the media is DTLS-SRTP (its transport's DTLS state and
// SRTP cipher) over ICE with the box, G.711, and that the loudest of the test tones it
// hears is the phone's. The phones' recordings are checked by the Rust side.
import { run, base, bundle } from "./harness.mjs";
import assert from "node:assert/strict";

const env = (k) => {
  const v = process.env[k];
  assert.ok(v, `${k} is not set`);
  return v;
};
const wsUrl = base.replace(/^https:/, "wss:") + "/ws";

const script = await bundle(
  'import * as JsSIP from "jssip"; window.JsSIP = JsSIP.default ?? JsSIP;',
);

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
    const r = await page.evaluate(async (p) => {
      const { JsSIP } = window;
      const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
      const within = (ms, what, promise) =>
        Promise.race([
          promise,
          new Promise((_, no) => setTimeout(() => no(new Error(`${what}: nothing in ${ms} ms`)), ms)),
        ]);
      // What the call's remote audio holds: the power of each test tone over `ms`.
      const listen = async (pc, ms) => {
        const track = pc.getReceivers().map((r) => r.track).find((t) => t && t.kind === "audio");
        const stream = new MediaStream([track]);
        // Chromium feeds a remote stream to Web Audio only while an element plays it.
        const el = new Audio();
        el.muted = true;
        el.srcObject = stream;
        await el.play().catch(() => {});
        const ctx = new AudioContext();
        const an = ctx.createAnalyser();
        an.fftSize = 8192;
        ctx.createMediaStreamSource(stream).connect(an);
        const bins = new Float32Array(an.frequencyBinCount);
        const power = Object.fromEntries(p.tones.map((t) => [t, 0]));
        for (let i = 0; i < ms / 100; i++) {
          await sleep(100);
          an.getFloatFrequencyData(bins);
          for (const t of p.tones) {
            const bin = Math.round((t * an.fftSize) / ctx.sampleRate);
            // The strongest of the three bins around the tone (dB to power).
            const db = Math.max(bins[bin - 1], bins[bin], bins[bin + 1]);
            power[t] += Math.pow(10, db / 10);
          }
        }
        await ctx.close();
        return power;
      };
      // How the media goes: DTLS-SRTP over the ICE pair, and the codec.
      const transport = async (pc) => {
        const out = {};
        (await pc.getStats()).forEach((s) => {
          if (s.type === "transport") {
            out.dtlsState = s.dtlsState;
            out.srtpCipher = s.srtpCipher;
            out.iceState = s.iceState;
          }
          if (s.type === "inbound-rtp" && s.kind === "audio") out.packetsReceived = s.packetsReceived;
          if (s.type === "outbound-rtp" && s.kind === "audio") out.packetsSent = s.packetsSent;
          if (s.type === "codec") (out.codecs ??= []).push(s.mimeType);
        });
        return out;
      };

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

      // The browser calls the pjsua2 phone, which answers.
      const session = ua.call(`sip:${p.callee}@${p.domain}`, options);
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
      call.answer(options);
      await within(20000, "answered call confirmed", new Promise((yes, no) => {
        call.on("confirmed", yes);
        call.on("failed", (e) => no(new Error(`answer failed: ${e.cause}`)));
      }));
      await sleep(1000);
      out.incoming = await listen(call.connection, 3000);
      out.incomingMedia = await transport(call.connection);
      call.terminate();
      await sleep(500);
      await within(10000, "unREGISTER", new Promise((yes) => { ua.on("unregistered", yes); ua.unregister(); }));
      ua.stop();
      return out;
    }, params);
    console.log(JSON.stringify(r, null, 1));

    for (const [what, power, media, tone] of [
      ["browser to pjsua2", r.outgoing, r.outgoingMedia, params.calleeTone],
      ["baresip to browser", r.incoming, r.incomingMedia, params.callerTone],
    ]) {
      // DTLS-SRTP over ICE with the box, G.711, packets both ways.
      assert.equal(media.dtlsState, "connected", `${what}: ${JSON.stringify(media)}`);
      assert.ok(media.srtpCipher, `${what}: no SRTP cipher: ${JSON.stringify(media)}`);
      assert.equal(media.iceState, "connected", `${what}: ${JSON.stringify(media)}`);
      assert.ok(media.packetsReceived > 100, `${what}: ${JSON.stringify(media)}`);
      assert.ok(media.packetsSent > 100, `${what}: ${JSON.stringify(media)}`);
      assert.ok(media.codecs.some((c) => /PCMU|PCMA/.test(c)), `${what}: ${JSON.stringify(media)}`);
      // The phone's tone is the loudest of the test tones, by far.
      const others = params.tones.filter((t) => t !== tone).map((t) => power[t]);
      assert.ok(power[tone] > 10 * Math.max(...others), `${what}: heard ${JSON.stringify(power)}, not ${tone} Hz`);
    }
  },
  [
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    `--use-file-for-fake-audio-capture=${env("TONE_FILE")}`,
    "--autoplay-policy=no-user-gesture-required",
    "--allow-loopback-in-peer-connection",
  ],
);
