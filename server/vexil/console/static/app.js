// The vexil console: one page, hash routes, plain DOM. Every label comes from the server's
// catalogue (English or Japanese) through t(); every write sends the session's CSRF token.

const TYPING_PAUSE_MS = 250;
const state = { session: null, messages: {}, lang: "en", env: "", events: null, route: "", reload: null };

// -- small helpers ---------------------------------------------------------------------------

function t(key, params = {}) {
  let text = state.messages[key] ?? key;
  for (const [name, value] of Object.entries(params)) text = text.replaceAll(`{${name}}`, String(value));
  return text;
}

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "text") el.textContent = value;
    else el.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

// Work started by an event (typing, a live update): its failure is shown, never lost.
function attempt(work) {
  Promise.resolve().then(work).catch((e) => say(e.message, "bad"));
}

function say(text, kind = "info") {
  const box = document.getElementById("status");
  box.className = `status ${kind}`;
  box.textContent = text;
}

function when(seconds) {
  if (!seconds) return "";
  return new Date(seconds * 1000).toLocaleString(state.lang === "ja" ? "ja-JP" : "en-GB");
}

function pretty(value) {
  return JSON.stringify(sorted(value), null, 2);
}

// Numbers in definitions are kept as written. JavaScript reads every JSON number as a double, so
// 9007199254740993 would come back as ...992 and 1.0 as 1 (a float flag saved as an integer one).
// Where the browser gives the parser the source text (JSON.rawJSON), a number that would change
// is kept as its text; a browser without it cannot edit definitions (the editor says so).
const EXACT_JSON = typeof JSON.rawJSON === "function" && typeof JSON.isRawJSON === "function";
const DEFINITION_FIELDS = new Set(["variants", "targeting", "metadata", "evaluators"]);

function parseExact(text) {
  if (!EXACT_JSON) return JSON.parse(text);
  return JSON.parse(text, (key, value, context) =>
    typeof value === "number" && context?.source !== undefined && String(value) !== context.source
      ? JSON.rawJSON(context.source) : value);
}

// An answer's numbers as plain numbers again, except inside a definition's JSON.
function plainNumbers(value, exact = false) {
  if (EXACT_JSON && JSON.isRawJSON(value)) return exact ? value : Number(value.rawJSON);
  if (Array.isArray(value)) return value.map((item) => plainNumbers(item, exact));
  if (value && typeof value === "object") {
    for (const key of Object.keys(value)) value[key] = plainNumbers(value[key], exact || DEFINITION_FIELDS.has(key));
  }
  return value;
}

function sorted(value) {
  if (EXACT_JSON && JSON.isRawJSON(value)) return value;
  if (Array.isArray(value)) return value.map(sorted);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.keys(value).sort().map((k) => [k, sorted(value[k])]));
  }
  return value;
}

// JSON shown with its tokens coloured (text nodes only: nothing from the data becomes markup).
function highlighted(value) {
  const text = typeof value === "string" ? value : pretty(value);
  const pre = h("pre", { class: "json", tabindex: "0" });
  const token = /("(?:\\.|[^"\\])*"\s*:?|\btrue\b|\bfalse\b|\bnull\b|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g;
  let last = 0;
  for (const match of text.matchAll(token)) {
    pre.append(text.slice(last, match.index));
    const word = match[0];
    const kind = word.startsWith('"') ? (word.trimEnd().endsWith(":") ? "k" : "s") : /^[tfn]/.test(word) ? "b" : "n";
    pre.append(h("span", { class: `j-${kind}` }, word));
    last = match.index + word.length;
  }
  pre.append(text.slice(last));
  return pre;
}

// A line diff of two JSON texts, every line shown (nothing is cut). Lines the two share at the
// start and at the end are matched first, so a change to one entry of a long list costs nothing
// more; the lines between are aligned by longest common subsequence, whose table costs n×m. Past
// DIFF_CELLS that table is not built: the changed part is shown whole, removed then added, and a
// note says it was not aligned line by line.
const DIFF_CELLS = 4_000_000;  // about 8 MB; min(n, m) stays under 2^16 (Uint16Array)

function diff(before, after) {
  const a = before.split("\n"), b = after.split("\n");
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let endA = a.length, endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) { endA--; endB--; }
  const pre = h("pre", { class: "diff", tabindex: "0", "aria-label": t("diff.label") });
  const same = (line) => pre.append(h("span", { class: "same" }, `  ${line}\n`));
  const added = (line) => pre.append(h("ins", {}, `+ ${line}\n`));
  const removed = (line) => pre.append(h("del", {}, `- ${line}\n`));
  a.slice(0, start).forEach(same);
  const midA = a.slice(start, endA), midB = b.slice(start, endB);
  const aligned = midA.length * midB.length <= DIFF_CELLS;
  if (aligned) alignLines(midA, midB, same, added, removed);
  else { midA.forEach(removed); midB.forEach(added); }
  a.slice(endA).forEach(same);
  if (aligned) return pre;
  return h("div", {}, h("p", { class: "banner info diff-note" },
    t("diff.unaligned", { removed: midA.length, added: midB.length, from: start + 1 })), pre);
}

function alignLines(a, b, same, added, removed) {
  const n = a.length, m = b.length;
  const table = Array.from({ length: n + 1 }, () => new Uint16Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      table[i][j] = a[i] === b[j] ? table[i + 1][j + 1] + 1 : Math.max(table[i + 1][j], table[i][j + 1]);
    }
  }
  let i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) { same(a[i]); i++; j++; }
    else if (j < m && (i >= n || table[i][j + 1] >= table[i + 1][j])) { added(b[j]); j++; }
    else { removed(a[i]); i++; }
  }
}

class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message || `HTTP ${status}`);
    this.status = status;
    this.code = body?.error?.code || "";
    this.field = body?.error?.field || "";
    this.body = body || {};
  }
}

