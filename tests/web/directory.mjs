// Chromium on the Users page's directory section (Kerio 11): the settings saved (the
// bind password never shown back), a synchronisation from the test's OpenLDAP with its
// counts, and the directory users in the table. Run by tests/e2e/tests/directory.rs.
import assert from "node:assert/strict";
import { artifacts, run, login, fitsAPhone } from "./harness.mjs";

const ADMIN_PW = process.env.ADMIN_PW;

await run(async (page) => {
  await login(page, "Admin", ADMIN_PW);
  await page.click("nav >> text=Users");
  await page.getByRole("heading", { name: "Directory users (LDAP, Active Directory)" }).waitFor();
  await page.check("#directory-form input[name=enabled]");
  await page.fill("#dir-url", process.env.LDAP_URL);
  await page.fill("#dir-bind", process.env.ROOT_DN);
  await page.fill("#dir-pw", process.env.ROOT_PW);
  await page.fill("#dir-base", "ou=people,dc=example,dc=org");
  await page.click("#directory-form button[type=submit]");
  await page.locator("p.done", { hasText: "Directory settings saved." }).waitFor();
  assert.equal(await page.inputValue("#dir-pw"), "****");
  assert.equal(await page.inputValue("#dir-url"), process.env.LDAP_URL);

  await page.click("#directory-sync button[type=submit]");
  await page.locator("p.done", { hasText: "Directory synchronised: 2 created" }).waitFor();
  assert.match(await page.textContent("#directory-last"), /2 created/);
  assert.equal(await page.locator("table a:text-is('alice')").count(), 1);
  await page.screenshot({ path: `${artifacts}/directory.png`, fullPage: true });
  await fitsAPhone(page, "Users");
});
