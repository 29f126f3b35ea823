// The open alarms, grouped into situations (the server groups alarms about the same district close in
// time), the worst situation first. Unacknowledged alarms stand out: someone has to look at them.
// Operators acknowledge, assign and comment here; the list changes only when the server says so (an
// alarm message over the live socket), so what is shown has always been recorded.
import { send, timeFormatter } from "./api.js";
import { getLang, t } from "./i18n.js";
import { esc, setHTML } from "./panels.js";
import { SEVERITY_COLORS, SEVERITY_RANK } from "./scales.js";

export const alarmTitle = (a) => (getLang() === "ko" ? a.title_ko : a.title_en || a.title_ko);
export const alarmMessage = (a) => (getLang() === "ko" ? a.message_ko : a.message_en || a.message_ko);

export function severityBadge(sev) {
  return `<span class="sev-badge sev-${esc(sev)}" style="background:${SEVERITY_COLORS[sev] ?? "#475569"}">${esc(t(`sev_${sev}`))}</span>`;
}

// Open alarms grouped by situation: [{id, gu, severity, alarms: [...]}], worst first.
export function situations(alarms) {
  const groups = new Map();
  for (const a of alarms) {
    if (!groups.has(a.situation)) groups.set(a.situation, []);
    groups.get(a.situation).push(a);
  }
  const rank = (a) => SEVERITY_RANK[a.severity] ?? 0;
  const out = [...groups].map(([id, list]) => {
    list.sort((x, y) => Number(x.acked) - Number(y.acked) || rank(y) - rank(x) || y.raised_at_ms - x.raised_at_ms);
    const worst = list.reduce((w, a) => (rank(a) > rank(w) ? a : w), list[0]);
    return { id, gu: worst.gu, severity: worst.severity, last: Math.max(...list.map((a) => a.raised_at_ms)), unacked: list.filter((a) => !a.acked).length, alarms: list };
  });
  out.sort((x, y) => (SEVERITY_RANK[y.severity] ?? 0) - (SEVERITY_RANK[x.severity] ?? 0) || (y.unacked > 0) - (x.unacked > 0) || y.last - x.last);
  return out;
}

export class AlarmPanel {
  constructor(el, { live, auth, guName, timeZone, isReplay }) {
    this.el = el; this.live = live; this.auth = auth; this.guName = guName; this.isReplay = isReplay;
    this.fmt = timeFormatter(timeZone);
    this.form = null; // {id, action}: an open assign/comment form (the list waits while someone types)
    this.errors = new Map(); // alarm id -> the server's last refusal
    this.busy = new Set();
    el.addEventListener("click", (e) => this._click(e));
    el.addEventListener("submit", (e) => { e.preventDefault(); this._submit(e.target); });
  }

  render() {
    if (this.form && this.el.querySelector("form.inline")) { this.dirty = true; return; }
    this.dirty = false;
    const alarms = [...this.live.alarms.values()];
    const unacked = alarms.filter((a) => !a.acked).length;
    const head = this.el.closest("section")?.querySelector(".alarm-count");
    if (head) head.innerHTML = `${alarms.length}${t("count_unit")}${unacked ? ` · <span class="unacked-count">${t("unacked")} ${unacked}</span>` : ""}`;
    const actions = this.auth.canOperate && !this.isReplay();
    setHTML(this.el, alarms.length === 0 ? `<p class="empty">${t("no_alarms")}</p>` : situations(alarms).map((s) => `
      <div class="situation" data-situation="${esc(s.id)}" style="border-color:${SEVERITY_COLORS[s.severity]}">
        <div class="sit-head">${severityBadge(s.severity)} <b>${esc(this.guName(s.gu) || t("situation"))}</b>
          <small>${t("situation")} ${esc(s.id)} · ${s.alarms.length}${t("count_unit")}${s.unacked ? ` · ${t("unacked")} ${s.unacked}` : ""}</small></div>
        <ol class="alarms">${s.alarms.map((a) => this._row(a, actions)).join("")}</ol>
      </div>`).join(""));
  }

