// Incidents on the wall: the list of active cases, one case's detail (its official steps, who did
// what when, the cameras and facilities around it, related alarms, and for an operator the move to
// a next step), and the focus a new severe case takes on the wall.
import { getJson, send, timeFormatter } from "./api.js";
import { alarmTitle, severityBadge } from "./alarms.js";
import { getLang, t, tf } from "./i18n.js";
import { esc, setHTML } from "./panels.js";
import { INCIDENT_COLORS, SEVERITY_COLORS, SEVERITY_RANK } from "./scales.js";

const FACILITY_KINDS = ["cctv", "hospital", "shelter", "fire_station"];
const kindName = (i) => (getLang() === "ko" ? i.kind_ko : i.kind_en);
const stepName = (s) => (getLang() === "ko" ? s.ko : s.en);
const distance = (m) => (m >= 1000 ? `${(m / 1000).toFixed(1)} km` : `${Math.round(m)} m`);
const rank = (i) => SEVERITY_RANK[i.severity] ?? 0;
export const simBadge = () => `<small class="sim-badge">SIM</small>`;

// Active incidents, most severe and newest first; a click opens one.
export class IncidentList {
  constructor(el, { live, guName, timeZone, onOpen }) {
    this.el = el; this.live = live; this.guName = guName; this.onOpen = onOpen;
    this.fmt = timeFormatter(timeZone);
    el.addEventListener("click", (e) => { const li = e.target.closest("[data-incident]"); if (li) onOpen(li.dataset.incident); });
  }

  render(selected) {
    const list = [...this.live.incidents.values()].sort((a, b) => rank(b) - rank(a) || b.opened_at_ms - a.opened_at_ms);
    const head = this.el.closest("section")?.querySelector(".incident-count");
    if (head) head.textContent = `${list.length}${t("count_unit")}`;
    setHTML(this.el, list.length === 0 ? `<p class="empty">${t("no_incidents")}</p>` : `<ol class="incidents">${list.map((i) => `
      <li data-incident="${esc(i.id)}" class="${i.id === selected ? "selected" : ""}">
        <i class="kind-dot" style="background:${INCIDENT_COLORS[i.kind] ?? INCIDENT_COLORS.other}"></i>
        <span class="inc-kind">${esc(kindName(i))}</span>${severityBadge(i.severity)}
        <span class="inc-where">${esc(this.guName(i.gu))}${i.title ? ` · ${esc(i.title)}` : ""}</span>
        <span class="inc-step">${esc(stepName({ ko: i.step_ko, en: i.step_en }))}</span>
        <time>${this.fmt.time(i.opened_at_ms)}</time>${i.simulated ? simBadge() : ""}</li>`).join("")}</ol>`);
  }
}

// One case in the detail area. In replay it shows the case as it stood at the replayed moment and
// offers no actions.
export class IncidentPanel {
  constructor(el, { live, auth, map, guName, timeZone, replayAt }) {
    this.el = el; this.live = live; this.auth = auth; this.map = map; this.guName = guName; this.replayAt = replayAt;
    this.fmt = timeFormatter(timeZone);
    this.id = null; this.data = null; this.error = null; this.refused = null; this.busy = false;
    this.listeners = [];
    this.kinds = null; // kind -> {steps, skippable}, for which next steps to offer
    el.addEventListener("click", (e) => this._click(e));
  }

  on(fn) { this.listeners.push(fn); }

  get isOpen() { return this.id != null; }

  async open(id) {
    const changed = id !== this.id;
    this.id = id;
    if (changed) { this.data = this.live.incidents.get(id) ?? null; this.refused = null; this.error = null; }
    this.el.hidden = false;
    document.getElementById("app").classList.add("incident-open");
    this.map.selectIncident(id);
    this.render();
    for (const fn of this.listeners) fn(id);
    await this.load();
  }

  close() {
    if (this.id == null) return;
    this.id = null; this.data = null;
    this.el.hidden = true;
    document.getElementById("app").classList.remove("incident-open");
    this.map.selectIncident(null);
    for (const fn of this.listeners) fn(null);
  }

  async load() {
    const id = this.id;
    if (id == null) return;
    if (!this.kinds) this.kinds = await getJson("/api/incidents/kinds").catch(() => null);
    try {
      const data = await getJson(`/api/incidents/${encodeURIComponent(id)}`);
      if (id !== this.id) return;
      this.data = data; this.error = null;
    } catch (err) {
      if (id !== this.id) return;
      this.error = err.message;
    }
    this.render();
  }

