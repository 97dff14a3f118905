// The user's personal settings on the server (GET/PUT /api/users/me/settings). PUT replaces
// them all, so every change is merged into the last copy read.

export class UserSettings {
  /** @param {import("./auth.js").Auth} auth */
  constructor(auth) {
    this.auth = auth;
    this.values = null; // null until read (or when the server would not give them)
  }

  async load() {
    try {
      this.values = await this.auth.json("/api/users/me/settings");
    } catch {
      this.values = null;
    }
    return this.values;
  }

  get(name) {
    return this.values ? this.values[name] : undefined;
  }

  /** Change some settings; false when they could not be stored (the caller keeps them locally). */
  async update(patch) {
    if (!this.values) return false;
    const next = { ...this.values, ...patch };
    try {
      this.values = await this.auth.json("/api/users/me/settings", { method: "PUT", body: next });
      return true;
    } catch {
      return false;
    }
  }
}
