// Past conversations: a paged list (newest first) and a read-only view of one of them.

import { el, formatWhen } from "./util.js";

const PAGE_SIZE = 20;

export class History {
  /**
   * @param {import("./auth.js").Auth} auth
   * @param {{list: HTMLElement, more: HTMLButtonElement, empty: HTMLElement}} view
   * @param {(id: string) => void} onOpen called when a conversation is picked
   */
  constructor(auth, view, onOpen) {
    this.auth = auth;
    this.view = view;
    this.onOpen = onOpen;
    this.items = [];
    this.hasMore = false;
    this.liveId = null;
    this.openId = null;
    this.loading = null;
    this.agentNames = new Map();
    view.more.addEventListener("click", () => this.loadMore());
  }

  /** Reload the first page (after a turn, a sign-in, a conversation's end). */
  async refresh() {
    if (!this.auth.signedIn) return this.reset();
    const page = await this.fetchPage(0);
    if (!page) return;
    this.items = page.data;
    this.hasMore = page.has_more;
    this.render();
  }

  async loadMore() {
    const page = await this.fetchPage(this.items.length);
    if (!page) return;
    const known = new Set(this.items.map((item) => item.id));
    this.items.push(...page.data.filter((item) => !known.has(item.id)));
    this.hasMore = page.has_more;
    this.render();
  }

  async fetchPage(offset) {
    // One request at a time: a refresh while "more" loads would interleave pages.
    while (this.loading) await this.loading.catch(() => {});
    const request = this.auth.json(`/api/conversations?limit=${PAGE_SIZE}&offset=${offset}`);
    this.loading = request;
    try {
      return await request;
    } catch {
      return null; // the list is a convenience: a failed refresh keeps the last one
    } finally {
      this.loading = null;
    }
  }

  /** One conversation with its messages (for the read-only view). */
  read(id) {
    return this.auth.json(`/api/conversations/${encodeURIComponent(id)}`);
  }

  reset() {
    this.items = [];
    this.hasMore = false;
    this.render();
  }

  /** Mark the conversation that is running now (it is listed with a "live" dot). */
  setLive(id) {
    this.liveId = id;
    this.render();
  }

  setOpen(id) {
    this.openId = id;
    this.render();
  }

  /** Names to show for agent ids (from the agent picker). */
  setAgentNames(names) {
    this.agentNames = names;
    this.render();
  }

  // Sessions nobody spoke in are noise in a history; the live one is shown all the same.
  render() {
    const shown = this.items.filter((item) => item.message_count > 0 || item.id === this.liveId);
    this.view.list.replaceChildren(...shown.map((item) => this.row(item)));
    this.view.empty.hidden = shown.length > 0;
    this.view.more.hidden = !this.hasMore;
  }

  row(item) {
    const title = item.title || "New conversation";
    const agent = item.agent && item.agent !== "default" ? this.agentNames.get(item.agent) || "Agent" : "";
    const meta = [formatWhen(item.started_at), agent, messageCount(item.message_count)].filter(Boolean).join(" · ");
    const button = el(
      "button",
      { className: "history-item", attrs: { type: "button" }, data: { conversationId: item.id } },
      el("span", { className: "history-title", text: title }),
      el("span", { className: "history-meta", text: meta }),
    );
    if (item.id === this.liveId) button.append(el("span", { className: "live-dot", attrs: { title: "Live now" } }));
    if (item.id === this.openId) button.setAttribute("aria-current", "true");
    button.addEventListener("click", () => this.onOpen(item.id));
    return el("li", {}, button);
  }
}

function messageCount(count) {
  return count === 1 ? "1 message" : `${count} messages`;
}
