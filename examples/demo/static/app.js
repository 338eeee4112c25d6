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
    default: return err.message || "Something went wrong. Please try again.";
  }
}

function show(screen) {
  for (const id of SCREENS) $(id).hidden = id !== screen;
  const focus = { "sign-in": "email", "code-screen": "code" }[screen];
  if (focus) $(focus).focus();
}

function showError(err) {
  const box = $("error");
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
        showError("This sign-in link no longer works (used, expired, or a wrong number was typed). Request a new one.");
      }
    } else if (status.match_number) {
      $("match-number").textContent = status.match_number;
    }
  }, 1500);
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
  forgetPending();
  show("signed-in");
}

function signedOut(message) {
  forgetPending();
  show("sign-in");
  showNotice(message);
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
  api("/api/demo/config")
    .then((config) => { $("dev-banner").hidden = !config.dev_outbox; })
    .catch(() => {});
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