  // A live change to the open case: take the new state now, the nearby facilities stay as loaded.
  update(inc) {
    if (inc.id !== this.id || this.replayAt() != null) return;
    this.data = { ...(this.data ?? {}), ...inc };
    this.render();
  }

  // Steps the case may move to next: the following one, any reachable over skippable steps, and
  // the closing step (from anywhere, with a note when steps are passed over).
  _nextSteps(d) {
    const steps = d.steps ?? [];
    const here = steps.findIndex((s) => s.step === d.step);
    const skippable = new Set(this.kinds?.[d.kind]?.skippable ?? []);
    const out = [];
    for (let j = here + 1; j < steps.length; j++) {
      out.push(steps[j]);
      if (!skippable.has(steps[j].step)) break;
    }
    const closing = steps[steps.length - 1];
    if (closing && !out.includes(closing) && here < steps.length - 1) out.push(closing);
    return out;
  }

  render() {
    const body = this.el.querySelector(".body");
    const title = this.el.querySelector(".incident-id");
    if (this.id == null) return;
    title.textContent = this.id;
    const full = this.data;
    if (!full) { setHTML(body, `<p class="empty">${this.error ? `${t("loading_failed")}: ${esc(this.error)}` : t("loading")}</p>`); return; }
    const at = this.replayAt();
    // In replay, the case as it stood then: its timeline up to the replayed moment.
    const timeline = (full.timeline ?? []).filter((e) => at == null || e.at_ms <= at);
    const last = timeline[timeline.length - 1] ?? { step: full.step };
    const d = { ...full, step: last.step };
    const steps = d.steps ?? [];
    const here = steps.findIndex((s) => s.step === d.step);
    const active = at == null ? full.active : here < steps.length - 1;
    const done = new Map(timeline.map((e) => [e.step, e]));
    const rows = steps.map((s, i) => {
      const e = done.get(s.step);
      const cls = i === here ? "current" : i < here ? (e ? "done" : "skipped") : "pending";
      return `<li class="step ${cls}" data-step="${esc(s.step)}"><span class="step-name">${esc(stepName(s))}</span>
        ${e ? `<time>${this.fmt.time(e.at_ms)}</time><span class="by">${esc(e.by)}</span>${e.note && e.note !== "opened" ? `<span class="note">${esc(e.note)}</span>` : ""}` : ""}
        ${cls === "skipped" ? `<small>${t("step_skipped")}</small>` : ""}${i === here && active ? `<small class="now">◀ ${t("step_now")}</small>` : ""}</li>`;
    }).join("");
    const color = INCIDENT_COLORS[d.kind] ?? INCIDENT_COLORS.other;
    const gu = this.guName(d.gu);
    const where = d.address?.includes(gu) ? d.address : [d.address, gu].filter(Boolean).join(" · ");
    const nearby = full.nearby ? `<h3>${t("nearby")} <small>${tf("within_m", { m: Math.round(full.nearby_radius_m ?? 0).toLocaleString() })}</small>
        ${full.facilities_example ? `<span class="badge example">${t("example")}</span>` : ""}</h3>
      <div class="nearby">${[...FACILITY_KINDS, ...Object.keys(full.nearby).filter((k) => !FACILITY_KINDS.includes(k))].map((k) => {
        const items = (full.nearby[k] ?? []).slice().sort((a, b) => a.distance_m - b.distance_m).slice(0, 4);
        const label = t(`fac_${k}`) === `fac_${k}` ? k : t(`fac_${k}`);
        return `<div class="fac fac-${esc(k)}"><b>${esc(label)} <small>${(full.nearby[k] ?? []).length}</small></b>${items.length
          ? `<ul>${items.map((f) => `<li><span class="fac-name">${esc(getLang() === "en" && f.name_en ? f.name_en : f.name)}</span> <span class="dist">${distance(f.distance_m)}</span></li>`).join("")}</ul>`
          : `<div class="fac-none">${t("none")}</div>`}</div>`;
      }).join("")}</div>` : "";
    const related = full.related_alarms ? `<h3>${t("related_alarms")} <small>${full.related_alarms.length}</small></h3>${full.related_alarms.length
      ? `<ul class="related">${full.related_alarms.map((a) => `<li><i class="sev-dot" style="background:${SEVERITY_COLORS[a.severity]}"></i>${esc(alarmTitle(a))} <small>${t(`state_${a.state}`)} · ${this.fmt.time(a.raised_at_ms)}</small></li>`).join("")}</ul>`
      : `<small>${t("none")}</small>`}` : "";
    const canAct = this.auth.canOperate && at == null && active;
    const next = canAct ? this._nextSteps(d) : [];
    const actions = canAct ? `<div class="inc-actions"><h3>${t("advance_to")}</h3>
        <input class="inc-note" name="note" maxlength="1000" placeholder="${esc(t("note_hint"))}" value="${esc(this._note ?? "")}">
        <div class="step-buttons">${next.map((s) => `<button data-advance="${esc(s.step)}" ${this.busy ? "disabled" : ""}>→ ${esc(stepName(s))}</button>`).join("")}</div>
        ${this.refused ? `<div class="error">${t("refused")}: ${esc(this.refused)}</div>` : ""}</div>` : "";
    const summary = `<div class="inc-summary" style="border-color:${color}">
        <div class="inc-title"><i class="kind-dot" style="background:${color}"></i><b class="inc-kind">${esc(kindName(d))}</b>${severityBadge(d.severity)}
          ${d.simulated ? `<span class="badge sim">${t("simulated")}</span>` : ""}${active ? "" : `<span class="badge closed">${t("closed_case")}</span>`}</div>
        ${d.title ? `<div class="inc-name">${esc(d.title)}</div>` : ""}
        <table class="inc-facts"><tr><th>${t("address")}</th><td>${esc(where || "–")}</td></tr>
          <tr><th>${t("unit")}</th><td>${esc(d.unit ?? "–")}</td></tr>
          <tr><th>${t("opened")}</th><td>${this.fmt.dateTime(d.opened_at_ms)}</td></tr>
          <tr><th>${t("source")}</th><td>${esc(d.source ?? "")}</td></tr></table></div>`;
    // Keep what the operator is typing across a re-render.
    const note = body.querySelector(".inc-note");
    if (note) this._note = note.value;
    const focused = document.activeElement === note;
    const changed = setHTML(body, `<div class="inc-grid"><div class="inc-left">${summary}<h3>${t("timeline")}</h3><ol class="timeline">${rows}</ol>${actions}</div>
      <div class="inc-right">${nearby}${related}</div></div>`);
    if (changed && focused) body.querySelector(".inc-note")?.focus();
  }

