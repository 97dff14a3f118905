// VoxDialog admin page: sign in (account or API key, through auth.js like the talk page),
// then poll /api/admin/* every 2 s. No framework and no innerHTML: every value from the
// server is set as text.

import { Auth } from "./auth.js";
import { showToast } from "./util.js";

const POLL_MS = 2000;

const $ = (id) => document.getElementById(id);

// --- credentials --------------------------------------------------------------------------

// The admin page keeps its own sign-in, apart from the talk page's (another account may run it).
const auth = new Auth({ storageKey: "voxdialog.admin" });

// Signed out elsewhere, a refresh refused, a key revoked: back to the form.
auth.addEventListener("change", () => {
  if (auth.signedIn) return; // the form handlers enter once the admin API has said yes
  stopPolling();
  showSignin(auth.signedOutOnPurpose ? "" : "Your sign-in has ended.");
});

/** A JSON call to the API with the current credential (one renewal on a 401). */
function api(path, { method = "GET", body } = {}) {
  return auth.json(path, { method, body });
}

// --- sign-in and sign-out -----------------------------------------------------------------

function showSignin(message) {
  document.body.dataset.view = "signin";
  $("signin").hidden = false;
  $("dashboard").hidden = true;
  $("whoami").hidden = true;
  $("signin-error").hidden = !message;
  $("signin-error").textContent = message || "";
}

function showDashboard() {
  document.body.dataset.view = "dashboard";
  $("signin").hidden = true;
  $("dashboard").hidden = false;
  $("whoami").hidden = false;
  $("who").textContent = auth.apiKey ? "API key" : auth.user?.email || auth.user?.display_name || "";
}

/** Sign out (on the server too, so a copied token stops working) and say why. */
async function signOut(message) {
  stopPolling();
  await auth.signOut();
  showSignin(message);
}

/** Check the credential reaches the admin API, then show the dashboard. */
async function enter() {
  try {
    await api("/api/admin/metrics");
  } catch (error) {
    const message =
      error.status === 403 ? "This account is not an admin." : error.status === 401 ? "Sign-in refused." : error.message;
    await signOut(message);
    return;
  }
  showDashboard();
  startPolling();
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const password = form.password.value;
  form.password.value = "";
  try {
    await auth.signIn(form.email.value.trim(), password);
  } catch (error) {
    showSignin(error.message || "Sign-in failed.");
    return;
  }
  await enter();
});

$("key-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const field = event.currentTarget["api-key"];
  const key = field.value.trim();
  field.value = "";
  try {
    await auth.useApiKey(key);
  } catch (error) {
    showSignin(error.status === 401 ? "Sign-in refused." : error.message);
    return;
  }
  await enter();
});

$("signout").addEventListener("click", () => signOut());

// --- formatting ---------------------------------------------------------------------------

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) {
    if (cell instanceof Node) {
      const td = document.createElement("td");
      td.append(cell);
      tr.append(td);
    } else {
      tr.append(el("td", cell?.text ?? cell, cell?.className));
    }
  }
  return tr;
}

const num = (text) => ({ text, className: "num" });
const ms = (value) => (value === null || value === undefined ? "–" : `${Math.round(value)} ms`);
const shortId = (id) => (id ? id.slice(0, 8) : "–");
const time = (iso) => new Date(iso).toLocaleTimeString();

