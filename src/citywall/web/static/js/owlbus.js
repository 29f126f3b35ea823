// The wall's "Owl bus" view: the night demand on its hexagon grid (coloured by trips) and the
// planned night-bus routes as coloured lines over the city map, a legend, and a panel listing the
// routes with their length, riders and buses needed. Everything comes from /api/owlbus/... (the
// server's GeoJSON carries colours, riders and the simulated flag), so the wall shows exactly what
// the CLI and the API report. Simulated demand is marked SIMULATED, as everywhere on the wall.
import { getJson, send } from "./api.js";
import { getLang, onLang, t, tf } from "./i18n.js";
import { esc } from "./panels.js";

// Demand classes: quantiles of the cells' trips, so a city with one huge hot spot still shows its
// structure; dark blue (few) to bright yellow (the hot spots), readable on the dark map.
const DEMAND_COLORS = ["#1e3a5f", "#2563eb", "#7c3aed", "#db2777", "#f97316", "#fde047"];
const POLL_MS = 2000, IDLE_POLL_MS = 30000;
const MAP_LAYERS = ["owl-demand-fill", "owl-demand-line", "owl-demand-pt", "owl-routes-casing", "owl-routes", "owl-stops"];
const HIDDEN_WHILE_ON = ["pts-sdot", "pts-hotspot", "pts-air", "pts-weather", "roads"];
const EMPTY = { type: "FeatureCollection", features: [] };
const RIDERS_A_NIGHT = "riders a night";

export class OwlbusView {
  constructor(cityMap, legendEl, { auth } = {}) {
    this.cityMap = cityMap;
    this.legendEl = legendEl;
    this.auth = auth;
    this.active = false;
    this.job = null;      // GET /api/owlbus/plan: state, progress, plan
    this.demand = null;   // demand GeoJSON shown
    this.breaks = [];
    this.error = null;
    this.panel = document.createElement("div");
    this.panel.id = "owlbus-panel";
    this.panel.className = "owlbus-panel";
    this.panel.hidden = true;
    cityMap.map.getContainer().parentElement.append(this.panel);
    this.panel.addEventListener("click", (e) => { if (e.target.closest("[data-act=plan]")) this.startPlan(); });
    onLang(() => { if (this.active) this.render(); });
  }

  // The layer buttons call this for every layer: true when it is the Owl-bus view (now shown).
  select(layer) {
    if (layer === "owlbus") { this.show(); return true; }
    this.hide();
    return false;
  }

  async show() {
    const m = this.cityMap.map;
    if (!m.getSource("owl-demand")) this._build();
    this.active = true;
    this.panel.hidden = false;
    document.getElementById("map-panel")?.classList.add("owlbus-on");
    for (const id of MAP_LAYERS) m.setLayoutProperty(id, "visibility", "visible");
    for (const id of HIDDEN_WHILE_ON) if (m.getLayer(id)) m.setLayoutProperty(id, "visibility", "none");
    if (m.getLayer("gu-fill")) m.setPaintProperty("gu-fill", "fill-opacity", 0.12);
    this.render();
    await this.refresh();
  }

  hide() {
    if (!this.active) return;
    const m = this.cityMap.map;
    this.active = false;
    clearTimeout(this._timer);
    this.panel.hidden = true;
    document.getElementById("map-panel")?.classList.remove("owlbus-on");
    for (const id of MAP_LAYERS) if (m.getLayer(id)) m.setLayoutProperty(id, "visibility", "none");
    // The selected layer's own points and roads come back with map.setLayer, which the caller does next.
    if (m.getLayer("gu-fill")) m.setPaintProperty("gu-fill", "fill-opacity", ["case", ["boolean", ["feature-state", "dim"], false], 0.25, 0.72]);
  }