// The open local profile opens sessions by itself; when the page's session is gone (its hour
// is up, the server restarted), the first request refused for it opens another, as the first
// visit did, and is sent again: a 401 means it was not carried out. Requests refused together
// share one new session.
let reopening = null;
function reopenSession() {
  reopening ??= loadSession().finally(() => { reopening = null; });
  return reopening;
}

// `exact`: keep every number of the answer as the server wrote it (try-it values, which are
// shown as written, not computed with).
async function api(method, path, body, { exact = false, retried = false } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") {
    headers["Content-Type"] = "application/json";
    headers["X-CSRF-Token"] = state.session?.csrf || "";
  }
  const response = await fetch(path, {
    method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.text().then((text) => plainNumbers(parseExact(text), exact)).catch(() => ({}));
  if (response.status === 401 && state.session && path !== "/ui/api/session") {
    if (state.session.authRequired) {
      state.session = { signedIn: false, authRequired: true };
      renderSignIn();
    } else if (!retried) {
      await reopenSession();
      if (state.events) { stopEvents(); startEvents(); }  // its stream was refused with the session
      return api(method, path, body, { exact, retried: true });
    }
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

function query(params) {
  const q = new URLSearchParams({ env: state.env });
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  return q.toString();
}

// An inline error next to what it is about; `field` is the server's path (flag.targeting...).
function errorBox(id) {
  return h("p", { class: "error", id, role: "alert", hidden: true });
}

// The server's message often begins with the path it names ("flag.owner: too long"): the path
// is shown once, as code, and the message without it.
function showError(box, error) {
  box.hidden = false;
  const prefix = `${error.field}: `;
  const message = error.field && error.message.startsWith(prefix) ? error.message.slice(prefix.length) : error.message;
  box.replaceChildren(
    error.field ? h("code", { class: "path" }, error.field) : "",
    error.field ? " " : "",
    message,
  );
}

function field(labelKey, input, hint) {
  const id = input.id || `f-${labelKey.replace(/\W/g, "-")}`;
  input.id = id;
  return h("div", { class: "field" }, h("label", { for: id }, t(labelKey)), input, hint ? h("small", {}, hint) : "");
}

// -- language --------------------------------------------------------------------------------

async function loadMessages(lang) {
  const chosen = lang ? `?lang=${encodeURIComponent(lang)}` : "";
  const data = await (await fetch(`/ui/api/messages${chosen}`)).json();
  state.messages = data.messages;
  state.lang = data.lang;
  document.documentElement.lang = data.lang;
  document.getElementById("lang").value = data.lang;
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-label]")) el.setAttribute("aria-label", t(el.dataset.i18nLabel));
  document.title = t("title");
}

// -- session ---------------------------------------------------------------------------------

async function loadSession() {
  state.session = await api("GET", "/ui/api/session");
  const envs = state.session.environments || [];
  if (!envs.includes(state.env)) state.env = state.session.defaultEnvironment || envs[0] || "";
  const pick = document.getElementById("env");
  pick.replaceChildren(...envs.map((e) => h("option", { value: e }, e)));
  pick.value = state.env;
  const who = document.getElementById("who");
  who.textContent = state.session.signedIn && state.session.authRequired
    // A JWT without a known role signs in as the API authenticates it, and may do nothing.
    ? t("signedInAs", { subject: state.session.subject, role: state.session.role ? t(`role.${state.session.role}`) : t("role.none") })
    : state.session.signedIn ? t("openProfile") : "";
  document.getElementById("signout").hidden = !(state.session.signedIn && state.session.authRequired);
  renderNav();
}

function renderNav() {
  const can = state.session?.can || {};
  const links = [["#/flags", "nav.flags"], ["#/changes", "nav.changes"], ["#/health", "nav.health"]];
  if (can.keys) links.push(["#/keys", "nav.keys"]);
  const nav = document.getElementById("nav");
  nav.replaceChildren(...(state.session?.signedIn ? links : []).map(([href, key]) =>
    h("a", { href, "aria-current": location.hash.startsWith(href) ? "page" : false }, t(key))));
}

function renderSignIn() {
  stopEvents();
  renderNav();
  const input = h("input", { id: "credential", type: "password", autocomplete: "off", required: true });
  const error = errorBox("signin-error");
  const form = h("form", { class: "card narrow", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, t("signin.title")),
    h("p", {}, t("signin.help")),
    field("signin.credential", input),
    error,
    h("button", { type: "submit", class: "primary" }, t("signin.submit")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api("POST", "/ui/api/session", { credential: input.value });
      input.value = "";
      await loadSession();
      route();
    } catch (e) { showError(error, e); }
  });
  mount(form);
  input.focus();
}

async function signOut() {
  try { await api("DELETE", "/ui/api/session"); } catch (e) { say(e.message, "bad"); }
  state.session = { signedIn: false, authRequired: true };
  document.getElementById("who").textContent = "";
  document.getElementById("signout").hidden = true;
  renderSignIn();
}

// -- live updates ----------------------------------------------------------------------------

function startEvents() {
  if (state.events && state.events.env === state.env) return;
  stopEvents();
  const source = new EventSource(`/ui/api/events?env=${encodeURIComponent(state.env)}`);
  source.env = state.env;
  let timer = null;
  // A refused stream (the session is gone) is closed for good by the browser: in the open
  // profile, open a new session and a new stream after a pause, and re-read the page, which
  // may have missed changes meanwhile.
  source.onerror = () => {
    if (source.readyState !== EventSource.CLOSED || state.events !== source || state.session?.authRequired) return;
    setTimeout(() => attempt(async () => {
      if (state.events !== source) return;
      await reopenSession();
      stopEvents();
      startEvents();
      if (state.reload) await state.reload({});
    }), 3000);
  };
  source.onmessage = (message) => {
    const data = JSON.parse(message.data);
    document.body.dataset.live = String(data.version);
    if (data.type === "opened") return;
    clearTimeout(timer);
    timer = setTimeout(() => state.reload && attempt(() => state.reload(data)), 150);
  };
  state.events = source;
}

function stopEvents() {
  if (state.events) state.events.close();
  state.events = null;
}

// -- pages -----------------------------------------------------------------------------------

function mount(...nodes) {
  const main = document.getElementById("main");
  main.replaceChildren(...nodes);
}

function focusHeading() {
  const heading = document.querySelector("main h1");
  if (heading) { heading.tabIndex = -1; heading.focus({ preventScroll: true }); }
}

function killButton(label, onConfirm, { revive = false, text = "" } = {}) {
  return h("button", { type: "button", class: revive ? "revive" : "danger", onclick: () => confirmKill(label, onConfirm, revive) },
    text || (revive ? t("kill.revive") : t("kill.kill")));
}

// A confirmation that asks why (kill, revive, rollback, revoke): the reason goes to the log.
// `id` names its parts (#id-reason, #id-error, #id-confirm); `onConfirm(reason)` does the work
// and its error is shown inline; the dialog closes only when it succeeded.
function reasonDialog({ id, title, help, confirm, kind }, onConfirm) {
  const dialog = document.getElementById("dialog");
  const reason = h("textarea", { id: `${id}-reason`, rows: "3" });
  const error = errorBox(`${id}-error`);
  reason.setAttribute("aria-describedby", error.id);
  const form = h("form", { method: "dialog" },
    h("h2", { id: "dialog-title" }, title),
    help ? h("p", {}, help) : "",
    field("kill.reason", reason),
    error,
    h("div", { class: "row" },
      h("button", { type: "button", onclick: () => dialog.close() }, t("cancel")),
      h("button", { type: "submit", class: kind, id: `${id}-confirm` }, confirm)));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await onConfirm(reason.value);
      dialog.close();
    } catch (e) { showError(error, e); }
  });
  dialog.replaceChildren(form);
  dialog.showModal();
  reason.focus();
}

