// The voice controls as the person sees them: the talk button, the status line (and
// body[data-mode], which the styles and tests read), push-to-talk, the typing box, and the
// notice with its Reconnect button. Drawn from the other pieces' state; keeps none itself.

import { RECONNECT_TRIES, State } from "./connection.js";
import { $ } from "./util.js";

export class StageView {
  /**
   * @param {{connection: import("./connection.js").Connection,
   *          dialogue: import("./dialogue.js").Dialogue,
   *          turnTaking: import("./push-to-talk.js").TurnTaking,
   *          reply: import("./reply-audio.js").ReplyAudio,
   *          picker: import("./agents.js").AgentPicker}} pieces
   */
  constructor(pieces) {
    this.pieces = pieces;
    this.ui = {
      talk: $("talk"),
      talkLabel: $("talk-label"),
      status: $("status"),
      ptt: $("ptt"),
      message: $("message"),
      send: $("send"),
      reconnect: $("reconnect"),
      notice: $("notice"),
    };
  }

  /** Everything that depends on the connection's state, then the status. */
  render() {
    const { connection, turnTaking, picker } = this.pieces;
    const ui = this.ui;
    const state = connection.state;
    const live = state === State.OPEN;
    const busy = connection.busy;
    ui.talk.setAttribute("aria-pressed", String(busy));
    const label = state === State.CONNECTING ? "Cancel connecting" : busy ? "End conversation" : "Start conversation";
    ui.talkLabel.textContent = label;
    ui.talk.title = label;
    ui.message.disabled = !live;
    ui.send.disabled = !live;
    ui.message.placeholder = live ? "Type a message instead…" : "Start talking to type here";
    ui.ptt.hidden = !(turnTaking.pushToTalk && (live || state === State.RECONNECTING));
    ui.ptt.disabled = !live;
    // The agent is fixed for a running conversation; switch it between conversations.
    picker.setDisabled(busy);
    this.renderStatus();
  }

  renderStatus() {
    const [mode, text] = this.mode();
    document.body.dataset.mode = mode;
    document.body.dataset.playing = String(this.pieces.reply.playing);
    // Rewriting identical text would make screen readers repeat the status.
    if (this.ui.status.textContent !== text) this.ui.status.textContent = text;
  }

  /** [body[data-mode], status text]. */
  mode() {
    const { connection, dialogue, turnTaking, reply } = this.pieces;
    switch (connection.state) {
      case State.CONNECTING:
        return ["connecting", "Connecting…"];
      case State.RECONNECTING:
        return connection.hadSession
          ? ["reconnecting", `Connection lost, reconnecting… (${connection.retries} of ${RECONNECT_TRIES})`]
          : ["connecting", `Connecting… (try ${connection.retries + 1} of ${RECONNECT_TRIES + 1})`];
      case State.TAKEN_OVER:
      case State.CLOSED:
        return ["disconnected", "Disconnected"];
      case State.IDLE:
        return ["idle", "Press the button to start talking"];
      default:
        break;
    }
    if (dialogue.userSpeaking || turnTaking.held) return ["user", "You're speaking"];
    // Between two sentences of one reply the queue may run dry for a moment: still speaking.
    if (reply.playing || (dialogue.responseActive && dialogue.responseAudible)) return ["speaking", "Speaking"];
    if (dialogue.responseActive || dialogue.awaitingReply || turnTaking.finishing) return ["thinking", "Thinking…"];
    if (turnTaking.pushToTalk) return ["listening", "Hold Space or the button below to talk"];
    return ["listening", "Listening"];
  }

  showNotice(message, { reconnect = false } = {}) {
    this.ui.notice.textContent = message;
    this.ui.notice.hidden = false;
    if (reconnect) this.ui.reconnect.hidden = false;
  }

  hideNotice() {
    this.ui.notice.hidden = true;
    this.ui.notice.textContent = "";
  }

  /** A new try: the last failure's notice and its Reconnect button go. */
  clearNotice() {
    this.hideNotice();
    this.ui.reconnect.hidden = true;
  }
}
