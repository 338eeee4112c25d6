// FutureAuth demo front end: plain JS, no framework, no third-party auth client.
// Every request goes through api(), which sends cookies (credentials: "include") and JSON.
"use strict";

const RESEND_SECONDS = 30;
const SCREENS = ["loading", "verifying", "sign-in", "code-screen", "magic-sent", "signed-in"];
const $ = (id) => document.getElementById(id);

/** An error answer of the API: `{"error": {"code", "message"}}`. */
class ApiFailure extends Error {
  constructor(status, code, message, retryAfter) {
    super(message || code);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

/** GET `path`, or POST `body` as JSON when a body is given. Resolves to the JSON answer. */
async function api(path, body) {
  const options = { credentials: "include", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    options.method = "POST";
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, options);
  } catch (_) {
    throw new ApiFailure(0, "network", "Could not reach the server. Check your connection and try again.");
  }
  let data = null;
  try {
    data = await response.json();
  } catch (_) {
    data = null;
  }
  if (!response.ok) {
    const error = (data && data.error) || {};
    const retryAfter = parseInt(response.headers.get("Retry-After") || "", 10);
    throw new ApiFailure(response.status, error.code || "http_" + response.status, error.message,
      Number.isFinite(retryAfter) ? retryAfter : null);
  }
  return data;
}

function seconds(n) {
  if (n < 90) return n + (n === 1 ? " second" : " seconds");
  const minutes = Math.ceil(n / 60);
  return minutes + " minutes";
}

/** A sentence for an API error the user can act on. */
function explain(err) {
  switch (err.code) {
    case "invalid_email": return "That email address doesn't look right. Check it and try again.";
    case "invalid_phone": return "Enter the phone number in international format, starting with + and the country code, e.g. +15551234567.";
    case "invalid_code": return "That code is wrong. Check it and try again.";
    case "code_expired": return "That code has expired. Press \u201cResend code\u201d to get a new one.";
    case "too_many_attempts": return "Too many wrong tries for this code. Press \u201cResend code\u201d to get a new one.";
    case "rate_limited":
      return err.retryAfter
        ? "Too many attempts. Please wait " + seconds(err.retryAfter) + " and try again."
        : "Too many attempts. Please wait a little and try again.";
    case "invalid_magic_link": return "This sign-in link is invalid or was already used. Request a new one.";
    case "magic_link_expired": return "This sign-in link has expired. Request a new one.";
    case "callback_not_allowed": return "This site is not allowed to receive sign-in links.";
    case "cross_site_request": return "The request was blocked because it came from another site.";
    case "delivery_failed": return "We couldn't send the message right now. Try again in a moment.";
    case "unauthorized": return "Your session has ended. Please sign in again.";
    case "identifier_taken": return "That address belongs to another account, so nothing changed.";
    case "last_identifier": return "That is the only way you can sign in: add another first.";
    case "reauthentication_required": return "For your safety, sign in again, then delete your account.";
    case "user_disabled": return "This account is disabled.";
    case "network": return err.message;
    case "passkey_rejected": return "That passkey was not accepted here. Sign in with a code or link instead.";
    case "passkey_challenge_invalid": return "The passkey request timed out. Please try again.";
    case "user_disabled": return "This account is disabled.";
    case "NotAllowedError": return "The passkey prompt was closed or timed out.";
    case "InvalidStateError": return "This device already has a passkey for your account.";
    default: return err.message || "Something went wrong. Please try again.";
  }
}

function show(screen) {
  for (const id of SCREENS) $(id).hidden = id !== screen;
  // The email field offers passkeys (autofill) while the sign-in screen shows.
  if (screen === "sign-in") startConditional(); else stopConditional();
  const focus = { "sign-in": "email", "code-screen": "code" }[screen];
  if (focus) $(focus).focus();
}

function showError(err) {
  const box = $("error");
  // A browser's WebAuthn refusal (DOMException) is explained by its name.
  if (err && !err.code && err.name) err = { code: err.name, message: err.message };
  box.textContent = typeof err === "string" ? err : explain(err);
  box.hidden = false;
  $("notice").hidden = true;
}

function showNotice(text) {
  $("notice").textContent = text;
  $("notice").hidden = false;
  $("error").hidden = true;
}

function clearMessages() {
  $("error").hidden = true;
  $("error").textContent = "";
  $("notice").hidden = true;
}

/** Disables `button` while `work` runs, so a double click sends one request. */
async function busy(button, work) {
  button.disabled = true;
  try {
    return await work();
  } finally {
    button.disabled = false;
  }
}

// ---- Resend countdowns -------------------------------------------------------------------

const timers = {};

/** Disables `buttonId` for `secs` seconds, with a countdown in `labelId`. */
function startCountdown(buttonId, labelId, secs) {
  clearInterval(timers[buttonId]);
  let left = secs;
  const tick = () => {
    if (left <= 0) {
      clearInterval(timers[buttonId]);
      $(buttonId).disabled = false;
      $(labelId).textContent = "";
      return;
    }
    $(buttonId).disabled = true;
    $(labelId).textContent = "You can resend in " + left + " s";
    left -= 1;
  };
  tick();
  timers[buttonId] = setInterval(tick, 1000);
}

// ---- Sign-in by code ---------------------------------------------------------------------

/** What the code screen is for: `{ kind: "email" | "phone", value }`. */
let pending = null;

// The code screen survives a reload: the destination, the channel and when the code was
// sent are kept in sessionStorage (this tab only, gone when it closes). Never the code.
const PENDING_KEY = "futureauth-demo.pending-code";

function rememberPending(kind, value, sentAt) {
  try {
    sessionStorage.setItem(PENDING_KEY, JSON.stringify({ kind, value, sentAt }));
  } catch (_) {
    // Storage is off (private mode, quota): a reload goes back to the sign-in form.
  }
}

function forgetPending() {
  pending = null;
  try {
    sessionStorage.removeItem(PENDING_KEY);
  } catch (_) {
    // Nothing was stored.
  }
}

/** The remembered code screen, or null when there is none (or it is malformed). */
function recallPending() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(PENDING_KEY) || "null");
    if (saved && (saved.kind === "email" || saved.kind === "phone")
      && typeof saved.value === "string" && saved.value !== "") {
      return { kind: saved.kind, value: saved.value, sentAt: Number(saved.sentAt) || 0 };
    }
  } catch (_) {
    // Fall through: forget whatever is there.
  }
  forgetPending();
  return null;
}