function confirmKill(what, onConfirm, revive) {
  reasonDialog({
    id: "kill",
    title: revive ? t("kill.reviveTitle", { what }) : t("kill.title", { what }),
    help: revive ? t("kill.reviveHelp") : t("kill.help"),
    confirm: revive ? t("kill.confirmRevive") : t("kill.confirm"),
    kind: revive ? "revive" : "danger",
  }, async (reason) => {
    const done = await onConfirm(reason);
    const said = revive ? t("kill.revived", { what }) : t("kill.killed", { what });
    say(said, revive ? "good" : "bad");
    if (state.reload) attempt(() => state.reload({}));
    attempt(() => showPropagation(said, revive ? "good" : "bad", done.configVersion));
  });
}

// After a kill or revive: how far its config_version has reached the fleet, asked in its own
// request (the server waits a few seconds at most). A newer write's status replaces an older one.
let propagationAsked = 0;
async function showPropagation(said, kind, version) {
  const asked = ++propagationAsked;
  say(`${said} ${t("propagation.waiting")}`, kind);
  const p = await api("GET", `/ui/api/propagation?${query({ version })}`);
  if (asked !== propagationAsked) return;
  const params = { applied: p.applied, total: p.total, ms: p.elapsedMs, laggards: p.laggards.join(", ") };
  say(`${said} ${p.complete ? t("propagation.applied", params) : t("propagation.lagging", params)}`, p.complete ? kind : "bad");
}

async function flagsPage() {
  const filters = { q: "", owner: "", tag: "", state: "", killed: "" };
  let typing = null;
  const table = h("div", { class: "table-wrap" });
  const summary = h("p", { class: "muted", id: "flag-count" });
  const envBox = h("div", { class: "env-box" });
  const inputs = {
    q: h("input", { id: "filter-q", type: "search", placeholder: t("flags.searchHint") }),
    owner: h("input", { id: "filter-owner", type: "text" }),
    tag: h("input", { id: "filter-tag", type: "text" }),
    state: h("select", { id: "filter-state" }, h("option", { value: "" }, t("any")),
      h("option", { value: "ENABLED" }, t("state.ENABLED")), h("option", { value: "DISABLED" }, t("state.DISABLED"))),
    killed: h("select", { id: "filter-killed" }, h("option", { value: "" }, t("any")),
      h("option", { value: "yes" }, t("yes")), h("option", { value: "no" }, t("no"))),
  };
  for (const [name, input] of Object.entries(inputs)) {
    input.addEventListener("input", () => {  // one request per pause in typing, not per key
      filters[name] = input.value.trim();
      pages = 1;
      clearTimeout(typing);
      typing = setTimeout(() => attempt(load), TYPING_PAUSE_MS);
    });
  }
  const can = state.session.can;
  mount(
    h("div", { class: "page-head" }, h("h1", {}, t("flags.title")),
      can.write ? h("a", { class: "button primary", href: "#/new" }, t("flags.new")) : ""),
    envBox,
    h("form", { class: "filters", role: "search", "aria-label": t("flags.filters"), onsubmit: (e) => e.preventDefault() },
      field("flags.search", inputs.q), field("flags.owner", inputs.owner), field("flags.tag", inputs.tag),
      field("flags.state", inputs.state), field("flags.killed", inputs.killed)),
    summary, table);

  let asked = 0;  // answers to earlier filters may arrive late: only the latest is shown
  let pages = 1;  // answers of the list shown ("Show more" adds one; a live update keeps them)
  async function load() {
    const mine = ++asked;
    const data = await api("GET", `/ui/api/flags?${query(filters)}`);
    for (let n = 1; n < pages && data.flags.length < data.total; n++) {
      const next = await api("GET", `/ui/api/flags?${query({ ...filters, offset: data.flags.length })}`);
      if (!next.flags.length) break;
      data.flags.push(...next.flags);
    }
    if (mine !== asked) return;
    const env = data.environment;
    envBox.replaceChildren(
      env.killSwitch
        ? h("div", { class: "banner bad", role: "alert" }, t("env.killed", { env: env.name, reason: env.killReason }))
        : "",
      can.kill
        ? killButton(t("env.whole", { env: env.name }), (reason) =>
            api("POST", "/ui/api/kill", { environment: state.env, killed: !env.killSwitch, reason }),
          { revive: env.killSwitch, text: t(env.killSwitch ? "kill.reviveEnvironment" : "kill.killEnvironment", { env: env.name }) })
        : "");
    if (can.kill) envBox.lastChild.id = "env-kill";
    summary.textContent = t("flags.count", { shown: data.flags.length, total: data.total });
    const head = ["flags.key", "flags.state", "flags.default", "flags.version", "flags.owner", "flags.lastChange"];
    table.replaceChildren(h("table", { class: "flags" },
      h("caption", { class: "sr-only" }, t("flags.title")),
      h("thead", {}, h("tr", {}, head.map((k) => h("th", { scope: "col" }, t(k))))),
      h("tbody", {}, data.flags.map((f) => h("tr", { "data-key": f.key },
        h("th", { scope: "row", "data-label": t("flags.key") }, h("a", { href: `#/flag/${encodeURIComponent(f.key)}` }, f.key),
          f.tags.length ? h("span", { class: "tags" }, f.tags.map((tag) => h("span", { class: "tag" }, tag))) : ""),
        h("td", { "data-label": t("flags.state") }, h("span", { class: `badge ${f.killed ? "bad" : "good"}` },
          f.killed ? t("state.killed") : t(`state.${f.state}`))),
        h("td", { "data-label": t("flags.default") }, f.defaultVariant ?? "—"),
        h("td", { "data-label": t("flags.version") }, f.version),
        h("td", { "data-label": t("flags.owner") }, f.owner || "—"),
        h("td", { "data-label": t("flags.lastChange") }, when(f.updatedAt), h("br"), h("small", {}, f.updatedBy)))))),
      data.flags.length < data.total
        ? h("button", { type: "button", id: "flags-more", onclick: () => { pages++; attempt(load); } }, t("flags.more"))
        : "");
  }
  state.reload = load;
  await load();
}

