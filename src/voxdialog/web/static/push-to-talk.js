// How the person takes turns: hands-free (the server hears when they stop) or push-to-talk
// (hold Space or the button; the page commits each turn itself), and what may be sent of the
// microphone's audio because of it.

import { SAMPLE_RATE, localStore } from "./util.js";

export const HANDS_FREE = "hands-free";
export const PUSH_TO_TALK = "push-to-talk";
const TURNS_KEY = "voxdialog.turns";
// Audio keeps flowing this long after release so the last word is not cut; a press held for
// less than the server's minimum buffer (100 ms) is a tap, not a turn (a tap while the reply
// plays just stops it).
const PTT_TAIL_MS = 250;
const PTT_MIN_SAMPLES = SAMPLE_RATE / 10;
// Thresholds and the silence window are left out: the server fills them in from the agent.
const SERVER_VAD = {
  type: "server_vad",
  create_response: true,
  interrupt_response: true,
};

export class TurnTaking {
  /**
   * @param {{button: HTMLButtonElement, radios: HTMLInputElement[],
   *          settings: import("./settings.js").UserSettings,
   *          dialogue: import("./dialogue.js").Dialogue, send: (event: Object) => void,
   *          isLive: () => boolean, onChange: () => void, onModeChange: () => void}} deps
   *   isLive: a session is open; onChange: the status may read differently now;
   *   onModeChange: the mode changed (the session and the controls follow it).
   */
  constructor({ button, radios, settings, dialogue, send, isLive, onChange, onModeChange }) {
    Object.assign(this, { button, radios, settings, dialogue, send, isLive, onChange, onModeChange });
    this.mode = HANDS_FREE;
    this.timer = 0;
    this.reset();
  }

  get pushToTalk() {
    return this.mode === PUSH_TO_TALK;
  }

  /** The session's turn_detection: push-to-talk is the manual mode, no VAD. */
  get turnDetection() {
    return this.pushToTalk ? null : SERVER_VAD;
  }

  /** The key or button is down, or the tail after release is still being sent. */
  get held() {
    return this.press.held;
  }

  get finishing() {
    return this.press.tail;
  }

  /** The mode to start with: the user's setting, else this browser's last choice. */
  remembered() {
    return this.settings.get("push_to_talk") ? PUSH_TO_TALK : localStore.get(TURNS_KEY) || HANDS_FREE;
  }

  setMode(mode, { save = true } = {}) {
    const next = mode === PUSH_TO_TALK ? PUSH_TO_TALK : HANDS_FREE;
    if (this.press.held) this.release();
    this.mode = next;
    document.body.dataset.turns = next;
    for (const radio of this.radios) radio.checked = radio.value === next;
    if (save) {
      localStore.set(TURNS_KEY, next);
      this.settings.update({ push_to_talk: next === PUSH_TO_TALK });
    }
    this.onModeChange();
  }

  /** Forget a press in progress (its socket is gone). */
  reset() {
    clearTimeout(this.timer);
    this.press = { held: false, tail: false, samples: 0 };
  }

  /** Whether a microphone chunk goes to the server (counting what a held press captured). */
  accepts(buffer) {
    if (!this.pushToTalk) return true;
    if (!this.press.held && !this.press.tail) return false;
    if (this.press.held) this.press.samples += buffer.byteLength / 2;
    return true;
  }

  /** Push-to-talk sends nothing while nobody talks: an empty buffer clear says "still here". */
  keepAliveEvent() {
    const idle = this.pushToTalk && !this.press.held && !this.press.tail;
    return idle ? { type: "input_audio_buffer.clear" } : null;
  }

  ready() {
    return this.pushToTalk && this.isLive();
  }

  /** Start a turn; pressing while the reply plays interrupts it exactly like talking over it. */
  pressDown() {
    if (!this.ready() || this.press.held) return;
    clearTimeout(this.timer);
    const continuing = this.press.tail; // pressed again before the last release was sent
    this.press.held = true;
    this.press.tail = false;
    if (!continuing) {
      if (this.dialogue.responseActive) this.send({ type: "response.cancel" });
      this.dialogue.interrupt();
      this.send({ type: "input_audio_buffer.clear" });
      this.press.samples = 0;
      this.dialogue.expectReply(false);
    }
    this.button.classList.add("is-held");
    this.onChange();
  }

  release() {
    if (!this.press.held) return;
    this.press.held = false;
    this.press.tail = true;
    this.button.classList.remove("is-held");
    this.timer = setTimeout(() => this.endTurn(), PTT_TAIL_MS);
    this.onChange();
  }

  endTurn() {
    this.press.tail = false;
    if (this.press.samples >= PTT_MIN_SAMPLES) {
      this.send({ type: "input_audio_buffer.commit" });
      this.send({ type: "response.create" });
      this.dialogue.expectReply(true);
    } else {
      this.send({ type: "input_audio_buffer.clear" }); // a tap, not a turn
    }
    this.press.samples = 0;
    this.onChange();
  }

  /** Listen to the button, the Space key and the mode radios. */
  wire() {
    this.button.addEventListener("pointerdown", (event) => {
      this.button.setPointerCapture?.(event.pointerId);
      this.pressDown();
    });
    for (const type of ["pointerup", "pointercancel", "lostpointercapture"]) {
      this.button.addEventListener(type, () => this.release());
    }
    window.addEventListener("keydown", (event) => this.onKeyDown(event), true);
    window.addEventListener("keyup", (event) => this.onKeyUp(event), true);
    window.addEventListener("blur", () => this.release()); // a key released in another window never comes
    for (const radio of this.radios) {
      radio.addEventListener("change", () => radio.checked && this.setMode(radio.value));
    }
  }

  onKeyDown(event) {
    if (event.code !== "Space" || !this.ready() || isTypingTarget(event.target)) return;
    event.preventDefault(); // Space would also "click" a focused button
    if (!event.repeat) this.pressDown();
  }

  onKeyUp(event) {
    if (event.code !== "Space" || !this.press.held) return;
    event.preventDefault();
    this.release();
  }
}

function isTypingTarget(target) {
  return Boolean(target?.closest?.("input, textarea, select, [contenteditable]"));
}
