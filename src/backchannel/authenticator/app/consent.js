// The consent screen. Everything the server sends is inserted as text (textContent), never as
// markup: binding messages and transaction details can hold any script, emoji or "<tags>".

const SCOPE_WORDS = {
  openid: "Confirm that it is you",
  profile: "Your name and basic profile",
  email: "Your email address",
  phone: "Your phone number",
  address: "Your postal address",
  offline_access: "Keep access while you are not using it",
};

export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

// The logo only when it comes from this server or is a data: image (the app loads nothing
// from elsewhere, and the Content-Security-Policy would block it anyway); otherwise an initial.
export function logoAllowed(uri) {
  if (typeof uri !== "string" || !uri) return false;
  if (/^data:image\/(png|gif|jpeg|webp);/i.test(uri)) return true;
  try {
    return new URL(uri, location.href).origin === location.origin;
  } catch {
    return false;
  }
}

function firstLetter(name) {
  const letters = Array.from(name.trim());
  return (letters[0] || "?").toUpperCase();
}

function clientLogo(client) {
  if (logoAllowed(client.logo_uri)) {
    return el("img", { class: "client-logo", src: client.logo_uri, alt: "", width: 48, height: 48 });
  }
  return el("span", { class: "client-logo client-initial", "aria-hidden": "true", text: firstLetter(client.name) });
}

export function formatAmount(amount, currency) {
  const value = Number(amount);
  if (!Number.isFinite(value) || !/^[A-Z]{3}$/.test(String(currency || ""))) {
    return `${amount ?? ""} ${currency ?? ""}`.trim();
  }
  return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(value);
}

function groupedIban(iban) {
  return String(iban).replace(/\s+/g, "").replace(/(.{4})(?=.)/g, "$1 ");
}

function detailRow(label, value, valueClass) {
  return [el("dt", { text: label }), el("dd", { class: valueClass, text: value, dir: "auto" })];
}

function rowsList(rows) {
  const list = el("dl", { class: "detail-list" });
  for (const row of rows) list.append(...row);
  return list;
}

function paymentTemplate(detail) {
  const amount = detail.instructedAmount || {};
  const account = detail.creditorAccount || {};
  const rows = [detailRow("Amount", formatAmount(amount.amount, amount.currency), "amount")];
  if (detail.creditorName) rows.push(detailRow("To", detail.creditorName));
  if (account.iban) rows.push(detailRow("Account (IBAN)", groupedIban(account.iban), "iban"));
  else if (Object.keys(account).length) rows.push(detailRow("Account", flatValue(account)));
  if (detail.remittanceInformationUnstructured) {
    rows.push(detailRow("Reference", detail.remittanceInformationUnstructured));
  }
  return el("section", { class: "detail payment" }, el("h3", { text: "Payment" }), rowsList(rows));
}

function flatValue(value) {
  if (value === null || value === undefined) return "";
  if (Array.isArray(value)) return value.map(flatValue).join(", ");
  if (typeof value === "object") {
    return Object.entries(value).map(([key, item]) => `${key}: ${flatValue(item)}`).join("; ");
  }
  return String(value);
}

function flatRows(object, prefix = "") {
  const rows = [];
  for (const [key, value] of Object.entries(object)) {
    if (!prefix && key === "type") continue;
    const label = prefix ? `${prefix} › ${key}` : key;
    if (value && typeof value === "object" && !Array.isArray(value)) {
      rows.push(...flatRows(value, label));
    } else {
      rows.push(detailRow(label, flatValue(value)));
    }
  }
  return rows;
}

function genericTemplate(detail) {
  const heading = el("h3", { text: String(detail.type || "Details"), dir: "auto" });
  return el("section", { class: "detail generic" }, heading, rowsList(flatRows(detail)));
}

const TEMPLATES = { payment_initiation: paymentTemplate };

export function renderDetail(detail) {
  const template = TEMPLATES[detail && detail.type] || genericTemplate;
  return template(detail || {});
}

function scopeList(scopes) {
  const list = el("ul", { class: "scopes" });
  for (const scope of scopes || []) {
    const words = SCOPE_WORDS[scope.scope] || scope.description || scope.scope;
    list.append(el("li", { text: words }));
  }
  return list;
}

function bindingMessage(message) {
  return el(
    "section",
    { class: "binding" },
    el("h3", { text: "Message" }),
    el("p", { class: "binding-message", dir: "auto", text: message }),
    el("p", { class: "hint", text: "Check that it matches the message on the other screen." }),
  );
}

