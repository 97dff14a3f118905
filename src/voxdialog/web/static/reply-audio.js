// The assistant's audio on its way to the speaker: what each reply item sent and played,
// which sentence each stretch of audio belongs to, and cutting it off on barge-in.

import { heardText } from "./transcript.js";
import { SAMPLE_RATE, base64ToBytes, samplesToMs } from "./util.js";

export class ReplyAudio {
  /**
   * @param {{send: (event: Object) => void, onHeard: (itemId: string, text: string) => void,
   *          stats: {audioChunksReceived: number, audioChunksPlayed: number}}} deps
   *   send: to the server; onHeard: an item was cut, this much of its text was heard.
   */
  constructor({ send, onHeard, stats }) {
    this.send = send;
    this.onHeard = onHeard;
    this.stats = stats;
    this.audio = null; // the VoiceAudio that plays, while there is one
    // Per assistant item, in 24 kHz samples: {received, played, done, cut, spans}.
    // spans: one per sentence, {text, start, samples}: where its audio starts and how long.
    this.tracks = new Map();
    this.oddBytes = new Map(); // item_id -> a trailing byte of a delta that split a sample
    this.playing = false;
    this.playedBase = 0; // chunks played by earlier audio graphs (each counts from zero)
  }

  /** Play through `audio` from now on (null: nothing plays; what was queued is forgotten). */
  attach(audio) {
    if (!audio && this.audio) this.playedBase = this.stats.audioChunksPlayed;
    this.audio = audio;
    if (!audio) {
      this.tracks.clear();
      this.playing = false;
    }
    this.oddBytes.clear();
  }

  /** A socket ended: a half sample carried over from it will never be completed. */
  forgetPartialSamples() {
    this.oddBytes.clear();
  }

  track(itemId) {
    let track = this.tracks.get(itemId);
    if (!track) {
      track = { received: 0, played: 0, done: false, cut: false, spans: [] };
      this.tracks.set(itemId, track);
    }
    return track;
  }

  isCut(itemId) {
    return Boolean(this.tracks.get(itemId)?.cut);
  }

  /** Queue an audio delta; false when it is not played (the item was cut, nothing plays). */
  play(itemId, b64) {
    this.stats.audioChunksReceived++;
    const track = this.track(itemId);
    // Audio after an interruption belongs to the reply the user talked over.
    if (track.cut || !this.audio) return false;
    const bytes = this.joinOddByte(itemId, base64ToBytes(b64));
    if (bytes.length === 0) return false;
    const samples = bytes.length / 2;
    track.received += samples;
    const span = track.spans[track.spans.length - 1];
    if (span) span.samples += samples;
    this.audio.enqueue(itemId, bytes.buffer);
    this.playing = true;
    return true;
  }

  /**
   * The server releases each sentence's text just before its first audio: a transcript delta
   * starts a span at the audio received so far, and the audio that follows belongs to it.
   */
  noteSentence(itemId, delta) {
    const text = (delta || "").trim();
    if (!text) return;
    const track = this.track(itemId);
    if (!track.cut) track.spans.push({ text, start: track.received, samples: 0 });
  }

  /** The item's audio is complete (response.output_audio.done). */
  finish(itemId) {
    const track = this.tracks.get(itemId);
    if (track) track.done = true;
    this.oddBytes.delete(itemId);
  }

  /** What the playback worklet reports; true when the speaker just went quiet. */
  progress(played, idle, chunks) {
    if (typeof chunks === "number") this.stats.audioChunksPlayed = this.playedBase + chunks;
    for (const [itemId, samples] of Object.entries(played)) {
      const track = this.tracks.get(itemId);
      if (track) track.played = samples;
    }
    if (!idle) return false;
    this.playing = false;
    this.forgetFinished();
    return true;
  }

  /**
   * Barge-in: silence the speaker at once, then tell the server how much of each reply was
   * actually heard so it can drop the rest from the conversation.
   */
  async interrupt() {
    const cut = [];
    for (const [itemId, track] of this.tracks) {
      const unfinished = track.played < track.received || !track.done;
      if (!track.cut && unfinished) {
        track.cut = true; // from now on, late deltas for this item are dropped
        cut.push([itemId, track]);
      }
    }
    if (cut.length === 0 || !this.audio) return;
    const exact = await this.audio.flush();
    // A reply that started while the flush was in flight keeps "Speaking".
    this.playing = this.hasUnplayed();
    for (const [itemId, track] of cut) {
      const played = exact && exact[itemId] !== undefined ? exact[itemId] : track.played;
      track.played = played;
      const endMs = samplesToMs(played);
      this.send({ type: "conversation.item.truncate", item_id: itemId, content_index: 0, audio_end_ms: endMs });
      // Shown at once with the server's own rule; conversation.item.truncated brings its copy.
      this.onHeard(itemId, heardText(spansInMs(track), endMs));
    }
    this.forgetFinished();
  }

  // Cut tracks stay: their entry is what makes late deltas of an interrupted reply be dropped.
  forgetFinished() {
    for (const [itemId, track] of this.tracks) {
      if (!track.cut && track.done && track.played >= track.received) this.tracks.delete(itemId);
    }
  }

  hasUnplayed() {
    for (const track of this.tracks.values()) {
      if (!track.cut && track.played < track.received) return true;
    }
    return false;
  }

  // PCM16 needs whole samples; if a delta ever splits one, carry the odd byte to the next.
  joinOddByte(itemId, bytes) {
    const carried = this.oddBytes.get(itemId);
    let all = bytes;
    if (carried !== undefined) {
      all = new Uint8Array(bytes.length + 1);
      all[0] = carried;
      all.set(bytes, 1);
      this.oddBytes.delete(itemId);
    }
    if (all.length % 2 === 1) {
      this.oddBytes.set(itemId, all[all.length - 1]);
      all = all.slice(0, all.length - 1);
    } else if (all.byteOffset !== 0 || all.byteLength !== all.buffer.byteLength) {
      all = all.slice();
    }
    return all;
  }
}

function spansInMs(track) {
  return track.spans.map((span) => ({
    text: span.text,
    startMs: (span.start * 1000) / SAMPLE_RATE,
    ms: (span.samples * 1000) / SAMPLE_RATE,
  }));
}
