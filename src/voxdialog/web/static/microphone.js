// The microphone side of the talk page: the audio graph while a conversation runs, the level
// meter, and the choice of input device (remembered in this browser).

import { VoiceAudio } from "./audio.js";
import { localStore } from "./util.js";

const MIC_KEY = "voxdialog.microphone";

export class Microphone {
  /**
   * @param {{select: HTMLSelectElement, meter: HTMLElement, exposed: Object,
   *          onFailure: (err: Error) => void}} deps
   *   meter: gets the level as its --level style; exposed: window.voxdialog, told the device
   *   in use; onFailure: switching the device failed.
   */
  constructor({ select, meter, exposed, onFailure }) {
    Object.assign(this, { select, meter, exposed, onFailure });
    this.audio = null; // the VoiceAudio while a conversation runs
    this.level = 0;
  }

  get open() {
    return Boolean(this.audio);
  }

  /**
   * Capture and playback, from the chosen microphone. Call it inside the click that starts the
   * conversation (the browser only lets audio start there). `close()` during the permission
   * prompt makes it reject with a "cancelled" PageError.
   * @param {{onChunk: (buf: ArrayBuffer) => void,
   *          onProgress: (played: Object, idle: boolean, chunks: number) => void}} callbacks
   */
  async start({ onChunk, onProgress }) {
    if (this.audio) return this.audio;
    const audio = new VoiceAudio({ onChunk, onLevel: (rms) => this.showLevel(rms), onProgress }, this.select.value);
    this.audio = audio; // before the await, so close() can stop it while it starts
    await audio.start();
    this.exposed.microphone = audio.activeDeviceId;
    this.list();
    return audio;
  }

  /** Release the microphone and the speaker. */
  close() {
    if (this.audio) this.audio.stop();
    this.audio = null;
    this.resetLevel();
  }

  resetLevel() {
    this.level = 0;
    this.meter.style.setProperty("--level", "0");
  }

  showLevel(rms) {
    // dB scale: speech sits between roughly -50 and -10 dBFS; fast attack, slower release.
    const db = 20 * Math.log10(rms + 1e-9);
    const target = Math.min(1, Math.max(0, (db + 60) / 50));
    this.level = target > this.level ? target : this.level * 0.6 + target * 0.4;
    this.meter.style.setProperty("--level", this.level.toFixed(3));
  }

  /** Fill the device list (names appear once the page may use the microphone). */
  async list() {
    const inputs = await VoiceAudio.inputs();
    const wanted = this.audio?.activeDeviceId || this.select.value || localStore.get(MIC_KEY) || "";
    const options = [new Option("Default microphone", "")];
    inputs.forEach((device, index) => {
      if (device.deviceId === "default") return; // the first option already means it
      options.push(new Option(device.label || `Microphone ${index + 1}`, device.deviceId));
    });
    this.select.replaceChildren(...options);
    this.select.value = options.some((option) => option.value === wanted) ? wanted : "";
  }

  /** Another device was chosen: remember it, and capture from it at once if running. */
  async choose() {
    const deviceId = this.select.value;
    localStore.set(MIC_KEY, deviceId || null);
    if (!this.audio) return;
    try {
      await this.audio.switchInput(deviceId);
      this.exposed.microphone = this.audio?.activeDeviceId || null;
    } catch (err) {
      this.onFailure(err);
    }
  }

  wire() {
    this.select.addEventListener("change", () => this.choose());
    navigator.mediaDevices?.addEventListener?.("devicechange", () => this.list());
  }
}
