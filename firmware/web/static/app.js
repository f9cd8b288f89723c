// The key icon next to a password shows or hides it.
document.addEventListener("click", function (ev) {
  var b = ev.target.closest("button.reveal");
  if (!b) return;
  var input = document.getElementById(b.getAttribute("data-target"));
  if (!input) return;
  var show = input.type === "password";
  input.type = show ? "text" : "password";
  b.setAttribute("aria-pressed", show ? "true" : "false");
});

// Sends the file chosen in `form` (input `inputId`) to `url`, showing where it stands
// in the line `stateId`; `accepted(answer, show, button)` follows what comes after.
// The firmware update and the recovery upload use it.
function uploadFrom(form, inputId, stateId, url, accepted) {
  var file = document.getElementById(inputId).files[0];
  var state = document.getElementById(stateId);
  var button = form.querySelector("button");
  if (!file) return;
  var show = function (name, text) {
    state.setAttribute("data-state", name);
    state.className = name === "failed" ? "error" : (name === "done" ? "done" : "");
    state.textContent = text;
  };
  button.disabled = true;
  show("uploading", "Uploading " + file.name + "...");
  fetch(url, {
    method: "POST",
    headers: { "X-CSRF-Token": form.getAttribute("data-csrf"), "Content-Type": "application/octet-stream" },
    body: file,
    credentials: "same-origin"
  }).then(function (r) {
    return r.json().then(function (j) { return { ok: r.ok, body: j }; });
  }).then(function (a) {
    if (!a.ok) {
      show("failed", a.body.error || "The upload was refused.");
      button.disabled = false;
      return;
    }
    accepted(a.body, show, button);
  }).catch(function (e) {
    show("failed", "The upload failed: " + e);
    button.disabled = false;
  });
}

// Firmware page: send the chosen bundle to the API and follow the install.
document.addEventListener("submit", function (ev) {
  var form = ev.target;
  if (form.id !== "update-form") return;
  ev.preventDefault();
  uploadFrom(form, "bundle", "update-state", "/api/v1/system/update", function (_, show, button) {
    var poll = function () {
      fetch("/api/v1/system/update", { credentials: "same-origin" }).then(function (r) {
        return r.json();
      }).then(function (s) {
        if (s.state === "installing") {
          show("installing", "Installing: " + s.percent + "% " + s.step);
          setTimeout(poll, 1000);
        } else if (s.state === "failed") {
          show("failed", s.message);
          button.disabled = false;
        } else {
          show("rebooting", s.message || "The box restarts into the new firmware.");
        }
      }).catch(function () {
        show("rebooting", "The box is restarting into the new firmware; reload this page in a minute.");
      });
    };
    poll();
  });
});

// Backup page: send the chosen backup to the API; the box checks it, then restarts
// into it. Once a new daemon answers (its name changes) the page goes back to the
// Backup page, which after a new login says whether the backup came up.
document.addEventListener("submit", function (ev) {
  var form = ev.target;
  if (form.id !== "restore-form") return;
  ev.preventDefault();
  uploadFrom(form, "archive", "restore-state", "/api/v1/system/restore", function (answer, show) {
    show("restarting", answer.message);
    var tries = 0;
    var poll = function () {
      tries += 1;
      fetch("/api/v1/instance").then(function (r) {
        return r.json();
      }).then(function (j) {
        if (j.instance && j.instance !== answer.instance) {
          show("done", "The box restarted. Log in again: the Backup page says whether the backup is in place.");
          setTimeout(function () { window.location.href = "/admin/backup"; }, 1000);
        } else if (tries < 120) {
          setTimeout(poll, 1000);
        }
      }).catch(function () {
        if (tries < 120) setTimeout(poll, 1000);
      });
    };
    setTimeout(poll, 1000);
  });
});

// Portal: the voicemail greetings chosen are sent to the API one by one.
document.addEventListener("submit", function (ev) {
  var form = ev.target;
  if (!form.classList.contains("greetings")) return;
  ev.preventDefault();
  var state = form.querySelector(".greeting-state");
  var ext = form.getAttribute("data-extension");
  var inputs = Array.prototype.filter.call(form.querySelectorAll("input[type=file]"), function (i) {
    return i.files.length > 0;
  });
  var button = form.querySelector("button");
  if (inputs.length === 0) {
    state.textContent = "Choose a WAV file first.";
    return;
  }
  button.disabled = true;
  var next = function (k) {
    if (k === inputs.length) {
      state.textContent = "Greetings saved.";
      window.location.reload();
      return;
    }
    fetch("/api/v1/me/voicemail/" + ext + "/greetings/" + inputs[k].name, {
      method: "PUT",
      headers: { "X-CSRF-Token": form.getAttribute("data-csrf"), "Content-Type": "application/octet-stream" },
      body: inputs[k].files[0],
      credentials: "same-origin"
    }).then(function (r) {
      if (r.ok) return next(k + 1);
      return r.json().then(function (j) {
        state.setAttribute("data-state", "failed");
        state.textContent = (k > 0 ? "The first greeting was saved; " : "") +
          (j.error || "the greeting was refused.");
        button.disabled = false;
      });
    }).catch(function (e) {
      state.setAttribute("data-state", "failed");
      state.textContent = "The upload failed: " + e;
      button.disabled = false;
    });
  };
  state.textContent = "Uploading...";
  next(0);
});

// Admin: an announcement for the auto attendant is sent to the API as it is.
document.addEventListener("submit", function (ev) {
  var form = ev.target;
  if (!form.classList.contains("sounds")) return;
  ev.preventDefault();
  var state = form.querySelector(".sound-state");
  var api = form.getAttribute("data-api") || "/api/v1/sounds/";
  var name = form.querySelector("input[name=name]").value.trim();
  var file = form.querySelector("input[type=file]");
  if (!name || file.files.length === 0) {
    state.textContent = "Give a name and choose a file.";
    return;
  }
  var button = form.querySelector("button");
  button.disabled = true;
  state.textContent = "Uploading...";
  fetch(api + encodeURIComponent(name), {
    method: "PUT",
    headers: { "X-CSRF-Token": form.getAttribute("data-csrf"), "Content-Type": "application/octet-stream" },
    body: file.files[0],
    credentials: "same-origin"
  }).then(function (r) {
    if (r.ok) {
      state.textContent = "Saved.";
      window.location.reload();
      return;
    }
    return r.json().then(function (j) {
      state.setAttribute("data-state", "failed");
      state.textContent = j.error || "The file was refused.";
      button.disabled = false;
    });
  }).catch(function (e) {
    state.setAttribute("data-state", "failed");
    state.textContent = "The upload failed: " + e;
    button.disabled = false;
  });
});
