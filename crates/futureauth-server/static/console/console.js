// FutureAuth Console: copy buttons, confirmations, clickable rows, passkeys. No framework, no build.
"use strict";
document.addEventListener("click", async (event) => {
  const copy = event.target.closest("[data-copy]");
  if (copy) {
    const field = document.querySelector(copy.dataset.copy);
    if (!field) return;
    field.select();
    let ok = false;
    try {
      await navigator.clipboard.writeText(field.value);
      ok = true;
    } catch (_) {
      ok = document.execCommand && document.execCommand("copy");
    }
    copy.textContent = ok ? "Copied ✓" : "Press Ctrl+C";
    copy.classList.add("copied");
    setTimeout(() => { copy.textContent = "Copy"; copy.classList.remove("copied"); }, 2500);
    return;
  }
  const row = event.target.closest("tr[data-href]");
  if (row && !event.target.closest("a, button, form")) {
    window.location.href = row.dataset.href;
  }
});
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});
// Live preview of the message templates: the same literal substitution as the server.
(() => {
  const form = document.getElementById("templates-form");
  if (!form) return;
  const project = form.dataset.project || "";
  const fill = (t) => t.replace(/\{\{ ?code ?\}\}/g, "4f7k2q").replace(/\{\{ ?project ?\}\}/g, project);
  const update = () => {
    form.querySelectorAll("[data-preview]").forEach((field) => {
      const target = document.querySelector(field.dataset.preview);
      const text = field.value.trim() === "" ? field.dataset.default : field.value;
      if (target) target.textContent = fill(text);
    });
    const sms = document.getElementById("preview-sms");
    const count = document.getElementById("sms-length");
    if (sms && count) count.textContent = `Preview: ${sms.textContent.length} characters.`;
  };
  form.addEventListener("input", update);
  update();
})();
// Passkeys (WebAuthn): the sign-in page's button and autofill, the Passkeys page's "Add".
// The server speaks WebAuthn JSON with base64url binary fields; the browser wants buffers.
(() => {
  const signIn = document.getElementById("passkey-sign-in");
  const add = document.getElementById("add-passkey-box");
  const box = signIn || add;
  if (!box) return;
  // Offered only on an origin the relying party accepts: a browser refuses passkeys
  // elsewhere (e.g. on 127.0.0.1, beside localhost).
  const origins = (box.dataset.passkeyOrigins || "").split(" ").filter(Boolean);
  const usable = Boolean(window.PublicKeyCredential) && origins.includes(location.origin);
  const error = document.getElementById("passkey-error");

  const fromB64url = (s) => {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    const bin = atob(s);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return bytes.buffer;
  };
  const toB64url = (buffer) => {
    let bin = "";
    for (const b of new Uint8Array(buffer)) bin += String.fromCharCode(b);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  };
  const withIds = (list) => (list || []).map((c) => Object.assign({}, c, { id: fromB64url(c.id) }));
  const creationOptions = (options) => {
    const pk = Object.assign({}, options.publicKey);
    pk.challenge = fromB64url(pk.challenge);
    pk.user = Object.assign({}, pk.user, { id: fromB64url(pk.user.id) });
    pk.excludeCredentials = withIds(pk.excludeCredentials);
    return pk;
  };
  const requestOptions = (options) => {
    const pk = Object.assign({}, options.publicKey);
    pk.challenge = fromB64url(pk.challenge);
    pk.allowCredentials = withIds(pk.allowCredentials);
    return pk;
  };
  // A PublicKeyCredential as the server reads it.
  const credentialJson = (cred) => {
    const r = cred.response;
    const response = { clientDataJSON: toB64url(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toB64url(r.attestationObject);
      if (r.getTransports) response.transports = r.getTransports();
    } else {
      response.authenticatorData = toB64url(r.authenticatorData);
      response.signature = toB64url(r.signature);
      if (r.userHandle) response.userHandle = toB64url(r.userHandle);
    }
    return { id: cred.id, rawId: toB64url(cred.rawId), type: cred.type, response, extensions: {} };
  };
  // POSTs JSON (with the session's CSRF token when signed in); throws the server's error.
  const post = async (path, body, csrf) => {
    const headers = { "Content-Type": "application/json", Accept: "application/json" };
    if (csrf) headers["X-CSRF-Token"] = csrf;
    const resp = await fetch(path, {
      method: "POST", headers, body: JSON.stringify(body), credentials: "same-origin",
    });
    const json = await resp.json().catch(() => ({}));
    if (!resp.ok) {
      const err = new Error((json.error && json.error.message) || "The request failed.");
      err.code = json.error && json.error.code;
      throw err;
    }
    return json;
  };
  const show = (err) => {
    const words = {
      passkey_rejected: "That passkey was not accepted here. Sign in with an email code instead.",
      passkey_challenge_invalid: "The passkey request timed out. Please try again.",
      rate_limited: "Too many attempts. Try again in a few minutes.",
      NotAllowedError: "The passkey prompt was closed or timed out.",
      InvalidStateError: "This device already has a passkey for your account.",
    };
    error.textContent = words[err.code || err.name] || err.message || "Something went wrong.";
    error.hidden = false;
  };

  if (signIn) {
    if (!usable) return;
    signIn.hidden = false;
    const button = document.getElementById("passkey-button");
    const finish = async (cred) => {
      const { redirect } = await post("/dashboard/login/passkey", { credential: credentialJson(cred) });
      window.location.assign(redirect || "/dashboard");
    };
    // The email field offers the passkeys (autofill, i.e. conditional mediation) until the
    // button asks instead.
    let conditional = null;
    const startConditional = async () => {
      const available = PublicKeyCredential.isConditionalMediationAvailable
        && await PublicKeyCredential.isConditionalMediationAvailable();
      if (!available || conditional) return;
      const controller = new AbortController();
      const run = (async () => {
        try {
          const options = await post("/dashboard/login/passkey/options", {});
          const cred = await navigator.credentials.get({
            publicKey: requestOptions(options), mediation: "conditional", signal: controller.signal,
          });
          if (cred) await finish(cred);
        } catch (err) {
          if (!controller.signal.aborted && err.name !== "AbortError") show(err);
        }
      })();
      conditional = { controller, run };
      await run;
      if (conditional && conditional.controller === controller) conditional = null;
    };
    button.addEventListener("click", async () => {
      error.hidden = true;
      button.disabled = true;
      if (conditional) {
        const pending = conditional;
        conditional = null;
        pending.controller.abort();
        await pending.run;
      }
      try {
        const options = await post("/dashboard/login/passkey/options", {});
        const cred = await navigator.credentials.get({ publicKey: requestOptions(options) });
        await finish(cred);
      } catch (err) {
        show(err);
        button.disabled = false;
        startConditional();
      }
    });
    startConditional();
    return;
  }

  const button = document.getElementById("add-passkey");
  if (!usable) {
    button.disabled = true;
    document.getElementById("passkey-elsewhere").hidden = false;
    return;
  }
  button.addEventListener("click", async () => {
    error.hidden = true;
    button.disabled = true;
    try {
      const options = await post("/dashboard/account/passkeys/options", {}, add.dataset.csrf);
      const cred = await navigator.credentials.create({ publicKey: creationOptions(options) });
      const name = document.getElementById("passkey-name").value.trim();
      await post("/dashboard/account/passkeys",
        { credential: credentialJson(cred), name: name || null }, add.dataset.csrf);
      window.location.assign("/dashboard/account/passkeys?done=added");
    } catch (err) {
      show(err);
      button.disabled = false;
    }
  });
})();
