// Microphone capture and assistant playback, both in AudioWorklets, on one AudioContext.

import { PageError, SAMPLE_RATE } from "./util.js";

const FLUSH_TIMEOUT_MS = 150;

const MIC_CONSTRAINTS = {
  echoCancellation: true,
  noiseSuppression: true,
  autoGainControl: true,
  channelCount: 1,
};

export class VoiceAudio {
  /**
   * @param {{onChunk: (buf: ArrayBuffer) => void, onLevel: (rms: number) => void,
   *          onProgress: (played: Object, idle: boolean, chunks: number) => void}} callbacks
   * @param {string} [deviceId] the microphone to open ("" = the system default)
   */
  constructor(callbacks, deviceId = "") {
    this.callbacks = callbacks;
    this.deviceId = deviceId;
    this.ctx = null;
    this.stream = null;
    this.source = null;
    this.capture = null;
    this.playback = null;
    this.flushes = new Map();
    this.flushId = 0;
    this.stopped = false;
  }

  static supported() {
    return Boolean(window.AudioContext && window.AudioWorkletNode && navigator.mediaDevices?.getUserMedia);
  }

  /** The microphones the browser offers (names appear once the page may use the microphone). */
  static async inputs() {
    if (!navigator.mediaDevices?.enumerateDevices) return [];
    const devices = await navigator.mediaDevices.enumerateDevices().catch(() => []);
    return devices.filter((device) => device.kind === "audioinput" && device.deviceId);
  }

  async start() {
    // Created before the first await so it is born inside the click's user activation and
    // may play sound. 24 kHz first: then neither worklet has to resample.
    this.ctx = VoiceAudio.createContext(SAMPLE_RATE);
    // iOS Safari only unlocks audio on a resume() made inside the gesture itself.
    this.ctx.resume().catch(() => {});
    this.stream = await this.openMicrophone(this.deviceId);
    this.throwIfStopped(); // the user gave up while the permission prompt was open
    this.source = this.connectSource();
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
    this.source.connect(this.capture);
    this.playback.connect(this.ctx.destination);
    if (this.ctx.state !== "running") await this.ctx.resume();
  }

  /** The id of the microphone actually in use (the default resolves to a real device). */
  get activeDeviceId() {
    const track = this.stream?.getAudioTracks()[0];
    return track?.getSettings?.().deviceId || this.deviceId;
  }

  /**
   * Capture from another microphone without a gap in playback or the connection: the new
   * source is connected before the old one is released.
   */
  async switchInput(deviceId) {
    this.deviceId = deviceId;
    if (!this.ctx || !this.capture) return;
    const stream = await this.openMicrophone(deviceId);
    if (this.stopped || !this.capture) {
      for (const track of stream.getTracks()) track.stop();
      return;
    }
    const source = this.ctx.createMediaStreamSource(stream);
    source.connect(this.capture);
    const old = { stream: this.stream, source: this.source };
    this.stream = stream;
    this.source = source;
    old.source?.disconnect();
    for (const track of old.stream?.getTracks() || []) track.stop();
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

  async openMicrophone(deviceId) {
    const audio = deviceId ? { ...MIC_CONSTRAINTS, deviceId: { exact: deviceId } } : MIC_CONSTRAINTS;
    try {
      return await navigator.mediaDevices.getUserMedia({ audio });
    } catch (err) {
      // The chosen microphone was unplugged since: the default one is better than none.
      if (deviceId && err?.name === "OverconstrainedError") {
        this.deviceId = "";
        return this.openMicrophone("");
      }
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
      this.callbacks.onProgress(message.played, message.idle, message.chunks);
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
    this.ctx = this.stream = this.source = this.capture = this.playback = null;
  }
}
