// Put in a page by the WebRTC tests (page.evaluate of this file): what a call's
// RTCPeerConnection carries, as window.webrtcProbe.
window.webrtcProbe = {
  // The power of each of `tones` (Hz) in the call's remote audio over `ms`.
  async listen(pc, tones, ms) {
    const sleep = (t) => new Promise((r) => setTimeout(r, t));
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
    const power = Object.fromEntries(tones.map((t) => [t, 0]));
    for (let i = 0; i < ms / 100; i++) {
      await sleep(100);
      an.getFloatFrequencyData(bins);
      for (const t of tones) {
        const bin = Math.round((t * an.fftSize) / ctx.sampleRate);
        // The strongest of the three bins around the tone (dB to power).
        const db = Math.max(bins[bin - 1], bins[bin], bins[bin + 1]);
        power[t] += Math.pow(10, db / 10);
      }
    }
    await ctx.close();
    return power;
  },
  // How the media goes: DTLS-SRTP over the ICE pair, the codec, packets each way.
  async transport(pc) {
    const out = {};
    const stats = await pc.getStats();
    // The codec each way, by the RTP streams' codec ids.
    const mime = (id) => (stats.get(id) || {}).mimeType;
    stats.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "audio") out.inCodec = mime(s.codecId);
      if (s.type === "outbound-rtp" && s.kind === "audio") out.outCodec = mime(s.codecId);
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
  },
};
