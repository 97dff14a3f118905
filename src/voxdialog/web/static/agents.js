// The agent picker: the server's own assistant plus the tenant's agents. The choice is kept
// in the user's settings (so every device starts with it) and, as a fallback, in this browser.

import { el, localStore } from "./util.js";

export const DEFAULT_AGENT = "default";
const LOCAL_KEY = "voxdialog.agent";
const PAGE_SIZE = 100;

export class AgentPicker {
  /**
   * @param {import("./auth.js").Auth} auth
   * @param {import("./settings.js").UserSettings} settings
   * @param {HTMLSelectElement} select
   * @param {(names: Map<string, string>) => void} onNames told the id -> name map after a load
   */
  constructor(auth, settings, select, onNames) {
    this.auth = auth;
    this.settings = settings;
    this.select = select;
    this.onNames = onNames;
    this.agents = [];
    select.addEventListener("change", () => this.save(select.value));
  }

  /** The chosen agent's id ("default" for the server's own). */
  get value() {
    return this.select.value || DEFAULT_AGENT;
  }

  nameOf(id) {
    if (!id || id === DEFAULT_AGENT) return "Default assistant";
    return this.agents.find((agent) => agent.id === id)?.name || "Agent";
  }

  /** Fill the list and select the remembered choice (read the settings first). */
  async load() {
    const agents = await this.fetchAgents();
    this.agents = agents;
    const wanted = this.settings.get("default_agent") || localStore.get(LOCAL_KEY) || DEFAULT_AGENT;
    const options = [
      el("option", { text: "Default assistant", attrs: { value: DEFAULT_AGENT } }),
      ...agents.map((agent) => el("option", { text: agent.name, attrs: { value: agent.id } })),
    ];
    this.select.replaceChildren(...options);
    // A remembered agent that was deleted since falls back to the default one.
    this.select.value = agents.some((agent) => agent.id === wanted) ? wanted : DEFAULT_AGENT;
    this.onNames(new Map(agents.map((agent) => [agent.id, agent.name])));
  }

  async fetchAgents() {
    const agents = [];
    try {
      for (let offset = 0; ; offset += PAGE_SIZE) {
        const page = await this.auth.json(`/api/agents?limit=${PAGE_SIZE}&offset=${offset}`);
        agents.push(...page.data);
        if (!page.has_more) break;
      }
    } catch {
      // Without the list the default assistant still works.
    }
    return agents;
  }

  /** Remember the choice: in the user's settings when possible, in this browser always. */
  async save(agentId) {
    localStore.set(LOCAL_KEY, agentId);
    await this.settings.update({ default_agent: agentId });
  }

  /** Choose an agent programmatically (a conversation from history continues with its own). */
  choose(agentId) {
    const known = agentId === DEFAULT_AGENT || this.agents.some((agent) => agent.id === agentId);
    if (known) this.select.value = agentId;
  }

  setDisabled(disabled) {
    this.select.disabled = disabled;
  }
}
