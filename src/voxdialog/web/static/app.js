// VoxDialog talk page: microphone -> Realtime WebSocket (GA protocol) -> speaker, with a live
// transcript, barge-in, push-to-talk, reconnects that keep the conversation, sign-in, agents
// and history. Plain ES modules, no build step, no dependencies.

import { AgentPicker, DEFAULT_AGENT } from "./agents.js";
import { Auth } from "./auth.js";
import { VoiceAudio } from "./audio.js";
import { History } from "./history.js";
import { ReplyAudio } from "./reply-audio.js";
import { UserSettings } from "./settings.js";
import { Transcript } from "./transcript.js";
import {
  $,
  PageError,
  SAMPLE_RATE,
  bytesToBase64,
  formatWhen,
  isLoopbackHost,
  localStore,
  wsURL,
} from "./util.js";

const MODEL = "local-voice";
const REPLY_WAIT_MS = 10000;
const ABANDON_MS = 3000;
const TOAST_MS = 8000;
// Reconnect back-off: 0.5 s, 1 s, 2 s, 4 s, then every 8 s (±20%), about 40 s in all, then
// the Reconnect button. A server that has not noticed the drop yet refuses to resume the
// conversation until it does (its keep-alive pings find out within about that time).
const RECONNECT_TRIES = 8;
const RECONNECT_BASE_MS = 500;
const RECONNECT_MAX_MS = 8000;
// Push-to-talk: audio keeps flowing this long after release so the last word is not cut;
// a press held for less than the server's minimum buffer (100 ms) is a tap, not a turn
// (a tap while the reply plays just stops it).
const PTT_TAIL_MS = 250;
const PTT_MIN_SAMPLES = SAMPLE_RATE / 10;
// The server closes a session after minutes without events; push-to-talk sends none while
// nobody talks, so it says "still here" (an empty buffer clear) once a minute.
const KEEPALIVE_MS = 60_000;
const HISTORY_REFRESH_MS = 1500;
const HANDS_FREE = "hands-free";
const PUSH_TO_TALK = "push-to-talk";
const TURNS_KEY = "voxdialog.turns";
const MIC_KEY = "voxdialog.microphone";

// Races the spec calls benign: the client did nothing wrong, so the user needs no toast.
const BENIGN_ERRORS = new Set([
  "input_audio_buffer_commit_empty",
  "conversation_already_has_active_response",
  "response_cancel_not_active",
]);
// Errors that announce the server is about to close the socket; the reconnect handles them.
const CLOSING_ERRORS = new Set([
  "session_idle_timeout",
  "session_expired",
  "session_revoked",
  "session_taken_over",
]);

// Thresholds and the silence window are left out: the server fills them in from the agent.
const SERVER_VAD = {
  type: "server_vad",
  create_response: true,
  interrupt_response: true,
};

// ---------------------------------------------------------------------------------------
// Elements and shared objects
// ---------------------------------------------------------------------------------------

const ui = {
  stage: $("stage"),
  talk: $("talk"),
  talkLabel: $("talk-label"),
  status: $("status"),
  ptt: $("ptt"),
  turnRadios: [...document.querySelectorAll('input[name="turns"]')],
  microphone: $("microphone"),
  reconnect: $("reconnect"),
  notice: $("notice"),
  transcript: $("transcript"),
  messages: $("messages"),
  empty: $("empty"),
  archive: $("archive"),
  archiveEmpty: $("archive-empty"),
  archiveActions: $("archive-actions"),
  continueButton: $("continue"),
  archiveClose: $("archive-close"),
  conversationTitle: $("conversation-title"),
  conversationMeta: $("conversation-meta"),
  composer: $("composer"),
  message: $("message"),
  send: $("send"),
  announcer: $("announcer"),
  toasts: $("toasts"),
  agent: $("agent"),
  userName: $("user-name"),
  avatar: $("avatar"),
  signOut: $("sign-out"),
  signinHint: $("signin-hint"),
  loginForm: $("login-form"),
  loginError: $("login-error"),
  loginSubmit: $("login-submit"),
  email: $("email"),
  password: $("password"),
  localSignin: $("local-signin"),
  keyOption: $("key-option"),
  keyForm: $("key-form"),
  keyHint: $("key-hint"),
  keyInput: $("api-key"),
  sidebar: $("sidebar"),
  sidebarToggle: $("sidebar-toggle"),
  newConversation: $("new-conversation"),
};

