// Chromium on the firewall page of a daemon that puts the rules in force (run from the
// LAN namespace of tests/e2e/tests/firewall.rs): a change that holds a service is on
// trial until confirmed; another is rolled back with the button; the status says how
// many rules nftables holds.
import assert from "node:assert/strict";
import { artifacts, run, login, fitsAPhone } from "./harness.mjs";

const ADMIN_PW = process.env.ADMIN_PW;

await run(async (page) => {
  await login(page, "Admin", ADMIN_PW);
  await page.click("nav >> text=Firewall");
  await page.getByRole("heading", { name: "Firewall" }).waitFor();
  assert.match(await page.locator("#firewall-status").textContent(), /In force: 0 rules/);
  assert.equal(await page.inputValue("#sip_udp"), "");

  await page.selectOption("#sip_udp", "Office");
  await page.selectOption("#web_admin", "Office");
  await page.click("#firewall button[type=submit]");
  await page.locator("p.done", { hasText: "on trial" }).waitFor();
  assert.match(await page.locator("#firewall-trial").textContent(), /confirm within \d+ seconds/);
  await page.screenshot({ path: `${artifacts}/firewall-trial.png`, fullPage: true });
  await page.click("#firewall-confirm");
  await page.locator("p.done", { hasText: "The firewall's rules are confirmed." }).waitFor();
  assert.equal(await page.locator("#firewall-trial").count(), 0);
  assert.equal(await page.inputValue("#sip_udp"), "Office");
  // The enforcer loads the rules a moment after the change.
  for (let i = 0; ; i++) {
    await page.goto(`${process.env.BASE_URL}/admin/firewall`);
    const s = await page.locator("#firewall-status").textContent();
    if (/In force: [1-9]\d* rules/.test(s)) break;
    assert.ok(i < 20, `rules never in force: ${s}`);
    await page.waitForTimeout(250);
  }

  await page.selectOption("#rtp", "Office");
  await page.click("#firewall button[type=submit]");
  await page.locator("p.done", { hasText: "on trial" }).waitFor();
  await page.click("#firewall-rollback");
  await page.locator("p.done", { hasText: "The rules from before are back." }).waitFor();
  assert.equal(await page.inputValue("#rtp"), "");
  assert.equal(await page.inputValue("#sip_udp"), "Office");
  await page.screenshot({ path: `${artifacts}/firewall.png`, fullPage: true });

  await fitsAPhone(page, "Firewall");
});
