// The call history in Chromium: the administrator's list with its filters, the CSV
// export and Clear; a user's own calls in the portal. The calls were made beforehand by
// tests/e2e/tests/web.rs with real phones: 101 called 102 (answered) and 103 (nobody
// registered). Run by tests/e2e/tests/web.rs.
import assert from "node:assert/strict";
import fs from "node:fs";
import { base, artifacts, run, login, fitsAPhone } from "./harness.mjs";

const ADMIN_PW = process.env.ADMIN_PW;
const USER_PW = process.env.USER_PW;

await run(async (page) => {
  // The user's portal lists the user's own calls.
  await page.goto(`${base}/`);
  await page.fill("input[name=username]", "winston");
  await page.fill("input[name=password]", USER_PW);
  await page.click("button[type=submit]");
  await page.getByRole("heading", { name: "My calls" }).waitFor();
  const mine = page.locator("#history tbody tr");
  assert.equal(await mine.count(), 2, "both of 101's calls in the portal");
  assert.match(await mine.nth(0).textContent(), /103.*unavailable/s);
  assert.match(await mine.nth(1).textContent(), /102.*answered/s);

  // The user's own forwarding (Kerio MyPhone): busy calls to 103, 12 s before "no
  // answer", call waiting off; a wrong value is refused with its reason.
  const fw = page.locator("form.my-forwarding").first();
  await fw.locator("input[name=fw_busy_any]").fill("103");
  await fw.locator("input[name=no_answer_seconds]").fill("12");
  await fw.locator("input[name=call_waiting]").uncheck();
  await fw.locator("button[type=submit]").click();
  await page.getByText("Forwarding of extension 101 saved.").waitFor();
  assert.equal(await fw.locator("input[name=fw_busy_any]").inputValue(), "103");
  assert.equal(await fw.locator("input[name=no_answer_seconds]").inputValue(), "12");
  assert.equal(await fw.locator("input[name=call_waiting]").isChecked(), false);
  await fw.locator("input[name=fw_no_answer_external]").fill("101");
  await fw.locator("button[type=submit]").click();
  await page.locator("p.error").waitFor();
  assert.match(await page.locator("p.error").textContent(), /forwarding/);
  // Callers who find nobody go to the user's own voicemail box.
  await fw.locator("input[name=fw_no_answer_external]").fill("");
  await fw.locator("input[name=fw_no_answer_any]").fill("voicemail");
  await fw.locator("button[type=submit]").click();
  await page.getByText("Forwarding of extension 101 saved.").waitFor();
  assert.equal(await fw.locator("input[name=fw_no_answer_any]").inputValue(), "voicemail");
  await page.screenshot({ path: `${artifacts}/portal-forwarding.png`, fullPage: true });

  // The message in 101's box: listened to in the page (the browser fetches the WAV),
  // then deleted.
  const vm = page.locator("#voicemail tbody tr");
  assert.equal(await vm.count(), 1);
  assert.match(await vm.first().textContent(), /2023-11-14 22:13:20.*101.*103.*2 s/s);
  const src = await vm.first().locator("audio").getAttribute("src");
  const wav = await page.evaluate(async (u) => {
    const r = await fetch(u);
    return [r.status, r.headers.get("content-type"), (await r.arrayBuffer()).byteLength];
  }, src);
  assert.deepEqual(wav, [200, "audio/wav", 44 + 2 * 8000 * 2]);
  await vm.first().locator("button", { hasText: "Delete" }).click();
  await page.getByText("Message deleted.").waitFor();
  assert.equal(await page.locator("#voicemail").count(), 0);
  await page.getByText("No messages.").waitFor();

  // A greeting for "unavailable" uploaded from the page (one second of 700 Hz at
  // 16 kHz): the page comes back with it ready to be listened to, stored at 8 kHz.
  const rate = 16000;
  const tone = Buffer.alloc(44 + rate * 2);
  tone.write("RIFF", 0); tone.writeUInt32LE(36 + rate * 2, 4); tone.write("WAVEfmt ", 8);
  tone.writeUInt32LE(16, 16); tone.writeUInt16LE(1, 20); tone.writeUInt16LE(1, 22);
  tone.writeUInt32LE(rate, 24); tone.writeUInt32LE(rate * 2, 28); tone.writeUInt16LE(2, 32);
  tone.writeUInt16LE(16, 34); tone.write("data", 36); tone.writeUInt32LE(rate * 2, 40);
  for (let i = 0; i < rate; i++) tone.writeInt16LE(Math.round(8000 * Math.sin(2 * Math.PI * 700 * i / rate)), 44 + 2 * i);
  const greetings = page.locator("form.greetings").first();
  await greetings.locator("input[name=unavailable]").setInputFiles({ name: "hello.wav", mimeType: "audio/wav", buffer: tone });
  await greetings.locator("button[type=submit]").click();
  const g = page.locator("form.greetings audio[src$='/greetings/unavailable']");
  await g.waitFor();
  const stored = await page.evaluate(async (u) => {
    const r = await fetch(u);
    return [r.status, (await r.arrayBuffer()).byteLength];
  }, await g.getAttribute("src"));
  assert.deepEqual(stored, [200, 44 + 8000 * 2]);
  // Voicemail by e-mail: the user's address and choices are saved; asking for it with
  // no address is refused with the reason.
  const mail = page.locator("form.my-voicemail-mail").first();
  await page.getByText("has not set a mail server yet").first().waitFor();
  await mail.locator("input[name=email]").fill("");
  await mail.locator("input[name=voicemail_email]").check();
  await mail.locator("button[type=submit]").click();
  await page.locator("p.error").waitFor();
  assert.match(await page.locator("p.error").textContent(), /e-mail address/);
  await mail.locator("input[name=email]").fill("winston@example.com");
  await mail.locator("input[name=voicemail_email]").check();
  await mail.locator("input[name=voicemail_delete_sent]").check();
  await mail.locator("button[type=submit]").click();
  await page.getByText("Voicemail e-mail of extension 101 saved.").waitFor();
  assert.equal(await mail.locator("input[name=email]").inputValue(), "winston@example.com");
  assert.equal(await mail.locator("input[name=voicemail_email]").isChecked(), true);
  assert.equal(await mail.locator("input[name=voicemail_attach]").isChecked(), true);
  assert.equal(await mail.locator("input[name=voicemail_delete_sent]").isChecked(), true);
  await page.screenshot({ path: `${artifacts}/portal-voicemail.png`, fullPage: true });
  await page.click("form.logout button");

  await login(page, "Admin", ADMIN_PW);
  await page.click("nav >> text=Call history");
  await page.getByRole("heading", { name: "Call history" }).waitFor();
  const rows = page.locator("#history tbody tr");
  assert.equal(await rows.count(), 2);
  assert.equal(await page.locator("#history tbody tr[data-outcome=answered]").count(), 1);
  await page.screenshot({ path: `${artifacts}/history.png`, fullPage: true });

  // Filters: by outcome, by number.
  await page.selectOption("select[name=outcome]", "answered");
  await page.click("form.filters button[type=submit]");
  await page.waitForURL(/outcome=answered/);
  assert.equal(await rows.count(), 1);
  assert.match(await rows.first().textContent(), /101.*102.*102.*answered/s);
  await page.selectOption("select[name=outcome]", "");
  await page.fill("input[name=number]", "103");
  await page.click("form.filters button[type=submit]");
  await page.waitForURL(/number=103/);
  assert.equal(await rows.count(), 1);
  // A wrong date is named.
  await page.fill("input[name=since]", "yesterday");
  await page.click("form.filters button[type=submit]");
  await page.locator("p.error").waitFor();
  assert.match(await page.textContent("p.error"), /since/);

  // The CSV export of everything.
  await page.goto(`${base}/admin/history`);
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.click("text=Export to CSV"),
  ]);
  const file = `${artifacts}/call-history.csv`;
  await download.saveAs(file);
  const csv = fs.readFileSync(file, "utf8").trim().split(/\r\n/);
  assert.equal(csv.length, 3, csv.join("\n"));
  assert.match(csv[0], /^Start \(UTC\),Answered \(UTC\),End \(UTC\),Caller/);
  assert.ok(csv.some((l) => /,101,.*,102,102,answered,200,/.test(l)), csv.join("\n"));

  await fitsAPhone(page, "Call history");

  // Clear.
  await page.click("text=Clear history");
  await page.locator("p.done").waitFor();
  assert.equal(await rows.count(), 0);
});