const auth = new Auth();
const settings = new UserSettings(auth);
const transcript = new Transcript(ui.messages, ui.transcript, ui.empty, ui.announcer);
const archive = new Transcript(ui.archive, ui.transcript, ui.archiveEmpty, ui.announcer);
const history = new History(
  auth,
  { list: $("history-list"), more: $("history-more"), empty: $("history-empty") },
  (id) => openArchive(id),
);
const picker = new AgentPicker(auth, settings, ui.agent, (names) => history.setAgentNames(names));

const state = {
  phase: "idle", // idle | connecting | live | reconnecting | disconnected
  attempt: 0, // bumped on every start/stop so stale async steps can tell they are stale
  socket: null,
  audio: null,
  conversationId: null, // session.id of session.created: what a reconnect resumes
  agentId: DEFAULT_AGENT, // the agent this conversation runs with
  retryable: false, // a failed connection is retried (the conversation exists on the server)
  hadSession: false, // this run had a session: getting one again is a reconnect
  reconnecting: false, // the next session.created re-establishes a dropped conversation
  retries: 0,
  retryTimer: 0,
  dialing: false, // a ticket is being fetched for the next socket
  keepaliveTimer: 0,
  historyTimer: 0,
  sessionReady: false,
  userSpeaking: false,
  responseActive: false,
  responseAudible: false, // the active response has sent audio: "speaking" until it is done
  awaitingReply: false,
  awaitingTimer: 0,
  level: 0,
  turns: HANDS_FREE,
  ptt: { held: false, tail: false, samples: 0, timer: 0 },
  responseItems: new Map(), // response_id -> Set(item_id)
  viewing: null, // the past conversation shown read-only, with its messages
  lastServerError: "",
};

// What tools and tests may read; plain data, updated in place.
const stats = {
  audioChunksReceived: 0,
  audioChunksPlayed: 0,
  partialTranscripts: 0,
  reconnects: 0,
  lastError: null,
};
window.voxdialog = { stats, conversationId: null, phase: "idle", microphone: null };
const reply = new ReplyAudio({
  send,
  stats,
  onHeard: (itemId, text) => transcript.markHeard(itemId, text),
});

function send(event) {
  const socket = state.socket;
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(event));
}

function noteError(message) {
  stats.lastError = message;
}

// ---------------------------------------------------------------------------------------
// Signing in and out
// ---------------------------------------------------------------------------------------

async function boot() {
  if (auth.signedIn) {
    try {
      await auth.whoami();
      await enterWorkspace();
      return;
    } catch (err) {
      if (err.kind !== "auth") {
        await enterWorkspace(); // the server is unreachable right now, not the sign-in gone
        showNotice(err.message);
        return;
      }
    }
  }
  // On this machine the local administrator needs no password (the server checks that the
  // page really was opened on localhost); anywhere else, or after a sign-out, ask.
  if (isLoopbackHost() && !auth.signedOutOnPurpose) {
    try {
      await auth.signInLocal();
      return; // the "change" event enters the workspace
    } catch {
      // Refused (a proxy in front, another host name): the form below still works.
    }
  }
  showSignIn();
}

function onAuthChange() {
  if (auth.signedIn) {
    enterWorkspace();
  } else {
    stopConversation();
    showSignIn(auth.signedOutOnPurpose ? "You have signed out." : "Your sign-in has ended. Please sign in again.");
  }
}

async function enterWorkspace() {
  document.body.dataset.auth = "signed-in";
  ui.loginError.hidden = true;
  showUser(auth.user);
  if (!auth.user) auth.whoami().then(showUser, () => {});
  await settings.load();
  const turns = settings.get("push_to_talk") ? PUSH_TO_TALK : localStore.get(TURNS_KEY) || HANDS_FREE;
  setTurns(turns, { save: false });
  await picker.load();
  if (state.phase === "idle") showConversationHeader();
  await Promise.all([history.refresh(), listMicrophones()]);
}

function showUser(user) {
  const name = user?.display_name || user?.email || "Signed in";
  ui.userName.textContent = name;
  ui.avatar.textContent = name.trim().charAt(0).toUpperCase();
}

function showSignIn(message) {
  document.body.dataset.auth = "signed-out";
  ui.localSignin.hidden = !isLoopbackHost();
  ui.signinHint.textContent = message || "Talk to your assistant in real time.";
  history.reset();
  ui.email.focus();
}