function newFlagPage() {
  const key = h("input", { id: "new-key", type: "text", required: true, autocomplete: "off" });
  const keyError = errorBox("new-key-error");
  const editor = definitionEditor({ variants: { on: true, off: false }, defaultVariant: "off", targeting: null, metadata: {} }, {});
  const reason = h("input", { id: "new-reason", type: "text" });
  const form = h("form", { class: "card", "aria-labelledby": "new-title" },
    h("h1", { id: "new-title" }, t("flags.new")),
    field("flags.key", key), keyError,
    editor.node,
    field("edit.reason", reason),
    h("button", { type: "submit", class: "primary", id: "create" }, t("create")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    keyError.hidden = true;
    let flag;
    try { flag = { key: key.value.trim(), ...editor.read() }; } catch (e) { return; }
    try {
      await api("POST", "/ui/api/flags", { environment: state.env, flag, reason: reason.value });
      say(t("flags.created", { key: flag.key }), "good");
      location.hash = `#/flag/${encodeURIComponent(flag.key)}`;
    } catch (e) {
      if (e.field === "flag.key") showError(keyError, e);
      else editor.showError(e);
    }
  });
  state.reload = null;
  mount(form);
}

// The edit form: owner, description and tags as fields, the flagd definition as JSON.
function definitionEditor(flag, meta) {
  const json = h("textarea", { id: "definition", rows: "14", spellcheck: "false", class: "code" });
  // In stored order (not sorted, as views are): a save sends the definition back as it came.
  json.value = JSON.stringify({ variants: flag.variants, defaultVariant: flag.defaultVariant ?? null,
    targeting: flag.targeting ?? null, metadata: flag.metadata || {} }, null, 2);
  const owner = h("input", { id: "edit-owner", type: "text", value: meta.owner || "" });
  const description = h("textarea", { id: "edit-description", rows: "2" });
  description.value = meta.description || "";
  const tags = h("input", { id: "edit-tags", type: "text", value: (meta.tags || []).join(", ") });
  // A field left as shown sends what is stored: the form must not rewrite what it did not edit
  // (an owner with spaces around it, a tag holding a comma).
  const shown = { owner: owner.value, description: description.value, tags: tags.value };
  const errors = { json: errorBox("definition-error"), owner: errorBox("owner-error"),
    description: errorBox("description-error"), tags: errorBox("tags-error") };
  json.setAttribute("aria-describedby", "definition-error");
  const node = h("fieldset", { class: "editor" }, h("legend", {}, t("edit.definition")),
    field("flags.owner", owner), errors.owner,
    field("edit.description", description), errors.description,
    field("edit.tags", tags, t("edit.tagsHint")), errors.tags,
    field("edit.json", json, t("edit.jsonHint")), errors.json);
  function clear() { for (const box of Object.values(errors)) box.hidden = true; }
  return {
    node,
    read() {
      clear();
      if (!EXACT_JSON) {
        showError(errors.json, { field: "", message: t("edit.inexactBrowser") });
        throw new Error("inexact JSON");
      }
      let body;
      try { body = parseExact(json.value); } catch (e) {
        showError(errors.json, { field: "", message: t("edit.badJson", { error: e.message }) });
        json.focus();
        throw e;
      }
      if (!body || typeof body !== "object" || Array.isArray(body)) {
        showError(errors.json, { field: "", message: t("edit.notObject") });
        throw new Error("not an object");
      }
      if (body.targeting === null) delete body.targeting;
      return { ...body,
        owner: owner.value === shown.owner ? meta.owner || "" : owner.value.trim(),
        description: description.value === shown.description ? meta.description || "" : description.value,
        tags: tags.value === shown.tags ? meta.tags || [] : tags.value.split(",").map((s) => s.trim()).filter(Boolean) };
    },
    showError(error) {
      clear();
      const path = error.field || "";
      const box = path.startsWith("flag.owner") ? errors.owner : path.startsWith("flag.description")
        ? errors.description : path.startsWith("flag.tags") ? errors.tags : errors.json;
      showError(box, error);
    },
    clear,
  };
}

