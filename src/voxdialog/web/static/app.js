// VoxDialog talk page: microphone -> Realtime WebSocket (GA protocol) -> speaker, with a live
// transcript, barge-in, push-to-talk, reconnects that keep the conversation, sign-in, agents
// and history. This module puts the pieces together and draws the controls from them; each
// piece keeps its own state. Plain ES modules, no build step, no dependencies.

import { AccountView } from "./account.js";
import { AgentPicker, DEFAULT_AGENT } from "./agents.js";
import { ArchiveView } from "./archive.js";
import { Auth } from "./auth.js";
import { VoiceAudio } from "./audio.js";
import { CLOSING_ERRORS, Connection, State } from "./connection.js";
import { Dialogue } from "./dialogue.js";
import { History } from "./history.js";
import { Microphone } from "./microphone.js";
import { TurnTaking } from "./push-to-talk.js";
import { ReplyAudio } from "./reply-audio.js";
import { UserSettings } from "./settings.js";
import { StageView } from "./stage.js";
import { Transcript } from "./transcript.js";
import { $, PageError, SAMPLE_RATE, bytesToBase64, formatWhen, showToast } from "./util.js";

const MODEL = "local-voice";
// Races the spec calls benign: the client did nothing wrong, so the user needs no toast.
const BENIGN_ERRORS = new Set([
  "input_audio_buffer_commit_empty",
  "conversation_already_has_active_response",
  "response_cancel_not_active",
]);
// What window.voxdialog.phase (read by tools and tests) calls each connection state.
const PHASES = {
  [State.IDLE]: "idle",
  [State.CONNECTING]: "connecting",
  [State.OPEN]: "live",
  [State.RECONNECTING]: "reconnecting",
  [State.TAKEN_OVER]: "disconnected",
  [State.CLOSED]: "disconnected",
};

const ui = {
  talk: $("talk"),
  reconnect: $("reconnect"),
  transcript: $("transcript"),
  messages: $("messages"),
  composer: $("composer"),
  message: $("message"),
  toasts: $("toasts"),
};

// What tools and tests may read; plain data, updated in place.
const stats = {
  audioChunksReceived: 0,
  audioChunksPlayed: 0,
  partialTranscripts: 0,
  reconnects: 0,
  lastError: null,
};
window.voxdialog = { stats, conversationId: null, phase: "idle", connection: State.IDLE, microphone: null };

// ---------------------------------------------------------------------------------------
// The pieces (callbacks name pieces made further down: they run only after all exist)
// ---------------------------------------------------------------------------------------

const auth = new Auth();
const settings = new UserSettings(auth);
const connection = new Connection({
  ticket: (agentId) => auth.ticket(agentId),
  model: MODEL,
  keepAlive: () => turnTaking.keepAliveEvent(),
});
const send = (event) => connection.send(event);
const transcript = new Transcript(ui.messages, ui.transcript, $("empty"), $("announcer"));
const reply = new ReplyAudio({
  send,
  stats,
  onHeard: (itemId, text) => transcript.markHeard(itemId, text),
});
const history = new History(
  auth,
  { list: $("history-list"), more: $("history-more"), empty: $("history-empty") },
  (id) => archive.open(id),
);
const picker = new AgentPicker(auth, settings, $("agent"), (names) => history.setAgentNames(names));
const archive = new ArchiveView({
  history,
  picker,
  archive: new Transcript($("archive"), ui.transcript, $("archive-empty"), $("announcer")),
  live: () => ({ id: connection.conversationId, agentId: connection.agentId, running: connection.busy }),
  onContinue: continueConversation,
  onError: toast,
});
const dialogue = new Dialogue({
  transcript,
  reply,
  send,
  stats,
  onChange: renderStatus,
  onStored: () => archive.scheduleRefresh(),
  onFailure: (shown, noted) => {
    noteError(noted);
    toast(shown);
  },
});
const turnTaking = new TurnTaking({
  button: $("ptt"),
  radios: [...document.querySelectorAll('input[name="turns"]')],
  settings,
  dialogue,
  send,
  isLive: () => connection.state === State.OPEN,
  onChange: renderStatus,
  onModeChange: () => {
    if (connection.state === State.OPEN) send(sessionUpdate());
    renderControls();
  },
});
const microphone = new Microphone({
  select: $("microphone"),
  meter: $("stage"),
  exposed: window.voxdialog,
  onFailure: showFailure,
});
const stage = new StageView({ connection, dialogue, turnTaking, reply, picker });
const account = new AccountView(auth, {
  onSignedIn: enterWorkspace,
  onSignedOut: () => {
    stopConversation();
    history.reset();
  },
  onUnreachable: showNotice,
});