async function submitLogin(event) {
  event.preventDefault();
  ui.loginError.hidden = true;
  ui.loginSubmit.disabled = true;
  try {
    await auth.signIn(ui.email.value.trim(), ui.password.value);
    ui.password.value = "";
  } catch (err) {
    showLoginError(err.status === 401 ? "Incorrect email or password." : err.message);
  } finally {
    ui.loginSubmit.disabled = false;
  }
}

async function submitKey(event) {
  event.preventDefault();
  const key = ui.keyInput.value.trim();
  if (!key) return;
  try {
    await auth.useApiKey(key);
    ui.keyInput.value = "";
  } catch (err) {
    showLoginError(err.message);
  }
}

async function signInLocally() {
  try {
    await auth.signInLocal();
  } catch (err) {
    showLoginError(err.message);
  }
}

function showLoginError(message) {
  ui.loginError.textContent = message;
  ui.loginError.hidden = false;
}

async function signOut() {
  stopConversation();
  await auth.signOut();
}

// ---------------------------------------------------------------------------------------
// Starting, stopping and reconnecting
// ---------------------------------------------------------------------------------------

/**
 * Open the microphone and a Realtime session.
 * @param {{conversationId?: string|null, agentId?: string, stored?: Object|null, resume?: boolean}} options
 *   conversationId: continue that conversation; stored: its messages to show first;
 *   resume: the same conversation goes on after a lost connection (transcript kept).
 */
async function startConversation({ conversationId = null, agentId = picker.value, stored = null, resume = false } = {}) {
  if (isBusy()) return;
  const attempt = ++state.attempt;
  hideNotice();
  ui.reconnect.hidden = true;
  closeArchive();
  resetSocketState();
  if (!resume) {
    transcript.clear();
    if (stored) showStored(stored);
  }
  state.conversationId = conversationId;
  state.agentId = agentId || DEFAULT_AGENT;
  // Continuing a conversation may find the server still closing its last socket: retry.
  state.retryable = Boolean(conversationId);
  state.hadSession = resume;
  state.reconnecting = resume;
  state.retries = 0;
  showConversationHeader(stored);
  setPhase("connecting");
  try {
    if (!state.audio) {
      state.audio = new VoiceAudio(
        { onChunk: sendAudioChunk, onLevel: showLevel, onProgress: onPlaybackProgress },
        ui.microphone.value,
      );
      await state.audio.start();
      if (attempt !== state.attempt) return;
      reply.attach(state.audio);
      window.voxdialog.microphone = state.audio.activeDeviceId;
      listMicrophones();
    }
    await connect(attempt);
  } catch (err) {
    if (attempt !== state.attempt) return;
    teardown();
    setPhase("idle");
    showFailure(err);
  }
}

function stopConversation() {
  state.attempt++;
  clearTimeout(state.retryTimer);
  const socket = state.socket;
  state.socket = null; // so its close event is not mistaken for a lost connection
  if (socket) socket.close(1000, "user ended the conversation");
  const wasRunning = state.phase !== "idle";
  teardown();
  setPhase("idle");
  history.setLive(null);
  if (wasRunning) history.refresh();
}

function isBusy() {
  return ["connecting", "live", "reconnecting"].includes(state.phase);
}

/** A fresh single-use ticket, then the socket (resuming the conversation when there is one). */
async function connect(attempt) {
  state.dialing = true;
  let ticket;
  try {
    ticket = await auth.ticket(state.agentId);
  } finally {
    state.dialing = false;
  }
  if (attempt !== state.attempt) return;
  const params = new URLSearchParams({ model: MODEL, agent: state.agentId, ticket });
  if (state.conversationId) params.set("conversation", state.conversationId);
  const socket = new WebSocket(wsURL(`/v1/realtime?${params}`));
  state.socket = socket;
  state.lastServerError = "";
  socket.onmessage = (event) => {
    if (state.socket === socket) onServerMessage(event.data);
  };
  socket.onclose = (event) => {
    if (state.socket === socket) onSocketClosed(event);
  };
  // The close event always follows an error and carries the useful information.
  socket.onerror = () => {};
}

