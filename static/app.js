// Progressive enhancement only: every page works without JavaScript.
// Show-password toggles (checklist S4.5).
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("button.show-password").forEach(function (button) {
    button.addEventListener("click", function () {
      var input = document.getElementById(button.getAttribute("data-toggles"));
      if (!input) return;
      var show = input.type === "password";
      input.type = show ? "text" : "password";
      button.textContent = show ? "Hide" : "Show";
      button.setAttribute("aria-pressed", show ? "true" : "false");
    });
  });
});