async function flagPage(key) {
  const data = await api("GET", `/ui/api/flags/${encodeURIComponent(key)}?${query({})}`);
  let flag = data.flag;
  let environment = data.environment;  // its kill switch turns this flag off too
  const can = state.session.can;
  const head = h("div", { class: "page-head" });
  const envNotice = h("div", { id: "env-notice" });
  const overview = h("section", { "aria-labelledby": "def-title" });
  const notice = h("div", { id: "live-notice", role: "status" });
  // The flag's own kill switch (the button) and the environment's (a banner): either turns it off.
  function renderHead() {
    const killed = flag.state === "DISABLED";
    const off = killed || environment.killSwitch;
    const badge = killed ? t("state.killed") : environment.killSwitch ? t("state.killedByEnvironment") : t("state.ENABLED");
    envNotice.replaceChildren(environment.killSwitch
      ? h("p", { class: "banner bad", role: "alert" }, t("flag.environmentKilled", { env: environment.name, reason: environment.killReason }))
      : "");
    head.replaceChildren(
      h("h1", {}, flag.key),
      h("span", { class: `badge ${off ? "bad" : "good"}`, id: "flag-state" }, badge),
      h("span", { class: "muted", id: "flag-version" }, t("flag.version", { version: flag.version })),
      can.kill ? killButton(flag.key, (reason) =>
        api("POST", "/ui/api/kill", { environment: state.env, key: flag.key, killed: !killed, reason }), { revive: killed }) : "");
    if (can.kill) head.lastChild.id = "flag-kill";
  }
  function renderOverview() {
    overview.replaceChildren(
      h("h2", { id: "def-title" }, t("flag.definition")),
      flag.description ? h("p", {}, flag.description) : "",
      h("dl", { class: "facts" },
        h("dt", {}, t("flags.owner")), h("dd", {}, flag.owner || "—"),
        h("dt", {}, t("edit.tags")), h("dd", {}, flag.tags.join(", ") || "—"),
        h("dt", {}, t("flags.default")), h("dd", {}, flag.defaultVariant ?? "—"),
        h("dt", {}, t("flags.lastChange")), h("dd", {}, `${when(flag.updatedAt)} · ${flag.updatedBy}`),
        flag.managedBy ? [h("dt", {}, t("flag.managedBy")), h("dd", {}, flag.managedBy)] : ""),
      h("h3", {}, t("flag.variants")), highlighted(flag.variants),
      h("h3", {}, t("flag.targeting")), flag.targeting ? highlighted(flag.targeting) : h("p", { class: "muted" }, t("flag.static")),
      h("h3", {}, t("flag.metadata")), highlighted(flag.metadata),
      h("h3", {}, t("flag.evaluators")),
      Object.keys(data.evaluators).length ? highlighted(data.evaluators) : h("p", { class: "muted" }, t("none")));
  }
  renderHead();
  renderOverview();

  // Edit + try it
  let base = flag;
  const editor = definitionEditor(flag, flag);
  const reason = h("input", { id: "edit-reason", type: "text" });
  const conflict = h("div", { id: "conflict", hidden: true, role: "alert", class: "banner warn" });
  const editForm = h("form", { class: "card", "aria-labelledby": "edit-title" },
    h("h2", { id: "edit-title" }, t("edit.title")),
    editor.node, field("edit.reason", reason), conflict,
    h("button", { type: "submit", class: "primary", id: "save" }, t("save")));
  editForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    let draft;
    try { draft = editor.read(); } catch (e) { return; }
    try {
      const saved = await api("PUT", `/ui/api/flags/${encodeURIComponent(key)}`,
        { environment: state.env, flag: draft, expectedVersion: base.version, reason: reason.value });
      flag = base = saved.flag;
      conflict.hidden = true;
      say(t("edit.saved", { version: flag.version }), "good");
      renderHead(); renderOverview(); loadHistory();
    } catch (e) {
      if (e.status === 409 && e.body.current) showConflict(e.body.current);
      else editor.showError(e);
    }
  });
  function showConflict(current) {
    conflict.hidden = false;
    conflict.replaceChildren(
      h("strong", {}, t("edit.conflict", { version: current.version, actor: current.updatedBy })),
      h("p", {}, t("edit.conflictHelp")),
      diff(pretty(definitionOf(base)), pretty(definitionOf(current))),
      h("button", { type: "button", id: "take-current", onclick: () => {
        flag = base = current;
        const fresh = definitionEditor(current, current);
        editor.node.replaceWith(fresh.node);
        Object.assign(editor, fresh);
        conflict.hidden = true;
        renderHead(); renderOverview();
      } }, t("edit.takeCurrent")));
  }

  const context = h("textarea", { id: "try-context", rows: "5", spellcheck: "false", class: "code" });
  context.value = '{\n  "targetingKey": "user-1"\n}';
  const tryError = errorBox("try-error");
  const results = h("div", { class: "side-by-side", id: "try-results", "aria-live": "polite" });
  const tryForm = h("form", { class: "card", "aria-labelledby": "try-title" },
    h("h2", { id: "try-title" }, t("try.title")),
    field("try.context", context, t("try.hint")), tryError,
    h("button", { type: "submit", id: "try" }, t("try.run")), results);
  tryForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    tryError.hidden = true;
    let ctx;
    try { ctx = parseExact(context.value || "{}"); } catch (e) {
      return showError(tryError, { field: "context", message: t("edit.badJson", { error: e.message }) });
    }
    let draft;
    try { draft = editor.read(); } catch (e) { draft = undefined; }
    try {
      // Values shown as the server answered them (9007199254740993 is no double), as definitions are.
      const answer = await api("POST", `/ui/api/flags/${encodeURIComponent(key)}/try`,
        { environment: state.env, context: ctx, draft }, { exact: true });
      results.replaceChildren(
        resultCard("try-current", t("try.current"), answer.current),
        draft ? resultCard("try-draft", t("try.draft"), answer.draft) : "");
    } catch (e) {
      if (e.field.startsWith("flag")) editor.showError(e); else showError(tryError, e);
    }
  });

  // History
  const historyBox = h("section", { class: "card", "aria-labelledby": "history-title" });
  let historyPages = 1;  // "Older versions" adds one; a reload keeps them
  async function loadHistory() {
    const revisions = [];
    let next = "";
    for (let n = 0; n < historyPages; n++) {
      const page = await api("GET", `/ui/api/flags/${encodeURIComponent(key)}/history?${query({ token: next })}`);
      revisions.push(...page.revisions);
      next = page.next;
      if (!next) break;
    }
    const pickA = h("select", { id: "diff-from" }, revisions.map((r) => h("option", { value: r.version }, `v${r.version}`)));
    const pickB = h("select", { id: "diff-to" }, revisions.map((r) => h("option", { value: r.version }, `v${r.version}`)));
    if (revisions.length > 1) pickA.value = revisions[1].version;
    const diffBox = h("div", { id: "diff" });
    function showDiff() {
      const a = revisions.find((r) => String(r.version) === pickA.value);
      const b = revisions.find((r) => String(r.version) === pickB.value);
      if (a && b) diffBox.replaceChildren(diff(pretty(definitionOf(a.flag)), pretty(definitionOf(b.flag))));
    }
    pickA.addEventListener("change", showDiff);
    pickB.addEventListener("change", showDiff);
    historyBox.replaceChildren(
      h("h2", { id: "history-title" }, t("history.title")),
      h("table", { class: "history" },
        h("thead", {}, h("tr", {}, ["history.version", "history.kind", "history.actor", "history.when", "history.reason", ""]
          .map((k) => h("th", { scope: "col" }, k ? t(k) : "")))),
        h("tbody", {}, revisions.map((r) => h("tr", { "data-version": r.version },
          h("td", { "data-label": t("history.version") }, `v${r.version}`),
          h("td", { "data-label": t("history.kind") }, t(`kind.${r.kind}`)),
          h("td", { "data-label": t("history.actor") }, r.actor),
          h("td", { "data-label": t("history.when") }, when(r.timestamp)),
          h("td", { "data-label": t("history.reason") }, r.reason),
          h("td", {}, can.write && r.version !== flag.version && !r.deleted
            ? h("button", { type: "button", class: "rollback", "data-version": r.version,
                onclick: () => confirmRollback(r.version) }, t("history.rollback")) : ""))))),
      next ? h("button", { type: "button", id: "history-older", onclick: () => { historyPages++; attempt(loadHistory); } }, t("history.older")) : "",
      h("div", { class: "row diff-pick" }, field("history.from", pickA), field("history.to", pickB)),
      diffBox);
    showDiff();
  }
  function confirmRollback(version) {
    reasonDialog({ id: "rollback", title: t("history.rollbackTitle", { key, version }), confirm: t("history.rollback"),
      kind: "primary" }, async (reason) => {
      const done = await api("POST", `/ui/api/flags/${encodeURIComponent(key)}/rollback`,
        { environment: state.env, toVersion: version, expectedVersion: flag.version, reason });
      flag = base = done.flag;
      say(t("history.rolledBack", { version, now: flag.version }), "good");
      renderHead(); renderOverview(); loadHistory();
    });
  }

  mount(head, envNotice, notice, h("div", { class: "columns" }, overview, h("div", {}, can.write ? editForm : "", tryForm)), historyBox);
  await loadHistory();
  state.reload = async (event) => {
    if (event.key && event.key !== key) return;
    try {
      const fresh = await api("GET", `/ui/api/flags/${encodeURIComponent(key)}?${query({})}`);
      if (event.key && fresh.flag.version !== flag.version) {
        notice.replaceChildren(h("p", { class: "banner info" }, t("flag.changedElsewhere", { version: fresh.flag.version, actor: fresh.flag.updatedBy })));
      }
      // A kill or revive (this page's or anyone's) changes the version but not what the edit
      // form holds: the edit now starts from the new version, or its save would be refused as
      // a conflict with nothing to show. A change to the definition itself keeps the old base,
      // so the save is refused and the page shows what changed.
      if (sameEditable(base, fresh.flag)) base = fresh.flag;
      flag = fresh.flag;
      environment = fresh.environment;
      renderHead(); renderOverview(); await loadHistory();
    } catch (e) { say(e.message, "bad"); }
  };
}