function onSocketClosed(event) {
  state.socket = null;
  scheduleHistoryRefresh();
  clearInterval(state.keepaliveTimer);
  resetSocketState();
  transcript.settle();
  const why = state.lastServerError || event.reason || `connection closed (${event.code})`;
  noteError(why);
  if (event.reason === "session_revoked") {
    auth.expire(); // the sign-in ended elsewhere: the "change" event asks to sign in again
    return;
  }
  if (event.reason === "session_taken_over") {
    // Another tab or device continued this conversation. Reconnecting by itself would take
    // it back, and that one would take it again: only the person decides, with the button.
    teardown();
    setPhase("disconnected");
    ui.reconnect.hidden = false;
    showNotice("This conversation continues in another window. Reconnect to bring it here.");
    return;
  }
  if (state.retryable) {
    scheduleReconnect();
    return;
  }
  // The first connection of this conversation failed: say why, offer to try again.
  teardown();
  setPhase("disconnected");
  ui.reconnect.hidden = false;
  showNotice(describeRefusal(event));
}

function describeRefusal(event) {
  if (event.code === 4004 || event.code === 4009) {
    return "This conversation can't be continued right now: it may still be open in another tab.";
  }
  if (event.code === 1013) return "The server is busy. Try again in a moment.";
  if (state.lastServerError) return `Could not connect: ${state.lastServerError}`;
  return event.reason ? `Could not connect: ${event.reason}` : "Could not connect to the conversation server.";
}

// A dropped socket is not the end of the conversation: keep the transcript and the
// microphone, and come back to the same conversation id with growing pauses.
function scheduleReconnect() {
  clearTimeout(state.retryTimer);
  if (state.retries >= RECONNECT_TRIES) {
    giveUp();
    return;
  }
  state.retries++;
  state.reconnecting = state.hadSession;
  setPhase("reconnecting");
  const backoff = Math.min(RECONNECT_MAX_MS, RECONNECT_BASE_MS * 2 ** (state.retries - 1));
  const wait = backoff * (0.8 + Math.random() * 0.4);
  state.retryTimer = setTimeout(tryReconnecting, wait);
}

function tryReconnecting() {
  const attempt = state.attempt;
  if (state.phase !== "reconnecting") return;
  connect(attempt).catch((err) => {
    if (attempt !== state.attempt) return;
    noteError(err.message);
    if (err.kind === "auth") return; // signed out: the sign-in form takes over
    scheduleReconnect();
  });
}

function giveUp() {
  if (state.audio) state.audio.stop(); // release the microphone while nothing listens
  state.audio = null;
  reply.attach(null);
  setPhase("disconnected");
  history.setLive(null);
  ui.reconnect.hidden = false;
  if (state.hadSession) {
    showNotice("Lost the connection to the server. Your conversation is kept: press Reconnect to go on.");
  } else {
    const why = state.lastServerError || stats.lastError;
    showNotice(why ? `Could not continue the conversation: ${why}` : "Could not continue the conversation.");
  }
}

function reconnectNow() {
  const resume = Boolean(state.conversationId && state.hadSession);
  startConversation({ conversationId: state.conversationId, agentId: state.agentId, resume });
}

function teardown() {
  clearTimeout(state.retryTimer);
  clearInterval(state.keepaliveTimer);
  if (state.audio) state.audio.stop();
  state.audio = null;
  reply.attach(null);
  resetSocketState();
  transcript.settle();
}

/** Forget what belonged to one socket; playback already queued may finish. */
function resetSocketState() {
  state.sessionReady = false;
  state.userSpeaking = false;
  state.responseActive = false;
  state.responseAudible = false;
  setAwaitingReply(false);
  clearTimeout(state.ptt.timer);
  state.ptt = { held: false, tail: false, samples: 0, timer: 0 };
  state.responseItems.clear();
  reply.forgetPartialSamples();
  state.level = 0;
  ui.stage.style.setProperty("--level", "0");
}

function sessionUpdate() {
  return {
    type: "session.update",
    session: {
      type: "realtime",
      output_modalities: ["audio"],
      audio: {
        input: {
          format: { type: "audio/pcm", rate: SAMPLE_RATE },
          transcription: { model: "whisper-1" },
          // Push-to-talk is the manual mode: no VAD, the page commits each turn itself.
          turn_detection: state.turns === PUSH_TO_TALK ? null : SERVER_VAD,
        },
        // No voice: the agent's own voice speaks.
        output: { format: { type: "audio/pcm", rate: SAMPLE_RATE } },
      },
      // VoxDialog's own: what the person says shows while they are still saying it.
      voxdialog: { partial_transcripts: true },
    },
  };
}

