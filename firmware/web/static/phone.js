// The portal's phone: JsSIP (/static/jssip.js) registers the user's browser phone
// account over wss://<box>/ws with the secret POST /phone/account hands the logged-in
// page, and this drives the page's dial pad and call buttons. Media is WebRTC with the
// box (DTLS-SRTP, ICE); the box relays it to the other party.
(function () {
  "use strict";
  var root = document.getElementById("phone");
  if (!root || !window.JsSIP) return;
  var $ = function (id) { return document.getElementById(id); };
  var csrf = root.getAttribute("data-csrf");
  var renew = Number(root.getAttribute("data-renew")) || 1200;
  var host = location.hostname.indexOf(":") >= 0 && location.hostname[0] !== "[" ? "[" + location.hostname + "]" : location.hostname;
  var ua = null;
  var account = null;
  var current = null; // the call being talked in (or being set up)
  var held = null; // a call put on hold for a second one (call waiting, consultation)
  var incoming = null; // a call ringing here
  var started = 0;
  var timer = null;
  var renewing = null;
  var soon = null;
  var retried = false; // a failed registration was tried again with a fresh secret
  var options = { mediaConstraints: { audio: true, video: false }, pcConfig: { iceServers: [] }, rtcOfferConstraints: { offerToReceiveAudio: true } };

  function show(id, on) { $(id).hidden = !on; }
  function state(name, text) {
    var el = $("phone-state");
    el.setAttribute("data-state", name);
    el.textContent = text;
  }
  function who(s) {
    var id = s.remote_identity;
    var n = id && id.uri ? id.uri.user : "";
    return id && id.display_name && id.display_name !== n ? id.display_name + " (" + n + ")" : n;
  }
  function target(n) {
    n = String(n || "").replace(/[\s()-]/g, "");
    return /^[0-9A-Za-z*#+._~]+$/.test(n) ? "sip:" + encodeURIComponent(n) + "@" + host : null;
  }
  function callState(text) {
    $("phone-call-state").textContent = text;
    root.setAttribute("data-call", text);
  }
  function tick() {
    if (!started) { $("phone-timer").textContent = ""; return; }
    var s = Math.floor((Date.now() - started) / 1000);
    $("phone-timer").textContent = Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }
  function listen(s) {
    var pc = s.connection;
    if (!pc) return;
    var tracks = pc.getReceivers().map(function (r) { return r.track; }).filter(Boolean);
    var audio = $("phone-audio");
    audio.srcObject = new MediaStream(tracks);
    audio.play().catch(function () {});
  }
  function panels() {
    // The lamps follow the page's own calls soon (one poll for a burst of events).
    clearTimeout(soon);
    soon = setTimeout(poll, 300);
    show("phone-incoming", !!incoming);
    show("phone-call-panel", !!current);
    show("phone-waiting", !!held);
    $("phone-call").disabled = !ua || !ua.isRegistered() || !!current;
    $("phone-held").textContent = held ? who(held) : "";
    $("phone-complete").hidden = !(held && current && current.isEstablished());
    $("phone-consult").hidden = !!held;
    if (current) $("phone-peer").textContent = who(current);
    if (!current) { started = 0; clearInterval(timer); timer = null; callState(""); }
    $("phone-hold").setAttribute("aria-pressed", current && current.isOnHold().local ? "true" : "false");
    $("phone-hold").textContent = current && current.isOnHold().local ? "Resume" : "Hold";
    $("phone-mute").setAttribute("aria-pressed", current && current.isMuted().audio ? "true" : "false");
    $("phone-mute").textContent = current && current.isMuted().audio ? "Unmute" : "Mute";
  }
  // What a call does as it goes, wherever it came from.
  function follow(s) {
    s.on("sdp", function (e) { if (e.originator === "local") e.sdp = prefer(e.sdp, e.type); });
    // Early media (a provider's announcement, ringback) is heard as it comes.
    s.on("progress", function () { if (s === current) { callState("ringing"); listen(s); } });
    s.on("accepted", function () { if (s === current) { callState("connected"); } });
    s.on("confirmed", function () {
      // The browser answering sends the box's first codec (G.711): a page that
      // prefers Opus offers again, Opus first, so that Opus goes both ways. Two
      // seconds on: the box refuses a re-offer (491) until the caller has
      // acknowledged the call, and JsSIP ends a call whose re-offer fails.
      if (s.direction === "incoming" && codec() === "opus") {
        setTimeout(function () { if (s.isEstablished() && !s.isOnHold().local) s.renegotiate(); }, 2000);
      }
      if (s === current) {
        callState("connected");
        listen(s);
        started = Date.now();
        timer = timer || setInterval(tick, 1000);
      }
      panels();
    });
    s.on("hold", panels);
    s.on("unhold", function () { if (s === current) listen(s); panels(); });
    s.on("muted", panels);
    s.on("unmuted", panels);
    var gone = function (e) {
      if (s === incoming) incoming = null;
      if (s === held) held = null;
      if (s === current) {
        current = null;
        // The call on hold comes back when the one talked in ends.
        if (held) { current = held; held = null; current.unhold(); listen(current); started = Date.now(); callState("connected"); }
      }
      if (e && e.cause && e.originator !== "local" && !current && !incoming) {
        $("phone-peer").textContent = "";
        state(ua.isRegistered() ? "registered" : "unregistered", "Call ended: " + e.cause + ". " + ready());
      }
      panels();
    };
    s.on("ended", gone);
    s.on("failed", gone);
  }
  // The codec this browser prefers (kept in the browser, per device): G.711 first,
  // which the box relays as it is, or Opus first, which the box turns into G.711 for
  // the rest of the call. The order of the audio line's payload types in the page's
  // own offer or answer says which (the box speaks Opus when it comes first).
  var codecKey = "pbx-phone-codec";
  function codec() {
    try { return localStorage.getItem(codecKey) === "opus" ? "opus" : "g711"; } catch (e) { return "g711"; }
  }
  // G.711 first in the page's offers only: an answer keeps the offer's order (the
  // box takes an answer's first codec as the law, and Chromium answering sends the
  // offer's first). Opus first in offers and answers.
  function prefer(sdp, type) {
    var opus = (sdp.match(/a=rtpmap:(\d+) opus\/48000/i) || [])[1];
    var first = codec() === "opus" ? (opus ? [opus] : []) : type === "offer" ? ["0", "8"] : [];
    return sdp.replace(/^(m=audio \S+ \S+)((?: \d+)+)(\r?)$/m, function (all, head, pts, cr) {
      var list = pts.trim().split(" ");
      var lead = first.filter(function (p) { return list.indexOf(p) >= 0; });
      return head + " " + lead.concat(list.filter(function (p) { return lead.indexOf(p) < 0; })).join(" ") + cr;
    });
  }
  $("phone-codec").value = codec();
  $("phone-codec").addEventListener("change", function () {
    try { localStorage.setItem(codecKey, this.value); } catch (e) {}
  });
  function ready() { return "Ready: extension " + account.extension + (account.name ? " " + account.name : ""); }

  function fetchAccount(ext) {
    return fetch("/phone/account", {
      method: "POST",
      headers: { "X-CSRF-Token": csrf, "Content-Type": "application/x-www-form-urlencoded" },
      body: "extension=" + encodeURIComponent(ext || ""),
      credentials: "same-origin",
      redirect: "manual",
    }).then(function (r) {
      // Logged out: the box sends the page to its login (a redirect).
      if (r.type === "opaqueredirect" || r.status === 401 || r.status === 403) throw new Error("you are logged out; log in again");
      if (!r.ok) throw new Error("the box refused (" + r.status + ")");
      return r.json();
    });
  }

  // The switches: do not disturb and forward every call, of the line in use.
  function settingsShown(a) {
    $("phone-dnd").checked = !!a.do_not_disturb;
    $("phone-forward-on").checked = !!a.forward;
    if (a.forward || !$("phone-forward").value) $("phone-forward").value = a.forward || "";
    $("phone-settings").disabled = false;
  }
  var saving = 0; // switches being saved (the panel's poll leaves them alone meanwhile)
  function saveSettings(fields, what) {
    var note = $("phone-settings-note");
    var line = account.extension;
    var body = "extension=" + encodeURIComponent(line);
    Object.keys(fields).forEach(function (k) { body += "&" + k + "=" + encodeURIComponent(fields[k]); });
    $("phone-settings").disabled = true;
    saving++;
    fetch("/phone/settings", {
      method: "POST",
      headers: { "X-CSRF-Token": csrf, "Content-Type": "application/x-www-form-urlencoded" },
      body: body,
      credentials: "same-origin",
      redirect: "manual",
    }).then(function (r) {
      if (r.type === "opaqueredirect" || r.status === 401 || r.status === 403) throw new Error("you are logged out; log in again");
      if (!/json/.test(r.headers.get("Content-Type") || "")) throw new Error("the box refused (" + r.status + ")");
      return r.json().then(function (j) {
        if (!r.ok) throw new Error(j.error || "the box refused (" + r.status + ")");
        return j;
      });
    }).then(function (j) {
      saving--;
      // Another line was chosen meanwhile: its own settings stand.
      if (!account || j.extension !== account.extension) return;
      account.do_not_disturb = j.do_not_disturb;
      account.forward = j.forward;
      settingsShown(j);
      note.textContent = what(j);
      poll();
    }).catch(function (e) {
      saving--;
      if (!account || account.extension !== line) return;
      settingsShown(account);
      note.textContent = "Not saved: " + e.message;
    });
  }
  $("phone-dnd").addEventListener("change", function () {
    saveSettings({ do_not_disturb: this.checked ? "on" : "off" }, function (j) {
      return j.do_not_disturb ? "Do not disturb is on: your phones do not ring." : "Do not disturb is off.";
    });
  });
  function forwardChanged() {
    var on = $("phone-forward-on").checked;
    var to = $("phone-forward").value.trim();
    if (on && !to) {
      $("phone-forward-on").checked = false;
      $("phone-settings-note").textContent = "Type the number to forward to first.";
      $("phone-forward").focus();
      return;
    }
    saveSettings({ forward: on ? to : "" }, function (j) {
      return j.forward ? "Every call is forwarded to " + j.forward + "." : "Calls ring here.";
    });
  }
  $("phone-forward-on").addEventListener("change", forwardChanged);
  // Another number while forwarding is on forwards there.
  $("phone-forward").addEventListener("change", function () { if ($("phone-forward-on").checked) forwardChanged(); });

  function start() {
    var line = $("phone-line");
    $("phone-settings").disabled = true;
    $("phone-settings-note").textContent = "";
    fetchAccount(line ? line.value : "").then(function (a) {
      account = a;
      settingsShown(a);
      var ws = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + a.ws;
      JsSIP.debug.disable("JsSIP:*");
      ua = new JsSIP.UA({
        sockets: [new JsSIP.WebSocketInterface(ws)],
        uri: "sip:" + a.username + "@" + host,
        password: a.password,
        display_name: a.name || undefined,
        register: true,
        register_expires: 300,
        session_timers: false,
        user_agent: "PBX portal phone",
      });
      ua.on("connecting", function () { state("connecting", "Connecting..."); });
      ua.on("disconnected", function () { state("disconnected", "No connection to the box; trying again..."); panels(); });
      ua.on("registered", function () { retried = false; state("registered", ready()); panels(); });
      ua.on("unregistered", function () { state("unregistered", "Not registered."); panels(); });
      ua.on("registrationFailed", function (e) {
        state("failed", "Not registered: " + e.cause + ".");
        panels();
        // The secret may have lapsed (the page slept): ask for it again, once until a
        // registration succeeds (JsSIP itself tries again later).
        if (retried) return;
        retried = true;
        fetchAccount(account.extension).then(function (b) { ua.set("password", b.password); ua.register(); }).catch(function (err) {
          state("failed", "Not registered: " + err.message + ".");
        });
      });
      ua.on("newRTCSession", function (e) {
        var s = e.session;
        if (e.originator !== "remote") return;
        // One call rings here at a time, and one waits on hold at most.
        if (incoming || held) { s.terminate({ status_code: 486, reason_phrase: "Busy Here" }); return; }
        incoming = s;
        $("phone-caller").textContent = who(s);
        follow(s);
        panels();
      });
      ua.start();
      clearInterval(renewing);
      renewing = setInterval(function () { fetchAccount(account.extension).catch(function () {}); }, renew * 1000);
    }).catch(function (err) {
      state("failed", "The phone cannot start: " + err.message + ".");
    });
  }

  function dial(number) {
    var t = target(number);
    if (!t || !ua) { state("failed", "That is not a number to call."); return null; }
    var s = ua.call(t, options);
    follow(s);
    callState("calling");
    return s;
  }

  $("phone-call").addEventListener("click", function () {
    if (current) return;
    var s = dial($("phone-number").value);
    if (s) { current = s; panels(); }
  });
  $("phone-number").addEventListener("keydown", function (ev) { if (ev.key === "Enter") $("phone-call").click(); });
  $("phone-pad").addEventListener("click", function (ev) {
    var b = ev.target.closest("button.key");
    if (!b) return;
    var k = b.getAttribute("data-key");
    // In a call the keys are tones for the other side (SIP INFO); else they dial.
    if (current && current.isEstablished()) { current.sendDTMF(k); return; }
    $("phone-number").value += k;
  });
  $("phone-answer").addEventListener("click", function () {
    var s = incoming;
    if (!s) return;
    incoming = null;
    // Call waiting: the call talked in waits on hold.
    if (current) { held = current; held.hold(); }
    current = s;
    s.answer(options);
    panels();
  });
  $("phone-reject").addEventListener("click", function () {
    if (incoming) incoming.terminate({ status_code: 486, reason_phrase: "Busy Here" });
  });
  $("phone-hangup").addEventListener("click", function () { if (current) current.terminate(); });
  $("phone-hold").addEventListener("click", function () {
    if (!current || !current.isEstablished()) return;
    if (current.isOnHold().local) current.unhold(); else current.hold();
  });
  $("phone-mute").addEventListener("click", function () {
    if (!current) return;
    if (current.isMuted().audio) current.unmute({ audio: true }); else current.mute({ audio: true });
  });
  $("phone-held").addEventListener("click", function () {
    // Swap: the call on hold comes back, the one talked in waits.
    if (!held || !current || !current.isEstablished()) return;
    var back = held;
    held = current;
    held.hold();
    current = back;
    current.unhold();
    panels();
  });
  // Blind transfer: REFER the other party to the number; the box connects them and the
  // call here ends.
  function blindTransfer(number) {
    var t = target(number);
    if (!current || !current.isEstablished() || !t) return;
    var s = current;
    s.refer(t, {
      eventHandlers: {
        accepted: function () { if (s.isEstablished()) s.terminate(); },
        failed: function () { if (s === current) callState("transfer failed"); },
      },
    });
    callState("transferring");
  }
  $("phone-blind").addEventListener("click", function () { blindTransfer($("phone-transfer-to").value); });
  // Calls the number from the panel (not while a call is being set up or talked in).
  function callFromPanel(number) {
    if (current) return;
    var s = dial(number);
    if (s) { current = s; panels(); }
  }
  // Attended transfer: the other party waits on hold while the number is called, then
  // the two are connected (REFER with Replaces).
  $("phone-consult").addEventListener("click", function () {
    var n = $("phone-transfer-to").value;
    if (!current || !current.isEstablished() || held || !target(n)) return;
    held = current;
    held.hold();
    current = dial(n);
    panels();
  });
  $("phone-complete").addEventListener("click", function () {
    if (!held || !current || !current.isEstablished()) return;
    var a = held;
    var b = current;
    a.refer(b.remote_identity.uri, {
      replaces: b,
      eventHandlers: {
        accepted: function () { if (a.isEstablished()) a.terminate(); if (b.isEstablished()) b.terminate(); },
        failed: function () { if (b === current) callState("transfer failed"); },
      },
    });
    callState("transferring");
  });
  // The operator panel: every extension's lamp, parked calls and queues, asked for
  // every two seconds while the page is seen. A click on an extension transfers the
  // call talked in to it, picks up its ringing call (directed pickup), or calls it.
  var pickupCode = "";
  function item(text, cls) {
    var li = document.createElement("li");
    li.textContent = text;
    if (cls) li.className = cls;
    return li;
  }
  function render(p) {
    pickupCode = p.directed_pickup;
    // The switches as the box has them (the code on a desk phone or MyPhone may have
    // changed them), unless one is being saved or typed in.
    var mine = account && !saving && document.activeElement !== $("phone-forward") &&
      (p.lines || []).filter(function (l) { return l.extension === account.extension; })[0];
    if (mine && (mine.do_not_disturb !== account.do_not_disturb || mine.forward !== account.forward)) {
      account.do_not_disturb = mine.do_not_disturb;
      account.forward = mine.forward;
      settingsShown(account);
    }
    var box = $("panel-extensions");
    var own = account ? account.extension : "";
    var seen = {};
    p.extensions.forEach(function (e) {
      seen[e.number] = true;
      var b = box.querySelector('button[data-number="' + CSS.escape(e.number) + '"]');
      if (!b) {
        b = document.createElement("button");
        b.type = "button";
        b.className = "lamp";
        b.setAttribute("role", "listitem");
        b.setAttribute("data-number", e.number);
        b.innerHTML = '<span class="n"></span> <span class="name"></span> <span class="s"></span>';
        box.appendChild(b);
      }
      b.setAttribute("data-state", e.state);
      b.querySelector(".n").textContent = e.number;
      b.querySelector(".name").textContent = e.name && e.name !== e.number ? e.name : "";
      b.querySelector(".s").textContent = e.state === "ringing" && e.caller ? "ringing (" + e.caller + ")" : e.state === "dnd" ? "do not disturb" : e.state;
      b.disabled = e.number === own;
    });
    Array.prototype.slice.call(box.children).forEach(function (b) { if (!seen[b.getAttribute("data-number")]) b.remove(); });
    filter();
    var parked = $("panel-parked");
    parked.textContent = "";
    if (!p.parked.length) parked.appendChild(item("None.", "none"));
    p.parked.forEach(function (c) {
      var li = item("Slot " + c.slot + ": " + (c.number || "a caller") + ", " + c.seconds + " s ");
      li.setAttribute("data-slot", c.slot);
      var b = document.createElement("button");
      b.type = "button";
      b.textContent = "Pick up";
      b.addEventListener("click", function () { callFromPanel(c.slot); });
      li.appendChild(b);
      parked.appendChild(li);
    });
    var queues = $("panel-queues");
    queues.textContent = "";
    if (!p.queues.length) queues.appendChild(item("None.", "none"));
    p.queues.forEach(function (q) {
      var li = item(q.number + (q.description ? " " + q.description : "") + ": " + q.waiting + " waiting");
      li.setAttribute("data-queue", q.number);
      queues.appendChild(li);
    });
  }
  function poll() {
    if (document.hidden) return;
    fetch("/phone/panel", { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) throw new Error(String(r.status));
      return r.json();
    }).then(render).catch(function () {});
  }
  // The phonebook: the lamps whose number or name holds what is typed; Enter on a
  // single one does what a click on it does.
  function filter() {
    var q = $("panel-search").value.trim().toLowerCase();
    Array.prototype.forEach.call($("panel-extensions").children, function (b) {
      var text = (b.getAttribute("data-number") + " " + b.querySelector(".name").textContent).toLowerCase();
      b.hidden = !!q && text.indexOf(q) < 0;
    });
  }
  $("panel-search").addEventListener("input", filter);
  $("panel-search").addEventListener("keydown", function (ev) {
    if (ev.key !== "Enter") return;
    ev.preventDefault();
    var shown = Array.prototype.filter.call($("panel-extensions").children, function (b) { return !b.hidden && !b.disabled; });
    if (shown.length === 1) shown[0].click();
  });
  $("panel-extensions").addEventListener("click", function (ev) {
    var b = ev.target.closest("button.lamp");
    if (!b || b.disabled) return;
    var n = b.getAttribute("data-number");
    // In a consultation the caller waits on hold: Complete transfer, not a lamp.
    if (held) return;
    if (current && current.isEstablished()) blindTransfer(n);
    else if (b.getAttribute("data-state") === "ringing") { if (pickupCode) callFromPanel(pickupCode + n); }
    else callFromPanel(n);
  });
  poll();
  setInterval(poll, 2000);
  document.addEventListener("visibilitychange", poll);
  var line = $("phone-line");
  // Another line: the phone starts again on it (not in a call).
  if (line) line.addEventListener("change", function () { if (current || incoming) return; if (ua) ua.stop(); start(); });
  var pre = root.getAttribute("data-dial");
  if (pre) $("phone-number").value = pre;
  // For tests and the curious: the running phone.
  window.pbxPhone = { get ua() { return ua; }, get current() { return current; }, get held() { return held; } };
  start();
})();