  _row(a, actions) {
    const form = this.form?.id === a.id ? this.form.action : null;
    const meta = [this.fmt.time(a.raised_at_ms), a.gu ? this.guName(a.gu) : null,
      a.acked_by ? `${t("acked_by")} ${a.acked_by}` : null, a.assigned_to ? `${t("assigned")} ${a.assigned_to}` : null,
      a.comments?.length ? `${t("comments")} ${a.comments.length}` : null, a.escalated_at_ms ? `⚠ ${t("escalated")}` : null].filter(Boolean);
    const last = a.comments?.length ? a.comments[a.comments.length - 1] : null;
    return `<li class="alarm ${a.active ? "active" : "cleared"} ${a.acked ? "acked" : "unacked"}" data-alarm="${esc(a.id)}">
      <i class="sev-bar" style="background:${SEVERITY_COLORS[a.severity]}"></i>
      <div class="alarm-main">
        <div class="alarm-line"><b class="alarm-title">${esc(alarmTitle(a))}</b> ${severityBadge(a.severity)} <span class="state state-${a.state}">${t(`state_${a.state}`)}</span></div>
        ${alarmMessage(a) ? `<div class="alarm-msg">${esc(alarmMessage(a))}</div>` : ""}
        <div class="alarm-meta">${meta.map(esc).join(" · ")}</div>
        ${last ? `<div class="alarm-comment">“${esc(last.text)}” <span class="by">— ${esc(last.by)}</span></div>` : ""}
        ${actions ? `<div class="actions">
          ${a.acked ? "" : `<button data-act="ack" ${this.busy.has(a.id) ? "disabled" : ""}>${t("ack")}</button>`}
          <button data-act="assign">${t("assign")}</button><button data-act="comment">${t("comment")}</button></div>` : ""}
        ${actions && form ? `<form class="inline" data-alarm="${esc(a.id)}" data-act="${form}">
          <input name="text" required maxlength="${form === "assign" ? 64 : 4000}" placeholder="${esc(t(form === "assign" ? "assign_to" : "comment_text"))}">
          <button type="submit">${t("send")}</button><button type="button" data-act="cancel">${t("cancel")}</button></form>` : ""}
        ${this.errors.has(a.id) ? `<div class="error">${t("refused")}: ${esc(this.errors.get(a.id))}</div>` : ""}
      </div></li>`;
  }

  _click(e) {
    const button = e.target.closest("button[data-act]");
    const row = e.target.closest("[data-alarm]");
    if (!button || !row) return;
    const id = row.dataset.alarm, act = button.dataset.act;
    if (act === "ack") this._do(id, "ack", {});
    else if (act === "assign" || act === "comment") {
      this.form = { id, action: act };
      this.el._html = null; this.el.querySelector("form.inline")?.remove();
      this.render();
      this.el.querySelector("form.inline input")?.focus();
    } else if (act === "cancel") { this.form = null; this.render(); }
  }

  _submit(form) {
    const text = form.elements.text.value.trim();
    if (!text) return;
    const body = form.dataset.act === "assign" ? { to: text } : { text };
    this._do(form.dataset.alarm, form.dataset.act, body);
  }

  async _do(id, action, body) {
    this.busy.add(id);
    const r = await send(`/api/alarms/${encodeURIComponent(id)}/${action}`, body);
    this.busy.delete(id);
    if (r.ok) {
      this.errors.delete(id);
      if (this.form?.id === id) this.form = null;
      // The live socket brings the change to every wall; this one need not wait for it.
      if (r.data?.id && !this.isReplay()) { if (r.data.open) this.live.alarms.set(r.data.id, r.data); else this.live.alarms.delete(r.data.id); }
    } else {
      this.errors.set(id, r.message);
    }
    this.form = r.ok ? null : this.form;
    this.el.querySelector("form.inline")?.remove();
    this.render();
  }
}