/** Shows the code screen for `kind`/`value`; the resend countdown runs from `sentAt` (ms). */
function showCodeScreen(kind, value, sentAt) {
  pending = { kind, value };
  $("code-destination").textContent = value;
  $("code").value = "";
  show("code-screen");
  const elapsed = Math.max(0, Math.floor((Date.now() - sentAt) / 1000));
  startCountdown("resend", "countdown", Math.max(0, RESEND_SECONDS - elapsed));
}

async function sendCode(kind, value) {
  await api("/api/auth/send-otp", { [kind]: value });
  const sentAt = Date.now();
  rememberPending(kind, value, sentAt);
  showCodeScreen(kind, value, sentAt);
}

/** Back from the code screen to the form, with the address filled in to correct it. */
function leaveCodeScreen() {
  const input = pending && pending.kind === "phone" ? "phone" : "email";
  if (pending) $(input).value = pending.value;
  forgetPending();
  clearMessages();
  show("sign-in");
  $(input).focus();
}

function onSendFailed(err, buttonId, labelId) {
  showError(err);
  if (err.code === "rate_limited" && err.retryAfter && buttonId) {
    startCountdown(buttonId, labelId, err.retryAfter);
  }
}

async function verifyCode() {
  const code = $("code").value.trim();
  if (!code) {
    showError("Enter the code from the message.");
    return;
  }
  clearMessages();
  await api("/api/auth/verify-otp", { [pending.kind]: pending.value, code });
  await showSignedIn();
}

// ---- Sign-in by magic link ---------------------------------------------------------------

let pendingLinkEmail = null;
let linkPoll = null;

/**
 * Emails a link to the SDK's landing page (no `callback_url`): opening it never signs in by
 * itself (mail scanners open links), its button does. Opened on another device, that page
 * asks for the number shown here, and this page then receives the session by polling.
 */
async function sendLink(email) {
  const sent = await api("/api/auth/send-magic-link", { email });
  pendingLinkEmail = email;
  $("magic-destination").textContent = email;
  $("match-number").textContent = sent.match_number || "··";
  $("link-code").value = "";
  $("link-match").hidden = false;
  $("link-code-form").hidden = false;
  $("resend-link").textContent = "Resend link";
  show("magic-sent");
  startCountdown("resend-link", "link-countdown", RESEND_SECONDS);
  watchLink();
}

