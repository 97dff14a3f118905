// Small shared helpers of the pages: DOM, toasts, base64, storage, dates. No dependencies.

export const SAMPLE_RATE = 24000; // pcm16 in both directions, as the session.update asks

/** An error whose message is written for the person using the page. */
export class PageError extends Error {
  /**
   * @param {string} message shown as is
   * @param {{kind?: string, status?: number}} [options] kind: "auth" | "mic" | "network" | ...
   */
  constructor(message, { kind = "general", status = 0 } = {}) {
    super(message);
    this.kind = kind;
    this.status = status;
  }
}

export const $ = (id) => document.getElementById(id);

/**
 * A new element: `el("li", {className: "msg", data: {role: "user"}}, child, "text")`.
 * @param {string} tag
 * @param {{className?: string, text?: string, attrs?: Object, data?: Object}} [props]
 * @param {...(Node|string)} children
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  if (props.className) node.className = props.className;
  if (props.text !== undefined) node.textContent = props.text;
  for (const [name, value] of Object.entries(props.attrs || {})) node.setAttribute(name, value);
  for (const [name, value] of Object.entries(props.data || {})) node.dataset[name] = value;
  node.append(...children);
  return node;
}

export function bytesToBase64(bytes) {
  // Chunked so String.fromCharCode never gets more arguments than the engine allows.
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

export function base64ToBytes(b64) {
  const binary = atob(b64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

export function samplesToMs(samples) {
  return Math.floor((samples * 1000) / SAMPLE_RATE);
}

export function wsURL(path) {
  const url = new URL(path, location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
}

/** Whether the page was opened under a name that can only mean this machine. */
export function isLoopbackHost(hostname = location.hostname) {
  return ["localhost", "127.0.0.1", "[::1]", "::1"].includes(hostname.toLowerCase());
}

/**
 * Web storage that never throws (storage can be disabled, full or sandboxed); values are JSON.
 * `session` holds credentials (gone with the tab), `local` holds preferences.
 */
function storageArea(name) {
  const area = () => {
    try {
      return name === "local" ? window.localStorage : window.sessionStorage;
    } catch {
      return null;
    }
  };
  return {
    get(key, fallback = null) {
      try {
        const raw = area()?.getItem(key);
        return raw === null || raw === undefined ? fallback : JSON.parse(raw);
      } catch {
        return fallback;
      }
    },
    set(key, value) {
      try {
        if (value === null || value === undefined) area()?.removeItem(key);
        else area()?.setItem(key, JSON.stringify(value));
      } catch {
        // Not persisted: the value still lives in memory for this page.
      }
    },
  };
}

export const sessionStore = storageArea("session");
export const localStore = storageArea("local");

const TIME = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
const DAY = new Intl.DateTimeFormat(undefined, { weekday: "short", day: "numeric", month: "short" });
const DATE = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", year: "numeric" });

/** "14:03", "Yesterday 09:12", "Mon 3 Feb 10:00" or "3 Feb 2024": short, then more precise. */
export function formatWhen(iso, now = new Date()) {
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return "";
  const startOfDay = (d) => new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
  const days = Math.round((startOfDay(now) - startOfDay(when)) / 86_400_000);
  if (days === 0) return TIME.format(when);
  if (days === 1) return `Yesterday ${TIME.format(when)}`;
  if (days > 1 && days < 180) return `${DAY.format(when)} ${TIME.format(when)}`;
  return DATE.format(when);
}

const TOAST_MS = 8000;

/** A dismissable message in `container` (the pages' .toasts region) that goes by itself. */
export function showToast(container, message, ms = TOAST_MS) {
  const close = el("button", { className: "toast-close", text: "×", attrs: { type: "button", "aria-label": "Dismiss" } });
  const toast = el("div", { className: "toast" }, el("p", { text: message }), close);
  const dismiss = () => toast.remove();
  close.addEventListener("click", dismiss);
  container.append(toast);
  setTimeout(dismiss, ms);
}