function bindingChoices(id, choices) {
  const group = el(
    "fieldset",
    { class: "binding-choices", "aria-describedby": `${id}-choice-hint` },
    el("legend", { text: "Which code is shown on the other screen?" }),
    el("p", { class: "hint", id: `${id}-choice-hint`, text: "Pick it before you approve." }),
  );
  choices.forEach((choice, index) => {
    const inputId = `${id}-choice-${index}`;
    const input = el("input", { type: "radio", id: inputId, name: `${id}-choice`, value: choice });
    group.append(el("div", { class: "choice" }, input, el("label", { for: inputId, text: choice })));
  });
  return group;
}

function countdown(expiresAt) {
  const node = el("p", { class: "expiry" });
  const update = () => {
    const left = Math.max(0, Math.round(expiresAt - Date.now() / 1000));
    const minutes = Math.floor(left / 60);
    const seconds = String(left % 60).padStart(2, "0");
    if (left >= 3600) {
      const at = new Date(expiresAt * 1000).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
      node.textContent = `Expires ${at}`;
    } else {
      node.textContent = left ? `Expires in ${minutes}:${seconds}` : "This request has expired.";
    }
    return left;
  };
  update();
  const timer = setInterval(() => {
    if (!node.isConnected || !update()) clearInterval(timer);
  }, 1000);
  return node;
}

// One request as an <li>. `decide(decision, bindingChoice)` sends it; it resolves to a
// sentence for the user or throws an Error whose message is shown.
export function renderConsent(consent, decide) {
  const shown = JSON.parse(consent.content);
  const client = { ...(shown.client || {}) };
  client.name = client.name || "An application";
  const id = `r${Math.random().toString(36).slice(2, 10)}`;
  const choices = Array.isArray(consent.binding_choices) ? consent.binding_choices : null;
  const details = Array.isArray(shown.authorization_details) ? shown.authorization_details : [];
  const uv = consent.requires_user_verification;

  const article = el(
    "article",
    { class: "consent", "aria-labelledby": `${id}-title` },
    el(
      "header",
      { class: "consent-head" },
      clientLogo(client),
      el(
        "div",
        {},
        el("h2", { id: `${id}-title`, class: "client-name", dir: "auto", text: client.name }),
        el("p", { class: "lead", text: "asks you to approve this request" }),
      ),
    ),
    choices ? bindingChoices(id, choices) : shown.binding_message ? bindingMessage(shown.binding_message) : null,
    ...details.map(renderDetail),
    el("h3", { text: `If you approve, ${client.name} gets` }),
    scopeList(shown.scopes),
    countdown(consent.expires_at),
  );

  const approveLabel = uv ? "Approve with fingerprint / face / PIN" : "Approve";
  const deny = el("button", { type: "button", class: "button deny", "aria-describedby": `${id}-title`, text: "Deny" });
  const approve = el("button", { type: "button", class: "button approve", "aria-describedby": `${id}-title`, text: approveLabel });
  const report = el("button", { type: "button", class: "button report", text: "This wasn't me" });
  const outcome = el("p", { class: "outcome", role: "status" });
  const buttons = [deny, approve, report];
  article.append(
    el("div", { class: "actions" }, deny, approve),
    report,
    el("p", { class: "hint", text: "“This wasn't me” denies the request and reports it." }),
    outcome,
  );

  const chosen = () => {
    const checked = article.querySelector(`input[name="${id}-choice"]:checked`);
    return checked ? checked.value : null;
  };
  const run = async (decision) => {
    const choice = choices ? chosen() : null;
    if (decision === "approve" && choices && !choice) {
      outcome.textContent = "Pick the code shown on the other screen first.";
      outcome.dataset.kind = "error";
      article.querySelector('input[type="radio"]').focus();
      return;
    }
    buttons.forEach((button) => { button.disabled = true; });
    outcome.dataset.kind = "busy";
    outcome.textContent = "Sending…";
    try {
      outcome.textContent = await decide(decision, choice);
      outcome.dataset.kind = "done";
      article.dataset.state = "decided";
    } catch (error) {
      outcome.textContent = error.message;
      outcome.dataset.kind = "error";
      buttons.forEach((button) => { button.disabled = false; });
    }
  };
  article.addEventListener("change", () => {
    if (outcome.dataset.kind === "error") outcome.textContent = "";
  });
  deny.addEventListener("click", () => run("deny"));
  approve.addEventListener("click", () => run("approve"));
  report.addEventListener("click", () => run("report"));

  const item = el("li", { class: "request" }, article);
  item.dataset.requestId = consent.request_id;
  return item;
}