function noteError(message) {
  stats.lastError = message;
}

async function enterWorkspace() {
  await settings.load();
  turnTaking.setMode(turnTaking.remembered(), { save: false });
  await picker.load();
  if (connection.state === State.IDLE) archive.showHeader();
  await Promise.all([history.refresh(), microphone.list()]);
}

// ---------------------------------------------------------------------------------------
// Starting and stopping
// ---------------------------------------------------------------------------------------

/**
 * Open the microphone and a Realtime session.
 * @param {{conversationId?: string|null, agentId?: string, stored?: Object|null, resume?: boolean}} options
 *   conversationId: continue that conversation; stored: its messages to show first;
 *   resume: the same conversation goes on after a lost connection (transcript kept).
 */
async function startConversation({ conversationId = null, agentId = picker.value, stored = null, resume = false } = {}) {
  if (connection.busy) return;
  stage.clearNotice();
  archive.close();
  resetSocketState();
  if (!resume) {
    transcript.clear();
    if (stored) showStored(stored);
  }
  const started = connection.start({ conversationId, agentId: agentId || DEFAULT_AGENT, resume, prepare: openAudio });
  archive.showHeader(stored); // start() has taken the conversation and agent before its first await
  try {
    await started;
  } catch (err) {
    showFailure(err); // back in IDLE: what was set up is released
  }
}

// Inside the click that started the conversation: the browser lets audio start only there.
async function openAudio() {
  const audio = await microphone.start({ onChunk: sendAudioChunk, onProgress: onPlaybackProgress });
  if (microphone.audio === audio) reply.attach(audio); // not when stopped meanwhile
}

function stopConversation() {
  const wasRunning = connection.state !== State.IDLE;
  connection.stop();
  if (wasRunning) history.refresh();
}

function reconnect() {
  const resume = Boolean(connection.conversationId && connection.hadSession);
  startConversation({ conversationId: connection.conversationId, agentId: connection.agentId, resume });
}

function continueConversation(conversation) {
  if (connection.busy) stopConversation();
  startConversation({ conversationId: conversation.id, agentId: conversation.agent || DEFAULT_AGENT, stored: conversation });
}

function showStored(conversation) {
  for (const message of conversation.messages) transcript.addStored(message);
  transcript.addDivider(`Continued · ${formatWhen(new Date().toISOString())}`);
}

function newConversation() {
  archive.closeSidebar();
  archive.close();
  if (connection.state !== State.IDLE) stopConversation();
  connection.forget();
  window.voxdialog.conversationId = null;
  transcript.clear();
  stage.clearNotice();
  archive.showHeader();
}

/** Forget what belonged to one socket; playback already queued may finish. */
function resetSocketState() {
  dialogue.reset();
  turnTaking.reset();
  microphone.resetLevel();
}

/** Release the microphone and the speaker; nothing pending will be filled in any more. */
function teardown() {
  microphone.close();
  reply.attach(null);
  resetSocketState();
  transcript.settle();
}

// ---------------------------------------------------------------------------------------
// What the connection reports
// ---------------------------------------------------------------------------------------

function onConnectionState({ state, reconnected, why, error, code, reason }) {
  window.voxdialog.phase = PHASES[state];
  window.voxdialog.connection = state;
  if (error) noteError(error);
  if (state !== State.OPEN) resetSocketState();
  if (state === State.OPEN) onSessionOpen(reconnected);
  if (state === State.RECONNECTING) {
    transcript.settle();
    archive.scheduleRefresh();
  }
  if (state === State.TAKEN_OVER || state === State.CLOSED) onConnectionEnded(state, { why, code, reason });
  if (state === State.IDLE) {
    teardown();
    history.setLive(null);
  }
  renderControls();
}

function onSessionOpen(reconnected) {
  const id = connection.conversationId;
  window.voxdialog.conversationId = id;
  send(sessionUpdate());
  if (reconnected) {
    stats.reconnects++;
    stage.hideNotice();
    transcript.addDivider("Reconnected");
  }
  history.setLive(id);
  archive.scheduleRefresh();
}

/** TAKEN_OVER or CLOSED: nothing happens until the person presses Reconnect. */
function onConnectionEnded(state, { why, code, reason }) {
  teardown(); // release the microphone while nothing listens
  history.setLive(null);
  archive.scheduleRefresh();
  if (why === "revoked") {
    auth.expire(); // the sign-in ended elsewhere: the "change" event asks to sign in again
    return;
  }
  stage.showNotice(endedNotice(state, { why, code, reason }), { reconnect: true });
}

