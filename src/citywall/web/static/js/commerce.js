// The wall's "Commerce" view (골목상권): the commercial districts on the city map, coloured by the
// four-colour risk signal or by the change index (LL/LH/HL/HH) for a chosen business type and
// quarter, with a legend; clicking a district shows its indicators and trends (an ECharts line of
// its quarterly sales) and adds it to a comparison of up to four districts, as Seoul's service does.
// Everything comes from /api/commerce/... (the indicator tables `citywall commerce build` wrote), so
// the wall shows exactly what the CLI and the API report. Simulated data is marked SIMULATED.
// Without a source (`citywall up` without --commerce) there is no Commerce button: the domain says
// "no source connected", as for the other domains without data.
import * as echarts from "/static/vendor/echarts/echarts.esm.min.mjs";
import { getJson } from "./api.js";
import { getLang, onLang, t, tf } from "./i18n.js";
import { esc } from "./panels.js";

export const RISK_COLORS = { blue: "#2563eb", yellow: "#facc15", orange: "#f97316", red: "#dc2626" };
export const CHANGE_COLORS = { LL: "#10b981", LH: "#38bdf8", HL: "#f43f5e", HH: "#f59e0b" };
const NO_DATA = "#475569";
const MAX_COMPARE = 4;
const MAP_LAYERS = ["com-fill", "com-line", "com-picked"];
const HIDDEN_WHILE_ON = ["pts-sdot", "pts-hotspot", "pts-air", "pts-weather", "roads"];
const EMPTY = { type: "FeatureCollection", features: [] };

const locale = () => (getLang() === "ko" ? "ko-KR" : "en-GB");
// A value as the field's kind says (the API lists the fields with their kinds).
export function fmtValue(v, kind) {
  if (v == null || (typeof v === "number" && !Number.isFinite(v))) return "–";
  if (typeof v !== "number") return String(v);
  const ko = getLang() === "ko";
  switch (kind) {
    case "krw":
      if (ko) return Math.abs(v) >= 1e8 ? `${(v / 1e8).toFixed(1)}억원` : `${Math.round(v / 1e4).toLocaleString("ko-KR")}만원`;
      return Math.abs(v) >= 1e9 ? `₩${(v / 1e9).toFixed(2)}bn` : `₩${(v / 1e6).toFixed(1)}M`;
    case "pct": return `${v.toFixed(1)}%`;
    case "ratio": return `${(v * 100).toFixed(1)}%`;
    case "months": return `${v.toFixed(1)} ${t("com_months")}`;
    case "count": return Math.round(v).toLocaleString(locale());
    default: return v.toLocaleString(locale(), { maximumFractionDigits: 2 });
  }
}
// A trend: a % change (unit pct) or a change in percentage points (unit pp, for rates).
const fmtChange = (x, unit) => (x == null || !Number.isFinite(x) ? "–" : `${x > 0 ? "+" : ""}${x.toFixed(1)}${unit === "pp" ? t("com_pp") : "%"}`);
const label = (column) => { const s = t(`com_f_${column}`); return s === `com_f_${column}` ? column : s; };
const districtName = (d) => (getLang() === "ko" ? d.name : d.name_en ?? d.name);
const fmtQuarter = (q) => (getLang() === "ko" ? `${Math.floor(q / 10)}년 ${q % 10}분기` : `${Math.floor(q / 10)} Q${q % 10}`);

