// Chromium on the Backup page (Kerio 20): a backup of the chosen parts is made and
// downloaded through its link; a file that is not a backup is refused with the box's
// reason and nothing changes; then the downloaded backup is uploaded, the box restarts
// into it, and the page comes back to the login; the backup schedule is saved. Run by tests/e2e/tests/backup.rs,
// which checks the downloaded file and the box afterwards.
import assert from "node:assert/strict";
import { artifacts, run, login, fitsAPhone } from "./harness.mjs";

const ADMIN_PW = process.env.ADMIN_PW;
const JUNK = process.env.JUNK_FILE;
const SAVE_TO = process.env.SAVE_TO;

await run(async (page) => {
  await login(page, "Admin", ADMIN_PW);
  await page.click("nav >> text=Backup");
  await page.getByRole("heading", { name: "Backup and recovery" }).waitFor();
  assert.match(await page.textContent("main"), /No backups on the box yet/);

  // Configuration and voicemail (checked by default), no call recordings.
  assert.ok(await page.isChecked("input[name=part][value=config]"));
  assert.ok(await page.isChecked("input[name=part][value=voicemail]"));
  assert.ok(!(await page.isChecked("input[name=part][value=recordings]")));
  await page.uncheck("input[name=part][value=sounds]");
  await page.click("#backup-form button[type=submit]");
  await page.locator("p.done", { hasText: "made: download it" }).waitFor();
  const row = page.locator("#backups tbody tr");
  assert.equal(await row.count(), 1);
  assert.match(await row.first().textContent(), /config, voicemail/);

  const [download] = await Promise.all([
    page.waitForEvent("download"),
    row.first().locator("a[download]").click(),
  ]);
  assert.match(download.suggestedFilename(), /^backup-\d{4}-\d\d-\d\d-\d{6}\.tar\.gz$/);
  await download.saveAs(SAVE_TO);
  await fitsAPhone(page, "Backup");

  // A change after the backup, which the recovery must take away.
  const csrf = await page.getAttribute("#restore-form", "data-csrf");
  const added = await page.evaluate(async (csrf) => (await fetch("/api/v1/extensions", {
    method: "POST",
    headers: { "X-CSRF-Token": csrf, "Content-Type": "application/json" },
    body: JSON.stringify({ number: "102" }),
  })).status, csrf);
  assert.equal(added, 201);

  // Not a backup: refused, nothing staged.
  await page.setInputFiles("#archive", JUNK);
  await page.click("#restore-form button[type=submit]");
  await page.locator("#restore-state[data-state=failed]").waitFor();
  assert.match(await page.textContent("#restore-state"), /not a backup of this box/);
  await page.screenshot({ path: `${artifacts}/backup.png`, fullPage: true });

  // The backup itself: checked, the box restarts into it, the page follows.
  await page.setInputFiles("#archive", SAVE_TO);
  await page.click("#restore-form button[type=submit]");
  await page.locator("#restore-state[data-state=restarting]").waitFor();
  await page.locator("#restore-state[data-state=done]").waitFor({ timeout: 60000 });
  // Sessions do not survive the restart: the login comes back.
  await page.locator("input[name=password]").waitFor({ timeout: 15000 });
  await login(page, "Admin", ADMIN_PW);
  await page.click("nav >> text=Backup");
  assert.equal(await page.locator("#backups tbody tr").count(), 1);
  assert.match(await page.textContent("#recovery"), /At its last start the box restored the backup made .* UTC on .* by firmware/);

  // The schedule: every Sunday from 04:00, configuration only, seven kept.
  await page.selectOption("#every", "weekly");
  await page.fill("#hour", "4");
  await page.fill("#keep", "7");
  for (const p of ["voicemail", "sounds"]) await page.uncheck(`input[name=scheduled_part][value=${p}]`);
  await page.click("#schedule-form button[type=submit]");
  await page.locator("p.done", { hasText: "Backup schedule saved." }).waitFor();
  assert.equal(await page.inputValue("#every"), "weekly");
  assert.match(await page.textContent("main"), /The box keeps the newest 7/);
});
