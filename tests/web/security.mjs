// Chromium on the SIP protection page: a source banned for guessing passwords is
// listed with its reason and lifted; the office's IP address group is made the one
// never banned. Run by tests/e2e/tests/web.rs.
import assert from "node:assert/strict";
import { artifacts, run, login, fitsAPhone } from "./harness.mjs";

const ADMIN_PW = process.env.ADMIN_PW;

await run(async (page) => {
  await login(page, "Admin", ADMIN_PW);
  await page.click("nav >> text=SIP protection");
  await page.getByRole("heading", { name: "SIP protection" }).waitFor();

  const row = page.locator("#bans tbody tr", { hasText: "127.0.0.9" });
  const text = await row.textContent();
  assert.match(text, /address/);
  assert.match(text, /wrong passwords or unknown users/);
  assert.match(await page.locator("#sip-events").textContent(), /SIP ban for 10 minutes/);
  await page.screenshot({ path: `${artifacts}/security.png`, fullPage: true });

  await row.locator("button", { hasText: "Lift" }).click();
  await page.locator("p.done", { hasText: "The ban on 127.0.0.9 is lifted." }).waitFor();
  assert.match(await page.locator("#bans").textContent(), /No source is banned/);

  await page.selectOption("#allow select[name=allow_group]", "office");
  await page.click("#allow button[type=submit]");
  await page.locator("p.done", { hasText: "Saved." }).waitFor();
  assert.equal(await page.inputValue("#allow select[name=allow_group]"), "office");

  await fitsAPhone(page, "SIP protection");
});
