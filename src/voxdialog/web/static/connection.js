// The talk page's link to /v1/realtime as one explicit state machine: a single-use ticket,
// the socket, reconnects with back-off to the same conversation, keep-alive, and being taken
// over by another window. It knows nothing of audio or the transcript: listeners get
// "statechange" (detail: {state, previous, ...why}) and "message" (detail: a server event).

import { wsURL } from "./util.js";

export const State = Object.freeze({
  IDLE: "idle", // nothing runs: never started, or ended by the person
  CONNECTING: "connecting", // preparing (the microphone), then a ticket and a socket, until session.created
  OPEN: "open", // the session exists: the conversation is live
  RECONNECTING: "reconnecting", // the socket went: another one, to the same conversation, after a pause
  TAKEN_OVER: "taken_over", // another window continues the conversation: nothing until the person asks
  CLOSED: "closed", // refused, signed out, or out of tries: nothing until the person asks
});

// Every legal move, in one place; anything else is a bug in the page and throws.
const NEXT = {
  idle: ["connecting"],
  connecting: ["open", "reconnecting", "taken_over", "closed", "idle"],
  open: ["reconnecting", "taken_over", "closed", "idle"],
  // reconnecting -> reconnecting: another try failed, the next one is scheduled.
  reconnecting: ["open", "reconnecting", "taken_over", "closed", "idle"],
  taken_over: ["connecting", "idle"],
  closed: ["connecting", "idle"],
};
const BUSY = new Set([State.CONNECTING, State.OPEN, State.RECONNECTING]);

// Reconnect back-off: 0.5 s, 1 s, 2 s, 4 s, then every 8 s (±20%), about 40 s in all, then
// CLOSED (the page offers a button). A server that has not noticed the drop yet refuses to
// resume the conversation until it does (its keep-alive pings find out within about that time).
export const RECONNECT_TRIES = 8;
const RECONNECT_BASE_MS = 500;
const RECONNECT_MAX_MS = 8000;
// The server closes a session after minutes without events; the page may send none for a
// while (push-to-talk while nobody talks), so it is asked once a minute what says "still here".
const KEEPALIVE_MS = 60_000;

// Errors that announce the server is about to close the socket; the close is handled here.
export const CLOSING_ERRORS = new Set([
  "session_idle_timeout",
  "session_expired",
  "session_revoked",
  "session_taken_over",
]);
const TAKEN_OVER = "session_taken_over";
const REVOKED = "session_revoked";

export class Connection extends EventTarget {
  #state = State.IDLE;
  #run = 0; // bumped by every start and stop: a late async step can tell it is stale
  #socket = null;
  #dialing = 0; // the run whose ticket is being fetched (0: none)
  #retryTimer = 0;
  #keepAliveTimer = 0;
  #retryable = false; // a lost socket is retried: the conversation exists on the server
  #hadSession = false; // this run had a session: the next one continues the conversation
  #closingError = ""; // the CLOSING_ERRORS code the server sent before closing

  /**
   * @param {{ticket: (agentId: string) => Promise<string>, model: string,
   *          keepAlive?: () => Object|null}} options
   *   ticket: a fresh single-use ticket for the agent (browsers cannot send headers);
   *   keepAlive: the event that says "still here" (null: the page is busy enough already).
   */
  constructor({ ticket, model, keepAlive = () => null }) {
    super();
    this.ticket = ticket;
    this.model = model;
    this.keepAlive = keepAlive;
    this.conversationId = null; // session.id of session.created: what a reconnect resumes
    this.agentId = null;
    this.retries = 0; // reconnect tries made since the last session
    this.lastServerError = ""; // an error sent before session.created: why it was refused
  }

  get state() {
    return this.#state;
  }

