// The conversation as chat bubbles keyed by item id, live or read back from history.
//
// Every bubble is an <li data-item-id data-role> so tests and tools can find it; an
// interrupted reply shows what the listener heard as normal text and the rest struck out.

import { el } from "./util.js";

export class Transcript {
  /**
   * @param {HTMLOListElement} list where bubbles go
   * @param {HTMLElement} scroller the scrolling container
   * @param {HTMLElement} empty the placeholder shown while there are no bubbles
   * @param {HTMLElement} announcer an aria-live region for finished messages
   */
  constructor(list, scroller, empty, announcer) {
    this.list = list;
    this.scroller = scroller;
    this.empty = empty;
    this.announcer = announcer;
    this.entries = new Map(); // itemId -> entry
    this.localCount = 0;
    this.scrollQueued = false;
  }

  get(itemId) {
    return this.entries.get(itemId);
  }

  /** The bubble for an item, created (empty, pending) if it does not exist yet. */
  ensure(itemId, role) {
    let entry = this.entries.get(itemId);
    if (entry) return entry;
    const heard = el("span", { className: "heard" });
    const unheard = el("span", { className: "unheard" });
    const note = el("span", { className: "msg-note" });
    const li = el(
      "li",
      { className: `msg msg--${role}`, data: { itemId, role } },
      el("span", { className: "visually-hidden", text: role === "user" ? "You said: " : "Assistant: " }),
      el("p", { className: "msg-text" }, heard, unheard),
      note,
    );
    entry = {
      itemId, role, li, heard, unheard, note,
      text: "", partialText: "", final: false, heardChars: null, committed: false,
    };
    this.entries.set(itemId, entry);
    this.list.append(li);
    this.empty.hidden = true;
    this.render(entry);
    return entry;
  }

  append(itemId, role, delta) {
    const entry = this.ensure(itemId, role);
    if (entry.final || !delta) return;
    entry.text += delta;
    this.render(entry);
  }

  /** What the person has said so far (replaced by the next hypothesis, then the final). */
  partial(itemId, text) {
    const entry = this.ensure(itemId, "user");
    if (entry.final || entry.text || !text) return;
    entry.partialText = text;
    this.render(entry);
  }

  finish(itemId, role, text) {
    const entry = this.ensure(itemId, role);
    if (typeof text === "string") entry.text = text;
    entry.final = true;
    this.render(entry);
    if (entry.text) this.announce(`${role === "user" ? "You said" : "Assistant"}: ${entry.text}`);
  }

  /** A typed message: shown at once, it never gets an id-keyed update. */
  addLocal(role, text) {
    const entry = this.ensure(`local_${++this.localCount}`, role);
    entry.final = true;
    entry.committed = true;
    entry.text = text;
    this.render(entry);
  }

  /** A stored message (history): final, with its "interrupted" mark if it was cut. */
  addStored(message) {
    if (!message.text || !["user", "assistant"].includes(message.role)) return;
    const role = message.role;
    const entry = this.ensure(message.item_id, role);
    entry.final = true;
    entry.committed = true;
    entry.text = message.text || "";
    if (message.status === "incomplete" && role === "assistant") {
      entry.li.classList.add("is-interrupted");
      entry.note.textContent = "interrupted";
    }
    this.render(entry);
  }

  /** A line between bubbles: "Reconnected", "Continued from …". */
  addDivider(text) {
    const li = el("li", { className: "divider", attrs: { role: "separator" } }, el("span", { text }));
    this.list.append(li);
    this.empty.hidden = true;
    this.scrollSoon();
  }

  setNote(itemId, note, className) {
    const entry = this.entries.get(itemId);
    if (!entry) return;
    entry.note.textContent = note;
    if (className) entry.li.classList.add(className);
  }

  /**
   * The listener heard only `heardText` of this reply: show exactly that as said and strike
   * the rest. `heardText` is the server's stored text (or the page's same estimate), which
   * joins words with single spaces, so non-space characters are matched.
   */
  markHeard(itemId, heardText) {
    const entry = this.entries.get(itemId);
    if (!entry) return;
    const split = heardPrefixLength(entry.text, heardText);
    if (split === null) return; // not a prefix of what was shown: keep the earlier mark
    entry.heardChars = split;
    entry.li.classList.add("is-interrupted");
    entry.note.textContent = "interrupted";
    this.render(entry);
  }

