// Whose turn it is, as the server's events tell it: the person speaking, a reply awaited,
// thinking or playing, and which items each response made. Draws the live transcript from
// those events; the audio itself goes through ReplyAudio.

const REPLY_WAIT_MS = 10000;
const ABANDON_MS = 3000;

export class Dialogue {
  /**
   * @param {{transcript: import("./transcript.js").Transcript,
   *          reply: import("./reply-audio.js").ReplyAudio,
   *          send: (event: Object) => void, stats: Object,
   *          onChange: () => void, onStored: () => void,
   *          onFailure: (shown: string, noted: string) => void}} deps
   *   onChange: the status may read differently now; onStored: a turn reached the server's
   *   store (the history list may change); onFailure(shown, noted): a reply failed.
   */
  constructor({ transcript, reply, send, stats, onChange, onStored, onFailure }) {
    Object.assign(this, { transcript, reply, send, stats, onChange, onStored, onFailure });
    this.responseItems = new Map(); // response_id -> Set(item_id)
    this.awaitingTimer = 0;
    this.reset();
  }

  /** Forget what belonged to one socket; playback already queued may finish. */
  reset() {
    this.userSpeaking = false;
    this.responseActive = false;
    this.responseAudible = false; // the active response has sent audio: "speaking" until done
    this.expectReply(false);
    this.responseItems.clear();
    this.reply.forgetPartialSamples();
  }

  /**
   * Covers the gap between a committed turn and response.created. The server may decide no
   * reply is due (an empty turn), so the wait expires instead of showing "Thinking" forever.
   */
  expectReply(value) {
    clearTimeout(this.awaitingTimer);
    this.awaitingReply = value;
    if (!value) return;
    this.awaitingTimer = setTimeout(() => {
      this.awaitingReply = false;
      this.onChange();
    }, REPLY_WAIT_MS);
  }

  /** Barge-in: silence the reply now and tell the server what was heard of it. */
  async interrupt() {
    await this.reply.interrupt();
    this.onChange();
  }

  /** A typed message: shown at once, answered like a spoken turn. */
  async sendTyped(text) {
    this.transcript.addLocal("user", text);
    // Typing takes the turn just like speaking does.
    await this.interrupt();
    if (this.responseActive) this.send({ type: "response.cancel" });
    this.send({
      type: "conversation.item.create",
      item: { type: "message", role: "user", content: [{ type: "input_text", text }] },
    });
    this.send({ type: "response.create" });
    this.expectReply(true);
    this.onChange();
  }

  /** Apply one server event (types this class has no use for are ignored). */
  handle(event) {
    const handler = HANDLERS[event.type];
    if (handler) handler.call(this, event);
  }

  onItemAdded(item) {
    if (!item || item.type !== "message" || !item.id) return;
    const content = item.content || [];
    // Voice turns only: typed turns were drawn when sent, and assistant items arrive via
    // response.output_item.added. This covers a committed buffer with no speech_started
    // (push-to-talk).
    if (item.role === "user" && content.some((part) => part.type === "input_audio")) {
      const entry = this.transcript.ensure(item.id, "user");
      entry.committed = true;
      const known = content.find((part) => part.type === "input_audio" && part.transcript);
      if (known && !entry.text) this.transcript.finish(item.id, "user", known.transcript);
    }
  }

  onResponseDone(response) {
    this.responseActive = false;
    this.responseAudible = false;
    const ids = new Set(this.responseItems.get(response.id) || []);
    for (const item of response.output || []) {
      if (item.type === "message" && item.id) ids.add(item.id);
    }
    this.responseItems.delete(response.id);
    for (const itemId of ids) this.settleReplyItem(itemId, response.status);
    if (response.status === "failed") {
      const detail = response.status_details?.error?.message;
      const shown = detail ? `The reply failed: ${detail}` : "The reply failed.";
      this.onFailure(shown, detail || "The reply failed.");
    }
    this.onStored();
  }

