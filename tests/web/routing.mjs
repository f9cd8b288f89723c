// Chromium through the Call routing pages as a technician would: a provider, a link to
// a second office whose range holds a local extension (checked before saving, Remote
// chosen), an outbound route, an ISDN line on a virtual span, a country's emergency
// numbers. Run by
// tests/e2e/tests/web.rs, which checks the stored configuration afterwards.
import assert from "node:assert/strict";
import { artifacts, base, run, fitsAPhone, login } from "./harness.mjs";

const ADMIN_PW = process.env.ADMIN_PW;

await run(async (page) => {

  await login(page, "Admin", ADMIN_PW);

  // A provider (Kerio 6.1).
  await page.click("nav >> text=Call routing");
  await page.getByRole("heading", { name: "Call routing" }).waitFor();
  await page.click("text=Add SIP interface");
  await page.fill("#interface input[name=name]", "voipex");
  await page.fill("#interface input[name=numbers]", "800225XXX");
  await page.fill("#interface input[name=host]", "127.0.0.4");
  await page.fill("#interface input[name=keepalive]", "0");
  await page.fill("#interface input[name=did_number] >> nth=0", "800225111");
  await page.fill("#interface input[name=did_target] >> nth=0", "101");
  await page.fill("#interface input[name=calling_prefix]", "9");
  await page.click("#interface button[type=submit]");
  await page.locator("p.done", { hasText: "Interface voipex added." }).waitFor();
  await page.getByRole("heading", { name: "SIP interface voipex" }).waitFor();
  // Encrypted audio (SRTP) needs TLS: refused over UDP with the reason, kept with TLS.
  await page.check("#interface input[name=srtp]");
  await page.click("#interface button[type=submit]");
  await page.locator("p.error", { hasText: "set the transport to tls" }).waitFor();
  await page.selectOption("#interface select[name=transport]", "tls");
  await page.check("#interface input[name=srtp]");
  await page.click("#interface button[type=submit]");
  await page.locator("p.done", { hasText: "Saved." }).waitFor();
  assert.ok(await page.isChecked("#interface input[name=srtp]"));
  assert.equal(await page.inputValue("#interface select[name=transport]"), "tls");

  // A link to the branch office; 101 falls inside its range.
  await page.click("text=← Call routing");
  await page.click("text=Add link");
  await page.fill("#link input[name=name]", "branch");
  await page.fill("#link input[name=range_min]", "100");
  await page.fill("#link input[name=range_max]", "150");
  await page.fill("#link input[name=host]", "127.0.0.3");
  await page.fill("#link input[name=keepalive]", "0");
  await page.click("#link button[value=check]");
  await page.locator("p.done", { hasText: "Not saved yet" }).waitFor();
  const conflict = page.locator("#link-conflicts tbody tr", { hasText: "101" });
  await conflict.waitFor();
  assert.match(await conflict.textContent(), /extension/);
  await conflict.locator("select").selectOption("remote");
  await page.click("#link button[value=save]");
  await page.locator("p.done", { hasText: "Link branch added." }).waitFor();

  // The overview lists both, and the conflict with its winner.
  await page.click("text=← Call routing");
  await page.locator("#interfaces tbody tr", { hasText: "voipex" }).waitFor();
  assert.match(await page.locator("#links tbody tr", { hasText: "branch" }).textContent(), /100–150/);
  assert.match(await page.locator("#conflicts tbody tr", { hasText: "101" }).textContent(), /remote/);

  // An outbound route: 9 and the number, out through voipex with the 9 stripped.
  await page.fill("#outbound input[name=out_prefix] >> nth=0", "9");
  await page.fill("#outbound input[name=out_interfaces] >> nth=0", "voipex");
  await page.fill("#outbound input[name=out_called_strip] >> nth=0", "1");
  await page.click("#outbound button[type=submit]");
  await page.locator("p.done", { hasText: "Outbound routes saved." }).waitFor();
  assert.equal(await page.inputValue("#outbound input[name=out_prefix] >> nth=0"), "9");

  // An ISDN line to the provider (Kerio 7.3) on a virtual span: a wrong path is
  // refused with the field named and what was typed kept; then the span is listed
  // with its line and state.
  await page.click("text=Add ISDN interface");
  await page.getByRole("heading", { name: "New ISDN interface" }).waitFor();
  await page.fill("#isdn input[name=name]", "telco");
  await page.selectOption("#isdn select[name=driver]", "virtual");
  await page.fill("#isdn input[name=path]", "span-in-no-folder");
  await page.fill("#isdn input[name=numbers]", "55501XX");
  await page.fill("#isdn input[name=called_digits]", "4");
  await page.fill("#isdn input[name=called_strip]", "2");
  await page.fill("#isdn input[name=called_prefix]", "2");
  await page.fill("#isdn input[name=calling_prefix]", "9");
  await page.click("#isdn button[type=submit]");
  await page.locator("p.error", { hasText: "absolute socket path" }).waitFor();
  assert.equal(await page.inputValue("#isdn input[name=numbers]"), "55501XX");
  await page.fill("#isdn input[name=path]", process.env.SPAN_PATH);
  await page.click("#isdn button[type=submit]");
  await page.locator("p.done", { hasText: "ISDN interface telco added." }).waitFor();
  await page.click("text=← Call routing");
  const isdn = page.locator("#isdn tbody tr", { hasText: "telco" });
  assert.match(await isdn.textContent(), /virtual span .*: E1, EuroISDN, user side/);
  assert.match(await isdn.locator("td.state").textContent(), /link down/);
  await page.screenshot({ path: `${artifacts}/routing-overview.png`, fullPage: true });

  // Emergency numbers of a country, dialled directly through route 9.
  await page.click("text=Edit emergency numbers");
  await page.getByRole("heading", { name: "Emergency numbers" }).waitFor();
  await page.selectOption("#preset select[name=country]", "CZ");
  await page.click("#preset button[type=submit]");
  await page.locator("p.done", { hasText: "replaced the list" }).waitFor();
  assert.equal(await page.inputValue("#emergency input[name=em_number] >> nth=0"), "112");
  await page.check("#emergency input[name=direct_dialing]");
  await page.fill("#emergency input[name=routes]", "9");
  await page.click("#emergency button[type=submit]");
  await page.locator("p.done", { hasText: "Emergency numbers saved." }).waitFor();
  await page.screenshot({ path: `${artifacts}/routing.png`, fullPage: true });

  // The auto attendant: office hours as a time range, a script at 200 whose condition
  // picks the day menu (key 1 rings 101) or the night menu. A wrong item and a wrong
  // action are refused with their reasons.
  await page.click("nav >> text=Auto attendant");
  await page.getByRole("heading", { name: "Auto attendant" }).waitFor();
  // An announcement uploaded from the page (one second of 700 Hz at 16 kHz).
  const rate = 16000;
  const tone = Buffer.alloc(44 + rate * 2);
  tone.write("RIFF", 0); tone.writeUInt32LE(36 + rate * 2, 4); tone.write("WAVEfmt ", 8);
  tone.writeUInt32LE(16, 16); tone.writeUInt16LE(1, 20); tone.writeUInt16LE(1, 22);
  tone.writeUInt32LE(rate, 24); tone.writeUInt32LE(rate * 2, 28); tone.writeUInt16LE(2, 32);
  tone.writeUInt16LE(16, 34); tone.write("data", 36); tone.writeUInt32LE(rate * 2, 40);
  for (let i = 0; i < rate; i++) tone.writeInt16LE(Math.round(8000 * Math.sin(2 * Math.PI * 700 * i / rate)), 44 + 2 * i);
  await page.fill("form.sounds input[name=name]", "welcome");
  await page.locator("form.sounds input[type=file]").setInputFiles({ name: "welcome.wav", mimeType: "audio/wav", buffer: tone });
  await page.click("form.sounds button[type=submit]");
  const sound = page.locator("#sounds tbody tr", { hasText: "welcome" });
  await sound.waitFor();
  assert.match(await sound.textContent(), /welcome.*1 s/s);
  await page.fill("#ranges input[name=tr_name] >> nth=0", "office");
  await page.fill("#ranges input[name=tr_items] >> nth=0", "mon-fri 9:00-17:00");
  await page.click("#time-ranges button[type=submit]");
  await page.locator("p.error").waitFor();
  assert.match(await page.locator("p.error").textContent(), /times are HH:MM/);
  await page.fill("#ranges input[name=tr_name] >> nth=0", "office");
  await page.fill("#ranges input[name=tr_items] >> nth=0", "mon-fri 09:00-17:00; 2026-12-24 00:00 - 2026-12-27 00:00");
  await page.click("#time-ranges button[type=submit]");
  await page.locator("p.done", { hasText: "Time ranges saved." }).waitFor();
  assert.equal(await page.inputValue("#ranges input[name=tr_items] >> nth=0"),
    "mon-fri 09:00-17:00; 2026-12-24 00:00 - 2026-12-27 00:00");
  await page.fill("#script-list input[name=aa_number] >> nth=0", "200");
  await page.fill("#script-list input[name=aa_description] >> nth=0", "Main number");
  await page.fill("#script-list input[name=aa_start] >> nth=0", "hours");
  await page.fill("#menus input[name=m_script] >> nth=0", "200");
  await page.fill("#menus input[name=m_name] >> nth=0", "day");
  await page.fill("#menus input[name=m_announcement] >> nth=0", "hello-world");
  await page.fill("#menus input[name=m_default] >> nth=0", "jump 101");
  await page.fill("#menus input[name=m_keys] >> nth=0", "1=dial 101 @transfer; 0=hangup");
  await page.fill("#menus input[name=m_script] >> nth=1", "200");
  await page.fill("#menus input[name=m_name] >> nth=1", "night");
  await page.fill("#menus input[name=m_announcement] >> nth=1", "tt-weasels");
  await page.fill("#menus input[name=m_default] >> nth=1", "hangup");
  await page.fill("#conditions input[name=c_script] >> nth=0", "200");
  await page.fill("#conditions input[name=c_name] >> nth=0", "hours");
  await page.fill("#conditions input[name=c_range] >> nth=0", "office");
  await page.fill("#conditions input[name=c_then] >> nth=0", "day");
  await page.fill("#conditions input[name=c_otherwise] >> nth=0", "night");
  await page.click("#scripts button[type=submit]");
  await page.locator("p.error").waitFor();
  assert.match(await page.locator("p.error").textContent(), /an action is dial/);
  await page.fill("#menus input[name=m_default] >> nth=0", "dial 101");
  await page.click("#scripts button[type=submit]");
  await page.locator("p.done, p.error").first().waitFor();
  assert.equal(await page.locator("p.error").count(), 0, await page.locator("p.error").first().textContent().catch(() => ""));
  await page.locator("p.done", { hasText: "Auto attendant scripts saved." }).waitFor();
  assert.equal(await page.inputValue("#menus input[name=m_keys] >> nth=0"), "1=dial 101 @transfer; 0=hangup");
  await page.screenshot({ path: `${artifacts}/attendant.png`, fullPage: true });
  // The dial plan lists the script.
  await page.click("nav >> text=Dial plan");
  assert.match(await page.locator("#dialplan tbody tr", { hasText: "200" }).textContent(), /auto attendant.*Main number/);
  await fitsAPhone(page, "Auto attendant");

  // Music on hold (Kerio 24): the same tone uploaded as music, a collection made the
  // default; a collection named like the shipped one is refused and the rows stay as typed.
  await page.click("nav >> text=Music on hold");
  await page.getByRole("heading", { name: "Music on hold" }).waitFor();
  await page.fill("form.sounds input[name=name]", "lobby");
  await page.locator("form.sounds input[type=file]").setInputFiles({ name: "lobby.wav", mimeType: "audio/wav", buffer: tone });
  await page.click("form.sounds button[type=submit]");
  const track = page.locator("#music-files tbody tr", { hasText: "lobby" });
  await track.waitFor();
  assert.match(await track.textContent(), /lobby.*1 s/s);
  await page.fill("#music-collections input[name=mc_name] >> nth=0", "system");
  await page.fill("#music-collections input[name=mc_files] >> nth=0", "lobby");
  await page.click("#collections button[type=submit]");
  await page.locator("p.error").waitFor();
  assert.match(await page.locator("p.error").textContent(), /shipped collection/);
  assert.equal(await page.inputValue("#music-collections input[name=mc_files] >> nth=0"), "lobby");
  await page.fill("#music-collections input[name=mc_name] >> nth=0", "lobby-music");
  await page.fill("#music-collections input[name=mc_description] >> nth=0", "Reception");
  await page.click("#collections button[type=submit]");
  await page.locator("p.done", { hasText: "Music on hold saved." }).waitFor();
  await page.selectOption("#collections select[name=default]", "lobby-music");
  await page.click("#collections button[type=submit]");
  await page.locator("p.done", { hasText: "Music on hold saved." }).waitFor();
  assert.equal(await page.inputValue("#collections select[name=default]"), "lobby-music");
  // A file a collection plays offers no Remove button.
  assert.equal(await track.locator("button", { hasText: "Remove" }).count(), 0);
  await fitsAPhone(page, "Music on hold");

  // IP address groups (Kerio 26): a wrong item is refused with its reason, then Admins
  // and an Office group that holds it.
  await page.click("nav >> text=IP address groups");
  await page.getByRole("heading", { name: "IP address groups" }).waitFor();
  await page.fill("#ip-group-list input[name=ig_name] >> nth=0", "Admins");
  await page.fill("#ip-group-list input[name=ig_items] >> nth=0", "192.168.15.3 (jsmith's computer); 10.1.0.1/16");
  await page.click("#ip-groups button[type=submit]");
  await page.locator("p.error").waitFor();
  assert.match(await page.locator("p.error").textContent(), /host bits zero/);
  assert.equal(await page.inputValue("#ip-group-list input[name=ig_name] >> nth=0"), "Admins");
  await page.fill("#ip-group-list input[name=ig_items] >> nth=0", "192.168.15.3 (jsmith's computer); 10.1.0.0/16");
  await page.fill("#ip-group-list input[name=ig_name] >> nth=1", "Office");
  await page.fill("#ip-group-list input[name=ig_items] >> nth=1", "group Admins; 172.16.0.10-172.16.0.20");
  await page.click("#ip-groups button[type=submit]");
  await page.locator("p.done", { hasText: "IP address groups saved." }).waitFor();
  assert.equal(await page.inputValue("#ip-group-list input[name=ig_items] >> nth=1"), "group Admins; 172.16.0.10-172.16.0.20");
  await fitsAPhone(page, "IP address groups");

  // Conferences (Kerio 13): a room with a wrong PIN is refused and stays as typed, then
  // saved; nobody is in a conference yet; the dial plan lists the room.
  await page.click("nav >> text=Conferences");
  await page.getByRole("heading", { name: "Conferences" }).waitFor();
  assert.match(await page.locator("#conference-live").textContent(), /Nobody is in a conference/);
  await page.fill("#conference-rooms input[name=cf_number] >> nth=0", "800");
  await page.fill("#conference-rooms input[name=cf_description] >> nth=0", "Weekly sales");
  await page.fill("#conference-rooms input[name=cf_pin] >> nth=0", "47a1");
  await page.fill("#conference-rooms input[name=cf_max] >> nth=0", "10");
  await page.fill("#conference-rooms input[name=cf_tones] >> nth=0", "no");
  await page.click("#rooms button[type=submit]");
  await page.locator("p.error").waitFor();
  assert.match(await page.locator("p.error").textContent(), /pin.*digits/);
  assert.equal(await page.inputValue("#conference-rooms input[name=cf_description] >> nth=0"), "Weekly sales");
  await page.fill("#conference-rooms input[name=cf_pin] >> nth=0", "4711");
  await page.click("#rooms button[type=submit]");
  await page.locator("p.done", { hasText: "Conference rooms saved." }).waitFor();
  assert.equal(await page.inputValue("#conference-rooms input[name=cf_pin] >> nth=0"), "4711");
  await fitsAPhone(page, "Conferences");
  await page.click("nav >> text=Dial plan");
  assert.match(await page.locator("#dialplan tbody tr", { hasText: "800" }).textContent(), /conference.*Weekly sales/);

  // Call queues (Kerio 14): a queue with agents that are not extensions is refused and
  // stays as typed, then saved with a strategy and login codes; the live view shows
  // its agents; the dial plan lists the queue and its codes.
  await page.click("nav >> text=Call queues");
  await page.getByRole("heading", { name: "Call queues" }).waitFor();
  const nq = "#queue-new";
  await page.fill(`${nq} input[name=number]`, "700");
  await page.fill(`${nq} input[name=description]`, "Households");
  await page.selectOption(`${nq} select[name=strategy]`, "round_robin");
  await page.fill(`${nq} input[name=agents]`, "101, 999");
  await page.check(`${nq} input[name=dynamic_agents]`);
  await page.fill(`${nq} input[name=login_code]`, "7001");
  await page.fill(`${nq} input[name=logout_code]`, "7002");
  await page.fill(`${nq} input[name=wrapup_seconds]`, "30");
  await page.click(`${nq} button[type=submit]`);
  await page.locator("p.error").waitFor();
  assert.match(await page.locator("p.error").textContent(), /999 is not an extension/);
  assert.equal(await page.inputValue(`${nq} input[name=description]`), "Households");
  assert.equal(await page.inputValue(`${nq} select[name=strategy]`), "round_robin");
  await page.fill(`${nq} input[name=agents]`, "101");
  await page.click(`${nq} button[type=submit]`);
  await page.locator("p.done", { hasText: "Queue 700 saved." }).waitFor();
  assert.equal(await page.inputValue("#queue-700 input[name=wrapup_seconds]"), "30");
  assert.equal(await page.inputValue("#queue-700 select[name=strategy]"), "round_robin");
  // The live view is the exchange's, which takes the saved configuration a moment
  // later: refreshed until the queue is there.
  for (let i = 0; i < 20 && !(await page.locator("#queue-agents").count()); i++) {
    await page.waitForTimeout(250);
    await page.goto(`${base}/admin/routing/queues`);
  }
  assert.match(await page.locator("#queue-agents").textContent(), /101/);
  // The recorded calls' size limit: too small is refused, then saved.
  await page.fill("#recordings-limit input[name=recordings_max_mb]", "5");
  await page.click("#recordings-limit button[type=submit]");
  await page.locator("p.error").waitFor();
  assert.match(await page.locator("p.error").textContent(), /10 to 1000000/);
  await page.fill("#recordings-limit input[name=recordings_max_mb]", "200");
  await page.click("#recordings-limit button[type=submit]");
  await page.locator("p.done", { hasText: "Size limit saved." }).waitFor();
  assert.equal(await page.inputValue("#recordings-limit input[name=recordings_max_mb]"), "200");
  await fitsAPhone(page, "Call queues");
  await page.click("nav >> text=Dial plan");
  assert.match(await page.locator("#dialplan tbody tr", { hasText: "Households" }).first().textContent(), /call queue/);
  assert.match(await page.locator("#dialplan tbody tr", { hasText: "7001" }).textContent(), /Agent login: Households/);

  // BLF keys of a provisioned phone: a key on a number that is nowhere is refused, then
  // keys on an extension and a parking slot are saved.
  await page.click("nav >> text=Phones");
  await page.click("summary >> text=Add manually");
  await page.fill("#add-phone input[name=mac]", "00:15:65:aa:bb:cc");
  await page.selectOption("#add-phone select[name=model]", "T46");
  await page.fill("#add-phone input[name=extensions]", "101");
  await page.click("#add-phone button[type=submit]");
  const phone = page.locator("#phones tbody tr", { hasText: "00:15:65:aa:bb:cc" });
  await phone.waitFor();
  await phone.locator("input[name=blf_keys]").fill("999 Nobody");
  await phone.locator("button", { hasText: "Set" }).click();
  await page.locator("p.error").waitFor();
  assert.match(await page.locator("p.error").textContent(), /999 is not an extension or a parking slot/);
  await phone.locator("input[name=blf_keys]").fill("101 Reception; *71 Park 1");
  await phone.locator("button", { hasText: "Set" }).click();
  await page.locator("p.done").waitFor();
  assert.equal(await phone.locator("input[name=blf_keys]").inputValue(), "101 Reception; *71 Park 1");

  // On a phone screen nothing runs off the side.
  await fitsAPhone(page, "Call routing");
});