/** Polls `magic-link-status` while the "check your inbox" screen is up. */
function watchLink() {
  stopWatchingLink();
  linkPoll = setInterval(async () => {
    if ($("magic-sent").hidden) return stopWatchingLink();
    let status;
    try {
      status = await api("/api/auth/magic-link-status", {});
    } catch (_) {
      return; // an outage: try again on the next tick
    }
    if (status.status === "signed_in") {
      stopWatchingLink();
      await showSignedIn();
    } else if (status.status === "none") {
      stopWatchingLink();
      // Used in another tab of this browser, or cancelled by a wrong number.
      try {
        await showSignedIn();
      } catch (_) {
        showLinkDead();
      }
    } else if (status.match_number) {
      $("match-number").textContent = status.match_number;
    }
  }, 1500);
}

/**
 * The link and its code are gone (a wrong number was typed, or they expired): hide the dead
 * number and code box, and offer a new link at once instead of a countdown.
 */
function showLinkDead() {
  $("link-match").hidden = true;
  $("link-code-form").hidden = true;
  clearInterval(timers["resend-link"]);
  $("link-countdown").textContent = "";
  $("resend-link").disabled = false;
  $("resend-link").textContent = "Send a new link";
  showError("This sign-in link no longer works (used, expired, or a wrong number was typed). Send a new link to try again.");
}

function stopWatchingLink() {
  if (linkPoll) clearInterval(linkPoll);
  linkPoll = null;
}

async function verifyLinkCode() {
  const code = $("link-code").value.trim();
  if (!code) {
    showError("Enter the code from the email.");
    return;
  }
  clearMessages();
  await api("/api/auth/verify-otp", { email: pendingLinkEmail, code });
  stopWatchingLink();
  await showSignedIn();
}

/** `/auth/verify?token=...`: the GET only loads this page; the token is POSTed here. */
async function verifyMagicLink() {
  const tokens = new URLSearchParams(location.search).getAll("token");
  // Drop the token from the address bar and history: it is single-use anyway.
  history.replaceState(null, "", "/");
  if (tokens.length > 1) {
    // A genuine link carries one token. Two mean someone planted their own in the
    // callback URL, to sign you into their account: use neither.
    show("sign-in");
    showError("This sign-in link is not valid (it carries more than one token). Request a new one.");
    return;
  }
  const token = tokens[0];
  if (!token) {
    show("sign-in");
    showError("This sign-in link is incomplete. Request a new one.");
    return;
  }
  show("verifying");
  try {
    await api("/api/auth/verify-magic-link", { token });
    await showSignedIn();
  } catch (err) {
    // A used or expired link does not sign anyone out: show whatever state we are in.
    try {
      await showSignedIn();
    } catch (_) {
      show("sign-in");
    }
    showError(err);
  }
}

// ---- Signed in ---------------------------------------------------------------------------

function describeAgent(ua) {
  if (!ua) return "Unknown device";
  const browser = /Edg\//.test(ua) ? "Edge" : /Firefox\//.test(ua) ? "Firefox"
    : /Chrome\//.test(ua) ? "Chrome" : /Safari\//.test(ua) ? "Safari"
    : /curl|reqwest/i.test(ua) ? "API client" : "Browser";
  const os = /Android/.test(ua) ? "Android" : /iPhone|iPad/.test(ua) ? "iOS"
    : /Windows/.test(ua) ? "Windows" : /Mac OS X/.test(ua) ? "macOS"
    : /Linux/.test(ua) ? "Linux" : "";
  return os ? browser + " on " + os : browser;
}

function formatDate(iso) {
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleString();
}

function renderSessions(sessions) {
  const list = $("sessions");
  list.replaceChildren();
  // This device first, then the others as the server lists them.
  const ordered = sessions.filter((s) => s.current).concat(sessions.filter((s) => !s.current));
  for (const s of ordered) {
    const item = document.createElement("li");
    item.dataset.sessionId = s.id;
    if (s.current) item.classList.add("current");

    const text = document.createElement("div");
    const title = document.createElement("div");
    title.textContent = describeAgent(s.user_agent);
    if (s.current) {
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.textContent = "This device";
      title.append(badge);
    }
    const meta = document.createElement("div");
    meta.className = "session-meta";
    meta.textContent = (s.ip_address || "unknown IP") + " \u00b7 signed in " + formatDate(s.created_at);
    text.append(title, meta);
    item.append(text);

    if (!s.current) {
      const revoke = document.createElement("button");
      revoke.type = "button";
      revoke.className = "secondary small";
      revoke.textContent = "Sign out";
      revoke.setAttribute("aria-label", "Sign out " + describeAgent(s.user_agent) + " session");
      revoke.addEventListener("click", () => busy(revoke, async () => {
        try {
          await api("/api/auth/revoke-session", { id: s.id });
          await showSignedIn();
        } catch (err) {
          showError(err);
        }
      }));
      item.append(revoke);
    }
    list.append(item);
  }
}