export class CommerceView {
  constructor(cityMap, legendEl) {
    this.cityMap = cityMap;
    this.legendEl = legendEl;
    this.active = false;
    this.meta = null;        // GET /api/commerce: configured, quarters, business types, simulated
    this.mode = "risk";      // or "change"
    this.quarter = null;
    this.businessType = null;
    this.geo = null;         // the districts shown
    this.detail = null;      // the clicked district's detail
    this.picked = [];        // district codes in the comparison (oldest first)
    this.comparison = null;
    this.error = null;
    this.panel = document.createElement("div");
    this.panel.id = "commerce-panel";
    this.panel.className = "commerce-panel";
    this.panel.hidden = true;
    this.panel.innerHTML = `<h3></h3><div class="com-controls"></div><div class="com-error error"></div>
      <section class="com-detail" hidden><div class="com-detail-body"></div><div class="com-chart"></div></section>
      <section class="com-compare" hidden></section>`;
    cityMap.map.getContainer().parentElement.append(this.panel);
    this.panel.addEventListener("change", (e) => {
      if (e.target.name === "business_type") this.businessType = e.target.value;
      else if (e.target.name === "quarter") this.quarter = Number(e.target.value);
      else return;
      this.reload();
    });
    this.panel.addEventListener("click", (e) => {
      const mode = e.target.closest("[data-mode]")?.dataset.mode;
      if (mode) { this.setMode(mode); return; }
      const drop = e.target.closest("[data-drop]")?.dataset.drop;
      if (drop) { this.picked = this.picked.filter((c) => c !== drop); this.loadComparison(); return; }
      if (e.target.closest("[data-act=clear]")) { this.picked = []; this.detail = null; this.loadComparison(); this.renderDetail(); }
    });
    onLang(() => { if (this.active) this.render(); });
  }

  get configured() { return !!this.meta?.configured; }
  get simulated() { return !!(this.meta?.simulated || this.geo?.simulated); }

  // Whether a source is connected (main.js shows the Commerce button only then); never throws.
  async load() {
    try { this.meta = await getJson("/api/commerce"); } catch (err) { this.meta = { configured: false }; this.error = err.message; }
    if (this.configured) {
      this.quarter ??= this.meta.quarters.at(-1) ?? null;
      this.businessType ??= this.meta.default_business_type ?? this.meta.business_types[0]?.code ?? null;
    }
    return this.configured;
  }

  // The layer buttons call this for every layer: true when it is the Commerce view (now shown).
  select(layer) {
    if (layer === "commerce") { this.show(); return true; }
    this.hide();
    return false;
  }

  async show() {
    const m = this.cityMap.map;
    if (!m.getSource("com-districts")) this._build();
    this.active = true;
    this.panel.hidden = false;
    document.getElementById("map-panel")?.classList.add("commerce-on");
    for (const id of MAP_LAYERS) m.setLayoutProperty(id, "visibility", "visible");
    for (const id of HIDDEN_WHILE_ON) if (m.getLayer(id)) m.setLayoutProperty(id, "visibility", "none");
    if (m.getLayer("gu-fill")) m.setPaintProperty("gu-fill", "fill-opacity", 0.12);
    // A click on a district is the district's, not the gu's (no drill-down under it).
    this.cityMap.overlayClicks = ["com-fill"];
    this.render();
    if (!this.meta) await this.load();
    await this.reload();
  }

  hide() {
    if (!this.active) return;
    const m = this.cityMap.map;
    this.active = false;
    this.panel.hidden = true;
    this.cityMap.overlayClicks = [];
    document.getElementById("map-panel")?.classList.remove("commerce-on");
    for (const id of MAP_LAYERS) if (m.getLayer(id)) m.setLayoutProperty(id, "visibility", "none");
    if (m.getLayer("gu-fill")) m.setPaintProperty("gu-fill", "fill-opacity", ["case", ["boolean", ["feature-state", "dim"], false], 0.25, 0.72]);
  }

