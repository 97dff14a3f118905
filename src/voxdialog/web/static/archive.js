// Past conversations on the talk page: the sidebar list, one conversation read back
// (read-only, with a way to continue it), and the heading above the transcript.

import { $, formatWhen } from "./util.js";

const HISTORY_REFRESH_MS = 1500;

export class ArchiveView {
  /**
   * @param {{history: import("./history.js").History, picker: import("./agents.js").AgentPicker,
   *          archive: import("./transcript.js").Transcript,
   *          live: () => {id: string|null, agentId: string, running: boolean},
   *          onContinue: (conversation: Object) => void, onError: (message: string) => void}} deps
   *   archive: the read-only transcript; live: the conversation of the page right now;
   *   onContinue: the person wants to go on with the conversation shown.
   */
  constructor({ history, picker, archive, live, onContinue, onError }) {
    Object.assign(this, { history, picker, archive, live, onContinue, onError });
    this.viewing = null; // the past conversation shown, with its messages
    this.refreshTimer = 0;
    this.ui = {
      list: $("archive"),
      empty: $("archive-empty"),
      actions: $("archive-actions"),
      continueButton: $("continue"),
      close: $("archive-close"),
      messages: $("messages"),
      messagesEmpty: $("empty"),
      scroller: $("transcript"),
      title: $("conversation-title"),
      meta: $("conversation-meta"),
      sidebarToggle: $("sidebar-toggle"),
    };
  }

  async open(id) {
    this.closeSidebar();
    const live = this.live();
    if (id === live.id && live.running) {
      this.close(); // the live one is already on screen
      return;
    }
    let conversation;
    try {
      conversation = await this.history.read(id);
    } catch (err) {
      this.onError(err.message);
      return;
    }
    this.show(conversation);
  }

  show(conversation) {
    const ui = this.ui;
    this.viewing = conversation;
    this.archive.clear();
    for (const message of conversation.messages) this.archive.addStored(message);
    ui.list.hidden = false;
    ui.messages.hidden = true;
    ui.messagesEmpty.hidden = true;
    ui.empty.hidden = ui.list.children.length > 0;
    ui.actions.hidden = false;
    const openElsewhere = conversation.status === "active";
    ui.continueButton.disabled = openElsewhere;
    ui.continueButton.title = openElsewhere ? "This conversation is open in another tab" : "";
    this.showHeader(conversation);
    this.history.setOpen(conversation.id);
    ui.scroller.scrollTop = 0;
  }

  /** Back to the live transcript. */
  close() {
    if (!this.viewing) return;
    const ui = this.ui;
    this.viewing = null;
    ui.list.hidden = true;
    ui.empty.hidden = true;
    ui.messages.hidden = false;
    ui.messagesEmpty.hidden = ui.messages.children.length > 0;
    ui.actions.hidden = true;
    this.history.setOpen(null);
    this.showHeader();
  }

  /** The title and agent of `conversation`, or of the page's own one. */
  showHeader(conversation = null) {
    if (conversation) {
      this.ui.title.textContent = conversation.title || "Conversation";
      const agent = this.picker.nameOf(conversation.agent);
      this.ui.meta.textContent = [formatWhen(conversation.started_at), agent].filter(Boolean).join(" · ");
      return;
    }
    const live = this.live();
    const listed = live.id && this.history.items.find((item) => item.id === live.id);
    this.ui.title.textContent = listed?.title || "New conversation";
    this.ui.meta.textContent = this.picker.nameOf(live.running ? live.agentId : this.picker.value);
  }

  // The list shows titles and counts: refresh once a turn has been stored, not per event.
  scheduleRefresh() {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(async () => {
      await this.history.refresh();
      if (!this.viewing) this.showHeader(); // the title is the first thing said
    }, HISTORY_REFRESH_MS);
  }

  toggleSidebar() {
    const open = !document.body.classList.contains("sidebar-open");
    document.body.classList.toggle("sidebar-open", open);
    this.ui.sidebarToggle.setAttribute("aria-expanded", String(open));
  }

  closeSidebar() {
    document.body.classList.remove("sidebar-open");
    this.ui.sidebarToggle.setAttribute("aria-expanded", "false");
  }

  wire() {
    this.ui.continueButton.addEventListener("click", () => this.viewing && this.onContinue(this.viewing));
    this.ui.close.addEventListener("click", () => this.close());
    this.ui.sidebarToggle.addEventListener("click", () => this.toggleSidebar());
    // An open drawer closes on Escape or on a click beside it.
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape") this.closeSidebar();
    });
    document.addEventListener("click", (event) => {
      const inside = event.target.closest?.("#sidebar, #sidebar-toggle");
      if (!inside && document.body.classList.contains("sidebar-open")) this.closeSidebar();
    });
  }
}