  remove(itemId) {
    const entry = this.entries.get(itemId);
    if (!entry) return;
    entry.li.remove();
    this.entries.delete(itemId);
    this.empty.hidden = this.list.children.length > 0;
  }

  /** Empty the list (a new conversation starts). */
  clear() {
    this.list.replaceChildren();
    this.entries.clear();
    this.empty.hidden = false;
  }

  /** Removes the bubble later unless the speech has become a turn (committed) by then. */
  dropIfAbandoned(itemId, delayMs) {
    setTimeout(() => {
      const entry = this.entries.get(itemId);
      if (entry && !entry.committed && !entry.text) this.remove(itemId);
    }, delayMs);
  }

  /** Speech that never became a turn (a cough the server discarded) leaves a "…" bubble. */
  dropAbandonedUserBubbles(exceptItemId) {
    for (const entry of [...this.entries.values()]) {
      if (entry.role === "user" && entry.itemId !== exceptItemId && !entry.committed && !entry.text) {
        this.remove(entry.itemId);
      }
    }
  }

  render(entry) {
    // Until the first real transcript text arrives, the latest partial hypothesis stands in.
    const partial = !entry.text && !entry.final && Boolean(entry.partialText);
    const text = partial ? entry.partialText : entry.text;
    const split = entry.heardChars === null ? text.length : entry.heardChars;
    entry.heard.textContent = text.slice(0, split);
    entry.unheard.textContent = text.slice(split);
    entry.li.classList.toggle("is-partial", partial);
    entry.li.classList.toggle("is-pending", !text && !entry.final);
    this.scrollSoon();
  }

  /** The connection ended: nothing pending will be filled in any more. */
  settle() {
    for (const entry of [...this.entries.values()]) {
      if (entry.final) continue;
      if (!entry.text) this.remove(entry.itemId);
      else {
        entry.final = true;
        this.render(entry);
      }
    }
  }

  announce(text) {
    this.announcer.textContent = text;
  }

  // Follow new text only when the reader is already at the bottom; never yank them back
  // while they scroll up through earlier turns. One scroll per frame at most.
  scrollSoon() {
    const scroller = this.scroller;
    const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
    if (!atBottom || this.scrollQueued) return;
    this.scrollQueued = true;
    requestAnimationFrame(() => {
      this.scrollQueued = false;
      scroller.scrollTop = scroller.scrollHeight;
    });
  }
}

/**
 * Where the heard part ends in `shown`: the index just after the last character of `heard`,
 * matching non-space characters only, with the spaces that follow kept on the heard side (the
 * struck part starts on a word). null when `heard` is not a prefix of `shown`.
 */
export function heardPrefixLength(shown, heard) {
  const want = heard.replace(/\s+/g, "");
  let matched = 0;
  let i = 0;
  for (; i < shown.length && matched < want.length; i++) {
    if (/\s/.test(shown[i])) continue;
    if (shown[i] !== want[matched]) return null;
    matched++;
  }
  if (matched < want.length) return null;
  while (i < shown.length && /\s/.test(shown[i])) i++;
  return i;
}

/**
 * The text spoken in the first `endMs` of a reply's audio, the way the server cuts its stored
 * copy: whole sentences that finished playing, then the share of the next sentence's words
 * that its played share of audio stands for.
 *
 * @param {{text: string, startMs: number, ms: number}[]} spans one per sentence, in order
 * @param {number} endMs
 */
export function heardText(spans, endMs) {
  const heard = [];
  for (const span of spans) {
    if (endMs >= span.startMs + span.ms) {
      heard.push(span.text);
      continue;
    }
    const played = endMs - span.startMs;
    if (played > 0 && span.ms > 0) {
      const words = span.text.split(/\s+/).filter(Boolean);
      const keep = Math.floor((words.length * played) / span.ms);
      if (keep) heard.push(words.slice(0, keep).join(" "));
    }
    break;
  }
  return heard.join(" ");
}
