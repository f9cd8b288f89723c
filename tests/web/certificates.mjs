// Chromium on the Certificates page: the certificate signed for the box's request is
// listed active with its issuer, a self-signed one is made through the form and set
// active, the dashboard warns about a certificate that runs out soon, and a broken
// import is refused with the reason. Run by tests/e2e/tests/web.rs.
import assert from "node:assert/strict";
import { artifacts, run, login, fitsAPhone } from "./harness.mjs";

const ADMIN_PW = process.env.ADMIN_PW;
const SIGNED = process.env.SIGNED_ID;

await run(async (page) => {
  await login(page, "Admin", ADMIN_PW);
  // The signed certificate is active and runs out within 30 days: the dashboard says so.
  assert.match(await page.locator("ul.warnings").textContent(), /runs out in \d+ days/);

  await page.click("nav >> text=Certificates");
  await page.getByRole("heading", { name: "Certificates" }).waitFor();
  const signed = page.locator(`#certificate-list tr[data-id="${SIGNED}"]`);
  assert.match(await signed.locator("td.state").textContent(), /active/);
  assert.match(await signed.textContent(), /e2e test CA/);
  assert.match(await signed.textContent(), /pbx\.example\.test/);

  // A broken import is refused and nothing is added.
  const rows = await page.locator("#certificate-list tbody tr").count();
  await page.click("summary >> text=Import a certificate");
  await page.fill("#import-certificate textarea[name=certificate]", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
  await page.click("#import-certificate button[type=submit]");
  await page.locator("p.error", { hasText: "cannot be read" }).waitFor();
  assert.equal(await page.locator("#certificate-list tbody tr").count(), rows);

  // A new self-signed certificate, then made active.
  await page.click("summary >> text=New certificate or request");
  await page.selectOption("#new-certificate select[name=kind]", "self_signed");
  await page.fill("#new-certificate input[name=hostname]", "pbx.office.test");
  await page.fill("#new-certificate input[name=names]", "127.0.0.1, localhost");
  await page.fill("#new-certificate input[name=organization]", "Office s.r.o.");
  await page.fill("#new-certificate input[name=country]", "CZ");
  await page.click("#new-certificate button[type=submit]");
  const made = await page.locator("p.done", { hasText: "made" }).textContent();
  const id = made.match(/Certificate (\S+) made/)[1];
  const row = page.locator(`#certificate-list tr[data-id="${id}"]`);
  assert.match(await row.textContent(), /self-signed/);
  await row.locator("button", { hasText: "Set as active" }).click();
  await page.locator("p.done", { hasText: "is active" }).waitFor();
  assert.match(await page.locator(`#certificate-list tr[data-id="${id}"] td.state`).textContent(), /active/);
  assert.doesNotMatch(await page.locator(`#certificate-list tr[data-id="${SIGNED}"] td.state`).textContent(), /active/);
  await page.screenshot({ path: `${artifacts}/certificates.png`, fullPage: true });

  // The active one runs for ten years: no warning any more.
  await page.click("nav >> text=Dashboard");
  await page.getByRole("heading", { name: "Dashboard" }).waitFor();
  assert.match(await page.locator("main").textContent(), /Warnings/);
  assert.doesNotMatch(await page.locator("main").textContent(), /runs out in/);
  await fitsAPhone(page, "Certificates");
});
