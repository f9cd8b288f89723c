// The only script: the key icon next to a password shows or hides it.
document.addEventListener("click", function (ev) {
  var b = ev.target.closest("button.reveal");
  if (!b) return;
  var input = document.getElementById(b.getAttribute("data-target"));
  if (!input) return;
  var show = input.type === "password";
  input.type = show ? "text" : "password";
  b.setAttribute("aria-pressed", show ? "true" : "false");
});
