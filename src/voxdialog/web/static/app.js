// VoxDialog talk page: microphone -> Realtime WebSocket (GA protocol) -> speaker,
// with a live transcript and barge-in. Plain ES module, no dependencies.

const SAMPLE_RATE = 24000; // pcm16 in both directions, as the session.update below asks
const MODEL = "local-voice";
const TOKEN_URL = "/api/realtime-token";
const KEY_STORAGE = "voxdialog.apiKey";
const FLUSH_TIMEOUT_MS = 150;
const REPLY_WAIT_MS = 10000;
const ABANDON_MS = 3000;
const TOAST_MS = 8000;

// Races the spec calls benign: the client did nothing wrong, so the user needs no toast.
const BENIGN_ERRORS = new Set([
  "input_audio_buffer_commit_empty",
  "conversation_already_has_active_response",
  "response_cancel_not_active",
]);

const MIC_CONSTRAINTS = {
  echoCancellation: true,
  noiseSuppression: true,
  autoGainControl: true,
  channelCount: 1,
};

const SESSION_UPDATE = {
  type: "session.update",
  session: {
    type: "realtime",
    output_modalities: ["audio"],
    audio: {
      input: {
        format: { type: "audio/pcm", rate: SAMPLE_RATE },
        transcription: { model: "whisper-1" },
        turn_detection: {
          type: "server_vad",
          silence_duration_ms: 500,
          create_response: true,
          interrupt_response: true,
        },
      },
      output: { format: { type: "audio/pcm", rate: SAMPLE_RATE }, voice: "alloy" },
    },
  },
};

/** An error whose message is written for the person using the page. */
class PageError extends Error {
  constructor(message, { kind = "general" } = {}) {
    super(message);
    this.kind = kind;
  }
}

// ---------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------

const $ = (id) => document.getElementById(id);

const ui = {
  stage: $("stage"),
  talk: $("talk"),
  talkLabel: $("talk-label"),
  status: $("status"),
  reconnect: $("reconnect"),
  notice: $("notice"),
  keyForm: $("key-form"),
  keyHint: $("key-hint"),
  keyInput: $("api-key"),
  transcript: $("transcript"),
  messages: $("messages"),
  empty: $("empty"),
  composer: $("composer"),
  message: $("message"),
  send: $("send"),
  announcer: $("announcer"),
  toasts: $("toasts"),
};