function endedNotice(state, { why, code, reason }) {
  if (state === State.TAKEN_OVER) {
    return "This conversation continues in another window. Reconnect to bring it here.";
  }
  if (why === "refused") return describeRefusal(code, reason); // the first socket of this conversation
  if (connection.hadSession) {
    return "Lost the connection to the server. Your conversation is kept: press Reconnect to go on.";
  }
  const cause = connection.lastServerError || stats.lastError;
  return cause ? `Could not continue the conversation: ${cause}` : "Could not continue the conversation.";
}

function describeRefusal(code, reason) {
  if (code === 4004 || code === 4009) {
    return "This conversation can't be continued right now: it may still be open in another tab.";
  }
  if (code === 1013) return "The server is busy. Try again in a moment.";
  if (connection.lastServerError) return `Could not connect: ${connection.lastServerError}`;
  return reason ? `Could not connect: ${reason}` : "Could not connect to the conversation server.";
}

function onServerEvent(event) {
  if (event.type === "error") onServerError(event.error || {});
  else dialogue.handle(event);
  renderStatus();
}

function onServerError(error) {
  if (BENIGN_ERRORS.has(error.code)) return;
  const message = error.message || error.code || "The server reported an error.";
  noteError(message);
  // Before the session exists the error explains a refused connection: the notice says it;
  // a closing error is followed by the close, which the connection handles.
  if (connection.state === State.OPEN && !CLOSING_ERRORS.has(error.code)) toast(message);
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
          turn_detection: turnTaking.turnDetection,
        },
        // No voice: the agent's own voice speaks.
        output: { format: { type: "audio/pcm", rate: SAMPLE_RATE } },
      },
      // VoxDialog's own: what the person says shows while they are still saying it.
      voxdialog: { partial_transcripts: true },
    },
  };
}

function sendAudioChunk(buffer) {
  // Before session.created the server has not applied our format yet; drop, don't queue.
  if (connection.state !== State.OPEN || !turnTaking.accepts(buffer)) return;
  send({ type: "input_audio_buffer.append", audio: bytesToBase64(new Uint8Array(buffer)) });
}

function onPlaybackProgress(played, idle, chunks) {
  if (reply.progress(played, idle, chunks)) renderStatus();
}

// ---------------------------------------------------------------------------------------
// Drawing
// ---------------------------------------------------------------------------------------

function renderControls() {
  stage.render();
}

function renderStatus() {
  stage.renderStatus();
}

function showNotice(message) {
  stage.showNotice(message);
}

function toast(message) {
  showToast(ui.toasts, message);
}

function showFailure(err) {
  const message = err instanceof PageError ? err.message : `Something went wrong: ${err?.message || err}`;
  noteError(message);
  if (err?.kind === "cancelled") return;
  if (err?.kind === "auth" && !auth.signedIn) return; // the sign-in form says it already
  showNotice(message);
}

// ---------------------------------------------------------------------------------------
// Wiring
// ---------------------------------------------------------------------------------------

function sendTypedMessage(event) {
  event.preventDefault();
  const text = ui.message.value.trim();
  if (!text) return;
  ui.message.value = "";
  if (connection.state === State.OPEN) dialogue.sendTyped(text);
}

function wire() {
  connection.addEventListener("statechange", (event) => onConnectionState(event.detail));
  connection.addEventListener("message", (event) => onServerEvent(event.detail));
  ui.talk.addEventListener("click", () => (connection.busy ? stopConversation() : startConversation()));
  ui.reconnect.addEventListener("click", reconnect);
  ui.composer.addEventListener("submit", sendTypedMessage);
  $("new-conversation").addEventListener("click", newConversation);
  turnTaking.wire();
  microphone.wire();
  archive.wire();
  account.wire();
  window.addEventListener("pagehide", () => {
    if (connection.busy) stopConversation();
  });
  // Back online: don't wait for the rest of the back-off pause.
  window.addEventListener("online", () => connection.retryNow());
}

function init() {
  wire();
  if (!VoiceAudio.supported()) {
    ui.talk.disabled = true;
    showNotice(
      window.isSecureContext
        ? "This browser cannot capture audio here (AudioWorklet or microphone access is missing). Try a current Chrome, Edge, Firefox or Safari."
        : "Browsers only allow the microphone on secure pages. Open this page via https:// or http://localhost.",
    );
  }
  renderControls();
  account.boot();
}

init();