  _click(e) {
    if (e.target.closest("[data-act=close]")) { this.close(); for (const fn of this.closeHandlers ?? []) fn(); return; }
    const b = e.target.closest("button[data-advance]");
    if (b) this.advance(b.dataset.advance);
  }

  onClose(fn) { (this.closeHandlers ??= []).push(fn); }

  async advance(step) {
    const id = this.id;
    const note = this.el.querySelector(".inc-note")?.value ?? "";
    this.busy = true; this.render();
    const r = await send(`/api/incidents/${encodeURIComponent(id)}/transitions`, { step, note });
    this.busy = false;
    if (id !== this.id) return;
    if (r.ok) {
      this.refused = null; this._note = "";
      const n = this.el.querySelector(".inc-note"); if (n) n.value = "";
      this.data = { ...(this.data ?? {}), ...r.data };
    } else {
      this.refused = r.message;
    }
    this.el.querySelector(".body")._html = null;
    this.render();
  }
}

// A new incident at or above the focus severity takes the wall: the map flies to it, its detail
// opens, a banner says why and counts down; then (or on dismiss: Esc or the button) the wall goes
// back to the view it had. A second such incident during a focus replaces the current one when it
// is at least as severe (its countdown starts again); a less severe one waits its turn in a queue
// and takes the focus when the current one ends. The view to return to is the one from before the
// first focus. Nothing takes the focus in replay, and incidents opened long ago (a backfill) do not.
// Off for a page with ?focus=0 (an analyst's laptop), and everywhere with --focus-seconds 0.
const STALE_FOR_FOCUS_MS = 15 * 60 * 1000;