  _build() {
    const m = this.cityMap.map;
    m.addSource("com-districts", { type: "geojson", data: EMPTY });
    const before = m.getLayer("inc-halo") ? "inc-halo" : undefined; // incidents stay on top
    m.addLayer({ id: "com-fill", type: "fill", source: "com-districts", paint: { "fill-color": ["coalesce", ["get", "_color"], NO_DATA], "fill-opacity": 0.72 } }, before);
    m.addLayer({ id: "com-line", type: "line", source: "com-districts", paint: { "line-color": "#0b1220", "line-width": 0.6, "line-opacity": 0.7 } }, before);
    m.addLayer({ id: "com-picked", type: "line", source: "com-districts", filter: ["in", ["get", "code"], ["literal", []]],
      paint: { "line-color": "#ffffff", "line-width": 2.5 } }, before);
    m.on("click", "com-fill", (e) => this.pick(e.features[0].properties.code));
    m.on("mouseenter", "com-fill", () => { m.getCanvas().style.cursor = "pointer"; });
    m.on("mouseleave", "com-fill", () => { m.getCanvas().style.cursor = ""; });
  }

  _query() {
    const p = new URLSearchParams();
    if (this.quarter != null) p.set("quarter", this.quarter);
    if (this.businessType) p.set("business_type", this.businessType);
    return p.toString();
  }

  async reload() {
    if (!this.configured) { this.render(); return; }
    try {
      this.geo = await getJson(`/api/commerce/districts.geojson?${this._query()}`);
      this.quarter = this.geo.quarter;
      this.businessType = this.geo.business_type;
      this._paint();
      this.error = null;
    } catch (err) {
      this.error = err.message;
    }
    this.render();
    if (this.detail) await this.loadDetail(this.detail.district.code);
    await this.loadComparison();
  }

  setMode(mode) {
    this.mode = mode === "change" ? "change" : "risk";
    this._paint();
    this.render();
  }

  _paint() {
    if (!this.geo) return;
    for (const f of this.geo.features) {
      const p = f.properties;
      p._color = this.mode === "risk" ? RISK_COLORS[p.risk_signal] ?? NO_DATA : CHANGE_COLORS[p.change_index] ?? NO_DATA;
    }
    this.cityMap.map.getSource("com-districts")?.setData(this.geo);
  }

  // A click: the district's detail, and into the comparison (the oldest leaves when four are there).
  async pick(code) {
    if (!this.picked.includes(code)) {
      this.picked.push(code);
      if (this.picked.length > MAX_COMPARE) this.picked.shift();
    }
    await Promise.all([this.loadDetail(code), this.loadComparison()]);
  }

  async loadDetail(code) {
    try {
      this.detail = await getJson(`/api/commerce/districts/${encodeURIComponent(code)}?${this._query()}`);
      this.error = null;
    } catch (err) {
      this.error = err.message;
    }
    this.renderDetail();
  }

  async loadComparison() {
    const m = this.cityMap.map;
    if (m.getLayer("com-picked")) m.setFilter("com-picked", ["in", ["get", "code"], ["literal", this.picked]]);
    if (!this.picked.length) { this.comparison = null; this.renderComparison(); return; }
    try {
      this.comparison = await getJson(`/api/commerce/compare?districts=${this.picked.map(encodeURIComponent).join(",")}&${this._query()}`);
      this.error = null;
    } catch (err) {
      this.error = err.message;
    }
    this.renderComparison();
  }

  btName(code) {
    const b = this.meta?.business_types?.find((x) => x.code === code);
    return b ? (getLang() === "ko" ? b.name_ko : b.name_en) : code ?? "";
  }

  renderLegend() {
    const levels = this.mode === "risk" ? Object.entries(RISK_COLORS) : Object.entries(CHANGE_COLORS);
    const counts = (this.mode === "risk" ? this.geo?.risk_counts : this.geo?.change_counts) ?? {};
    const rows = levels.map(([k, c]) => `<div class="row"><i style="background:${c}"></i>${esc(t(`com_${this.mode}_${k}`))}${counts[k] != null ? ` <small>${counts[k]}</small>` : ""}</div>`);
    rows.push(`<div class="row"><i style="background:${NO_DATA}"></i>${esc(t("com_no_data"))}</div>`);
    this.legendEl.innerHTML = `<div class="legend-title">${esc(t(this.mode === "risk" ? "com_risk" : "com_change"))}</div>${rows.join("")}`
      + (this.simulated ? `<div class="row sim-badge">${esc(t("simulated"))}</div>` : "");
  }