  _build() {
    const m = this.cityMap.map;
    m.addSource("owl-demand", { type: "geojson", data: EMPTY });
    m.addSource("owl-plan", { type: "geojson", data: EMPTY });
    const before = m.getLayer("inc-halo") ? "inc-halo" : undefined; // incidents stay on top
    const demandColor = ["coalesce", ["get", "_color"], DEMAND_COLORS[0]];
    m.addLayer({ id: "owl-demand-fill", type: "fill", source: "owl-demand", filter: ["==", ["geometry-type"], "Polygon"],
      paint: { "fill-color": demandColor, "fill-opacity": 0.62 } }, before);
    m.addLayer({ id: "owl-demand-line", type: "line", source: "owl-demand", filter: ["==", ["geometry-type"], "Polygon"],
      paint: { "line-color": "#0b1220", "line-width": 0.5, "line-opacity": 0.6 } }, before);
    m.addLayer({ id: "owl-demand-pt", type: "circle", source: "owl-demand", filter: ["==", ["geometry-type"], "Point"],
      paint: { "circle-color": demandColor, "circle-radius": 6, "circle-opacity": 0.8 } }, before);
    m.addLayer({ id: "owl-routes-casing", type: "line", source: "owl-plan", filter: ["==", ["get", "kind"], "route"],
      layout: { "line-cap": "round", "line-join": "round" }, paint: { "line-color": "#0b1220", "line-width": ["interpolate", ["linear"], ["zoom"], 10, 6, 14, 12] } }, before);
    m.addLayer({ id: "owl-routes", type: "line", source: "owl-plan", filter: ["==", ["get", "kind"], "route"],
      layout: { "line-cap": "round", "line-join": "round" }, paint: { "line-color": ["get", "color"], "line-width": ["interpolate", ["linear"], ["zoom"], 10, 3.5, 14, 8] } }, before);
    m.addLayer({ id: "owl-stops", type: "circle", source: "owl-plan", filter: ["==", ["get", "kind"], "stop"],
      paint: { "circle-color": "#ffffff", "circle-radius": ["interpolate", ["linear"], ["zoom"], 10, 2.5, 14, 5], "circle-stroke-color": "#0b1220", "circle-stroke-width": 1 } }, before);
  }

  async refresh() {
    clearTimeout(this._timer);
    try {
      this.job = await getJson("/api/owlbus/plan");
      const plan = this.job.plan;
      const res = plan?.settings?.resolution ?? this.job.request?.resolution ?? 7;
      const win = plan?.settings?.window ?? this.job.request?.window ?? "00:00-05:00";
      const key = `${res}|${win}|${plan ? this.job.finished_ms : ""}`;
      if (key !== this._shownKey) {
        const [demand, planGeo] = await Promise.all([
          getJson(`/api/owlbus/demand?resolution=${res}&window=${encodeURIComponent(win)}`),
          plan ? getJson("/api/owlbus/plan.geojson?demand=false") : Promise.resolve(EMPTY),
        ]);
        this._setDemand(demand);
        this.cityMap.map.getSource("owl-plan")?.setData(planGeo);
        this._shownKey = key;
      }
      this.error = null;
    } catch (err) {
      this.error = err.message;
    }
    if (!this.active) return;
    this.render();
    // Fast while a run goes (its progress), slowly otherwise (a run another operator starts).
    this._timer = setTimeout(() => this.refresh(), this.job?.state === "running" ? POLL_MS : IDLE_POLL_MS);
  }

  _setDemand(demand) {
    this.demand = demand;
    const trips = demand.features.map((f) => f.properties.trips).sort((a, b) => a - b);
    const q = (p) => trips.length ? trips[Math.min(trips.length - 1, Math.floor(p * trips.length))] : 0;
    this.breaks = [0.3, 0.55, 0.75, 0.9, 0.97].map(q);
    for (const f of demand.features) {
      const k = this.breaks.filter((b) => f.properties.trips >= b && b > 0).length;
      f.properties._color = DEMAND_COLORS[Math.min(k, DEMAND_COLORS.length - 1)];
    }
    this.cityMap.map.getSource("owl-demand")?.setData(demand);
  }

  get simulated() { return !!(this.demand?.simulated || this.job?.plan?.simulated); }

  // The server's simulated demand counts riders a night (the labels say so); any other unit is shown as sent.
  get unit() { return this.job?.plan?.demand_unit ?? this.demand?.demand_unit ?? RIDERS_A_NIGHT; }

  async startPlan() {
    const form = this.panel.querySelector("form.owl-plan");
    const v = (name) => Number(form?.elements[name]?.value);
    // On the grid shown (the last run's), so the new plan lands on the hexagons on screen.
    const last = this.job?.plan?.settings ?? this.job?.request ?? {};
    const grid = Object.fromEntries(["resolution", "window", "demand_seed"].filter((k) => last[k] != null).map((k) => [k, last[k]]));
    const body = { ...grid, routes: v("routes"), min_nodes: v("min_nodes"), max_nodes: v("max_nodes"), time_budget_s: v("budget") };
    const r = await send("/api/owlbus/plan", body);
    this.error = r.ok ? null : `${t("refused")}: ${r.message}`;
    await this.refresh();
  }