  /** Connecting, live or reconnecting: the conversation is running. */
  get busy() {
    return BUSY.has(this.#state);
  }

  /** This run has had a session, so a new socket continues the conversation. */
  get hadSession() {
    return this.#hadSession;
  }

  /**
   * Connect (nothing happens while already running).
   * @param {{conversationId?: string|null, agentId: string, resume?: boolean,
   *          prepare?: () => Promise<void>}} options
   *   conversationId: continue that conversation; resume: it goes on after a lost connection
   *   (its next session counts as a reconnect); prepare: run first (open the microphone).
   * Rejects when preparing or the first ticket fails (then back to IDLE); a refused socket
   * ends in RECONNECTING or CLOSED instead.
   */
  async start({ conversationId = null, agentId, resume = false, prepare = async () => {} }) {
    if (this.busy) return;
    const run = ++this.#run;
    this.conversationId = conversationId;
    this.agentId = agentId;
    // Continuing a conversation may find the server still closing its last socket: retry.
    this.#retryable = Boolean(conversationId);
    this.#hadSession = resume;
    this.retries = 0;
    this.#to(State.CONNECTING);
    try {
      await prepare();
      if (run === this.#run) await this.#dial(run);
    } catch (err) {
      if (run !== this.#run) return; // stopped meanwhile: nobody waits for this error
      this.#to(State.IDLE, { error: err?.message || String(err) });
      throw err;
    }
  }

  /** End the conversation on purpose (the close is not mistaken for a lost connection). */
  stop() {
    this.#run++;
    if (this.#state !== State.IDLE) this.#to(State.IDLE);
  }

  /** Forget the conversation (only while idle): the next start begins a new one. */
  forget() {
    if (this.#state === State.IDLE) this.conversationId = null;
  }

  /** Back online: try now instead of waiting out the back-off pause. */
  retryNow() {
    if (this.#state !== State.RECONNECTING || this.#socket || this.#dialing) return;
    clearTimeout(this.#retryTimer);
    this.#retry();
  }

  /** Send a client event; dropped when no socket is open. */
  send(event) {
    const socket = this.#socket;
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(event));
  }

  /** A fresh ticket, then the socket (resuming the conversation when there is one). */
  async #dial(run) {
    this.#dialing = run;
    let ticket;
    try {
      ticket = await this.ticket(this.agentId);
    } finally {
      if (this.#dialing === run) this.#dialing = 0;
    }
    if (run !== this.#run) return;
    const params = new URLSearchParams({ model: this.model, agent: this.agentId, ticket });
    if (this.conversationId) params.set("conversation", this.conversationId);
    const socket = new WebSocket(wsURL(`/v1/realtime?${params}`));
    this.#socket = socket;
    this.lastServerError = "";
    this.#closingError = "";
    // A replaced socket's late events are not this connection's any more.
    socket.onmessage = (event) => this.#socket === socket && this.#receive(event.data);
    socket.onclose = (event) => this.#socket === socket && this.#closed(event);
    socket.onerror = () => {}; // the close event always follows and says more
  }

  #receive(data) {
    let event;
    try {
      event = JSON.parse(data);
    } catch {
      return; // the protocol is JSON text frames only; anything else is not for us
    }
    if (event.type === "session.created") this.#opened(event);
    if (event.type === "error") this.#noteError(event.error || {});
    this.dispatchEvent(new CustomEvent("message", { detail: event }));
  }

  #opened(event) {
    if (this.#state === State.OPEN) return;
    this.conversationId = event.session?.id || null;
    const reconnected = this.#hadSession;
    this.#retryable = true;
    this.#hadSession = true;
    this.retries = 0;
    this.#to(State.OPEN, { reconnected });
  }

  #noteError(error) {
    if (CLOSING_ERRORS.has(error.code)) this.#closingError = error.code;
    // Before the session exists an error explains a refused connection.
    if (this.#state !== State.OPEN) {
      this.lastServerError = error.message || error.code || "The server reported an error.";
    }
  }

  #closed(event) {
    this.#socket = null;
    const detail = {
      code: event.code,
      reason: event.reason,
      error: this.lastServerError || event.reason || `connection closed (${event.code})`,
    };
    const why = [event.reason, this.#closingError].find((code) => code === TAKEN_OVER || code === REVOKED);
    if (why === TAKEN_OVER) {
      // Reconnecting by itself would take the conversation back, and the other window would
      // take it again: only the person decides.
      this.#to(State.TAKEN_OVER, detail);
    } else if (why === REVOKED) {
      this.#to(State.CLOSED, { ...detail, why: "revoked" });
    } else if (this.#retryable) {
      this.#scheduleRetry(detail);
    } else {
      this.#to(State.CLOSED, { ...detail, why: "refused" }); // the first socket of a new conversation
    }
  }

  // A dropped socket is not the end of the conversation: come back to the same conversation
  // id with growing pauses, then give up.
  #scheduleRetry(detail) {
    if (this.retries >= RECONNECT_TRIES) {
      this.#to(State.CLOSED, { ...detail, why: "gave_up" });
      return;
    }
    this.retries++;
    const backoff = Math.min(RECONNECT_MAX_MS, RECONNECT_BASE_MS * 2 ** (this.retries - 1));
    this.#to(State.RECONNECTING, detail);
    this.#retryTimer = setTimeout(() => this.#retry(), backoff * (0.8 + Math.random() * 0.4));
  }

  #retry() {
    const run = this.#run;
    if (this.#state !== State.RECONNECTING) return;
    this.#dial(run).catch((err) => {
      if (run !== this.#run) return; // stopped meanwhile (a sign-out stops it, too)
      const detail = { error: err?.message || String(err) };
      // Refused for this sign-in (403): more tries would be refused the same way.
      if (err?.kind === "auth") this.#to(State.CLOSED, { ...detail, why: "gave_up" });
      else this.#scheduleRetry(detail);
    });
  }

  /** The one place the state changes: what each state runs starts and stops here. */
  #to(next, detail = {}) {
    const previous = this.#state;
    if (!NEXT[previous].includes(next)) throw new Error(`connection: no move from ${previous} to ${next}`);
    this.#state = next;
    clearTimeout(this.#retryTimer);
    clearInterval(this.#keepAliveTimer);
    if (next === State.OPEN) {
      this.#keepAliveTimer = setInterval(() => {
        const event = this.keepAlive();
        if (event) this.send(event);
      }, KEEPALIVE_MS);
    }
    if (!BUSY.has(next)) this.#dropSocket();
    this.dispatchEvent(new CustomEvent("statechange", { detail: { ...detail, state: next, previous } }));
  }

  #dropSocket() {
    const socket = this.#socket;
    this.#socket = null; // first: its close event must not look like a lost connection
    if (socket) socket.close(1000, "user ended the conversation");
  }
}
