// The portal's phone in Debian's Chromium (fake microphone: TONE_FILE): the user logs
// in to the portal, opens Phone and waits until it is registered; calls CALLEE (a
// pjsua2 phone that answers by itself), hears its tone, presses 5 on the keypad, hangs
// up; answers CALLER (baresip, dialled by the Rust side, tests/e2e/tests/portal_phone.rs),
// hears its tone, holds and resumes it, and transfers it blind to TRANSFER_TO; answers
// CALLER again, calls CONSULT first and connects the two (attended transfer); picks up
// a call ringing at CALLER from the switchboard. The switchboard's lamps follow each
// step, and its phonebook (a search over the lamps, Enter) transfers the call talked in
// (the blind transfer). The page has no build step: the box serves JsSIP and the
// phone's script. Last, the page's switches: forward every call (on, then off) and do
// not disturb (on: the lamp says so).
import { run, base, goto, assertWebRtcAudio, fakeMicrophone } from "./harness.mjs";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

const env = (k) => {
  const v = process.env[k];
  assert.ok(v, `${k} is not set`);
  return v;
};
const tones = env("TONES").split(",").map(Number);
const probe = readFileSync(new URL("./webrtc_probe.js", import.meta.url), "utf8");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// What the call being talked in carries, as webrtc_probe.js sees it.
async function hear(page) {
  return page.evaluate(async (tones) => {
    const pc = window.pbxPhone.current.connection;
    return {
      power: await window.webrtcProbe.listen(pc, tones, 3000),
      media: await window.webrtcProbe.transport(pc),
    };
  }, tones);
}