function measure(value, unit) {
  if (value === null || value === undefined) return "—";
  if (unit === "s") return value < 1 ? `${(value * 1000).toFixed(0)} ms` : `${value.toFixed(1)} s`;
  if (unit === "ratio") return `${(value * 100).toFixed(2)} %`;
  return String(value);
}

// Whether two versions of a flag differ only in what the edit form does not hold (the state,
// which only the kill switch changes, and the version and its author).
function sameEditable(a, b) {
  const editable = (flag) => pretty({ ...definitionOf(flag), state: null });
  return editable(a) === editable(b);
}

function definitionOf(flag) {
  return { variants: flag.variants, defaultVariant: flag.defaultVariant ?? null, targeting: flag.targeting ?? null,
    metadata: flag.metadata, owner: flag.owner, description: flag.description, tags: flag.tags, state: flag.state };
}

function resultCard(id, title, result) {
  if (!result) return h("div", { class: "result", id }, h("h3", {}, title), h("p", { class: "muted" }, t("none")));
  return h("div", { class: "result", id }, h("h3", {}, title), h("dl", { class: "facts" },
    h("dt", {}, t("try.value")), h("dd", { class: "value" }, JSON.stringify(result.value)),
    h("dt", {}, t("try.variant")), h("dd", { class: "variant" }, result.variant ?? "—"),
    h("dt", {}, t("try.reason")), h("dd", { class: "reason" }, result.reason),
    h("dt", {}, t("try.error")), h("dd", { class: "err" }, result.errorCode ? `${result.errorCode}: ${result.errorMessage}` : "—")));
}

