// Assistant audio playback: a queue of PCM16 24 kHz chunks, played gaplessly at the context rate.
//
// Messages in:
//   {type: "push", itemId, buffer}  PCM16 little-endian mono at 24 kHz (ArrayBuffer, transferred)
//   {type: "flush", id}             drop everything queued now; answer with exact played counts
// Messages out:
//   {type: "progress", played: {itemId: samples}, idle, chunks}
//       cumulative 24 kHz samples rendered per item; idle=true when the queue ran dry;
//       chunks = pushed buffers rendered to their end since the start (flushed ones never are)
//   {type: "flushed", id, played: {itemId: samples}}     the counts at the moment of the flush
//
// Counts are in 24 kHz source samples so the main thread can turn them straight into the
// `audio_end_ms` of `conversation.item.truncate`, whatever rate the AudioContext runs at.

const SOURCE_RATE = 24000;
const REPORT_SECONDS = 0.025;

class PlaybackProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.queue = []; // [{itemId, samples: Float32Array}]
    this.index = 0; // read index into queue[0].samples
    this.frac = 0; // fractional read position between index and index + 1
    this.step = SOURCE_RATE / sampleRate;
    this.played = new Map(); // itemId -> samples rendered (kept for the session; tiny)
    this.changed = new Set();
    this.framesSinceReport = 0;
    this.reportEvery = Math.round(sampleRate * REPORT_SECONDS);
    this.active = false;
    this.chunksDone = 0;
    this.port.onmessage = (event) => this.onMessage(event.data);
  }

  onMessage(message) {
    if (message.type === "push") {
      this.enqueue(message.itemId, message.buffer);
    } else if (message.type === "flush") {
      this.flush(message.id);
    }
  }

  enqueue(itemId, buffer) {
    const pcm = new Int16Array(buffer);
    if (pcm.length === 0) return;
    const samples = new Float32Array(pcm.length);
    for (let i = 0; i < pcm.length; i++) samples[i] = pcm[i] / 32768;
    this.queue.push({ itemId, samples });
    this.active = true;
  }

  // Silence at once: the next render quantum is already empty. The counts returned are what
  // was rendered, which is what the listener will have heard once the device buffer drains.
  flush(id) {
    this.queue = [];
    this.index = 0;
    this.frac = 0;
    this.active = false;
    this.changed.clear();
    this.port.postMessage({ type: "flushed", id, played: Object.fromEntries(this.played) });
  }

  process(inputs, outputs) {
    const out = outputs[0] && outputs[0][0];
    if (!out) return true;
    let i = 0;
    for (; i < out.length && this.queue.length > 0; i++) out[i] = this.nextSample();
    out.fill(0, i);
    this.report(out.length);
    return true;
  }

  // Linear interpolation from 24 kHz to the context rate; a plain copy when they match
  // (frac stays 0). The sample after the current one may live in the next queued chunk.
  nextSample() {
    const chunk = this.queue[0];
    const current = chunk.samples[this.index];
    let next = current;
    if (this.index + 1 < chunk.samples.length) next = chunk.samples[this.index + 1];
    else if (this.queue.length > 1) next = this.queue[1].samples[0];
    const value = current + (next - current) * this.frac;
    this.frac += this.step;
    while (this.frac >= 1 && this.queue.length > 0) {
      this.frac -= 1;
      this.advance();
    }
    // An underrun must not carry a fractional debt into the next chunk.
    if (this.queue.length === 0) this.frac = 0;
    return value;
  }

  advance() {
    const chunk = this.queue[0];
    this.played.set(chunk.itemId, (this.played.get(chunk.itemId) || 0) + 1);
    this.changed.add(chunk.itemId);
    this.index++;
    if (this.index >= chunk.samples.length) {
      this.queue.shift();
      this.index = 0;
      this.chunksDone++;
    }
  }

  // Throttled: a message per render quantum (~375/s) would flood the main thread.
  report(frames) {
    const ranDry = this.active && this.queue.length === 0;
    this.framesSinceReport += frames;
    if (!ranDry && (this.changed.size === 0 || this.framesSinceReport < this.reportEvery)) return;
    const played = {};
    for (const itemId of this.changed) played[itemId] = this.played.get(itemId);
    this.changed.clear();
    this.framesSinceReport = 0;
    if (ranDry) this.active = false;
    this.port.postMessage({ type: "progress", played, idle: ranDry, chunks: this.chunksDone });
  }
}

registerProcessor("playback-processor", PlaybackProcessor);