function duration(seconds) {
  const s = Math.floor(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, "0")}m`;
}

function pill(text, tone) {
  return el("span", text, `pill pill--${tone}`);
}

const BREAKER_TONES = { closed: "ok", half_open: "warn", open: "bad" };
const STATE_TONES = { listening: "ok", thinking: "warn", speaking: "accent" };
const LEVEL_TONES = { WARNING: "warn", ERROR: "bad", CRITICAL: "bad" };

function idCell(id, label) {
  const span = el("span", label || shortId(id), "mono");
  span.title = id || "";
  return span;
}

/** Replace a container's children, unless the data it shows (and the names it uses for
 * users and tenants) has not changed: rows under the pointer stay put between polls. */
const lastShown = new Map();
let labelsVersion = 0;
function render(container, data, build) {
  const key = `${labelsVersion}:${JSON.stringify(data)}`;
  if (lastShown.get(container.id) === key) return;
  lastShown.set(container.id, key);
  container.replaceChildren(...build(data));
}

// --- panels -------------------------------------------------------------------------------

const known = { users: new Map(), tenants: new Map() };

function userLabel(id) {
  const user = known.users.get(id);
  return user ? user.email || user.display_name : shortId(id);
}

function tenantLabel(id) {
  return known.tenants.get(id)?.name || shortId(id);
}

/** ``<div><dt>name</dt><dd>value</dd></div>`` for each pair (a dl may group them in divs). */
function statPairs(pairs) {
  return pairs.map(([name, value]) => {
    const pair = el("div", undefined, "stat");
    pair.append(el("dt", name), el("dd", value));
    return pair;
  });
}

/** Remember the names other panels show for ids; re-render those panels when they change. */
function learn(map, items, label) {
  const names = (entries) => JSON.stringify(entries.map((item) => [item.id, label(item)]));
  const before = names([...map.values()]);
  map.clear();
  for (const item of items) map.set(item.id, item);
  if (names(items) !== before) labelsVersion += 1;
}

async function loadSessions() {
  const sessions = await api("/api/admin/sessions/live");
  $("sessions-count").textContent = sessions.length;
  $("sessions-empty").hidden = sessions.length > 0;
  render($("sessions-rows"), sessions, (list) =>
    list.map((s) =>
      row([
        idCell(s.user_id, userLabel(s.user_id)),
        idCell(s.tenant_id, tenantLabel(s.tenant_id)),
        idCell(s.agent, s.agent_name),
        pill(s.state, STATE_TONES[s.state] || "muted"),
        num(duration(s.duration_s)),
        num(s.turns),
        num(ms(s.last_turn_ms)),
      ]),
    ),
  );
}

async function loadMetrics() {
  const m = await api("/api/admin/metrics");
  render($("latency-rows"), m.stages, (stages) =>
    stages.map((s) => row([s.stage.replaceAll("_", " "), num(ms(s.p50_ms)), num(ms(s.p95_ms)), num(s.count)])),
  );
  const turns = Object.values(m.turns).reduce((a, b) => a + b, 0);
  const dropped = Object.values(m.audio_frames.dropped).reduce((a, b) => a + b, 0);
  const stats = [
    ["Active sessions", m.active_sessions],
    ["Turns", turns],
    ["Barge-ins", m.barge_ins],
    ["Loop lag", m.event_loop.samples ? `${m.event_loop.last_ms} ms (p95 ${ms(m.event_loop.p95_ms)})` : "not sampled"],
    ["Frames in / out", `${m.audio_frames.received} / ${m.audio_frames.sent}`],
    ["Frames dropped", dropped],
  ];
  render($("stats"), stats, statPairs);
}

async function loadProviders() {
  const p = await api("/api/admin/providers");
  const stages = p.stages.map((s) => [s.stage.toUpperCase(), s.name ? `${s.name} · ${s.model}` : "none"]);
  render($("stages"), stages, statPairs);
  const members = p.chains.flatMap((chain) => chain.providers.map((member) => ({ chain, member })));
  $("providers-empty").hidden = members.length > 0;
  render($("provider-rows"), members, (list) =>
    list.map(({ chain, member }) => {
      const tr = row([
        `${chain.stage.toUpperCase()} · ${chain.name}`,
        member.name,
        pill(member.breaker.replace("_", "-"), BREAKER_TONES[member.breaker] || "muted"),
        num(member.errors),
      ]);
      if (member.last_error) tr.title = member.last_error;
      return tr;
    }),
  );
}

async function loadErrors() {
  const errors = await api("/api/admin/errors?limit=50");
  $("errors-empty").hidden = errors.length > 0;
  render($("error-rows"), errors, (list) =>
    list.map((e) => {
      const li = el("li", undefined, "error");
      const head = el("div", undefined, "error-head");
      head.append(pill(e.level.toLowerCase(), LEVEL_TONES[e.level] || "muted"), el("span", e.message, "error-msg"));
      head.append(el("time", time(e.at), "error-time"));
      li.append(head);
      const details = Object.entries(e.fields).map(([k, v]) => `${k}=${v}`);
      if (e.source === "log") details.unshift(e.name);
      if (details.length) li.append(el("p", details.join("  ·  "), "error-fields mono"));
      return li;
    }),
  );
}

async function loadTenants() {
  const page = await api("/api/admin/tenants?limit=200");
  learn(known.tenants, page.data, (t) => t.name);
  render($("tenant-rows"), page.data, (list) =>
    list.map((t) => row([idCell(t.id, t.name), num(t.users), num(t.voice_sessions), num(t.live_sessions)])),
  );
}

async function loadUsers() {
  const page = await api("/api/admin/users?limit=200");
  learn(known.users, page.data, (u) => u.email || u.display_name);
  $("users-count").textContent = page.data.length + (page.has_more ? "+" : "");
  render($("user-rows"), page.data, (list) => list.map(userRow));
}

function userRow(u) {
  const actions = el("div", undefined, "row-actions");
  const makeAdmin = u.role === "admin" ? "Make member" : "Make admin";
  actions.append(
    actionButton(makeAdmin, () => changeUser(u, { role: u.role === "admin" ? "member" : "admin" })),
    actionButton(u.disabled ? "Enable" : "Disable", () => changeUser(u, { disabled: !u.disabled })),
    actionButton("Delete", () => removeUser(u), "danger"),
  );
  return row([
    u.display_name,
    u.email || "–",
    idCell(u.tenant_id, tenantLabel(u.tenant_id)),
    pill(u.role, u.role === "admin" ? "accent" : "muted"),
    pill(u.disabled ? "disabled" : "active", u.disabled ? "bad" : "ok"),
    actions,
  ]);
}

function actionButton(label, onClick, tone) {
  const button = el("button", label, `mini${tone ? ` mini--${tone}` : ""}`);
  button.type = "button";
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await onClick();
    } catch (error) {
      toast(error.message);
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

async function changeUser(user, patch) {
  await api(`/api/admin/users/${encodeURIComponent(user.id)}`, { method: "PATCH", body: patch });
  await Promise.all([loadUsers(), loadAudit()]);
}

async function removeUser(user) {
  if (!confirm(`Delete ${user.email || user.display_name} and everything they own?`)) return;
  await api(`/api/admin/users/${encodeURIComponent(user.id)}`, { method: "DELETE" });
  await Promise.all([loadUsers(), loadAudit()]);
}

$("new-user").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const body = {
    email: form.email.value.trim(),
    password: form.password.value,
    role: form.role.value,
  };
  if (form.display_name.value.trim()) body.display_name = form.display_name.value.trim();
  try {
    await api("/api/admin/users", { method: "POST", body });
    form.reset();
    await Promise.all([loadUsers(), loadAudit()]);
  } catch (error) {
    toast(error.message);
  }
});

function targetCell(userId) {
  return userId ? idCell(userId, userLabel(userId)) : "";
}

async function loadAudit() {
  const page = await api("/api/admin/audit?limit=30");
  render($("audit-rows"), page.data, (list) =>
    list.map((a) =>
      row([
        time(a.created_at),
        a.action,
        pill(a.outcome, a.outcome === "success" ? "ok" : a.outcome === "denied" ? "warn" : "bad"),
        idCell(a.user_id, a.user_id ? userLabel(a.user_id) : "–"),
        targetCell(a.detail.target_user_id),
      ]),
    ),
  );
}

// --- polling ------------------------------------------------------------------------------

let pollTimer = 0;
let polling = false;

async function refreshAll() {
  if (polling || document.hidden || !auth.signedIn) return;
  polling = true;
  try {
    // Tenants, then users, then the rest: later panels show the names of earlier ones.
    const first = [...(await Promise.allSettled([loadTenants()])), ...(await Promise.allSettled([loadUsers()]))];
    const rest = await Promise.allSettled([loadSessions(), loadMetrics(), loadProviders(), loadErrors(), loadAudit()]);
    const failed = [...first, ...rest].find((r) => r.status === "rejected");
    if (failed && [401, 403].includes(failed.reason?.status)) {
      await signOut(failed.reason.status === 403 ? "This account is no longer an admin." : "Your sign-in has ended.");
      return;
    }
    $("updated").textContent = failed
      ? `Update failed: ${failed.reason?.message || "network error"}`
      : `Updated ${new Date().toLocaleTimeString()}`;
    $("updated").classList.toggle("is-stale", Boolean(failed));
  } finally {
    polling = false;
  }
}

function startPolling() {
  stopPolling();
  lastShown.clear();
  refreshAll();
  pollTimer = setInterval(refreshAll, POLL_MS);
}

function stopPolling() {
  clearInterval(pollTimer);
  pollTimer = 0;
}

document.addEventListener("visibilitychange", () => {
  if (!document.hidden && pollTimer) refreshAll();
});

// --- toasts -------------------------------------------------------------------------------

function toast(message) {
  showToast($("toasts"), message);
}

// --- start --------------------------------------------------------------------------------

if (auth.signedIn) enter();
else showSignin();