export class Focus {
  constructor({ live, map, panel, banner, selectLayer, guName }) {
    this.live = live; this.map = map; this.panel = panel; this.banner = banner; this.selectLayer = selectLayer; this.guName = guName;
    this.current = null; // {inc, until}
    this.queue = [];
    this.saved = null; // {view, incident}: what to return to
    this.timer = null;
    banner.addEventListener("click", (e) => { if (e.target.closest("[data-act=dismiss]")) this.dismiss(); });
  }

  get active() { return this.current != null; }

  consider(change, inc) {
    if (this.disabled || change !== "opened" || this.live.replaying || !inc.active) return;
    if (!(Number(this.live.operations?.focus_seconds ?? 60) > 0)) return; // --focus-seconds 0: focus off
    if (rank(inc) < (SEVERITY_RANK[this.live.operations?.focus_severity ?? "critical"] ?? 4)) return;
    const now = this.live.serverTime ? this.live.serverTime + (Date.now() - this.live.serverTimeAt) : Date.now();
    if (now - inc.opened_at_ms > STALE_FOR_FOCUS_MS) return;
    if (this.current && rank(inc) < rank(this.current.inc)) {
      this.queue.push(inc);
      this.queue.sort((a, b) => rank(b) - rank(a) || a.opened_at_ms - b.opened_at_ms);
      this.renderBanner();
      return;
    }
    this._show(inc);
  }

  _show(inc) {
    if (!this.current) this.saved = { view: this.map.view(), incident: this.panel.isOpen ? this.panel.id : null };
    const seconds = Number(this.live.operations?.focus_seconds ?? 60);
    this.current = { inc, until: Date.now() + seconds * 1000 };
    document.getElementById("app").classList.add("focused");
    this.map.setIncidents([...this.live.incidents.values()], true);
    this.map.map.flyTo({ center: [inc.lon, inc.lat], zoom: Math.max(13.5, this.map.map.getZoom()), duration: 1200, essential: true });
    this.panel.open(inc.id);
    this.renderBanner();
    clearInterval(this.timer);
    this.timer = setInterval(() => this._tick(), 250);
  }

  _tick() {
    if (!this.current) return;
    if (Date.now() >= this.current.until) this.dismiss();
    else this.renderBanner();
  }

  // End this focus: the next queued incident (still active) takes it, else the wall goes back.
  dismiss() {
    if (!this.current) return;
    let next;
    while ((next = this.queue.shift()) && !this.live.incidents.has(next.id)) { /* closed meanwhile: skip */ }
    if (next) { this.current = null; this._showQueued(next); return; }
    this.cancel();
  }

  _showQueued(inc) {
    const saved = this.saved;
    this._show(inc);
    this.saved = saved;
  }

  // Back to the saved view now, dropping anything queued (dismissed last, or replay starting).
  cancel() {
    clearInterval(this.timer);
    this.timer = null;
    this.queue = [];
    if (!this.current) return;
    this.current = null;
    document.getElementById("app").classList.remove("focused");
    this.banner.hidden = true;
    const saved = this.saved;
    this.saved = null;
    if (saved.incident && this.live.incidents.has(saved.incident)) this.panel.open(saved.incident); else this.panel.close();
    this.map.restore(saved.view, this.selectLayer);
  }

  renderBanner() {
    if (!this.current) { this.banner.hidden = true; return; }
    const inc = this.current.inc;
    const left = Math.max(0, Math.ceil((this.current.until - Date.now()) / 1000));
    const color = INCIDENT_COLORS[inc.kind] ?? INCIDENT_COLORS.other;
    this.banner.hidden = false;
    this.banner.style.borderColor = color;
    setHTML(this.banner, `<span class="focus-icon" style="background:${color}">!</span>
      <span class="focus-text"><b>${t("focus_new")}: ${esc(kindName(inc))}</b> ${severityBadge(inc.severity)}
        <span>${esc([inc.title, inc.address, this.guName(inc.gu)].filter(Boolean).join(" · "))}</span>
        <small>${tf("focus_rule", { sev: t(`sev_${this.live.operations?.focus_severity ?? "critical"}`) })}${this.queue.length ? ` · ${tf("queued", { n: this.queue.length })}` : ""}</small></span>
      <span class="focus-count" data-seconds="${left}">${tf("focus_return", { s: left })}</span>
      <button data-act="dismiss">${t("dismiss")}</button>`);
  }
}