async function changesPage() {
  const filters = { flag: "", actor: "", kind: "" };
  const kinds = ["CREATE", "UPDATE", "DELETE", "ROLLBACK", "KILL", "ENVIRONMENT"];
  const inputs = {
    flag: h("input", { id: "changes-flag", type: "text" }),
    actor: h("input", { id: "changes-actor", type: "text" }),
    kind: h("select", { id: "changes-kind" }, h("option", { value: "" }, t("any")), kinds.map((k) => h("option", { value: k }, t(`kind.${k}`)))),
  };
  for (const [name, input] of Object.entries(inputs)) input.addEventListener("change", () => { filters[name] = input.value.trim(); pages = 1; attempt(load); });
  const list = h("div", { class: "table-wrap" });
  const more = h("div", { class: "row", id: "changes-more" });
  mount(h("h1", {}, t("changes.title")),
    h("form", { class: "filters", role: "search", onsubmit: (e) => e.preventDefault() },
      field("changes.flag", inputs.flag), field("changes.actor", inputs.actor), field("changes.kind", inputs.kind)), list, more);
  // One answer searches a bounded stretch of the log and says which: the page shows the rows so
  // far, the config versions searched, and "Older changes" while the log goes further back.
  // Each load gathers its answers apart and shows them only if no later load began meanwhile
  // (a filter typed while an answer is on its way must not mix the two).
  let asked = 0;
  let pages = 1;  // answers shown: "Older changes" adds one; a live update keeps them
  let shown = { rows: [], searchedFrom: 0, searchedTo: 0, older: null };
  async function fetchPage(into, before) {
    const page = await api("GET", `/ui/api/changes?${query({ ...filters, before })}`);
    into.rows.push(...page.changes);
    into.searchedFrom = page.searchedFrom;
    into.older = page.older;
    if (before === undefined) into.searchedTo = page.searchedTo;
  }
  async function load() {  // from the newest, as many answers as were shown
    const mine = ++asked;
    const got = { rows: [], searchedFrom: 0, searchedTo: 0, older: null };
    await fetchPage(got, undefined);
    for (let n = 1; n < pages && got.older !== null && mine === asked; n++) await fetchPage(got, got.older);
    if (mine === asked) { shown = got; render(); }
  }
  async function loadOlder() {
    const mine = ++asked;
    const got = { ...shown, rows: [...shown.rows] };
    await fetchPage(got, shown.older);
    if (mine === asked) { pages++; shown = got; render(); }
  }
  function render() {
    list.replaceChildren(h("table", { class: "changes" },
      h("thead", {}, h("tr", {}, ["changes.version", "history.kind", "changes.flag", "history.actor", "history.when", "history.reason"]
        .map((k) => h("th", { scope: "col" }, t(k))))),
      h("tbody", {}, shown.rows.map((c) => h("tr", {},
        h("td", { "data-label": t("changes.version") }, c.version),
        h("td", { "data-label": t("history.kind") }, t(`kind.${c.kind}`)),
        h("td", { "data-label": t("changes.flag") }, c.flagKey ? h("a", { href: `#/flag/${encodeURIComponent(c.flagKey)}` }, c.flagKey) : "—"),
        h("td", { "data-label": t("history.actor") }, c.actor),
        h("td", { "data-label": t("history.when") }, when(c.timestamp)),
        h("td", { "data-label": t("history.reason") }, c.reason))))));
    const { rows, searchedFrom, searchedTo, older } = shown;
    more.replaceChildren(
      h("p", { class: "muted", id: "changes-searched" }, searchedTo
        ? t(older === null ? "changes.searchedAll" : "changes.searched", { from: searchedFrom, to: searchedTo, count: rows.length })
        : t("changes.none")),
      older === null ? "" : h("button", { type: "button", id: "changes-older", onclick: () => attempt(loadOlder) }, t("changes.older")));
  }
  state.reload = load;
  await load();
}

async function healthPage() {
  const box = h("div", {});
  mount(h("h1", {}, t("health.title")), box);
  async function load() {
    const data = await api("GET", `/ui/api/health`);
    box.replaceChildren(
      h("dl", { class: "facts" },
        h("dt", {}, t("health.state")), h("dd", { id: "health-state" }, h("span", { class: `badge ${data.state === "SERVING" ? "OK" : "WARN"}` }, data.state)),
        h("dt", {}, t("health.store")), h("dd", {}, data.store),
        h("dt", {}, t("health.version")), h("dd", {}, data.version)),
      h("h2", {}, t("health.signals")),
      h("div", { class: "table-wrap" }, h("table", { class: "health" },
        h("thead", {}, h("tr", {}, ["health.signal", "health.target", "health.warning", "health.critical", "health.current"].map((k) => h("th", { scope: "col" }, t(k))))),
        h("tbody", {}, data.indicators.map((s) => h("tr", { class: `level-${s.level}`, "data-indicator": s.indicator },
          h("th", { scope: "row", "data-label": t("health.signal") }, t(`signal.${s.indicator}`)),
          h("td", { "data-label": t("health.target") }, measure(s.target, s.unit)),
          h("td", { "data-label": t("health.warning") }, measure(s.warning, s.unit)),
          h("td", { "data-label": t("health.critical") }, measure(s.critical, s.unit)),
          h("td", { "data-label": t("health.current") }, h("span", { class: `badge ${s.level}` },
            measure(s.value, s.unit), " · ", t(`level.${s.level}`)))))))),
      h("h2", {}, t("health.environments")),
      h("div", { class: "table-wrap" }, h("table", {},
        h("thead", {}, h("tr", {}, ["environment", "health.configVersion", "health.flags", "health.age", "health.subscribers", "health.feed"].map((k) => h("th", { scope: "col" }, t(k))))),
        h("tbody", {}, data.environments.map((e) => h("tr", {},
          h("th", { scope: "row", "data-label": t("environment") }, e.name),
          h("td", { "data-label": t("health.configVersion") }, e.configVersion),
          h("td", { "data-label": t("health.flags") }, e.flags),
          h("td", { "data-label": t("health.age") }, `${e.stalenessSeconds.toFixed(1)} s`),
          h("td", { "data-label": t("health.subscribers") }, e.subscribers),
          h("td", { "data-label": t("health.feed") }, h("span", { class: `badge ${e.healthy ? "good" : "bad"}` }, e.healthy ? t("health.ok") : e.lastError))))))),
      h("h2", {}, t("health.replicas")),
      h("div", { class: "table-wrap" }, h("table", { class: "replicas" },
        h("thead", {}, h("tr", {}, ["environment", "health.replica", "health.address", "health.applied", "health.lag", "health.lastSeen"].map((k) => h("th", { scope: "col" }, t(k))))),
        h("tbody", {}, data.environments.flatMap((e) => e.replicas.map((r) => h("tr", { "data-replica": r.id, "data-self": r.self },
          h("th", { scope: "row", "data-label": t("environment") }, e.name),
          h("td", { "data-label": t("health.replica") }, r.id, r.self ? [" ", h("span", { class: "badge good" }, t("health.thisServer"))] : ""),
          h("td", { "data-label": t("health.address") }, r.address),
          h("td", { "data-label": t("health.applied") }, r.configVersion),
          h("td", { "data-label": t("health.lag") }, h("span", { class: `badge ${r.lag ? "WARN" : "OK"}` }, r.lag)),
          h("td", { "data-label": t("health.lastSeen") }, `${r.lastSeenSeconds.toFixed(1)} s`))))))));
  }
  state.reload = load;
  await load();
}

