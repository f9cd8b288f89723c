// Chromium (Debian's) driven by playwright-core through the admin as a newcomer would:
// first-run account, login, a user, extension 101 in the list and the dial plan, log
// out; then an auditor who sees but cannot change. Run by tests/e2e/tests/web.rs.
import assert from "node:assert/strict";
import { base, artifacts, run, fitsAPhone } from "./harness.mjs";

const ADMIN_PW = "Adm1n-Browser!";
const AUDITOR_PW = "Aud1tor-Browser!";

await run(async (page) => {
  // First run: create the administrator account.
  await page.goto(`${base}/admin`);
  await page.getByRole("heading", { name: "Create the administrator account" }).waitFor();
  assert.equal(await page.inputValue("input[name=username]"), "Admin");
  await page.fill("input[name=password]", "weak");
  await page.fill("input[name=confirm]", "weak");
  await page.click("button[type=submit]");
  await page.locator("p.error").waitFor();
  assert.match(await page.textContent("p.error"), /too weak/);
  await page.fill("input[name=password]", ADMIN_PW);
  await page.fill("input[name=confirm]", ADMIN_PW);
  await page.click("button[type=submit]");

  // Login.
  await page.getByRole("heading", { name: "Administration" }).waitFor();
  await page.fill("input[name=username]", "Admin");
  await page.fill("input[name=password]", ADMIN_PW);
  await page.click("button[type=submit]");
  await page.getByRole("heading", { name: "Dashboard" }).waitFor();

  // An auditor.
  await page.click("nav >> text=Users");
  await page.click("summary:has-text('Add user')");
  await page.fill("form[action='/admin/users'] input[name=username]", "audrey");
  await page.fill("form[action='/admin/users'] input[name=full_name]", "Audrey Auditor");
  await page.fill("form[action='/admin/users'] input[name=password]", AUDITOR_PW);
  await page.fill("form[action='/admin/users'] input[name=confirm]", AUDITOR_PW);
  await page.selectOption("form[action='/admin/users'] select[name=role]", "auditor");
  await page.click("form[action='/admin/users'] button[type=submit]");
  await page.locator("p.done").waitFor();

  // Extension 101: the dialog proposes the number and a hidden strong password.
  await page.click("nav >> text=Extensions");
  await page.click("summary:has-text('Add extension')");
  assert.equal(await page.inputValue("#add-extension input[name=number]"), "101");
  const secret = page.locator("#new-secret");
  assert.equal(await secret.getAttribute("type"), "password");
  assert.ok((await secret.inputValue()).length >= 16);
  await page.click("#add-extension button.reveal");
  assert.equal(await secret.getAttribute("type"), "text");
  await page.fill("#add-extension input[name=first_name]", "Winston");
  await page.fill("#add-extension input[name=last_name]", "Smith");
  await page.click("#add-extension button[type=submit]");
  await page.locator("p.done").waitFor();
  const row = page.locator("#extensions tbody tr", { hasText: "101" });
  await row.waitFor();
  assert.match(await row.textContent(), /Winston Smith/);
  await page.screenshot({ path: `${artifacts}/extensions.png`, fullPage: true });
  // Its page: a voicemail box by default, which forwarding may send callers to.
  await page.click("a[href='/admin/extensions/101']");
  await page.getByRole("heading", { name: "Extension 101" }).waitFor();
  assert.equal(await page.locator("input[name=voicemail]").isChecked(), true);
  assert.match(await page.locator("fieldset legend", { hasText: "Forwarding" }).textContent(), /voicemail/);
  await page.click("nav >> text=Extensions");

  // The dial plan lists it, and exports Kerio's CSV.
  await page.click("nav >> text=Dial plan");
  const dp = page.locator("#dialplan tbody tr", { hasText: "101" });
  await dp.waitFor();
  assert.match(await dp.textContent(), /extension.*Winston Smith/);
  const csv = await page.evaluate(async () => (await fetch("/admin/dialplan.csv")).text());
  assert.match(csv, /^Extension Number,Type ID,Description\r\n101,1,Winston Smith/);
  // The feature codes are numbers of the plan too: the echo test among them.
  const echo = page.locator("#dialplan tbody tr", { hasText: "*43" });
  assert.match(await echo.textContent(), /Echo test/);
  assert.equal(await page.inputValue("input[name=echo_test]"), "*43");
  // The voicemail numbers too.
  assert.match(await page.locator("#dialplan tbody tr", { hasText: "*97" }).textContent(), /Voicemail/);
  assert.equal(await page.inputValue("input[name=voicemail_direct]"), "*98");
  // The mail server voicemail is e-mailed through: a password in clear is refused,
  // STARTTLS with a user is saved and the password is never shown again.
  const smtp = page.locator("form#smtp");
  await smtp.locator("input[name=server]").fill("mail.example.com");
  await smtp.locator("select[name=security]").selectOption("none");
  await smtp.locator("input[name=username]").fill("pbx");
  await smtp.locator("input[name=password]").fill("Mail-Secret-1");
  await smtp.locator("input[name=from]").fill("pbx@example.com");
  await smtp.locator("button[type=submit]").click();
  await page.locator("p.error").waitFor();
  assert.match(await page.locator("p.error").textContent(), /never sent unencrypted/);
  await smtp.locator("input[name=server]").fill("mail.example.com");
  await smtp.locator("select[name=security]").selectOption("starttls");
  await smtp.locator("input[name=username]").fill("pbx");
  await smtp.locator("input[name=password]").fill("Mail-Secret-1");
  await smtp.locator("input[name=from]").fill("pbx@example.com");
  await smtp.locator("button[type=submit]").click();
  await page.getByText("Mail server saved.").waitFor();
  assert.equal(await smtp.locator("input[name=password]").inputValue(), "****");
  assert.equal(await smtp.locator("select[name=security]").inputValue(), "starttls");
  const saved = await page.evaluate(async () => (await fetch("/api/v1/smtp")).json());
  assert.equal(saved.server, "mail.example.com");
  assert.equal(saved.password, "****");

  // On a phone screen nothing runs off the side.
  await fitsAPhone(page, "Extensions");

  // Log out.
  await page.click("form.logout button");
  await page.getByRole("heading", { name: "Administration" }).waitFor();
  assert.equal(await page.locator("input[name=password]").count(), 1);

  // The auditor sees everything but cannot change it.
  await page.fill("input[name=username]", "audrey");
  await page.fill("input[name=password]", AUDITOR_PW);
  await page.click("button[type=submit]");
  await page.getByRole("heading", { name: "Dashboard" }).waitFor();
  await page.click("nav >> text=Extensions");
  await page.locator("#extensions tbody tr", { hasText: "101" }).waitFor();
  assert.equal(await page.locator("summary:has-text('Add extension')").count(), 0);
  await page.click("#extensions >> text=101");
  assert.equal(await page.locator("fieldset[disabled]").count() > 0, true);
  assert.equal(await page.locator("button:has-text('Save')").count(), 0);
  assert.equal(await page.locator("button:has-text('Remove')").count(), 0);
  const status = await page.evaluate(async () => {
    const s = await (await fetch("/api/v1/session")).json();
    const r = await fetch("/api/v1/extensions/101", {
      method: "DELETE", headers: { "X-CSRF-Token": s.csrf_token },
    });
    return r.status;
  });
  assert.equal(status, 403, "auditor DELETE must be refused");
  await page.click("form.logout button");
});