  render() {
    if (!this.active) return;
    this.renderLegend();
    const sim = this.simulated ? `<span class="badge sim" title="${esc(t("com_simulated_long"))}">${esc(t("simulated"))}</span>` : "";
    this.panel.querySelector("h3").innerHTML = `${esc(t("com_title"))} ${sim}`;
    const controls = this.panel.querySelector(".com-controls");
    if (!this.configured) {
      controls.innerHTML = `<p class="empty">${esc(t("no_source"))}</p>`;
    } else {
      const types = this.meta.business_types.map((b) => `<option value="${esc(b.code)}" ${b.code === this.businessType ? "selected" : ""}>${esc(getLang() === "ko" ? b.name_ko : b.name_en)}</option>`);
      const quarters = [...this.meta.quarters].reverse().map((q) => `<option value="${q}" ${q === this.quarter ? "selected" : ""}>${esc(fmtQuarter(q))}</option>`);
      controls.innerHTML = `<label>${esc(t("com_business_type"))} <select name="business_type">${types.join("")}</select></label>
        <label>${esc(t("com_quarter"))} <select name="quarter">${quarters.join("")}</select></label>
        <span class="com-modes">${["risk", "change"].map((m) => `<button type="button" data-mode="${m}" class="${this.mode === m ? "on" : ""}">${esc(t(`com_${m}`))}</button>`).join("")}</span>
        <small class="com-hint">${esc(tf("com_hint", { n: MAX_COMPARE }))}</small>`;
    }
    this.panel.querySelector(".com-error").textContent = this.error ?? "";
    this.renderDetail();
    this.renderComparison();
  }

  renderDetail() {
    const sec = this.panel.querySelector(".com-detail");
    const d = this.detail;
    sec.hidden = !d || !this.active;
    if (!d) return;
    const row = d.indicators ?? {}, drow = d.district_indicators ?? {};
    const risk = d.risk_signal, change = d.change_index;
    const chip = (color, text) => `<span class="com-chip" style="background:${color}">${esc(text)}</span>`;
    const trends = d.trends?.metrics ?? {};
    const lines = [...d.fields, ...d.district_fields].map((f) => {
      const v = f.column in row ? row[f.column] : drow[f.column];
      const tr = trends[f.column] ?? {};
      return `<tr data-field="${esc(f.column)}"><td>${esc(label(f.column))}</td><td class="num">${esc(fmtValue(v, f.kind))}</td>
        <td class="num">${esc(fmtChange(tr.qoq, tr.unit))}</td><td class="num">${esc(fmtChange(tr.yoy, tr.unit))}</td></tr>`;
    });
    const kind = d.district.kind ? t(`com_kind_${d.district.kind}`) : "";
    sec.querySelector(".com-detail-body").innerHTML = `<h4 data-code="${esc(d.district.code)}">${esc(districtName(d.district))} <small>${esc(d.district.code)} · ${esc(kind)}</small></h4>
      <div class="com-signals">${risk ? chip(RISK_COLORS[risk] ?? NO_DATA, `${t("com_risk")}: ${t(`com_risk_${risk}`)}`) : `<small>${esc(t("com_no_data"))}</small>`}
        ${change ? chip(CHANGE_COLORS[change] ?? NO_DATA, `${change} ${t(`com_change_${change}`)}`) : ""}</div>
      <small>${esc(this.btName(d.business_type))} · ${esc(fmtQuarter(d.quarter))}</small>
      ${d.indicators ? "" : `<p class="empty">${esc(t("com_no_rows"))}</p>`}
      <table class="com-indicators"><thead><tr><th></th><th class="num">${esc(fmtQuarter(d.quarter))}</th><th class="num">${esc(t("com_qoq"))}</th><th class="num">${esc(t("com_yoy"))}</th></tr></thead>
      <tbody>${lines.join("")}</tbody></table>`;
    this._chart(d);
  }