async function keysPage() {
  const role = h("select", { id: "key-role" }, ["evaluator", "editor", "admin"].map((r) => h("option", { value: r }, t(`role.${r}`))));
  const scope = h("select", { id: "key-env" }, [...state.session.environments, "*"].map((e) => h("option", { value: e }, e === "*" ? t("keys.every") : e)));
  scope.value = state.env;
  const description = h("input", { id: "key-description", type: "text" });
  const error = errorBox("key-error");
  const shown = h("div", { id: "token-box", "aria-live": "assertive" });
  const list = h("div", { class: "table-wrap" });
  const form = h("form", { class: "card", "aria-labelledby": "key-new" }, h("h2", { id: "key-new" }, t("keys.create")),
    field("keys.role", role), field("environment", scope), field("edit.description", description), error,
    h("button", { type: "submit", class: "primary", id: "key-create" }, t("create")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const issued = await api("POST", "/ui/api/keys", { role: role.value, environment: scope.value, description: description.value });
      showToken(issued);
      attempt(load);
    } catch (e) { showError(error, e); }
  });
  function showToken(issued) {
    shown.replaceChildren(h("div", { class: "banner warn" }, h("strong", {}, t("keys.once")),
      h("code", { class: "token", id: "token", tabindex: "0" }, issued.token)));
  }
  mount(h("h1", {}, t("keys.title")), shown, form, list);
  async function load() {
    const { keys } = await api("GET", "/ui/api/keys");
    list.replaceChildren(h("table", {},
      h("thead", {}, h("tr", {}, ["keys.id", "keys.role", "environment", "edit.description", "keys.expires", ""].map((k) => h("th", { scope: "col" }, k ? t(k) : "")))),
      h("tbody", {}, keys.map((k) => h("tr", { "data-key-id": k.id },
        h("td", { "data-label": t("keys.id") }, h("code", {}, k.id)),
        h("td", { "data-label": t("keys.role") }, t(`role.${k.role}`)),
        h("td", { "data-label": t("environment") }, k.environment),
        h("td", { "data-label": t("edit.description") }, k.description),
        h("td", { "data-label": t("keys.expires") }, when(k.expiresAt)),
        h("td", {}, h("button", { type: "button", class: "rotate", onclick: async () => {
            try { showToken(await api("POST", `/ui/api/keys/${k.id}/rotate`, {})); attempt(load); } catch (e) { say(e.message, "bad"); }
          } }, t("keys.rotate")), " ",
          h("button", { type: "button", class: "danger revoke", onclick: () => reasonDialog(
            { id: "revoke", title: t("keys.revokeReason", { id: k.id }), confirm: t("keys.revoke"), kind: "danger" },
            async (reason) => { await api("POST", `/ui/api/keys/${k.id}/revoke`, { reason }); await load(); }),
          }, t("keys.revoke"))))))));
  }
  state.reload = null;
  await load();
}

// -- routing ---------------------------------------------------------------------------------

// Moves focus to the new page's heading (screen readers announce it), except on the first
// load, where the keyboard starts at the top (the skip link).
async function route(event) {
  if (!state.session?.signedIn) return renderSignIn();
  const hash = location.hash || "#/flags";
  state.route = hash;
  renderNav();
  startEvents();
  propagationAsked++;  // a status still on its way belongs to the page left
  say("");
  try {
    if (hash.startsWith("#/flag/")) await flagPage(decodeURIComponent(hash.slice(7)));
    else if (hash === "#/new") newFlagPage();
    else if (hash === "#/changes") await changesPage();
    else if (hash === "#/health") await healthPage();
    else if (hash === "#/keys") await keysPage();
    else await flagsPage();
    if (event !== "initial") focusHeading();
  } catch (e) {
    // A 401 with authentication on has shown the sign-in form; otherwise say what went wrong.
    if (e.status !== 401 || !state.session?.authRequired) mount(h("h1", {}, t("error")), h("p", { class: "error", role: "alert" }, e.message));
  }
}

async function start() {
  const saved = localStorage.getItem("vexil.lang");
  await loadMessages(saved || "");
  document.getElementById("lang").addEventListener("change", async (event) => {
    localStorage.setItem("vexil.lang", event.target.value);
    await loadMessages(event.target.value);
    if (state.session?.signedIn) { await loadSession(); route(); } else renderSignIn();
  });
  document.getElementById("env").addEventListener("change", (event) => {
    state.env = event.target.value;
    stopEvents();
    route();
  });
  document.getElementById("signout").addEventListener("click", signOut);
  window.addEventListener("hashchange", route);
  await loadSession();
  await route("initial");
  document.body.dataset.ready = "true";
}

start();