await run(async (page) => {
  page.on("console", (m) => console.log(`page: ${m.text()}`));
  await goto(page, `${base}/`);
  await page.fill("input[name=username]", env("PORTAL_USER"));
  await page.fill("input[name=password]", env("PORTAL_PW"));
  await page.click("button[type=submit]");
  await page.getByRole("heading", { name: "My extensions" }).waitFor();
  // The browser phone's account is not among the user's SIP credentials.
  assert.ok(!(await page.content()).includes("~web"), "MyPhone shows the browser account");
  await page.click('nav a[href="/phone"]');
  await page.getByRole("heading", { name: "Phone", exact: true }).waitFor();
  await page.locator("#phone-state[data-state=registered]").waitFor({ timeout: 20000 }).catch(async (e) => {
    throw new Error(`the phone did not register: "${await page.textContent("#phone-state")}": ${e}`);
  });
  assert.match(await page.textContent("#phone-state"), /Ready: extension 101/);
  // The secret (what the page's script was given) is nowhere in the page.
  const secret = await page.evaluate(async () => {
    const csrf = document.getElementById("phone").getAttribute("data-csrf");
    const r = await fetch("/phone/account", { method: "POST", headers: { "X-CSRF-Token": csrf }, body: "" });
    return (await r.json()).password;
  });
  assert.match(secret, /^[0-9a-f]{64}$/);
  assert.ok(!(await page.content()).includes(secret), "the secret is on the page");
  // On a phone screen the dial pad fits.
  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `the phone page is ${overflow}px wider than a phone screen`);
  await page.screenshot({ path: `${process.env.ARTIFACTS}/portal-phone.png`, fullPage: true });
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.evaluate(probe);
  // The switchboard: every extension's lamp; the user's own cannot be clicked.
  const lamp = (n, state) => page.locator(`#panel-extensions button[data-number="${n}"]` + (state ? `[data-state=${state}]` : ""));
  for (const n of [env("CALLEE"), env("CALLER"), env("TRANSFER_TO")]) await lamp(n, "idle").waitFor();
  await lamp("101", "idle").waitFor();
  assert.ok(await lamp("101").isDisabled(), "the user's own lamp is a button");
  assert.match(await page.textContent("#panel-parked"), /None/);

  // The page calls CALLEE from the dial pad.
  for (const k of env("CALLEE")) await page.click(`#phone-pad button[data-key="${k}"]`);
  assert.equal(await page.inputValue("#phone-number"), env("CALLEE"));
  await page.click("#phone-call");
  await page.locator("#phone[data-call=connected]").waitFor({ timeout: 20000 });
  assert.match(await page.textContent("#phone-peer"), new RegExp(env("CALLEE")));
  // The lamps follow: both ends of the call are busy.
  await lamp(env("CALLEE"), "busy").waitFor();
  await lamp("101", "busy").waitFor();
  await sleep(1000);
  const out = await hear(page);
  console.log("outgoing", JSON.stringify(out));
  assertWebRtcAudio("portal phone to CALLEE", out.power, out.media, Number(env("CALLEE_TONE")), tones);
  // In a call the keypad sends tones (SIP INFO): the Rust side waits for pjsua2's 5.
  await page.click('#phone-pad button[data-key="5"]');
  assert.equal(await page.inputValue("#phone-number"), env("CALLEE"), "a key in a call dialled");
  await sleep(1500);
  await page.click("#phone-hangup");
  await page.locator("#phone-call-panel").waitFor({ state: "hidden" });
  await lamp(env("CALLEE"), "idle").waitFor();

  // CALLER rings the page, which answers.
  await page.locator("#phone-incoming").waitFor({ timeout: 60000 });
  assert.match(await page.textContent("#phone-caller"), new RegExp(env("CALLER")));
  await lamp("101", "ringing").waitFor();
  assert.match(await lamp("101").textContent(), new RegExp(`ringing \\(${env("CALLER")}\\)`));
  await page.click("#phone-answer");
  await page.locator("#phone[data-call=connected]").waitFor({ timeout: 20000 });
  await sleep(1000);
  const inc = await hear(page);
  console.log("incoming", JSON.stringify(inc));
  assertWebRtcAudio("CALLER to portal phone", inc.power, inc.media, Number(env("CALLER_TONE")), tones);
  // Hold and resume: re-INVITEs the box answers; the tone comes back.
  await page.click("#phone-hold");
  await page.locator("#phone-hold[aria-pressed=true]").waitFor();
  await page.click("#phone-hold");
  await page.locator("#phone-hold[aria-pressed=false]").waitFor();
  await sleep(1000);
  const back = await hear(page);
  console.log("resumed", JSON.stringify(back));
  assertWebRtcAudio("CALLER after resume", back.power, back.media, Number(env("CALLER_TONE")), tones);
  // Blind transfer from the switchboard's phonebook: TRANSFER_TO found by its number
  // (the other lamps hidden), Enter: the call leaves the page.
  await page.fill("#panel-search", env("TRANSFER_TO"));
  assert.equal(await page.locator("#panel-extensions button.lamp:visible").count(), 1, "the search left other lamps");
  await page.press("#panel-search", "Enter");
  await page.locator("#phone-call-panel").waitFor({ state: "hidden", timeout: 20000 });
  await page.fill("#panel-search", "");
  assert.equal(await page.locator("#panel-extensions button.lamp:visible").count(), 4);
  await lamp(env("TRANSFER_TO"), "busy").waitFor({ timeout: 20000 });
  await lamp(env("CALLER"), "busy").waitFor();
  await lamp("101", "idle").waitFor();
  assert.match(await page.textContent("#phone-state"), /Ready|Call ended/);
  // CALLER rings again; the page answers, calls CONSULT first (CALLER waits on hold),
  // hears it, and connects the two (attended transfer: REFER with Replaces). From the
  // consultation on, the user has chosen Opus (kept in the browser): the page's calls
  // carry Opus, which the box turns into G.711 for the phones.
  await page.locator("#phone-incoming").waitFor({ timeout: 60000 });
  await page.selectOption("#phone-codec", "opus");
  assert.equal(await page.evaluate(() => localStorage.getItem("pbx-phone-codec")), "opus");
  await page.click("#phone-answer");
  await page.locator("#phone[data-call=connected]").waitFor({ timeout: 20000 });
  await page.fill("#phone-transfer-to", env("CONSULT"));
  await page.click("#phone-consult");
  await page.locator("#phone-waiting").waitFor();
  assert.match(await page.textContent("#phone-held"), new RegExp(env("CALLER")));
  await page.locator("#phone-complete").waitFor({ timeout: 20000 });
  assert.match(await page.textContent("#phone-peer"), new RegExp(env("CONSULT")));
  await sleep(1000);
  const consult = await hear(page);
  console.log("consulted", JSON.stringify(consult));
  const opus = /^audio\/opus$/;
  assertWebRtcAudio("portal phone to CONSULT, Opus", consult.power, consult.media, Number(env("CALLEE_TONE")), tones, opus);
  await page.click("#phone-complete");
  await page.locator("#phone-call-panel").waitFor({ state: "hidden", timeout: 20000 });
  await page.locator("#phone-waiting").waitFor({ state: "hidden", timeout: 20000 });
  // CALLEE calls CALLER, which rings unanswered; a click on its lamp picks the call up
  // here (directed pickup).
  await lamp(env("CALLER"), "ringing").waitFor({ timeout: 60000 });
  assert.match(await lamp(env("CALLER")).textContent(), new RegExp(env("CALLEE")));
  await page.click(`#panel-extensions button[data-number="${env("CALLER")}"]`);
  await page.locator("#phone[data-call=connected]").waitFor({ timeout: 20000 });
  await sleep(1000);
  const picked = await hear(page);
  console.log("picked up", JSON.stringify(picked));
  assertWebRtcAudio("CALLEE's call picked up, Opus", picked.power, picked.media, Number(env("CALLEE_TONE")), tones, opus);
  await lamp(env("CALLER"), "idle").waitFor();
  await page.click("#phone-hangup");
  await page.locator("#phone-call-panel").waitFor({ state: "hidden" });
  await page.screenshot({ path: `${process.env.ARTIFACTS}/portal-phone-panel.png`, fullPage: true });
  // Logging out ends the phone: the page unregisters as it goes.
  await page.evaluate(() => new Promise((yes) => { window.pbxPhone.ua.on("unregistered", yes); window.pbxPhone.ua.unregister(); }));
  // The switches: forward every call to TRANSFER_TO, then off again; do not disturb on.
  // The panel's lamp says so, and so does MyPhone.
  await page.fill("#phone-forward", env("TRANSFER_TO"));
  await page.check("#phone-forward-on");
  await page.locator("#phone-settings-note", { hasText: `forwarded to ${env("TRANSFER_TO")}` }).waitFor();
  await page.uncheck("#phone-forward-on");
  await page.locator("#phone-settings-note", { hasText: "Calls ring here" }).waitFor();
  await page.check("#phone-dnd");
  await page.locator("#phone-settings-note", { hasText: "Do not disturb is on" }).waitFor();
  await lamp("101", "dnd").waitFor();
  assert.match(await lamp("101").textContent(), /do not disturb/);
  await goto(page, `${base}/`);
  assert.ok(await page.isChecked(".my-forwarding input[name=do_not_disturb]"), "MyPhone does not show do not disturb");
  assert.equal(await page.inputValue(".my-forwarding input[name=forward]"), "");
}, fakeMicrophone(env("TONE_FILE")));
