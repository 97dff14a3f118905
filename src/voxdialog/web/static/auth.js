// Who a page acts for: signed-in tokens (kept in sessionStorage, refreshed before they
// expire) or an API key, and the fetch wrapper every API call of the page goes through.
// The talk page and the admin page each keep their own sign-in (see `storageKey`).

import { PageError, sessionStore } from "./util.js";

// Refresh this long before the access token expires (or at 80% of a shorter lifetime).
const REFRESH_EARLY_MS = 60_000;
// A token this close to expiry is refreshed before use rather than sent and refused.
const EXPIRY_MARGIN_MS = 10_000;

/** Sign-in state and authenticated requests. Emits "change" when it signs in or out. */
export class Auth extends EventTarget {
  /**
   * @param {{storageKey?: string}} [options] storageKey: the prefix of this page's
   *   sessionStorage entries (`<key>.auth`, `<key>.apiKey`, `<key>.signedOut`).
   */
  constructor({ storageKey = "voxdialog" } = {}) {
    super();
    this.keys = { tokens: `${storageKey}.auth`, apiKey: `${storageKey}.apiKey`, signedOut: `${storageKey}.signedOut` };
    this.tokens = storedTokens(sessionStore.get(this.keys.tokens)); // {access_token, refresh_token, expires_at, user}
    this.apiKey = sessionStore.get(this.keys.apiKey) || "";
    this.keyUser = null;
    this.refreshing = null; // the refresh in flight: refresh tokens work once, never race two
    this.timer = 0;
    if (this.tokens) this.schedule();
  }

  get signedIn() {
    return Boolean(this.tokens || this.apiKey);
  }

  /** The signed-in user (with an API key: its owner, once `whoami()` has asked). */
  get user() {
    return this.tokens?.user || this.keyUser || null;
  }

  /** Ask the server who the credential belongs to (also proves it still works). */
  async whoami() {
    const me = await this.json("/api/users/me");
    if (this.apiKey) this.keyUser = me;
    return me;
  }

  /** Whether the person signed out on purpose in this tab (then no silent local sign-in). */
  get signedOutOnPurpose() {
    return Boolean(sessionStore.get(this.keys.signedOut));
  }

  /** As the local admin: only granted to this page when it was opened on localhost. */
  async signInLocal() {
    const response = await this.post("/api/auth/local");
    this.accept(await readBody(response, "Local sign-in failed"));
  }

  async signIn(email, password) {
    const response = await this.post("/api/auth/login", { email, password });
    this.accept(await readBody(response, "Sign-in failed"));
  }

  /** Use an API key for every call; checked right away so a typo is reported here. */
  async useApiKey(key) {
    const response = await fetch("/api/users/me", {
      headers: { Authorization: `Bearer ${key}` },
      cache: "no-store",
    }).catch(() => null);
    if (!response) throw new PageError("Can't reach the VoxDialog server.", { kind: "network" });
    if (response.status === 401) throw new PageError("That API key was not accepted.", { kind: "auth", status: 401 });
    const me = await readBody(response, "The key could not be checked");
    this.clear();
    this.apiKey = key;
    sessionStore.set(this.keys.apiKey, key);
    sessionStore.set(this.keys.signedOut, null);
    this.keyUser = me;
    this.emit();
  }

  /** End the sign-in on the server too (its tokens and live sockets stop), then forget it. */
  async signOut() {
    if (this.tokens) {
      const token = this.tokens.access_token;
      await fetch("/api/auth/logout", {
        method: "POST",
        headers: { Authorization: `Bearer ${token}` },
      }).catch(() => {});
    }
    this.clear();
    sessionStore.set(this.keys.signedOut, true);
    this.emit();
  }

  /** The credential for the next request, refreshed first when it is about to expire. */
  async credential() {
    if (this.apiKey) return this.apiKey;
    if (!this.tokens) throw signedOutError();
    if (this.tokens.expires_at - Date.now() < EXPIRY_MARGIN_MS) await this.refresh();
    return this.tokens.access_token;
  }