function onSessionCreated(event) {
  const id = event.session?.id || null;
  state.conversationId = id;
  window.voxdialog.conversationId = id;
  send(sessionUpdate());
  state.sessionReady = true;
  state.retryable = true;
  state.hadSession = true;
  state.retries = 0;
  if (state.reconnecting) {
    state.reconnecting = false;
    stats.reconnects++;
    hideNotice();
    transcript.addDivider("Reconnected");
  }
  setPhase("live");
  clearInterval(state.keepaliveTimer);
  state.keepaliveTimer = setInterval(keepAlive, KEEPALIVE_MS);
  history.setLive(id);
  scheduleHistoryRefresh();
}

function keepAlive() {
  if (state.turns === PUSH_TO_TALK && !state.ptt.held && !state.ptt.tail) {
    send({ type: "input_audio_buffer.clear" });
  }
}

function showFailure(err) {
  const message = err instanceof PageError ? err.message : `Something went wrong: ${err?.message || err}`;
  noteError(message);
  if (err?.kind === "cancelled") return;
  if (err?.kind === "auth" && !auth.signedIn) return; // the sign-in form says it already
  showNotice(message);
}

// ---------------------------------------------------------------------------------------
// Audio in and out
// ---------------------------------------------------------------------------------------

function sendAudioChunk(buffer) {
  // Before session.created the server has not applied our format yet; drop, don't queue.
  if (!state.sessionReady) return;
  if (state.turns === PUSH_TO_TALK) {
    if (!state.ptt.held && !state.ptt.tail) return;
    if (state.ptt.held) state.ptt.samples += buffer.byteLength / 2;
  }
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
  if (reply.play(itemId, b64) && state.responseActive) state.responseAudible = true;
}

function onPlaybackProgress(played, idle, chunks) {
  if (reply.progress(played, idle, chunks)) renderStatus();
}

async function interruptPlayback() {
  await reply.interrupt();
  renderStatus();
}

// ---------------------------------------------------------------------------------------
// Push-to-talk
// ---------------------------------------------------------------------------------------

function pushToTalkReady() {
  return state.turns === PUSH_TO_TALK && state.phase === "live";
}

/** Start a turn; pressing while the reply plays interrupts it exactly like talking over it. */
function pttPress() {
  if (!pushToTalkReady() || state.ptt.held) return;
  clearTimeout(state.ptt.timer);
  const continuing = state.ptt.tail; // pressed again before the last release was sent
  state.ptt.held = true;
  state.ptt.tail = false;
  if (!continuing) {
    if (state.responseActive) send({ type: "response.cancel" });
    interruptPlayback();
    send({ type: "input_audio_buffer.clear" });
    state.ptt.samples = 0;
    setAwaitingReply(false);
  }
  ui.ptt.classList.add("is-held");
  renderStatus();
}

function pttRelease() {
  if (!state.ptt.held) return;
  state.ptt.held = false;
  state.ptt.tail = true;
  ui.ptt.classList.remove("is-held");
  state.ptt.timer = setTimeout(endPushToTalkTurn, PTT_TAIL_MS);
  renderStatus();
}

function endPushToTalkTurn() {
  state.ptt.tail = false;
  if (state.ptt.samples >= PTT_MIN_SAMPLES) {
    send({ type: "input_audio_buffer.commit" });
    send({ type: "response.create" });
    setAwaitingReply(true);
  } else {
    send({ type: "input_audio_buffer.clear" }); // a tap, not a turn
  }
  state.ptt.samples = 0;
  renderStatus();
}

function isTypingTarget(target) {
  return Boolean(target?.closest?.("input, textarea, select, [contenteditable]"));
}

function onKeyDown(event) {
  if (event.code !== "Space" || !pushToTalkReady() || isTypingTarget(event.target)) return;
  event.preventDefault(); // Space would also "click" a focused button
  if (!event.repeat) pttPress();
}

function onKeyUp(event) {
  if (event.code !== "Space" || !state.ptt.held) return;
  event.preventDefault();
  pttRelease();
}

function setTurns(turns, { save = true } = {}) {
  const next = turns === PUSH_TO_TALK ? PUSH_TO_TALK : HANDS_FREE;
  if (state.ptt.held) pttRelease();
  state.turns = next;
  document.body.dataset.turns = next;
  for (const radio of ui.turnRadios) radio.checked = radio.value === next;
  if (state.sessionReady) send(sessionUpdate());
  if (save) {
    localStore.set(TURNS_KEY, next);
    settings.update({ push_to_talk: next === PUSH_TO_TALK });
  }
  renderControls();
}

// ---------------------------------------------------------------------------------------
// Microphones
// ---------------------------------------------------------------------------------------

