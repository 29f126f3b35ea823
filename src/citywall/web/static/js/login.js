// Who is at the wall. Without a login it is read-only: the page shows no button the server would
// refuse. An operator (or admin) logs in through a small dialog; the server sets an HttpOnly session
// cookie, so the page never holds the token. In kiosk mode the login control is not shown at all.
import { getJson, onSessionExpired, send } from "./api.js";
import { t } from "./i18n.js";
import { esc } from "./panels.js";

const OPERATES = new Set(["operator", "admin"]);

export class Auth {
  constructor(accountEl, dialog, { kiosk = false } = {}) {
    this.user = null;
    this.el = accountEl;
    this.dialog = dialog;
    this.kiosk = kiosk;
    this.listeners = [];
    this.el.hidden = kiosk;
    this.el.addEventListener("click", (e) => {
      if (e.target.closest("[data-act=login]")) this.openDialog();
      if (e.target.closest("[data-act=logout]")) this.logout();
    });
    const form = dialog.querySelector("form");
    form.addEventListener("submit", (e) => { e.preventDefault(); this._submit(form); });
    dialog.querySelector("[data-act=cancel]").addEventListener("click", () => dialog.close());
    onSessionExpired(() => { if (this.user) { this._set(null); this.message = t("session_expired"); this.render(); } });
  }

  // True when the person at the page may change things (ack, assign, comment, advance).
  get canOperate() { return !!this.user && OPERATES.has(this.user.role); }

  on(fn) { this.listeners.push(fn); }

  async load() {
    try {
      const me = await getJson("/api/me");
      this._set(me.user && me.user.via === "session" ? me.user : null);
    } catch {
      this._set(null);
    }
  }

  _set(user) {
    this.user = user;
    document.body.classList.toggle("operator", this.canOperate);
    this.render();
    for (const fn of this.listeners) fn(user);
  }

  render() {
    if (this.kiosk) return;
    this.el.innerHTML = this.user
      ? `<span class="who" title="${esc(t(`role_${this.user.role}`))}">${esc(this.user.name)} <small>${esc(t(`role_${this.user.role}`))}</small></span>
         <button data-act="logout">${t("logout")}</button>`
      : `${this.message ? `<small class="warn-text">${esc(this.message)}</small>` : ""}<button data-act="login" id="login-open">${t("login")}</button>`;
  }

  openDialog() {
    const form = this.dialog.querySelector("form");
    form.reset();
    this.dialog.querySelector(".error").textContent = "";
    for (const el of this.dialog.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
    this.dialog.showModal();
    form.elements.name.focus();
  }

  async _submit(form) {
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    const r = await send("/api/login", { name: form.elements.name.value.trim(), password: form.elements.password.value }, { quietAuth: true });
    button.disabled = false;
    if (!r.ok) { this.dialog.querySelector(".error").textContent = r.message; return; }
    this.message = null;
    this.dialog.close();
    this._set({ ...r.data.user, via: "session" });
  }

  async logout() {
    await send("/api/logout", {}, { quietAuth: true });
    this.message = null;
    this._set(null);
  }
}
