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

  // The recovery request form's proof of work (issue 11 §3): find a nonce such that
  // SHA-256(challenge ":" nonce) starts with `bits` zero bits, then send the form. The
  // server checks it; with 0 bits any nonce does and the form works without JavaScript.
  document.querySelectorAll("form[data-pow-bits]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      var bits = parseInt(form.getAttribute("data-pow-bits"), 10) || 0;
      var nonceField = form.querySelector("input[name=pow_nonce]");
      var challenge = form.querySelector("input[name=pow_challenge]").value;
      var button = form.querySelector("button[type=submit]");
      var status = document.getElementById("pow-status");
      event.preventDefault();
      function done(nonce) {
        nonceField.value = String(nonce);
        form.submit();
      }
      if (bits === 0 || !(window.crypto && window.crypto.subtle)) {
        done(0);
        return;
      }
      if (button) button.disabled = true;
      if (status) status.textContent = "Checking that a person is sending this form: a second or two\u2026";
      var encoder = new TextEncoder();
      function zeros(buffer) {
        var bytes = new Uint8Array(buffer), n = 0;
        for (var i = 0; i < bytes.length; i++) {
          if (bytes[i] !== 0) return n + Math.clz32(bytes[i]) - 24;
          n += 8;
        }
        return n;
      }
      var next = 0;
      function round() {
        var batch = [];
        for (var i = 0; i < 512; i++) batch.push(window.crypto.subtle.digest("SHA-256", encoder.encode(challenge + ":" + (next + i))));
        Promise.all(batch).then(function (digests) {
          for (var j = 0; j < digests.length; j++) {
            if (zeros(digests[j]) >= bits) return done(next + j);
          }
          next += digests.length;
          round();
        });
      }
      round();
    });
  });
});
