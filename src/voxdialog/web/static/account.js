// Signing in and out on the talk page: the silent local sign-in on this machine, the form
// (email and password, or an API key) anywhere else, and who is signed in.

import { $, isLoopbackHost } from "./util.js";

export class AccountView {
  /**
   * @param {import("./auth.js").Auth} auth
   * @param {{onSignedIn: () => Promise<void>, onSignedOut: () => void, onUnreachable: (message: string) => void}} hooks
   *   onSignedIn: enter the workspace; onSignedOut: stop what runs for the old sign-in;
   *   onUnreachable: the server could not be asked (the stored sign-in may still be good).
   */
  constructor(auth, { onSignedIn, onSignedOut, onUnreachable }) {
    Object.assign(this, { auth, onSignedIn, onSignedOut, onUnreachable });
    this.ui = {
      userName: $("user-name"),
      avatar: $("avatar"),
      signOut: $("sign-out"),
      hint: $("signin-hint"),
      loginForm: $("login-form"),
      loginError: $("login-error"),
      loginSubmit: $("login-submit"),
      email: $("email"),
      password: $("password"),
      localSignin: $("local-signin"),
      keyForm: $("key-form"),
      keyInput: $("api-key"),
    };
  }

  /** The first look: a stored sign-in that still works, the local sign-in, or the form. */
  async boot() {
    const auth = this.auth;
    if (auth.signedIn) {
      try {
        await auth.whoami();
        await this.enter();
        return;
      } catch (err) {
        if (err.kind !== "auth") {
          await this.enter(); // the server is unreachable right now, not the sign-in gone
          this.onUnreachable(err.message);
          return;
        }
      }
    }
    // On this machine the local administrator needs no password (the server checks that the
    // page really was opened on localhost); anywhere else, or after a sign-out, ask.
    if (isLoopbackHost() && !auth.signedOutOnPurpose) {
      try {
        await auth.signInLocal();
        return; // the "change" event enters the workspace
      } catch {
        // Refused (a proxy in front, another host name): the form below still works.
      }
    }
    this.showForm();
  }

  async enter() {
    document.body.dataset.auth = "signed-in";
    this.ui.loginError.hidden = true;
    this.showUser(this.auth.user);
    if (!this.auth.user) this.auth.whoami().then((user) => this.showUser(user), () => {});
    await this.onSignedIn();
  }

  onAuthChange() {
    if (this.auth.signedIn) {
      this.enter();
      return;
    }
    this.onSignedOut();
    this.showForm(
      this.auth.signedOutOnPurpose ? "You have signed out." : "Your sign-in has ended. Please sign in again.",
    );
  }

  showUser(user) {
    const name = user?.display_name || user?.email || "Signed in";
    this.ui.userName.textContent = name;
    this.ui.avatar.textContent = name.trim().charAt(0).toUpperCase();
  }

  showForm(message) {
    document.body.dataset.auth = "signed-out";
    this.ui.localSignin.hidden = !isLoopbackHost();
    this.ui.hint.textContent = message || "Talk to your assistant in real time.";
    this.ui.email.focus();
  }

  showError(message) {
    this.ui.loginError.textContent = message;
    this.ui.loginError.hidden = false;
  }

  async submitLogin(event) {
    event.preventDefault();
    const ui = this.ui;
    ui.loginError.hidden = true;
    ui.loginSubmit.disabled = true;
    try {
      await this.auth.signIn(ui.email.value.trim(), ui.password.value);
      ui.password.value = "";
    } catch (err) {
      this.showError(err.status === 401 ? "Incorrect email or password." : err.message);
    } finally {
      ui.loginSubmit.disabled = false;
    }
  }

  async submitKey(event) {
    event.preventDefault();
    const key = this.ui.keyInput.value.trim();
    if (!key) return;
    try {
      await this.auth.useApiKey(key);
      this.ui.keyInput.value = "";
    } catch (err) {
      this.showError(err.message);
    }
  }

  async signInLocally() {
    try {
      await this.auth.signInLocal();
    } catch (err) {
      this.showError(err.message);
    }
  }

  async signOut() {
    this.onSignedOut();
    await this.auth.signOut();
  }

  wire() {
    this.auth.addEventListener("change", () => this.onAuthChange());
    this.ui.loginForm.addEventListener("submit", (event) => this.submitLogin(event));
    this.ui.keyForm.addEventListener("submit", (event) => this.submitKey(event));
    this.ui.localSignin.addEventListener("click", () => this.signInLocally());
    this.ui.signOut.addEventListener("click", () => this.signOut());
  }
}