  /**
   * fetch() with the credential. A 401 refreshes the tokens and retries once; a second 401
   * means the sign-in is over.
   */
  async fetch(path, { method = "GET", body } = {}) {
    let response = await this.send(path, method, body, await this.credential());
    if (response.status === 401 && this.tokens) {
      await this.refresh();
      response = await this.send(path, method, body, await this.credential());
    }
    if (response.status === 401) {
      this.expire();
      throw signedOutError();
    }
    return response;
  }

  /** The JSON body of an authenticated call; a PageError with the server's message if not 2xx. */
  async json(path, options) {
    return readBody(await this.fetch(path, options), "The server refused the request");
  }

  /** A single-use ticket for /v1/realtime, bound to `agent` (browsers cannot send headers). */
  async ticket(agent) {
    const body = await this.json("/api/auth/ws-ticket", { method: "POST", body: agent ? { agent } : {} });
    if (typeof body.ticket !== "string" || !body.ticket) {
      throw new PageError("The server answered without a ticket.");
    }
    return body.ticket;
  }

  /** Trade the refresh token for new tokens; concurrent callers share one exchange. */
  refresh() {
    if (!this.refreshing) {
      this.refreshing = this.exchange().finally(() => {
        this.refreshing = null;
      });
    }
    return this.refreshing;
  }

  async exchange() {
    const tokens = this.tokens;
    if (!tokens) throw signedOutError();
    const response = await this.post("/api/auth/refresh", { refresh_token: tokens.refresh_token });
    if (response.status === 401 || response.status === 400) {
      this.expire(); // spent, revoked or expired: a new sign-in is needed
      throw signedOutError();
    }
    const body = await readBody(response, "Could not renew the sign-in");
    this.store({ ...body, user: tokens.user });
  }

  accept(body) {
    this.apiKey = "";
    sessionStore.set(this.keys.apiKey, null);
    sessionStore.set(this.keys.signedOut, null);
    this.store(body);
    this.emit();
  }

  store(body) {
    this.tokens = {
      access_token: body.access_token,
      refresh_token: body.refresh_token,
      expires_at: Date.now() + body.expires_in * 1000,
      user: body.user || null,
    };
    sessionStore.set(this.keys.tokens, this.tokens);
    this.schedule();
  }

  // Renew ahead of expiry so a request or a socket never waits for it. A timer that fires
  // late (a sleeping laptop) is covered by credential() checking the expiry before use.
  schedule() {
    clearTimeout(this.timer);
    if (!this.tokens) return;
    const left = this.tokens.expires_at - Date.now();
    const wait = Math.max(1000, Math.min(left - REFRESH_EARLY_MS, left * 0.8));
    this.timer = setTimeout(() => this.refresh().catch(() => {}), wait);
  }

  expire() {
    const had = this.signedIn;
    this.clear();
    if (had) this.emit();
  }

  clear() {
    clearTimeout(this.timer);
    this.tokens = null;
    this.apiKey = "";
    this.keyUser = null;
    sessionStore.set(this.keys.tokens, null);
    sessionStore.set(this.keys.apiKey, null);
  }

  emit() {
    this.dispatchEvent(new Event("change"));
  }

  async post(path, body) {
    return fetch(path, {
      method: "POST",
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    }).catch(() => {
      throw new PageError("Can't reach the VoxDialog server. Is it still running?", { kind: "network" });
    });
  }

  async send(path, method, body, credential) {
    const headers = { Authorization: `Bearer ${credential}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    return fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    }).catch(() => {
      throw new PageError("Can't reach the VoxDialog server. Is it still running?", { kind: "network" });
    });
  }
}

/** Stored tokens, or null when what is stored is not a whole set (another version wrote it). */
function storedTokens(tokens) {
  const whole = tokens && typeof tokens.access_token === "string" && typeof tokens.refresh_token === "string";
  return whole && Number.isFinite(tokens.expires_at) ? tokens : null;
}

function signedOutError() {
  return new PageError("Your sign-in has ended. Please sign in again.", { kind: "auth", status: 401 });
}

/** The JSON body of a 2xx answer, or a PageError carrying the server's own message. */
async function readBody(response, what) {
  const body = response.status === 204 ? {} : await response.json().catch(() => null);
  if (response.ok && body) return body;
  const detail = body?.error?.message;
  const kind = response.status === 401 || response.status === 403 ? "auth" : "general";
  throw new PageError(detail || `${what} (HTTP ${response.status}).`, { kind, status: response.status });
}