  settleReplyItem(itemId, status) {
    const transcript = this.transcript;
    const entry = transcript.get(itemId);
    if (!entry) return;
    if (!entry.text) {
      transcript.remove(itemId); // cancelled before it said anything
      return;
    }
    if (!entry.final) transcript.finish(itemId, "assistant");
    if (status === "cancelled" && entry.heardChars === null) {
      transcript.setNote(itemId, "stopped", "is-cancelled");
    } else if (status === "failed" || status === "incomplete") {
      transcript.setNote(itemId, status, "is-cancelled");
    }
  }
}

// Called with the Dialogue as `this`.
const HANDLERS = {
  "input_audio_buffer.speech_started"(event) {
    this.userSpeaking = true;
    this.expectReply(false);
    this.transcript.dropAbandonedUserBubbles(event.item_id);
    if (event.item_id) this.transcript.ensure(event.item_id, "user");
    this.interrupt();
  },
  "input_audio_buffer.speech_stopped"(event) {
    this.userSpeaking = false;
    if (event.item_id) this.transcript.dropIfAbandoned(event.item_id, ABANDON_MS);
  },
  "input_audio_buffer.committed"(event) {
    const entry = event.item_id && this.transcript.ensure(event.item_id, "user");
    if (entry) entry.committed = true;
    // A committed turn is what gets answered; speech the server threw away is not.
    this.expectReply(true);
  },
  "conversation.item.added"(event) {
    this.onItemAdded(event.item);
  },
  "conversation.item.truncated"(event) {
    // Ask for the stored copy: its text is cut exactly where the listener stopped hearing.
    if (this.reply.isCut(event.item_id)) {
      this.send({ type: "conversation.item.retrieve", item_id: event.item_id });
    }
  },
  "conversation.item.retrieved"(event) {
    const item = event.item || {};
    const part = (item.content || [])[0];
    if (item.role === "assistant" && typeof part?.transcript === "string") {
      this.transcript.markHeard(item.id, part.transcript);
    }
  },
  "voxdialog.input_audio_transcription.partial"(event) {
    this.stats.partialTranscripts++;
    this.transcript.partial(event.item_id, event.transcript);
  },
  "conversation.item.input_audio_transcription.delta"(event) {
    this.transcript.append(event.item_id, "user", event.delta);
  },
  "conversation.item.input_audio_transcription.completed"(event) {
    if (!(event.transcript || "").trim() && !this.transcript.get(event.item_id)?.text) {
      this.transcript.remove(event.item_id); // nothing recognisable was said
      return;
    }
    this.transcript.finish(event.item_id, "user", event.transcript);
    this.onStored(); // the first thing said becomes the conversation's title
  },
  "conversation.item.input_audio_transcription.failed"(event) {
    this.transcript.finish(event.item_id, "user");
    this.transcript.setNote(event.item_id, "couldn't transcribe", "is-failed");
  },
  "response.created"(event) {
    this.responseActive = true;
    this.responseAudible = false;
    this.expectReply(false);
    if (event.response?.id) this.responseItems.set(event.response.id, new Set());
  },
  "response.output_item.added"(event) {
    const item = event.item || {};
    if (item.type === "message" && item.role === "assistant") {
      this.transcript.ensure(item.id, "assistant");
      this.responseItems.get(event.response_id)?.add(item.id);
    }
  },
  "response.output_audio.delta"(event) {
    if (this.reply.play(event.item_id, event.delta) && this.responseActive) this.responseAudible = true;
  },
  "response.output_audio.done"(event) {
    this.reply.finish(event.item_id);
  },
  "response.output_audio_transcript.delta"(event) {
    this.reply.noteSentence(event.item_id, event.delta);
    this.transcript.append(event.item_id, "assistant", event.delta);
  },
  "response.output_audio_transcript.done"(event) {
    this.transcript.finish(event.item_id, "assistant", event.transcript);
  },
  "response.output_text.delta"(event) {
    this.transcript.append(event.item_id, "assistant", event.delta);
  },
  "response.output_text.done"(event) {
    this.transcript.finish(event.item_id, "assistant", event.text);
  },
  "response.done"(event) {
    this.onResponseDone(event.response || {});
  },
};