function wsURL(path) {
  const url = new URL(path, location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
}

function bytesToBase64(bytes) {
  // Chunked so String.fromCharCode never gets more arguments than the engine allows.
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

function base64ToBytes(b64) {
  const binary = atob(b64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function samplesToMs(samples) {
  return Math.floor((samples * 1000) / SAMPLE_RATE);
}

// sessionStorage can throw (disabled storage, sandboxed frames); the key is optional anyway.
const keyStore = {
  get() {
    try {
      return sessionStorage.getItem(KEY_STORAGE) || "";
    } catch {
      return "";
    }
  },
  set(value) {
    try {
      if (value) sessionStorage.setItem(KEY_STORAGE, value);
      else sessionStorage.removeItem(KEY_STORAGE);
    } catch {
      // Not persisted; the key still works for this attempt via memory below.
    }
    keyStore.memory = value;
  },
  memory: "",
};

// ---------------------------------------------------------------------------------------
// Audio: microphone capture and assistant playback, both in AudioWorklets
// ---------------------------------------------------------------------------------------

class VoiceAudio {
  /**
   * @param {{onChunk: (buf: ArrayBuffer) => void, onLevel: (rms: number) => void,
   *          onProgress: (played: Object, idle: boolean) => void}} callbacks
   */
  constructor(callbacks) {
    this.callbacks = callbacks;
    this.ctx = null;
    this.stream = null;
    this.capture = null;
    this.playback = null;
    this.flushes = new Map();
    this.flushId = 0;
    this.stopped = false;
  }

  static supported() {
    return Boolean(window.AudioContext && window.AudioWorkletNode && navigator.mediaDevices?.getUserMedia);
  }

  async start() {
    // Created before the first await so it is born inside the click's user activation and
    // may play sound. 24 kHz first: then neither worklet has to resample.
    this.ctx = VoiceAudio.createContext(SAMPLE_RATE);
    // iOS Safari only unlocks audio on a resume() made inside the gesture itself.
    this.ctx.resume().catch(() => {});
    this.stream = await VoiceAudio.openMicrophone();
    this.throwIfStopped(); // the user gave up while the permission prompt was open
    const source = this.connectSource();
    await this.loadWorklets();
    this.throwIfStopped();
    this.capture = new AudioWorkletNode(this.ctx, "capture-processor", {
      numberOfInputs: 1,
      numberOfOutputs: 0,
      channelCount: 1,
      channelCountMode: "explicit", // a stereo mic gets down-mixed to mono
      channelInterpretation: "speakers",
    });
    this.capture.port.onmessage = (event) => this.onCaptureMessage(event.data);
    this.playback = new AudioWorkletNode(this.ctx, "playback-processor", {
      numberOfInputs: 0,
      numberOfOutputs: 1,
      outputChannelCount: [1],
    });
    this.playback.port.onmessage = (event) => this.onPlaybackMessage(event.data);
    source.connect(this.capture);
    this.playback.connect(this.ctx.destination);
    if (this.ctx.state !== "running") await this.ctx.resume();
  }

  throwIfStopped() {
    if (!this.stopped) return;
    this.stop(); // releases a microphone that was granted after the user cancelled
    throw new PageError("Cancelled.", { kind: "cancelled" });
  }

  static createContext(sampleRate) {
    try {
      return new AudioContext({ sampleRate, latencyHint: "interactive" });
    } catch {
      return new AudioContext({ latencyHint: "interactive" });
    }
  }

  static async openMicrophone() {
    try {
      return await navigator.mediaDevices.getUserMedia({ audio: MIC_CONSTRAINTS });
    } catch (err) {
      throw VoiceAudio.microphoneError(err);
    }
  }

  static microphoneError(err) {
    const name = err && err.name;
    if (name === "NotAllowedError" || name === "SecurityError") {
      return new PageError(
        "Microphone access was denied. Allow the microphone for this page in your browser's site settings, then press the button again.",
        { kind: "mic" },
      );
    }
    if (name === "NotFoundError" || name === "OverconstrainedError") {
      return new PageError("No microphone was found. Connect one and try again.", { kind: "mic" });
    }
    if (name === "NotReadableError" || name === "AbortError") {
      return new PageError("The microphone could not be opened. Another app may be using it.", { kind: "mic" });
    }
    return new PageError(`The microphone could not be started (${name || "unknown error"}).`, { kind: "mic" });
  }

  // Some browsers (Firefox) refuse to connect a microphone to a context whose rate differs
  // from the device's; fall back to the default rate and let the worklets resample.
  connectSource() {
    try {
      return this.ctx.createMediaStreamSource(this.stream);
    } catch {
      this.ctx.close().catch(() => {});
      this.ctx = VoiceAudio.createContext(undefined);
      return this.ctx.createMediaStreamSource(this.stream);
    }
  }

  async loadWorklets() {
    try {
      await Promise.all([
        this.ctx.audioWorklet.addModule(new URL("./capture-worklet.js", import.meta.url)),
        this.ctx.audioWorklet.addModule(new URL("./playback-worklet.js", import.meta.url)),
      ]);
    } catch (err) {
      throw new PageError(`The audio processor could not be loaded (${err.message || err}).`, { kind: "audio" });
    }
  }

  onCaptureMessage(message) {
    if (message.type !== "audio") return;
    this.callbacks.onLevel(message.rms);
    this.callbacks.onChunk(message.buffer);
  }

  onPlaybackMessage(message) {
    if (message.type === "progress") {
      this.callbacks.onProgress(message.played, message.idle);
    } else if (message.type === "flushed") {
      const resolve = this.flushes.get(message.id);
      this.flushes.delete(message.id);
      if (resolve) resolve(message.played);
    }
  }

  /** Queue PCM16 samples (ArrayBuffer, transferred) for the given assistant item. */
  enqueue(itemId, buffer) {
    if (!this.playback) return;
    this.playback.port.postMessage({ type: "push", itemId, buffer }, [buffer]);
  }

  /** Silence playback now; resolves to {itemId: samples played}, or null if the worklet is slow. */
  flush() {
    if (!this.playback) return Promise.resolve(null);
    const id = ++this.flushId;
    return new Promise((resolve) => {
      this.flushes.set(id, resolve);
      this.playback.port.postMessage({ type: "flush", id });
      setTimeout(() => {
        if (this.flushes.delete(id)) resolve(null);
      }, FLUSH_TIMEOUT_MS);
    });
  }

  stop() {
    this.stopped = true;
    if (this.stream) for (const track of this.stream.getTracks()) track.stop();
    if (this.capture) this.capture.port.onmessage = null;
    if (this.playback) this.playback.port.onmessage = null;
    if (this.ctx && this.ctx.state !== "closed") this.ctx.close().catch(() => {});
    for (const resolve of this.flushes.values()) resolve(null);
    this.flushes.clear();
    this.ctx = this.stream = this.capture = this.playback = null;
  }
}

// ---------------------------------------------------------------------------------------
// Transcript: chat bubbles keyed by item_id
// ---------------------------------------------------------------------------------------

class Transcript {
  constructor(list, scroller, empty, announcer) {
    this.list = list;
    this.scroller = scroller;
    this.empty = empty;
    this.announcer = announcer;
    this.entries = new Map(); // itemId -> entry
    this.localCount = 0;
    this.scrollQueued = false;
  }

  get(itemId) {
    return this.entries.get(itemId);
  }

  /** The bubble for an item, created (empty, pending) if it does not exist yet. */
  ensure(itemId, role) {
    let entry = this.entries.get(itemId);
    if (entry) return entry;
    const li = document.createElement("li");
    li.className = `msg msg--${role}`;
    const who = document.createElement("span");
    who.className = "visually-hidden";
    who.textContent = role === "user" ? "You said: " : "Assistant: ";
    const text = document.createElement("p");
    text.className = "msg-text";
    const heard = document.createElement("span");
    const unheard = document.createElement("span");
    unheard.className = "unheard";
    text.append(heard, unheard);
    const note = document.createElement("span");
    note.className = "msg-note";
    li.append(who, text, note);
    entry = { itemId, role, li, heard, unheard, note, text: "", final: false, heardChars: null, committed: false };
    this.entries.set(itemId, entry);
    this.list.append(li);
    this.empty.hidden = true;
    this.render(entry);
    return entry;
  }

  append(itemId, role, delta) {
    const entry = this.ensure(itemId, role);
    if (entry.final || !delta) return;
    entry.text += delta;
    this.render(entry);
  }

  finish(itemId, role, text) {
    const entry = this.ensure(itemId, role);
    if (typeof text === "string") entry.text = text;
    entry.final = true;
    this.render(entry);
    if (entry.text) this.announce(`${role === "user" ? "You said" : "Assistant"}: ${entry.text}`);
  }

  /** A typed message: shown at once, it never gets an id-keyed update. */
  addLocal(role, text) {
    const entry = this.ensure(`local_${++this.localCount}`, role);
    entry.final = true;
    entry.committed = true;
    entry.text = text;
    this.render(entry);
  }

  setNote(itemId, note, className) {
    const entry = this.entries.get(itemId);
    if (!entry) return;
    entry.note.textContent = note;
    if (className) entry.li.classList.add(className);
  }

  /** Grey out what the listener did not hear: everything after `fraction` of the text so far. */
  markInterrupted(itemId, fraction) {
    const entry = this.entries.get(itemId);
    if (!entry || entry.heardChars !== null) return;
    const raw = Math.round(entry.text.length * Math.min(1, Math.max(0, fraction)));
    // Finish the word being spoken rather than cutting it in half; the space after it
    // belongs to the heard part so the grey tail starts on a word.
    const rest = entry.text.slice(raw).search(/\s\S/);
    entry.heardChars = rest === -1 ? entry.text.length : raw + rest + 1;
    entry.li.classList.add("is-interrupted");
    entry.note.textContent = "interrupted";
    this.render(entry);
  }

  remove(itemId) {
    const entry = this.entries.get(itemId);
    if (!entry) return;
    entry.li.remove();
    this.entries.delete(itemId);
    this.empty.hidden = this.entries.size > 0;
  }

  /** Removes the bubble later unless the speech has become a turn (committed) by then. */
  dropIfAbandoned(itemId, delayMs) {
    setTimeout(() => {
      const entry = this.entries.get(itemId);
      if (entry && !entry.committed && !entry.text) this.remove(itemId);
    }, delayMs);
  }

  /** Speech that never became a turn (a cough the server discarded) leaves a "…" bubble. */
  dropAbandonedUserBubbles(exceptItemId) {
    for (const entry of [...this.entries.values()]) {
      if (entry.role === "user" && entry.itemId !== exceptItemId && !entry.committed && !entry.text) {
        this.remove(entry.itemId);
      }
    }
  }

  render(entry) {
    const split = entry.heardChars === null ? entry.text.length : entry.heardChars;
    entry.heard.textContent = entry.text.slice(0, split);
    entry.unheard.textContent = entry.text.slice(split);
    entry.li.classList.toggle("is-pending", !entry.text && !entry.final);
    this.scrollSoon();
  }

  /** The connection ended: nothing pending will be filled in any more. */
  settle() {
    for (const entry of [...this.entries.values()]) {
      if (entry.final) continue;
      if (!entry.text) this.remove(entry.itemId);
      else {
        entry.final = true;
        this.render(entry);
      }
    }
  }

  announce(text) {
    this.announcer.textContent = text;
  }

  // Follow new text only when the reader is already at the bottom; never yank them back
  // while they scroll up through earlier turns. One scroll per frame at most.
  scrollSoon() {
    const el = this.scroller;
    const atBottom = el.scrollHeight - el.scrollTop - el.clientHeight < 80;
    if (!atBottom || this.scrollQueued) return;
    this.scrollQueued = true;
    requestAnimationFrame(() => {
      this.scrollQueued = false;
      el.scrollTop = el.scrollHeight;
    });
  }
}

// ---------------------------------------------------------------------------------------
// Conversation state
// ---------------------------------------------------------------------------------------

const transcript = new Transcript(ui.messages, ui.transcript, ui.empty, ui.announcer);

const state = {
  phase: "idle", // idle | connecting | live | disconnected
  attempt: 0, // bumped on every start/stop so stale async steps can tell they are stale
  socket: null,
  audio: null,
  sessionReady: false,
  userSpeaking: false,
  responseActive: false,
  awaitingReply: false,
  awaitingTimer: 0,
  playing: false,
  level: 0,
  responseItems: new Map(), // response_id -> Set(item_id)
  // Assistant items with audio: {received, played, done, cut} in 24 kHz samples.
  assistantAudio: new Map(),
  oddBytes: new Map(), // item_id -> a trailing byte of a delta that split a sample
};

function send(event) {
  const socket = state.socket;
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(event));
}

function resetConversationState() {
  state.sessionReady = false;
  state.userSpeaking = false;
  state.responseActive = false;
  state.playing = false;
  setAwaitingReply(false);
  state.responseItems.clear();
  state.assistantAudio.clear();
  state.oddBytes.clear();
  state.level = 0;
  ui.stage.style.setProperty("--level", "0");
}

// ---------------------------------------------------------------------------------------
// Starting and stopping
// ---------------------------------------------------------------------------------------

async function startConversation() {
  if (state.phase === "connecting" || state.phase === "live") return;
  const attempt = ++state.attempt;
  hideNotice();
  ui.reconnect.hidden = true;
  resetConversationState();
  setPhase("connecting");
  try {
    state.audio = new VoiceAudio({ onChunk: sendAudioChunk, onLevel: showLevel, onProgress: onPlaybackProgress });
    await state.audio.start();
    if (attempt !== state.attempt) return;
    const token = await fetchToken();
    if (attempt !== state.attempt) return;
    ui.keyForm.hidden = true;
    openSocket(token);
  } catch (err) {
    if (attempt !== state.attempt) return;
    teardown();
    setPhase("idle");
    showFailure(err);
  }
}

function stopConversation() {
  state.attempt++;
  const socket = state.socket;
  state.socket = null; // so its close event is not mistaken for a lost connection
  if (socket) socket.close(1000, "user ended the conversation");
  teardown();
  setPhase("idle");
}

function teardown() {
  if (state.audio) state.audio.stop();
  state.audio = null;
  resetConversationState();
  transcript.settle();
}

async function fetchToken() {
  const key = keyStore.memory || keyStore.get();
  const headers = key ? { Authorization: `Bearer ${key}` } : {};
  let response;
  try {
    response = await fetch(TOKEN_URL, { method: "POST", headers, cache: "no-store" });
  } catch {
    throw new PageError("Can't reach the VoxDialog server. Is it still running?");
  }
  if (response.status === 401 || response.status === 403) {
    if (key) keyStore.set(""); // a rejected key must not be retried silently next time
    throw new PageError(
      key ? "That API key was not accepted. Check it and try again." : "This server needs an API key to start a conversation.",
      { kind: "auth" },
    );
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const detail = body && body.error && body.error.message;
    throw new PageError(detail || `The server could not start a session (HTTP ${response.status}).`);
  }
  if (!body || typeof body.token !== "string" || !body.token) {
    throw new PageError("The server answered without a session token.");
  }
  return body.token;
}

function openSocket(token) {
  const url = wsURL(`/v1/realtime?model=${encodeURIComponent(MODEL)}`);
  const socket = new WebSocket(url, ["realtime", `openai-insecure-api-key.${token}`]);
  state.socket = socket;
  socket.onmessage = (event) => {
    if (state.socket === socket) onServerMessage(event.data);
  };
  socket.onclose = (event) => {
    if (state.socket === socket) onConnectionLost(event);
  };
  // The close event always follows an error and carries the useful information.
  socket.onerror = () => {};
}

function onConnectionLost(event) {
  state.socket = null;
  state.attempt++;
  const wasLive = state.sessionReady;
  teardown();
  setPhase("disconnected");
  ui.reconnect.hidden = false;
  if (event.code === 3000) {
    keyStore.set("");
    showKeyForm("The server did not accept the credentials. Enter an API key to connect.");
  } else if (!wasLive) {
    showNotice(event.reason ? `Could not connect: ${event.reason}` : "Could not connect to the conversation server.");
  } else if (event.code !== 1000 && event.reason) {
    showNotice(`Connection closed: ${event.reason}`);
  }
}

function showFailure(err) {
  const message = err instanceof PageError ? err.message : `Something went wrong: ${err && err.message ? err.message : err}`;
  if (err instanceof PageError && err.kind === "auth") {
    showKeyForm(message);
  } else {
    showNotice(message);
  }
}

// ---------------------------------------------------------------------------------------
// Audio in and out
// ---------------------------------------------------------------------------------------

function sendAudioChunk(buffer) {
  // Before session.created the server has not applied our format yet; drop, don't queue.
  if (!state.sessionReady) return;
  send({ type: "input_audio_buffer.append", audio: bytesToBase64(new Uint8Array(buffer)) });
}

function showLevel(rms) {
  // dB scale: speech sits between roughly -50 and -10 dBFS; fast attack, slower release.
  const db = 20 * Math.log10(rms + 1e-9);
  const target = Math.min(1, Math.max(0, (db + 60) / 50));
  state.level = target > state.level ? target : state.level * 0.6 + target * 0.4;
  ui.stage.style.setProperty("--level", state.level.toFixed(3));
}

function playAssistantAudio(itemId, b64) {
  let track = state.assistantAudio.get(itemId);
  if (!track) {
    track = { received: 0, played: 0, done: false, cut: false };
    state.assistantAudio.set(itemId, track);
  }
  // Audio after an interruption belongs to the reply the user talked over.
  if (track.cut || !state.audio) return;
  const bytes = joinOddByte(itemId, base64ToBytes(b64));
  if (bytes.length === 0) return;
  track.received += bytes.length / 2;
  state.audio.enqueue(itemId, bytes.buffer);
  state.playing = true;
  renderStatus();
}

// PCM16 needs whole samples; if a delta ever splits one, carry the odd byte to the next.
function joinOddByte(itemId, bytes) {
  const carried = state.oddBytes.get(itemId);
  let all = bytes;
  if (carried !== undefined) {
    all = new Uint8Array(bytes.length + 1);
    all[0] = carried;
    all.set(bytes, 1);
    state.oddBytes.delete(itemId);
  }
  if (all.length % 2 === 1) {
    state.oddBytes.set(itemId, all[all.length - 1]);
    all = all.slice(0, all.length - 1);
  } else if (all.byteOffset !== 0 || all.byteLength !== all.buffer.byteLength) {
    all = all.slice();
  }
  return all;
}

function onPlaybackProgress(played, idle) {
  for (const [itemId, samples] of Object.entries(played)) {
    const track = state.assistantAudio.get(itemId);
    if (track) track.played = samples;
  }
  if (idle) {
    state.playing = false;
    forgetFinishedAudio();
    renderStatus();
  }
}

// Cut tracks stay: their entry is what makes late deltas of an interrupted reply be dropped.
function forgetFinishedAudio() {
  for (const [itemId, track] of state.assistantAudio) {
    if (!track.cut && track.done && track.played >= track.received) state.assistantAudio.delete(itemId);
  }
}

function hasUnplayedAudio() {
  for (const track of state.assistantAudio.values()) {
    if (!track.cut && track.played < track.received) return true;
  }
  return false;
}

/**
 * Barge-in: silence the speaker at once, then tell the server how much of each reply was
 * actually heard so it can drop the rest from the conversation.
 */
async function interruptPlayback() {
  const cut = [];
  for (const [itemId, track] of state.assistantAudio) {
    const unfinished = track.played < track.received || !track.done;
    if (!track.cut && unfinished) {
      track.cut = true; // from now on, late deltas for this item are dropped
      cut.push([itemId, track]);
    }
  }
  if (cut.length === 0 || !state.audio) return;
  const exact = await state.audio.flush();
  // A reply that started while the flush was in flight keeps "Speaking".
  state.playing = hasUnplayedAudio();
  for (const [itemId, track] of cut) {
    const played = exact && exact[itemId] !== undefined ? exact[itemId] : track.played;
    track.played = played;
    send({ type: "conversation.item.truncate", item_id: itemId, content_index: 0, audio_end_ms: samplesToMs(played) });
    transcript.markInterrupted(itemId, track.received > 0 ? played / track.received : 0);
  }
  forgetFinishedAudio();
  renderStatus();
}

// ---------------------------------------------------------------------------------------
// Server events
// ---------------------------------------------------------------------------------------

const handlers = {
  "session.created": () => {
    send(SESSION_UPDATE);
    state.sessionReady = true;
    setPhase("live");
  },
  "input_audio_buffer.speech_started": (event) => {
    state.userSpeaking = true;
    setAwaitingReply(false);
    transcript.dropAbandonedUserBubbles(event.item_id);
    if (event.item_id) transcript.ensure(event.item_id, "user");
    interruptPlayback();
  },
  "input_audio_buffer.speech_stopped": (event) => {
    state.userSpeaking = false;
    if (event.item_id) transcript.dropIfAbandoned(event.item_id, ABANDON_MS);
  },
  "input_audio_buffer.committed": (event) => {
    const entry = event.item_id && transcript.ensure(event.item_id, "user");
    if (entry) entry.committed = true;
    // A committed turn is what gets answered; speech the server threw away is not.
    setAwaitingReply(true);
  },
  "conversation.item.added": (event) => onItemAdded(event.item),
  "conversation.item.input_audio_transcription.delta": (event) => {
    transcript.append(event.item_id, "user", event.delta);
  },
  "conversation.item.input_audio_transcription.completed": (event) => {
    if (!(event.transcript || "").trim() && !transcript.get(event.item_id)?.text) {
      transcript.remove(event.item_id); // nothing recognisable was said
      return;
    }
    transcript.finish(event.item_id, "user", event.transcript);
  },
  "conversation.item.input_audio_transcription.failed": (event) => {
    transcript.finish(event.item_id, "user");
    transcript.setNote(event.item_id, "couldn't transcribe", "is-failed");
  },
  "response.created": (event) => {
    state.responseActive = true;
    setAwaitingReply(false);
    if (event.response?.id) state.responseItems.set(event.response.id, new Set());
  },
  "response.output_item.added": (event) => {
    const item = event.item || {};
    if (item.type === "message" && item.role === "assistant") {
      transcript.ensure(item.id, "assistant");
      state.responseItems.get(event.response_id)?.add(item.id);
    }
  },
  "response.output_audio.delta": (event) => playAssistantAudio(event.item_id, event.delta),
  "response.output_audio.done": (event) => {
    const track = state.assistantAudio.get(event.item_id);
    if (track) track.done = true;
    state.oddBytes.delete(event.item_id);
  },
  "response.output_audio_transcript.delta": (event) => transcript.append(event.item_id, "assistant", event.delta),
  "response.output_audio_transcript.done": (event) => transcript.finish(event.item_id, "assistant", event.transcript),
  "response.output_text.delta": (event) => transcript.append(event.item_id, "assistant", event.delta),
  "response.output_text.done": (event) => transcript.finish(event.item_id, "assistant", event.text),
  "response.done": (event) => onResponseDone(event.response || {}),
  error: (event) => {
    const error = event.error || {};
    if (BENIGN_ERRORS.has(error.code)) return;
    showToast(error.message || error.code || "The server reported an error.");
  },
};

function onServerMessage(data) {
  let event;
  try {
    event = JSON.parse(data);
  } catch {
    return; // the protocol is JSON text frames only; anything else is not for us
  }
  const handler = handlers[event.type];
  // Unknown types (voxdialog.* extensions, events this page has no use for) are ignored.
  if (handler) handler(event);
  renderStatus();
}

function onItemAdded(item) {
  if (!item || item.type !== "message" || !item.id) return;
  const content = item.content || [];
  // Voice turns only: typed turns were drawn when sent, and assistant items arrive via
  // response.output_item.added. This covers a committed buffer with no speech_started.
  if (item.role === "user" && content.some((part) => part.type === "input_audio")) {
    const entry = transcript.ensure(item.id, "user");
    entry.committed = true;
    const known = content.find((part) => part.type === "input_audio" && part.transcript);
    if (known && !entry.text) transcript.finish(item.id, "user", known.transcript);
  }
}

function onResponseDone(response) {
  state.responseActive = false;
  const ids = new Set(state.responseItems.get(response.id) || []);
  for (const item of response.output || []) {
    if (item.type === "message" && item.id) ids.add(item.id);
  }
  state.responseItems.delete(response.id);
  for (const itemId of ids) {
    const entry = transcript.get(itemId);
    if (!entry) continue;
    if (!entry.text) {
      transcript.remove(itemId); // cancelled before it said anything
      continue;
    }
    if (!entry.final) transcript.finish(itemId, "assistant");
    if (response.status === "cancelled" && entry.heardChars === null) {
      transcript.setNote(itemId, "stopped", "is-cancelled");
    } else if (response.status === "failed" || response.status === "incomplete") {
      transcript.setNote(itemId, response.status === "failed" ? "failed" : "incomplete", "is-cancelled");
    }
  }
  if (response.status === "failed") {
    const detail = response.status_details?.error?.message;
    showToast(detail ? `The reply failed: ${detail}` : "The reply failed.");
  }
}

// ---------------------------------------------------------------------------------------
// Typed messages
// ---------------------------------------------------------------------------------------

async function sendTypedMessage(text) {
  if (state.phase !== "live") return;
  transcript.addLocal("user", text);
  // Typing takes the turn just like speaking does.
  await interruptPlayback();
  if (state.responseActive) send({ type: "response.cancel" });
  send({
    type: "conversation.item.create",
    item: { type: "message", role: "user", content: [{ type: "input_text", text }] },
  });
  send({ type: "response.create" });
  setAwaitingReply(true);
  renderStatus();
}

// ---------------------------------------------------------------------------------------
// View state
// ---------------------------------------------------------------------------------------

// Covers the gap between a committed turn and response.created. The server may decide no
// reply is due (an empty turn), so the wait expires instead of showing "Thinking" forever.
function setAwaitingReply(value) {
  clearTimeout(state.awaitingTimer);
  state.awaitingReply = value;
  if (value) {
    state.awaitingTimer = setTimeout(() => {
      state.awaitingReply = false;
      renderStatus();
    }, REPLY_WAIT_MS);
  }
}

function setPhase(phase) {
  state.phase = phase;
  const live = phase === "live";
  const busy = phase === "connecting" || live;
  ui.talk.setAttribute("aria-pressed", String(busy));
  const label = phase === "connecting" ? "Cancel connecting" : live ? "End conversation" : "Start conversation";
  ui.talkLabel.textContent = label;
  ui.talk.title = label;
  ui.message.disabled = !live;
  ui.send.disabled = !live;
  ui.message.placeholder = live ? "Type a message instead…" : "Start talking to type here";
  renderStatus();
}

function currentMode() {
  switch (state.phase) {
    case "connecting":
      return ["connecting", "Connecting…"];
    case "disconnected":
      return ["disconnected", "Disconnected"];
    case "idle":
      return ["idle", "Press the button to start talking"];
    default:
      break;
  }
  if (!state.sessionReady) return ["connecting", "Connecting…"];
  if (state.userSpeaking) return ["user", "You're speaking"];
  if (state.playing) return ["speaking", "Speaking"];
  if (state.responseActive || state.awaitingReply) return ["thinking", "Thinking…"];
  return ["listening", "Listening"];
}

function renderStatus() {
  const [mode, text] = currentMode();
  document.body.dataset.mode = mode;
  // Rewriting identical text would make screen readers repeat the status.
  if (ui.status.textContent !== text) ui.status.textContent = text;
}

function showNotice(message) {
  ui.notice.textContent = message;
  ui.notice.hidden = false;
}

function hideNotice() {
  ui.notice.hidden = true;
  ui.notice.textContent = "";
}

function showKeyForm(message) {
  ui.keyHint.textContent = message;
  ui.keyForm.hidden = false;
  ui.keyInput.value = "";
  ui.keyInput.focus();
}

function showToast(message) {
  const toast = document.createElement("div");
  toast.className = "toast";
  const text = document.createElement("p");
  text.textContent = message;
  const close = document.createElement("button");
  close.type = "button";
  close.className = "toast-close";
  close.setAttribute("aria-label", "Dismiss");
  close.textContent = "×";
  const dismiss = () => toast.remove();
  close.addEventListener("click", dismiss);
  toast.append(text, close);
  ui.toasts.append(toast);
  setTimeout(dismiss, TOAST_MS);
}

// ---------------------------------------------------------------------------------------
// Wiring
// ---------------------------------------------------------------------------------------

function onTalkPressed() {
  if (state.phase === "connecting" || state.phase === "live") stopConversation();
  else startConversation();
}

function init() {
  ui.talk.addEventListener("click", onTalkPressed);
  ui.reconnect.addEventListener("click", startConversation);
  ui.keyForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const key = ui.keyInput.value.trim();
    if (!key) return;
    keyStore.set(key);
    ui.keyForm.hidden = true;
    startConversation();
  });
  ui.composer.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = ui.message.value.trim();
    if (!text) return;
    ui.message.value = "";
    sendTypedMessage(text);
  });
  window.addEventListener("pagehide", () => {
    if (state.socket) stopConversation();
  });
  if (!VoiceAudio.supported()) {
    ui.talk.disabled = true;
    showNotice(
      window.isSecureContext
        ? "This browser cannot capture audio here (AudioWorklet or microphone access is missing). Try a current Chrome, Edge, Firefox or Safari."
        : "Browsers only allow the microphone on secure pages. Open this page via https:// or http://localhost.",
    );
  }
  setPhase("idle");
}

init();
