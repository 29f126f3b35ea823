// After-action review: a time slider over the last 24 hours in 5-minute steps. Moving it asks the
// server for the whole picture at that moment (/api/replay: values, aggregates, CAI, incidents,
// alarms, rebuilt from the store) and draws it with the code that draws the present. Meanwhile live
// messages are dropped, and "back to live" takes a fresh snapshot: nothing of the past lingers.
import { timeFormatter } from "./api.js";
import { t } from "./i18n.js";
import { esc } from "./panels.js";

const STEP_MS = 5 * 60 * 1000;
const SPAN_MS = 24 * 3600 * 1000;
const DEBOUNCE_MS = 200;

export class Replay {
  constructor(bar, banner, { live, timeZone, onEnter, onPicture, onLeave }) {
    this.bar = bar; this.banner = banner; this.live = live;
    this.onEnter = onEnter; this.onPicture = onPicture; this.onLeave = onLeave;
    this.fmt = timeFormatter(timeZone);
    this.at = null; // the replayed moment (epoch ms), null when live
    this.slider = bar.querySelector("input[type=range]");
    this.label = bar.querySelector("output");
    this.slider.step = String(STEP_MS);
    this.slider.addEventListener("input", () => { this._label(); clearTimeout(this._debounce); this._debounce = setTimeout(() => this.show(+this.slider.value), DEBOUNCE_MS); });
    this.slider.addEventListener("change", () => { clearTimeout(this._debounce); this.show(+this.slider.value); });
    for (const b of [bar, banner]) b.addEventListener("click", (e) => { if (e.target.closest("[data-act=live]")) this.leave(); });
    this.followLive();
  }

  get replaying() { return this.at != null; }

  // While live, the slider's right end is the present (rounded down to its step).
  followLive() {
    if (this.replaying) return;
    const now = this.live.serverTime ? this.live.serverTime + (Date.now() - this.live.serverTimeAt) : Date.now();
    const end = Math.floor(now / STEP_MS) * STEP_MS;
    this.slider.min = String(end - SPAN_MS);
    this.slider.max = String(end);
    this.slider.value = String(end);
    this._label();
  }

  _label() {
    this.label.textContent = this.replaying || +this.slider.value < +this.slider.max ? this.fmt.dateTime(+this.slider.value) : t("connected");
  }

  async show(at) {
    if (!this.replaying) { this.live.pause(); this.onEnter(); }
    this.at = at;
    this.slider.value = String(at);
    this._label();
    document.getElementById("app").classList.add("replay");
    this.bar.querySelector("[data-act=live]").hidden = false;
    this.renderBanner(true);
    const token = (this._token = (this._token ?? 0) + 1);
    let doc;
    try {
      const r = await fetch(`/api/replay?at=${at}`, { cache: "no-store" });
      doc = await r.json();
      if (!r.ok) throw new Error(typeof doc.detail === "string" ? doc.detail : `HTTP ${r.status}`);
    } catch (err) {
      if (token === this._token && this.replaying) this.renderBanner(false, err.message);
      return;
    }
    if (token !== this._token || !this.replaying) return; // moved again, or back to live, meanwhile
    this.live.applyPicture(doc);
    this.renderBanner(false);
    this.onPicture(doc);
  }

  leave() {
    if (!this.replaying) return;
    this.at = null;
    this._token = (this._token ?? 0) + 1;
    clearTimeout(this._debounce);
    document.getElementById("app").classList.remove("replay");
    this.bar.querySelector("[data-act=live]").hidden = true;
    this.banner.hidden = true;
    this.live.resume();
    this.followLive();
    this.onLeave();
  }

  renderBanner(loading, error) {
    this.banner.hidden = false;
    this.banner.innerHTML = `<b class="replay-word">${t("replay_banner")}</b> <time>${this.fmt.dateTime(this.at)}</time>
      ${loading ? `<small>${t("loading")}…</small>` : ""}${error ? `<span class="error">${t("replay_failed")}: ${esc(error)}</span>` : ""}
      <small class="replay-note">${t("live_buffered")}</small><button data-act="live">${t("back_to_live")}</button>`;
  }
}
