// Chromium on the Logs page (Kerio 28): the logs listed and viewed, the debug class of
// SIP messages switched on, a search, a download, a clear that the security log
// records, a bad setting refused with its reason, and the page on a phone's screen.
// Run by tests/e2e/tests/logs.rs, which checks the downloaded file and the settings.
import assert from "node:assert/strict";
import { artifacts, run, login, fitsAPhone } from "./harness.mjs";

const ADMIN_PW = process.env.ADMIN_PW;
const SAVE_TO = process.env.SAVE_TO;

await run(async (page) => {
  await login(page, "Admin", ADMIN_PW);
  await page.click("nav >> text=Logs");
  await page.getByRole("heading", { name: /^Config:/ }).waitFor();
  assert.match(await page.textContent("#log-lines"), /created the administrator account/);
  for (const n of ["config", "security", "error", "warning", "debug", "kernel"]) {
    assert.equal(await page.locator(`#log-names a:text-is("${n}")`).count(), 1, n);
  }

  // SIP messages on, smaller files.
  await page.check("input[name=class][value=sip]");
  await page.fill("#size_kib", "64");
  await page.click("#log-settings button[type=submit]");
  await page.locator("p.done", { hasText: "Log settings saved." }).waitFor();
  assert.ok(await page.isChecked("input[name=class][value=sip]"));
  assert.equal(await page.inputValue("#size_kib"), "64");

  // A server that is no host name: refused, with the field and the reason; nothing
  // of the form is saved.
  await page.check("#syslog");
  await page.fill("#host", "not a host!");
  await page.click("#log-settings button[type=submit]");
  await page.locator("p.error", { hasText: "must be a host name or an IP address" }).waitFor();
  assert.match(await page.textContent("p.error"), /syslog\.host/);

  // The debug log holds what the exchange did: searched.
  await page.click("#log-names >> text=debug");
  await page.getByRole("heading", { name: /^Debug:/ }).waitFor();
  assert.match(await page.textContent("#log-lines"), /configuration in force/);
  await page.fill("#q", "REVISION=2");
  await page.click("#log-search button[type=submit]");
  await page.waitForURL(/q=REVISION%3D2/);
  const found = await page.textContent("#log-lines");
  assert.match(found, /revision=2/);
  assert.doesNotMatch(found, /revision=1\b/);
  await page.fill("#q", "no line says this");
  await page.click("#log-search button[type=submit]");
  await page.locator("#log-empty", { hasText: "No line holds" }).waitFor();

  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.click("#log-download"),
  ]);
  assert.match(download.suggestedFilename(), /^pbx-debug-\d{4}-\d\d-\d\d\.log$/);
  await download.saveAs(SAVE_TO);
  await page.screenshot({ path: `${artifacts}/logs.png`, fullPage: true });

  // Cleared: empty, and the security log says who did it.
  await page.click("#log-clear button[type=submit]");
  await page.locator("p.done", { hasText: "The debug log is cleared." }).waitFor();
  await page.locator("#log-empty", { hasText: "The log is empty." }).waitFor();
  await page.click("#log-names >> text=security");
  assert.match(await page.textContent("#log-lines"), /Admin: debug log cleared/);
  // The security log cannot be cleared: no button for it.
  assert.equal(await page.locator("#log-clear").count(), 0);

  // The support bundle, from the same page.
  const [bundle] = await Promise.all([
    page.waitForEvent("download"),
    page.click("#support-bundle"),
  ]);
  assert.match(bundle.suggestedFilename(), /^pbx-support-.*\.tar\.gz$/);

  await fitsAPhone(page, "Logs");
});
