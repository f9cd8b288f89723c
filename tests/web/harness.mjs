// Shared by the browser tests: Debian's Chromium through playwright-core, a page that
// trusts the box's self-signed certificate, and a hard time limit.
import { chromium } from "playwright-core";
import { build } from "esbuild";
import assert from "node:assert/strict";

export const base = process.env.BASE_URL;
export const artifacts = process.env.ARTIFACTS || ".";

// Runs `body(page)`; prints "browser test passed" when it returns. `extraArgs` go to
// Chromium as well (a fake microphone, say).
export async function run(body, extraArgs = []) {
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", ...extraArgs],
  });
  const timer = setTimeout(() => { console.error("browser test timed out"); process.exit(2); }, 120000);
  try {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    page.setDefaultTimeout(15000);
    await body(page);
    console.log("browser test passed");
  } finally {
    clearTimeout(timer);
    await browser.close();
  }
}

// On a phone screen, the page reached by the nav link `nav` does not run off the side.
export async function fitsAPhone(page, nav) {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.click(`nav >> text=${nav}`);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `${nav}: page is ${overflow}px wider than a phone screen`);
  await page.setViewportSize({ width: 1280, height: 800 });
}

// Opens `url`. Chromium drops a navigation with net::ERR_NETWORK_CHANGED when the
// addresses of the namespace it runs in change under it (a test's fresh namespace
// settling: IPv6 link-local addresses leaving duplicate detection); as a person would,
// it is loaded again, three times at most. Any other error fails at once.
export async function goto(page, url) {
  for (let tries = 1; ; tries++) {
    try {
      return await page.goto(url);
    } catch (e) {
      if (tries >= 3 || !String(e).includes("ERR_NETWORK_CHANGED")) throw e;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

// Logs in to the web admin as `user` and waits for the dashboard.
export async function login(page, user, password) {
  await goto(page, `${base}/admin`);
  await page.fill("input[name=username]", user);
  await page.fill("input[name=password]", password);
  await page.click("button[type=submit]");
  await page.getByRole("heading", { name: "Dashboard" }).waitFor();
}

// `contents` (imports of the test's node_modules, such as JsSIP) bundled with esbuild
// into one script for a page (pages of the box forbid inline scripts: the test puts it
// in with page.evaluate).
export async function bundle(contents) {
  const out = await build({
    stdin: { contents, resolveDir: process.cwd() },
    bundle: true,
    format: "iife",
    platform: "browser",
    write: false,
    logLevel: "warning",
  });
  return out.outputFiles[0].text;
}

// Chromium's arguments for a call with a fake microphone playing `wav`.
export function fakeMicrophone(wav) {
  return [
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    `--use-file-for-fake-audio-capture=${wav}`,
    "--autoplay-policy=no-user-gesture-required",
    "--allow-loopback-in-peer-connection",
  ];
}

// A WebRTC call's media as webrtc_probe.js saw it: DTLS-SRTP over ICE with the box,
// G.711, packets both ways, and `tone` the loudest of `tones` by far.
export function assertWebRtcAudio(what, power, media, tone, tones, codec = /^audio\/(PCMU|PCMA)$/) {
  const m = JSON.stringify(media);
  assert.equal(media.dtlsState, "connected", `${what}: ${m}`);
  assert.ok(media.srtpCipher, `${what}: no SRTP cipher: ${m}`);
  assert.equal(media.iceState, "connected", `${what}: ${m}`);
  assert.ok(media.packetsReceived > 100, `${what}: ${m}`);
  assert.ok(media.packetsSent > 100, `${what}: ${m}`);
  assert.match(media.inCodec, codec, `${what}: received: ${m}`);
  assert.match(media.outCodec, codec, `${what}: sent: ${m}`);
  const others = tones.filter((t) => t !== tone).map((t) => power[t]);
  assert.ok(power[tone] > 10 * Math.max(...others), `${what}: heard ${JSON.stringify(power)}, not ${tone} Hz`);
}
