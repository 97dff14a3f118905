// Microphone capture: Float32 at the AudioContext rate -> PCM16 mono at 24 kHz, in ~40 ms batches.
//
// Runs on the audio rendering thread. Each batch is posted to the main thread as a
// transferable ArrayBuffer together with its RMS level (for the level meter), so the
// main thread only base64-encodes and sends; no per-sample work happens there.

const TARGET_RATE = 24000;
const BATCH_SAMPLES = 960; // 40 ms at 24 kHz: small enough for snappy VAD, few enough events.

class CaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    // `sampleRate` is the AudioContext rate, a global in AudioWorkletGlobalScope.
    this.step = sampleRate / TARGET_RATE;
    // Position of the next output sample, in input samples relative to the current block.
    // It may be in [-1, 0): then it falls between the previous block's last sample and x[0].
    this.position = 0;
    this.previous = 0;
    this.startBatch();
  }

  startBatch() {
    this.batch = new Int16Array(BATCH_SAMPLES);
    this.filled = 0;
    this.sumSquares = 0;
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    // No channel means the source is not connected (yet); keep the node alive.
    if (!channel || channel.length === 0) return true;
    if (this.step === 1) {
      for (let i = 0; i < channel.length; i++) this.push(channel[i]);
    } else {
      this.resample(channel);
    }
    return true;
  }

  // Linear interpolation across block boundaries. Cheap and good enough for speech: the
  // server's VAD and ASR work at 16 kHz, well below where the aliasing of a plain linear
  // resampler from 44.1/48 kHz would matter.
  resample(x) {
    const n = x.length;
    let t = this.position;
    while (t < n - 1) {
      const i = Math.floor(t);
      const frac = t - i;
      const a = i < 0 ? this.previous : x[i];
      const b = x[i + 1];
      this.push(a + (b - a) * frac);
      t += this.step;
    }
    this.position = t - n;
    this.previous = x[n - 1];
  }

  push(sample) {
    const s = sample > 1 ? 1 : sample < -1 ? -1 : sample;
    this.sumSquares += s * s;
    // Asymmetric scale so that -1 maps to -32768 and +1 to 32767 without overflow.
    this.batch[this.filled++] = s < 0 ? s * 0x8000 : s * 0x7fff;
    if (this.filled === BATCH_SAMPLES) this.post();
  }

  post() {
    const rms = Math.sqrt(this.sumSquares / this.filled);
    const buffer = this.batch.buffer;
    this.port.postMessage({ type: "audio", buffer, rms }, [buffer]);
    this.startBatch();
  }
}

registerProcessor("capture-processor", CaptureProcessor);