  renderLegend() {
    const fmt = (x) => Math.round(x).toLocaleString(getLang() === "ko" ? "ko-KR" : "en-GB");
    const rows = DEMAND_COLORS.map((c, i) => {
      const lo = i === 0 ? 0 : this.breaks[i - 1], hi = this.breaks[i];
      return `<div class="row"><i style="background:${c}"></i>${hi == null ? `≥ ${fmt(lo)}` : `${fmt(lo)} – ${fmt(hi)}`}</div>`;
    });
    const routes = this.job?.plan?.route_details ?? [];
    const unit = this.unit === RIDERS_A_NIGHT ? t("owl_trips") : this.unit;
    this.legendEl.innerHTML = `<div class="legend-title">${esc(t("owl_demand"))} <small>(${esc(unit)})</small></div>${rows.join("")}`
      + (routes.length ? `<div class="legend-title">${esc(t("owl_routes"))}</div><div class="row"><i style="background:linear-gradient(90deg,${routes.slice(0, 6).map((r) => r.color).join(",")})"></i>${routes.length} ${esc(t("owl_route_unit"))}</div>` : "")
      + (this.simulated ? `<div class="row sim-badge">${esc(t("simulated"))}</div>` : "");
  }

  render() {
    if (!this.active) return;
    this.renderLegend();
    const job = this.job, plan = job?.plan;
    const sim = this.simulated ? `<span class="badge sim" title="${esc(t("owl_simulated_long"))}">${esc(t("simulated"))}</span>` : "";
    let body = "";
    if (job?.state === "running") {
      const p = job.progress ?? {};
      const att = typeof p.ATT === "number" ? p.ATT : typeof p.best_ATT === "number" ? p.best_ATT : null;
      body += `<p class="owl-running">${esc(t("owl_running"))} · ${esc(p.stage ?? "")}${att != null ? ` · ATT ${att.toFixed(2)}` : ""}</p>`;
    } else if (job?.state === "failed") {
      body += `<p class="error">${esc(t("owl_failed"))}: ${esc(job.error ?? "")}</p>`;
    }
    if (plan) {
      const m = plan.metrics;
      const fmt1 = (x) => (x == null ? "–" : Number(x).toFixed(1));
      body += `<div class="owl-metrics">ATT <b>${m.ATT.toFixed(2)}</b> ${esc(t("owl_min"))} · d0 ${fmt1(m.d0)}% · d1 ${fmt1(m.d1)}% · d2 ${fmt1(m.d2)}% · dun ${fmt1(m.dun)}% · TRT ${fmt1(m.TRT)} ${esc(t("owl_min"))}</div>
        <table class="owl-routes"><thead><tr><th>${esc(t("owl_route"))}</th><th class="num">${esc(t("owl_stops"))}</th><th class="num">km</th>
        <th class="num">${esc(t("owl_min"))}</th><th class="num">${esc(this.unit === RIDERS_A_NIGHT ? t("owl_riders") : this.unit)}</th><th class="num">${esc(t("owl_buses"))}</th></tr></thead><tbody>
        ${plan.route_details.map((r) => `<tr data-route="${esc(r.route)}"><td><i class="owl-swatch" style="background:${r.color}"></i>${esc(r.route)}</td>
          <td class="num">${r.nodes.length}</td><td class="num">${fmt1(r.length_km)}</td><td class="num">${fmt1(r.time_min)}</td>
          <td class="num">${Math.round(r.riders).toLocaleString()}</td><td class="num">${r.buses}</td></tr>`).join("")}
        </tbody></table>
        <small>${esc(tf("owl_headway", { h: plan.headway_min }))} · ${esc(t("owl_buses_total"))} ${plan.route_details.reduce((s, r) => s + r.buses, 0)}</small>`;
    } else if (job?.state !== "running") {
      body += `<p class="empty">${esc(t("owl_no_plan"))}</p>`;
    }
    if (this.auth?.canOperate && job?.state !== "running") {
      const s = plan?.settings ?? {};
      body += `<form class="owl-plan" onsubmit="return false">
        <label>${esc(t("owl_route_count"))} <input name="routes" type="number" min="1" max="60" value="${s.routes ?? 12}"></label>
        <label>${esc(t("owl_nodes"))} <input name="min_nodes" type="number" min="2" value="${s.min_nodes ?? 4}">–<input name="max_nodes" type="number" min="2" value="${s.max_nodes ?? 20}"></label>
        <label>${esc(t("owl_budget"))} <input name="budget" type="number" min="5" max="600" value="${s.time_budget_s ?? 60}"></label>
        <button type="button" data-act="plan">${esc(t("owl_plan"))}</button></form>`;
    }
    if (this.error) body += `<p class="error">${esc(this.error)}</p>`;
    this.panel.innerHTML = `<h3>${esc(t("owl_title"))} ${sim}</h3>${body}`;
  }
}
