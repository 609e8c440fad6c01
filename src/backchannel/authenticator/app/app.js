// The authenticator app: enrolment, live requests, consent and signed decisions.
import { ApiError, Listener, call } from "./api.js";
import {
  assertionJson,
  creationOptions,
  fromBase64url,
  generateDeviceKey,
  platformAuthenticatorAvailable,
  publicJwk,
  randomId,
  registrationJson,
  requestOptions,
  sha256,
  signStatement,
} from "./crypto.js";
import { renderConsent } from "./consent.js";
import { forgetDevice, loadDevice, saveDevice } from "./store.js";

const $ = (id) => document.getElementById(id);
let device = null;
let listener = null;
const shownRequests = new Map(); // request_id -> <li>

// --- Screens

function show(screen) {
  $("loading").hidden = true;
  $("enrol-screen").hidden = screen !== "enrol";
  $("home-screen").hidden = screen !== "home";
}

function defaultDeviceName() {
  const platform = (navigator.userAgentData && navigator.userAgentData.platform) || navigator.platform || "";
  return platform ? `Browser on ${platform}` : "Browser";
}

function codeFromFragment() {
  const match = /(?:^#|&)enrol=([^&]+)/.exec(location.hash);
  return match ? decodeURIComponent(match[1]) : null;
}

function showEnrolment() {
  show("enrol");
  $("device-name").value ||= defaultDeviceName();
  const code = codeFromFragment();
  if (code) {
    $("enrol-code").value = code;
    // The code stays out of the address bar (and of screenshots and history) once read.
    history.replaceState(null, "", location.pathname + location.search);
  }
  document.title = "Set up this device – Authenticator";
}

// --- Enrolment

async function enrol(event) {
  event.preventDefault();
  const method = (event.submitter && event.submitter.value) || "password";
  const error = $("enrol-error");
  error.textContent = "";
  const body = enrolmentBody(method);
  if (!body) return;
  const buttons = event.target.querySelectorAll("button");
  buttons.forEach((button) => { button.disabled = true; });
  try {
    const keyPair = await generateDeviceKey();
    body.public_jwk = await publicJwk(keyPair);
    const enrolled = await call("enrol", { method: "POST", body });
    device = {
      deviceId: enrolled.device_id,
      token: enrolled.device_token,
      user: enrolled.user,
      keyPair,
      userVerification: false,
    };
    await saveDevice(device);
    $("password").value = "";
    $("enrol-code").value = "";
    startHome();
  } catch (failure) {
    error.textContent = failure instanceof ApiError && failure.status === 401
      ? "That did not work. Check what you typed, or ask for a new code."
      : `Enrolment failed: ${failure.message}`;
  } finally {
    buttons.forEach((button) => { button.disabled = false; });
  }
}

function enrolmentBody(method) {
  const name = $("device-name").value.trim() || defaultDeviceName();
  const missing = (input, message) => {
    input.setAttribute("aria-invalid", "true");
    $("enrol-error").textContent = message;
    input.focus();
    return null;
  };
  document.querySelectorAll("#enrol-form [aria-invalid]").forEach((input) => input.removeAttribute("aria-invalid"));
  if (method === "code") {
    const code = $("enrol-code").value.trim();
    if (!code) return missing($("enrol-code"), "Type the enrolment code.");
    return { method: "code", code, name };
  }
  const username = $("username").value.trim();
  const password = $("password").value;
  if (!username) return missing($("username"), "Type your username.");
  if (!password) return missing($("password"), "Type your password.");
  return { method: "password", username, password, name };
}

// --- Home: the list of pending requests

function startHome() {
  show("home");
  document.title = "Requests – Authenticator";
  const user = device.user || {};
  $("account").textContent = user.display_name
    ? `Signed in as ${user.display_name} (${user.username})`
    : `Signed in as ${user.username || "you"}`;
  updateSettings();
  listener = new Listener(device.token, {
    onChange: refreshInbox,
    onState: showConnection,
    onRevoked: revoked,
  });
  listener.start();
}

function showConnection(state) {
  const line = $("connection");
  line.dataset.state = state;
  line.textContent = state === "live" ? "Connected: new requests appear here at once." : "Reconnecting… checking for requests every 5 seconds.";
}

async function refreshInbox() {
  const { requests } = await call("inbox", { token: device.token });
  const pending = new Set(requests.map((consent) => consent.request_id));
  for (const [requestId, item] of shownRequests) {
    if (!pending.has(requestId) && item.querySelector("article").dataset.state !== "decided") {
      item.remove();
      shownRequests.delete(requestId);
    }
  }
  const fresh = requests.filter((consent) => !shownRequests.has(consent.request_id));
  for (const consent of fresh.reverse()) {
    const item = renderConsent(consent, (decision, choice) => decide(consent, decision, choice));
    shownRequests.set(consent.request_id, item);
    $("requests").prepend(item);
  }
  $("empty").hidden = shownRequests.size > 0;
  if (fresh.length) announce(fresh);
}

function announce(fresh) {
  const names = fresh.map((consent) => {
    try { return JSON.parse(consent.content).client.name; } catch { return "an application"; }
  });
  $("announcer").textContent = fresh.length === 1
    ? `New request from ${names[0]}.`
    : `${fresh.length} new requests.`;
}

const OUTCOMES = {
  approved: "Approved. You can go back to the other screen.",
  denied: "Denied. Nothing was shared.",
  reported: "Reported. The request was denied and we will look into it.",
};

async function decide(consent, decision, bindingChoice) {
  const contentHash = await sha256(consent.content);
  const claims = {
    device_id: device.deviceId,
    request_id: consent.request_id,
    content_hash: contentHash,
    decision,
    iat: Math.floor(Date.now() / 1000),
    jti: randomId(),
  };
  if (bindingChoice) claims.binding_choice = bindingChoice;
  const body = { statement: null, webauthn: null };
  if (decision === "approve" && consent.requires_user_verification) {
    body.webauthn = await verifyUser(consent.request_id);
  }
  body.statement = await signStatement(device.keyPair.privateKey, claims);
  const path = `requests/${encodeURIComponent(consent.request_id)}/decision`;
  try {
    const { result } = await call(path, { method: "POST", body, token: device.token });
    return OUTCOMES[result] || `Done (${result}).`;
  } catch (error) {
    if (error.status === 409) throw new Error("This request is no longer waiting for you.");
    throw error;
  }
}

async function verifyUser(requestId) {
  const path = `requests/${encodeURIComponent(requestId)}/webauthn/options`;
  const options = await call(path, { method: "POST", body: {}, token: device.token });
  try {
    const credential = await navigator.credentials.get({ publicKey: requestOptions(options) });
    return assertionJson(credential);
  } catch (error) {
    throw new Error(`Fingerprint / face / PIN check did not complete (${error.name || error.message}).`);
  }
}

// --- Device settings: notifications, user verification, forget

async function updateSettings() {
  const webauthn = $("webauthn-button");
  webauthn.hidden = !(await platformAuthenticatorAvailable());
  webauthn.textContent = device.userVerification
    ? "Fingerprint / face / PIN is on"
    : "Use fingerprint / face / PIN";
  webauthn.setAttribute("aria-pressed", device.userVerification ? "true" : "false");
  $("notify-button").hidden = !("serviceWorker" in navigator && "PushManager" in window);
}

function settingsStatus(text) {
  $("settings-status").textContent = text;
}

async function registerWebAuthn() {
  try {
    const options = await call("webauthn/register/options", { method: "POST", body: {}, token: device.token });
    const credential = await navigator.credentials.create({ publicKey: creationOptions(options) });
    await call("webauthn/register", { method: "POST", body: registrationJson(credential), token: device.token });
    device.userVerification = true;
    await saveDevice(device);
    settingsStatus("Fingerprint / face / PIN is set up for this device.");
  } catch (error) {
    settingsStatus(`Could not set up fingerprint / face / PIN: ${error.message || error.name}`);
  }
  updateSettings();
}

async function enableNotifications() {
  try {
    if ((await Notification.requestPermission()) !== "granted") {
      settingsStatus("Notifications are blocked for this app in your browser settings.");
      return;
    }
    const registration = await navigator.serviceWorker.ready;
    const { public_key: publicKey } = await call("push/key", { token: device.token });
    const subscription = await registration.pushManager.subscribe({
      userVisibleOnly: true,
      applicationServerKey: fromBase64url(publicKey),
    });
    await call("push/subscription", { method: "POST", body: subscription.toJSON(), token: device.token });
    settingsStatus("Notifications are on.");
  } catch (error) {
    settingsStatus(`Notifications are not available here: ${error.message || error.name}`);
  }
}

async function forget() {
  if (listener) listener.stop();
  await forgetDevice();
  device = null;
  shownRequests.clear();
  $("requests").replaceChildren();
  showEnrolment();
  $("enrol-error").textContent = "This device was removed from this browser.";
}

async function revoked() {
  await forget();
  $("enrol-error").textContent = "This device was revoked. Set it up again to keep using it.";
}

// --- Start

async function main() {
  $("enrol-form").addEventListener("submit", enrol);
  $("webauthn-button").addEventListener("click", registerWebAuthn);
  $("notify-button").addEventListener("click", enableNotifications);
  $("forget-button").addEventListener("click", forget);
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("sw.js", { scope: "./" }).catch(() => {});
  }
  device = (await loadDevice()) || null;
  if (device && !codeFromFragment()) startHome();
  else showEnrolment();
}

main();