async function listMicrophones() {
  const inputs = await VoiceAudio.inputs();
  const wanted = state.audio?.activeDeviceId || ui.microphone.value || localStore.get(MIC_KEY) || "";
  const options = [new Option("Default microphone", "")];
  inputs.forEach((device, index) => {
    if (device.deviceId === "default") return; // the first option already means it
    options.push(new Option(device.label || `Microphone ${index + 1}`, device.deviceId));
  });
  ui.microphone.replaceChildren(...options);
  ui.microphone.value = options.some((option) => option.value === wanted) ? wanted : "";
}

async function chooseMicrophone() {
  const deviceId = ui.microphone.value;
  localStore.set(MIC_KEY, deviceId || null);
  if (!state.audio) return;
  try {
    await state.audio.switchInput(deviceId);
    window.voxdialog.microphone = state.audio?.activeDeviceId || null;
  } catch (err) {
    showFailure(err);
  }
}

// ---------------------------------------------------------------------------------------
// Server events
// ---------------------------------------------------------------------------------------

const handlers = {
  "session.created": onSessionCreated,
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
  "conversation.item.truncated": (event) => {
    // Ask for the stored copy: its text is cut exactly where the listener stopped hearing.
    if (reply.isCut(event.item_id)) {
      send({ type: "conversation.item.retrieve", item_id: event.item_id });
    }
  },
  "conversation.item.retrieved": (event) => {
    const item = event.item || {};
    const part = (item.content || [])[0];
    if (item.role === "assistant" && typeof part?.transcript === "string") {
      transcript.markHeard(item.id, part.transcript);
    }
  },
  "voxdialog.input_audio_transcription.partial": (event) => {
    stats.partialTranscripts++;
    transcript.partial(event.item_id, event.transcript);
  },
  "conversation.item.input_audio_transcription.delta": (event) => {
    transcript.append(event.item_id, "user", event.delta);
  },
  "conversation.item.input_audio_transcription.completed": (event) => {
    if (!(event.transcript || "").trim() && !transcript.get(event.item_id)?.text) {
      transcript.remove(event.item_id); // nothing recognisable was said
      return;
    }
    transcript.finish(event.item_id, "user", event.transcript);
    scheduleHistoryRefresh(); // the first thing said becomes the conversation's title
  },
  "conversation.item.input_audio_transcription.failed": (event) => {
    transcript.finish(event.item_id, "user");
    transcript.setNote(event.item_id, "couldn't transcribe", "is-failed");
  },
  "response.created": (event) => {
    state.responseActive = true;
    state.responseAudible = false;
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
  "response.output_audio.done": (event) => reply.finish(event.item_id),
  "response.output_audio_transcript.delta": (event) => {
    reply.noteSentence(event.item_id, event.delta);
    transcript.append(event.item_id, "assistant", event.delta);
  },
  "response.output_audio_transcript.done": (event) => transcript.finish(event.item_id, "assistant", event.transcript),
  "response.output_text.delta": (event) => transcript.append(event.item_id, "assistant", event.delta),
  "response.output_text.done": (event) => transcript.finish(event.item_id, "assistant", event.text),
  "response.done": (event) => onResponseDone(event.response || {}),
  error: (event) => {
    const error = event.error || {};
    if (BENIGN_ERRORS.has(error.code)) return;
    const message = error.message || error.code || "The server reported an error.";
    noteError(message);
    // Before the session exists the error explains a refused connection: the notice says it.
    if (!state.sessionReady) {
      state.lastServerError = message;
      return;
    }
    if (!CLOSING_ERRORS.has(error.code)) showToast(message);
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
  // response.output_item.added. This covers a committed buffer with no speech_started
  // (push-to-talk).
  if (item.role === "user" && content.some((part) => part.type === "input_audio")) {
    const entry = transcript.ensure(item.id, "user");
    entry.committed = true;
    const known = content.find((part) => part.type === "input_audio" && part.transcript);
    if (known && !entry.text) transcript.finish(item.id, "user", known.transcript);
  }
}

function onResponseDone(response) {
  state.responseActive = false;
  state.responseAudible = false;
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
    noteError(detail || "The reply failed.");
    showToast(detail ? `The reply failed: ${detail}` : "The reply failed.");
  }
  scheduleHistoryRefresh();
}

// The list shows titles and counts: refresh once a turn has been stored, not per event.
function scheduleHistoryRefresh() {
  clearTimeout(state.historyTimer);
  state.historyTimer = setTimeout(async () => {
    await history.refresh();
    if (!state.viewing) showConversationHeader(); // the title is the first thing said
  }, HISTORY_REFRESH_MS);
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
// History: past conversations, read-only, and continuing one
// ---------------------------------------------------------------------------------------

async function openArchive(id) {
  closeSidebar();
  if (id === state.conversationId && isBusy()) {
    closeArchive(); // the live one is already on screen
    return;
  }
  let conversation;
  try {
    conversation = await history.read(id);
  } catch (err) {
    showToast(err.message);
    return;
  }
  state.viewing = conversation;
  archive.clear();
  for (const message of conversation.messages) archive.addStored(message);
  ui.archive.hidden = false;
  ui.messages.hidden = true;
  ui.empty.hidden = true;
  ui.archiveEmpty.hidden = ui.archive.children.length > 0;
  ui.archiveActions.hidden = false;
  ui.continueButton.disabled = conversation.status === "active";
  ui.continueButton.title = conversation.status === "active" ? "This conversation is open in another tab" : "";
  showConversationHeader(conversation);
  history.setOpen(id);
  ui.transcript.scrollTop = 0;
}

function closeArchive() {
  if (!state.viewing) return;
  state.viewing = null;
  ui.archive.hidden = true;
  ui.archiveEmpty.hidden = true;
  ui.messages.hidden = false;
  ui.empty.hidden = ui.messages.children.length > 0;
  ui.archiveActions.hidden = true;
  history.setOpen(null);
  showConversationHeader();
}

function continueArchived() {
  const conversation = state.viewing;
  if (!conversation) return;
  if (isBusy()) stopConversation();
  startConversation({ conversationId: conversation.id, agentId: conversation.agent || DEFAULT_AGENT, stored: conversation });
}

function showStored(conversation) {
  for (const message of conversation.messages) transcript.addStored(message);
  transcript.addDivider(`Continued · ${formatWhen(new Date().toISOString())}`);
}

function newConversation() {
  closeSidebar();
  closeArchive();
  if (isBusy() || state.phase === "disconnected") stopConversation();
  state.conversationId = null;
  window.voxdialog.conversationId = null;
  transcript.clear();
  hideNotice();
  ui.reconnect.hidden = true;
  showConversationHeader();
}

function showConversationHeader(conversation = null) {
  if (conversation) {
    ui.conversationTitle.textContent = conversation.title || "Conversation";
    const agent = picker.nameOf(conversation.agent);
    ui.conversationMeta.textContent = [formatWhen(conversation.started_at), agent].filter(Boolean).join(" · ");
    return;
  }
  const live = state.conversationId && history.items.find((item) => item.id === state.conversationId);
  ui.conversationTitle.textContent = live?.title || "New conversation";
  ui.conversationMeta.textContent = picker.nameOf(isBusy() ? state.agentId : picker.value);
}

function toggleSidebar() {
  const open = !document.body.classList.contains("sidebar-open");
  document.body.classList.toggle("sidebar-open", open);
  ui.sidebarToggle.setAttribute("aria-expanded", String(open));
}

function closeSidebar() {
  document.body.classList.remove("sidebar-open");
  ui.sidebarToggle.setAttribute("aria-expanded", "false");
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
  window.voxdialog.phase = phase;
  renderControls();
}

function renderControls() {
  const phase = state.phase;
  const live = phase === "live";
  const busy = isBusy();
  ui.talk.setAttribute("aria-pressed", String(busy));
  const label = phase === "connecting" ? "Cancel connecting" : busy ? "End conversation" : "Start conversation";
  ui.talkLabel.textContent = label;
  ui.talk.title = label;
  ui.message.disabled = !live;
  ui.send.disabled = !live;
  ui.message.placeholder = live ? "Type a message instead…" : "Start talking to type here";
  ui.ptt.hidden = !(state.turns === PUSH_TO_TALK && (live || phase === "reconnecting"));
  ui.ptt.disabled = !live;
  // The agent is fixed for a running conversation; switch it between conversations.
  picker.setDisabled(busy);
  renderStatus();
}

function currentMode() {
  switch (state.phase) {
    case "connecting":
      return ["connecting", "Connecting…"];
    case "reconnecting":
      return state.hadSession
        ? ["reconnecting", `Connection lost, reconnecting… (${state.retries} of ${RECONNECT_TRIES})`]
        : ["connecting", `Connecting… (try ${state.retries + 1} of ${RECONNECT_TRIES + 1})`];
    case "disconnected":
      return ["disconnected", "Disconnected"];
    case "idle":
      return ["idle", "Press the button to start talking"];
    default:
      break;
  }
  if (!state.sessionReady) return ["connecting", "Connecting…"];
  if (state.userSpeaking || state.ptt.held) return ["user", "You're speaking"];
  // Between two sentences of one reply the queue may run dry for a moment: still speaking.
  if (reply.playing || (state.responseActive && state.responseAudible)) return ["speaking", "Speaking"];
  if (state.responseActive || state.awaitingReply || state.ptt.tail) return ["thinking", "Thinking…"];
  if (state.turns === PUSH_TO_TALK) return ["listening", "Hold Space or the button below to talk"];
  return ["listening", "Listening"];
}

function renderStatus() {
  const [mode, text] = currentMode();
  document.body.dataset.mode = mode;
  document.body.dataset.playing = String(reply.playing);
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

function showToast(message) {
  const text = document.createElement("p");
  text.textContent = message;
  const close = document.createElement("button");
  close.type = "button";
  close.className = "toast-close";
  close.setAttribute("aria-label", "Dismiss");
  close.textContent = "×";
  const toast = document.createElement("div");
  toast.className = "toast";
  toast.append(text, close);
  const dismiss = () => toast.remove();
  close.addEventListener("click", dismiss);
  ui.toasts.append(toast);
  setTimeout(dismiss, TOAST_MS);
}

// ---------------------------------------------------------------------------------------
// Wiring
// ---------------------------------------------------------------------------------------

function onTalkPressed() {
  if (isBusy()) stopConversation();
  else startConversation();
}

function wireControls() {
  ui.talk.addEventListener("click", onTalkPressed);
  ui.reconnect.addEventListener("click", reconnectNow);
  ui.ptt.addEventListener("pointerdown", (event) => {
    ui.ptt.setPointerCapture?.(event.pointerId);
    pttPress();
  });
  for (const type of ["pointerup", "pointercancel", "lostpointercapture"]) {
    ui.ptt.addEventListener(type, pttRelease);
  }
  window.addEventListener("keydown", onKeyDown, true);
  window.addEventListener("keyup", onKeyUp, true);
  window.addEventListener("blur", pttRelease); // a key released in another window never comes
  for (const radio of ui.turnRadios) {
    radio.addEventListener("change", () => radio.checked && setTurns(radio.value));
  }
  ui.microphone.addEventListener("change", chooseMicrophone);
  navigator.mediaDevices?.addEventListener?.("devicechange", listMicrophones);
  ui.composer.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = ui.message.value.trim();
    if (!text) return;
    ui.message.value = "";
    sendTypedMessage(text);
  });
}

function wireAccount() {
  auth.addEventListener("change", onAuthChange);
  ui.loginForm.addEventListener("submit", submitLogin);
  ui.keyForm.addEventListener("submit", submitKey);
  ui.localSignin.addEventListener("click", signInLocally);
  ui.signOut.addEventListener("click", signOut);
  ui.newConversation.addEventListener("click", newConversation);
  ui.continueButton.addEventListener("click", continueArchived);
  ui.archiveClose.addEventListener("click", closeArchive);
  ui.sidebarToggle.addEventListener("click", toggleSidebar);
  // An open drawer closes on Escape or on a click beside it.
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") closeSidebar();
  });
  document.addEventListener("click", (event) => {
    const inside = event.target.closest?.("#sidebar, #sidebar-toggle");
    if (!inside && document.body.classList.contains("sidebar-open")) closeSidebar();
  });
  window.addEventListener("pagehide", () => {
    if (state.socket) stopConversation();
  });
  // Back online: don't wait for the rest of the back-off pause.
  window.addEventListener("online", () => {
    if (state.phase === "reconnecting" && !state.socket && !state.dialing) {
      clearTimeout(state.retryTimer);
      tryReconnecting();
    }
  });
}

function init() {
  wireControls();
  wireAccount();
  if (!VoiceAudio.supported()) {
    ui.talk.disabled = true;
    showNotice(
      window.isSecureContext
        ? "This browser cannot capture audio here (AudioWorklet or microphone access is missing). Try a current Chrome, Edge, Firefox or Safari."
        : "Browsers only allow the microphone on secure pages. Open this page via https:// or http://localhost.",
    );
  }
  setPhase("idle");
  boot();
}

init();
