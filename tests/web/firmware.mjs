// Chromium on the System page: the time zone and NTP servers (Kerio 22), then the
// firmware update (Kerio 21): a file that is not a bundle is refused
// before anything is installed; a bundle is uploaded, its progress shown, and the page
// says the box restarts. RAUC is played by a script (the image test runs the real one).
// Run by tests/e2e/tests/web.rs.
import assert from "node:assert/strict";
import { artifacts, run, login } from "./harness.mjs";

const ADMIN_PW = process.env.ADMIN_PW;
const JUNK = process.env.JUNK_FILE;
const BUNDLE = process.env.BUNDLE_FILE;

await run(async (page) => {
  await login(page, "Admin", ADMIN_PW);

  await page.click("nav >> text=System");
  await page.getByRole("heading", { name: "System" }).waitFor();

  // Date and time: a zone that does not exist is named; a real one is saved.
  await page.fill("#timezone", "Europe/Atlantis");
  await page.click("#time-form button[type=submit]");
  await page.locator("p.error", { hasText: "unknown time zone" }).waitFor();
  await page.fill("#timezone", "Europe/Prague");
  await page.fill("#ntp", "ntp.example.net, 192.0.2.123");
  await page.click("#time-form button[type=submit]");
  await page.locator("p.done", { hasText: "Time zone Europe/Prague saved." }).waitFor();
  assert.equal(await page.inputValue("#ntp"), "ntp.example.net 192.0.2.123");
  assert.match(await page.locator("#update-state").textContent(), /No update/);

  // Not a bundle: refused by the box, nothing installed.
  await page.setInputFiles("#bundle", JUNK);
  await page.click("#update-form button[type=submit]");
  await page.locator("#update-state[data-state=failed]").waitFor();
  assert.match(await page.locator("#update-state").textContent(), /not a firmware bundle/);

  // A bundle: installed with progress, then the restart.
  await page.setInputFiles("#bundle", BUNDLE);
  await page.click("#update-form button[type=submit]");
  await page.locator("#update-state[data-state=installing]").waitFor();
  await page.locator("#update-state[data-state=rebooting]").waitFor({ timeout: 30000 });
  assert.match(await page.locator("#update-state").textContent(), /restarts/);
  await page.screenshot({ path: `${artifacts}/firmware.png`, fullPage: true });
});