  // The district's quarterly sales (and store count) as a small ECharts line.
  _chart(d) {
    const el = this.panel.querySelector(".com-chart");
    this.chart ??= echarts.init(el, "dark", { renderer: "canvas" });
    const s = d.series ?? {};
    const qs = (s.quarters ?? []).map(fmtQuarter);
    const series = [];
    if (s.thsmon_selng_amt) series.push({ name: label("thsmon_selng_amt"), type: "line", yAxisIndex: 0, data: s.thsmon_selng_amt, connectNulls: false, showSymbol: true, symbolSize: 4 });
    const st = s.similr_induty_stor_co ? "similr_induty_stor_co" : s.stor_co ? "stor_co" : null;
    if (st) series.push({ name: label(st), type: "line", yAxisIndex: 1, data: s[st], showSymbol: true, symbolSize: 4 });
    this.chart.setOption({
      backgroundColor: "transparent", animation: false,
      textStyle: { fontFamily: "Noto Sans KR Variable, sans-serif", fontSize: 11 },
      tooltip: { trigger: "axis" }, legend: { top: 0, textStyle: { fontSize: 11 } },
      grid: { left: 48, right: 36, top: 24, bottom: 22 },
      xAxis: { type: "category", data: qs, axisLabel: { fontSize: 10 } },
      yAxis: [{ type: "value", scale: true, axisLabel: { fontSize: 10, formatter: (v) => fmtValue(v, "krw") } },
        { type: "value", scale: true, splitLine: { show: false }, axisLabel: { fontSize: 10 } }],
      series,
    }, true);
    requestAnimationFrame(() => this.chart?.resize());
  }

  renderComparison() {
    const sec = this.panel.querySelector(".com-compare");
    const c = this.comparison;
    sec.hidden = !c || !this.active;
    if (!c) return;
    const items = c.districts;
    const head = items.map((x) => `<th class="num" data-code="${esc(x.district.code)}">${esc(districtName(x.district))}
      <button type="button" class="com-drop" data-drop="${esc(x.district.code)}" title="${esc(t("close"))}">×</button></th>`).join("");
    const sig = (x) => (x.risk_signal ? `<i class="com-dot" style="background:${RISK_COLORS[x.risk_signal] ?? NO_DATA}"></i>${esc(t(`com_risk_${x.risk_signal}`))}` : "–");
    const chg = (x) => (x.change_index ? `<i class="com-dot" style="background:${CHANGE_COLORS[x.change_index] ?? NO_DATA}"></i>${esc(x.change_index)}` : "–");
    const rows = [`<tr data-field="risk_signal"><td>${esc(t("com_risk"))}</td>${items.map((x) => `<td class="num">${sig(x)}</td>`).join("")}</tr>`,
      `<tr data-field="trdar_chnge_ix"><td>${esc(t("com_change"))}</td>${items.map((x) => `<td class="num">${chg(x)}</td>`).join("")}</tr>`];
    for (const f of c.fields) rows.push(`<tr data-field="${esc(f.column)}"><td>${esc(label(f.column))}</td>${items.map((x) => `<td class="num">${esc(fmtValue(x.indicators?.[f.column], f.kind))}</td>`).join("")}</tr>`);
    for (const f of c.district_fields) rows.push(`<tr data-field="${esc(f.column)}"><td>${esc(label(f.column))}</td>${items.map((x) => `<td class="num">${esc(fmtValue(x.district_indicators?.[f.column], f.kind))}</td>`).join("")}</tr>`);
    sec.innerHTML = `<h4>${esc(tf("com_compare", { n: items.length, max: MAX_COMPARE }))} <button type="button" data-act="clear">${esc(t("com_clear"))}</button></h4>
      <table class="com-comparison"><thead><tr><th></th>${head}</tr></thead><tbody>${rows.join("")}</tbody></table>`;
  }
}