/** Loads the user and sessions and shows them; rejects (401) when signed out. */
async function showSignedIn() {
  const me = await api("/api/me");
  const { sessions } = await api("/api/auth/sessions");
  $("user-email").textContent = me.user.email || "\u2014";
  $("user-phone").textContent = me.user.phone_number || "\u2014";
  $("user-id").textContent = me.user.id;
  $("new-phone-label").textContent = me.user.phone_number
    ? "Change phone number: the new number gets a code, you get a notice"
    : "Add a phone number to sign in with it too";
  renderSessions(sessions);
  await loadPasskeys();
  forgetPending();
  show("signed-in");
}

function signedOut(message) {
  forgetPending();
  show("sign-in");
  showNotice(message);
}

// ---- Passkeys ------------------------------------------------------------------------------
// The server speaks WebAuthn JSON with base64url binary fields; the browser wants buffers.

/** Passkeys are on for this run and this page's host is their relying party. */
let passkeysOn = false;
/** The pending conditional (autofill) request, to abort before a button's own. */
let conditional = null;

function fromB64url(s) {
  s = s.replace(/-/g, "+").replace(/_/g, "/");
  while (s.length % 4) s += "=";
  const bin = atob(s);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return bytes.buffer;
}

function toB64url(buffer) {
  let bin = "";
  for (const b of new Uint8Array(buffer)) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function creationOptions(options) {
  const pk = Object.assign({}, options.publicKey);
  pk.challenge = fromB64url(pk.challenge);
  pk.user = Object.assign({}, pk.user, { id: fromB64url(pk.user.id) });
  pk.excludeCredentials = (pk.excludeCredentials || []).map((c) => Object.assign({}, c, { id: fromB64url(c.id) }));
  return pk;
}

function requestOptions(options) {
  const pk = Object.assign({}, options.publicKey);
  pk.challenge = fromB64url(pk.challenge);
  pk.allowCredentials = (pk.allowCredentials || []).map((c) => Object.assign({}, c, { id: fromB64url(c.id) }));
  return pk;
}

/** A PublicKeyCredential as the server reads it. */
function credentialJson(cred) {
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
}

async function finishPasskeySignIn(cred) {
  await api("/api/auth/passkey/verify", { credential: credentialJson(cred) });
  clearMessages();
  await showSignedIn();
}

/** Offers passkeys in the email field's autofill (conditional mediation), once at a time. */
async function startConditional() {
  if (!passkeysOn || conditional) return;
  const available = window.PublicKeyCredential && PublicKeyCredential.isConditionalMediationAvailable
    && await PublicKeyCredential.isConditionalMediationAvailable();
  if (!available || conditional) return;
  const controller = new AbortController();
  conditional = controller;
  try {
    const options = await api("/api/auth/passkey/options", {});
    const cred = await navigator.credentials.get({
      publicKey: requestOptions(options), mediation: "conditional", signal: controller.signal,
    });
    if (cred) await finishPasskeySignIn(cred);
  } catch (err) {
    if (!controller.signal.aborted && err.name !== "AbortError") showError(err);
  } finally {
    if (conditional === controller) conditional = null;
  }
}

function stopConditional() {
  if (conditional) {
    conditional.abort();
    conditional = null;
  }
}

async function signInWithPasskey() {
  clearMessages();
  stopConditional();
  try {
    const options = await api("/api/auth/passkey/options", {});
    const cred = await navigator.credentials.get({ publicKey: requestOptions(options) });
    await finishPasskeySignIn(cred);
  } catch (err) {
    showError(err);
    startConditional();
  }
}

async function addPasskey() {
  clearMessages();
  try {
    const options = await api("/api/auth/passkey/register/options", {});
    const cred = await navigator.credentials.create({ publicKey: creationOptions(options) });
    const { passkey } = await api("/api/auth/passkey/register", { credential: credentialJson(cred) });
    showNotice("Passkey \u201c" + passkey.name + "\u201d added. Next time, sign in with it.");
    await loadPasskeys();
  } catch (err) {
    showError(err);
  }
}

async function loadPasskeys() {
  if (!passkeysOn) {
    $("passkeys-section").hidden = true;
    return;
  }
  const { passkeys } = await api("/api/auth/passkeys");
  renderPasskeys(passkeys);
  $("passkeys-section").hidden = false;
}

function renderPasskeys(passkeys) {
  const list = $("passkeys");
  list.replaceChildren();
  $("no-passkeys").hidden = passkeys.length > 0;
  for (const p of passkeys) {
    const item = document.createElement("li");
    item.dataset.passkeyId = p.id;
    const text = document.createElement("div");
    const name = document.createElement("div");
    name.className = "passkey-name";
    name.textContent = p.name;
    const meta = document.createElement("div");
    meta.className = "session-meta";
    meta.textContent = "added " + formatDate(p.created_at) + " \u00b7 "
      + (p.last_used_at ? "last used " + formatDate(p.last_used_at) : "not used yet")
      + (p.backup_eligible ? " \u00b7 synced" : "");
    text.append(name, meta);

    const rename = document.createElement("button");
    rename.type = "button";
    rename.className = "secondary small passkey-rename";
    rename.textContent = "Rename";
    rename.setAttribute("aria-label", "Rename passkey " + p.name);
    rename.addEventListener("click", () => {
      const input = document.createElement("input");
      input.className = "passkey-name-input";
      input.value = p.name;
      input.maxLength = 64;
      input.setAttribute("aria-label", "New name for passkey " + p.name);
      const save = document.createElement("button");
      save.type = "button";
      save.className = "small passkey-save";
      save.textContent = "Save";
      save.addEventListener("click", () => busy(save, async () => {
        try {
          await api("/api/auth/passkey/rename", { id: p.id, name: input.value });
          await loadPasskeys();
        } catch (err) {
          showError(err);
        }
      }));
      name.replaceChildren(input, save);
      input.focus();
    });

    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "secondary small passkey-delete";
    remove.textContent = "Delete";
    remove.setAttribute("aria-label", "Delete passkey " + p.name);
    remove.addEventListener("click", () => busy(remove, async () => {
      try {
        await api("/api/auth/passkey/delete", { id: p.id });
        showNotice("Passkey deleted. You can still sign in with an email or SMS code.");
        await loadPasskeys();
      } catch (err) {
        showError(err);
      }
    }));
    item.append(text, rename, remove);
    list.append(item);
  }
}

// ---- Wiring ------------------------------------------------------------------------------

function onSubmit(formId, handler) {
  $(formId).addEventListener("submit", (event) => {
    event.preventDefault();
    const button = event.target.querySelector("button[type=submit]");
    busy(button, handler);
  });
}

function wire() {
  onSubmit("email-form", async () => {
    clearMessages();
    try { await sendCode("email", $("email").value.trim()); }
    catch (err) { onSendFailed(err); }
  });
  onSubmit("phone-form", async () => {
    clearMessages();
    try { await sendCode("phone", $("phone").value.trim()); }
    catch (err) { onSendFailed(err); }
  });
  onSubmit("magic-form", async () => {
    clearMessages();
    try { await sendLink($("magic-email").value.trim()); }
    catch (err) { onSendFailed(err); }
  });
  onSubmit("link-code-form", async () => {
    try { await verifyLinkCode(); }
    catch (err) { showError(err); $("link-code").select(); }
  });
  onSubmit("code-form", async () => {
    try { await verifyCode(); }
    catch (err) {
      showError(err);
      // This code is dead: the message says to resend, so let that happen now.
      if (err.code === "too_many_attempts" || err.code === "code_expired") {
        startCountdown("resend", "countdown", 0);
      }
      $("code").select();
    }
  });
  $("resend").addEventListener("click", async () => {
    if (!pending) return;
    clearMessages();
    $("resend").disabled = true;
    try {
      await sendCode(pending.kind, pending.value);
      showNotice("A new code is on its way. Only the newest code works.");
    } catch (err) {
      $("resend").disabled = false;
      onSendFailed(err, "resend", "countdown");
    }
  });
  $("resend-link").addEventListener("click", async () => {
    if (!pendingLinkEmail) return;
    clearMessages();
    $("resend-link").disabled = true;
    try {
      await sendLink(pendingLinkEmail);
      showNotice("A new link is on its way. Only the newest link works.");
    } catch (err) {
      $("resend-link").disabled = false;
      onSendFailed(err, "resend-link", "link-countdown");
    }
  });
  $("passkey-button").addEventListener("click", () => busy($("passkey-button"), signInWithPasskey));
  $("add-passkey").addEventListener("click", () => busy($("add-passkey"), addPasskey));
  $("back").addEventListener("click", leaveCodeScreen);
  $("back-link").addEventListener("click", () => {
    stopWatchingLink();
    clearMessages();
    show("sign-in");
  });
  $("sign-out").addEventListener("click", () => busy($("sign-out"), async () => {
    try {
      await api("/api/auth/sign-out", {});
      signedOut("You are signed out.");
    } catch (err) {
      showError(err);
    }
  }));
  $("sign-out-all").addEventListener("click", () => busy($("sign-out-all"), async () => {
    try {
      const { revoked } = await api("/api/auth/sign-out-all", {});
      signedOut("Signed out everywhere (" + revoked + (revoked === 1 ? " session" : " sessions") + ").");
    } catch (err) {
      showError(err);
    }
  }));
}

// ---- Your account: change email, add phone, delete --------------------------------------

/** The address change waiting for its code: `{kind: "email" | "phone", value}`. */
let pendingChange = null;

async function askChange(kind, value) {
  clearMessages();
  await api("/api/auth/change-identifier", { [kind]: value });
  pendingChange = { kind, value };
  $("change-destination").textContent = value;
  $("change-code").value = "";
  $("confirm-change-form").hidden = false;
  $("change-code").focus();
  showNotice("We sent a code to " + value + ". Type it below to confirm the change.");
}

async function confirmChange() {
  if (!pendingChange) return;
  const { kind, value } = pendingChange;
  await api("/api/auth/verify-identifier-change", { [kind]: value, code: $("change-code").value.trim() });
  pendingChange = null;
  $("confirm-change-form").hidden = true;
  $("new-email").value = "";
  $("new-phone").value = "";
  await showSignedIn();
  showNotice(kind === "email" ? "Your email is now " + value + "." : "You can now sign in with " + value + " too.");
}

function wireAccount() {
  onSubmit("change-email-form", async () => {
    try { await askChange("email", $("new-email").value.trim()); } catch (err) { showError(err); }
  });
  onSubmit("add-phone-form", async () => {
    try { await askChange("phone", $("new-phone").value.trim()); } catch (err) { showError(err); }
  });
  onSubmit("confirm-change-form", async () => {
    try { await confirmChange(); } catch (err) { showError(err); $("change-code").select(); }
  });
  $("cancel-change").addEventListener("click", () => {
    pendingChange = null;
    $("confirm-change-form").hidden = true;
    clearMessages();
  });
  $("delete-account").addEventListener("click", () => {
    clearMessages();
    $("confirm-delete-box").hidden = false;
    $("confirm-delete-box").scrollIntoView({ block: "nearest" });
  });
  $("cancel-delete").addEventListener("click", () => { $("confirm-delete-box").hidden = true; });
  $("confirm-delete").addEventListener("click", () => busy($("confirm-delete"), async () => {
    try {
      await api("/api/auth/delete-account", {});
      $("confirm-delete-box").hidden = true;
      signedOut("Your account is deleted.");
    } catch (err) {
      $("confirm-delete-box").hidden = true;
      if (err.code === "reauthentication_required") {
        // An old sign-in: end it, so that the person signs in afresh and retries.
        try { await api("/api/auth/sign-out", {}); } catch (_) { /* signed out below anyway */ }
        show("sign-in");
      }
      showError(err);
    }
  }));
}

async function start() {
  wireAccount();
  wire();
  const config = await api("/api/demo/config").catch(() => ({}));
  $("dev-banner").hidden = !config.dev_outbox;
  // Passkeys only on their relying party's host: a browser refuses them elsewhere.
  passkeysOn = Boolean(config.passkey_rp_id && location.hostname === config.passkey_rp_id
    && window.PublicKeyCredential);
  $("passkey-sign-in").hidden = !passkeysOn;
  if (location.pathname === "/auth/verify") {
    await verifyMagicLink();
    return;
  }
  try {
    await showSignedIn();
  } catch (err) {
    // Reloaded while waiting for a code: back to the code screen for the same address.
    const saved = recallPending();
    if (saved) {
      showCodeScreen(saved.kind, saved.value, saved.sentAt);
    } else {
      show("sign-in");
    }
    if (err.code !== "unauthorized") showError(err);
  }
}

start();
