// Chromium on the Backup page: the remote target (an HTTPS WebDAV folder, nginx started
// by tests/e2e/tests/backup_remote.rs) is set in the schedule form, its password is not
// shown again, a backup is made and sent with the row's button, and the page says where
// it went.
import assert from "node:assert/strict";
import { artifacts, run, login, fitsAPhone } from "./harness.mjs";

const { ADMIN_PW, DAV_URL, DAV_USER, DAV_PW } = process.env;

await run(async (page) => {
  await login(page, "Admin", ADMIN_PW);
  await page.click("nav >> text=Backup");
  await page.getByRole("heading", { name: "Backup and recovery" }).waitFor();
  // No target yet: no send button.
  await page.click("#backup-form button[type=submit]");
  await page.locator("p.done", { hasText: "made: download it" }).waitFor();
  assert.equal(await page.locator("#backups button", { hasText: "Send to the server" }).count(), 0);

  // A plain-HTTP folder is refused with the reason.
  await page.check("input[name=remote_enabled]");
  await page.fill("#remote_url", DAV_URL.replace("https://", "http://"));
  await page.click("#schedule-form button[type=submit]");
  await page.locator("p.error", { hasText: "must be https://" }).waitFor();

  await page.check("input[name=remote_enabled]");
  await page.fill("#remote_url", DAV_URL);
  await page.fill("#remote_username", DAV_USER);
  await page.fill("#remote_password", DAV_PW);
  await page.click("#schedule-form button[type=submit]");
  await page.locator("p.done", { hasText: "Backup schedule saved." }).waitFor();
  assert.equal(await page.inputValue("#remote_url"), DAV_URL);
  assert.equal(await page.inputValue("#remote_password"), "****");
  assert.ok(!(await page.content()).includes(DAV_PW), "the password is never sent back");

  await page.locator("#backups button", { hasText: "Send to the server" }).first().click();
  await page.locator("p.done", { hasText: /^Backup backup-\S+ sent to https:\/\// }).waitFor();
  assert.match(await page.textContent("#remote-state"), /Last send: backup-.*: sent to https:\/\//);
  await page.screenshot({ path: `${artifacts}/backup-remote.png`, fullPage: true });
  await fitsAPhone(page, "Backup");
});
