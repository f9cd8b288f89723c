// Chromium on the Network page (Kerio 22.1): the interfaces listed; a packet capture
// started with a filter, stopped, downloaded as a pcap and deleted; a bad filter
// refused with tcpdump's reason; the page on a phone's screen. Run by
// tests/e2e/tests/capture.rs, which reads the downloaded file with tcpdump.
import assert from "node:assert/strict";
import { artifacts, run, login, fitsAPhone } from "./harness.mjs";

const ADMIN_PW = process.env.ADMIN_PW;
const SAVE_TO = process.env.SAVE_TO;
const SIP_PORT = process.env.SIP_PORT;

await run(async (page) => {
  await login(page, "Admin", ADMIN_PW);
  await page.click("nav >> text=Network");
  await page.getByRole("heading", { name: "Packet capture" }).waitFor();
  const lo = page.locator("#interfaces tr", { has: page.locator("td:text-is('lo')") });
  assert.equal(await lo.count(), 1);
  assert.match(await lo.textContent(), /127\.0\.0\.1\/8/);
  assert.equal(await page.getAttribute("#capture-state", "data-state"), "idle");

  // A filter tcpdump does not understand: its reason, nothing started.
  await page.selectOption("#interface", "lo");
  await page.fill("#filter", "udp port port");
  await page.click("#capture-form button[type=submit]");
  await page.locator("p.error", { hasText: "tcpdump refused" }).waitFor();

  await page.selectOption("#interface", "lo");
  await page.fill("#filter", `udp port ${SIP_PORT}`);
  await page.fill("#seconds", "120");
  await page.click("#capture-form button[type=submit]");
  await page.locator("p.done", { hasText: "The capture runs" }).waitFor();
  assert.equal(await page.getAttribute("#capture-state", "data-state"), "running");
  await page.screenshot({ path: `${artifacts}/network.png`, fullPage: true });

  await page.click("#capture-stop button[type=submit]");
  await page.locator("p.done", { hasText: "The capture stopped." }).waitFor();
  assert.equal(await page.getAttribute("#capture-state", "data-state"), "done");
  assert.match(await page.textContent("#capture-state"), /stopped by the administrator/);
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.click("#capture-download"),
  ]);
  assert.match(download.suggestedFilename(), /^capture-.*\.pcap$/);
  await download.saveAs(SAVE_TO);

  // The settings (a development machine saves them without putting them in force):
  // a network address is refused with its field; a good one is on trial until confirmed.
  assert.match(await page.textContent("main"), /development machine/);
  await page.fill("#hostname", "pbx-lab");
  await page.fill("#address_eth0", "10.10.10.0");
  await page.click("#network-form button[type=submit]");
  await page.locator("p.error", { hasText: "address" }).waitFor();
  // What was typed is still there.
  assert.equal(await page.inputValue("#hostname"), "pbx-lab");
  assert.equal(await page.inputValue("#address_eth0"), "10.10.10.0");
  await page.fill("#address_eth0", "10.10.10.5");
  await page.fill("#mask_eth0", "255.255.255.0");
  await page.fill("#dns", "10.10.10.53");
  await page.click("#network-form button[type=submit]");
  await page.locator("p.done", { hasText: "Open the web admin at https://10.10.10.5:" }).waitFor();
  await page.locator("#network-trial", { hasText: "on trial" }).waitFor();
  // The settings are put in force a moment after the answer; confirming comes after.
  await page.waitForTimeout(1500);
  await page.click("#network-confirm button[type=submit]");
  await page.locator("p.done", { hasText: "The network settings are confirmed." }).waitFor();
  assert.equal(await page.locator("#network-trial").count(), 0);
  assert.equal(await page.inputValue("#address_eth0"), "10.10.10.5");
  assert.equal(await page.inputValue("#hostname"), "pbx-lab");

  await fitsAPhone(page, "Network");
  await page.click("#capture-delete button[type=submit]");
  await page.locator("p.done", { hasText: "The capture was deleted." }).waitFor();
  assert.equal(await page.getAttribute("#capture-state", "data-state"), "idle");
  assert.equal(await page.locator("#capture-download").count(), 0);
});
