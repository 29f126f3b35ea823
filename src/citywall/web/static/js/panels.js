// The wall's panels besides the map: live city status, city indicators, the event feed and the
// selected area's detail. Each renders from the LiveCity mirror; none keeps data of its own.
import { HistoryChart, sparkline } from "./charts.js";
import { getLang, nameOf, t } from "./i18n.js";
import { CROWD_COLORS, GRADE_COLORS, INCIDENT_COLORS, caiGrade, fmt } from "./scales.js";

// At most this many Things in a district's list (each gets a sparkline request); the rest are counted.
const MAX_LISTED = 60;
const GRADE_KEYS = ["grade_good", "grade_moderate", "grade_unhealthy", "grade_very_unhealthy"];
export const esc = (s) => String(s ?? "").replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);

// A kind of Thing in the current language; kinds the wall does not know are shown as sent.
const kindName = (kind) => { const key = `kind_${kind}`; const name = t(key); return name === key ? kind : name; };

// Replace an element's content only when it changed: a wall-sized panel re-laid out and redrawn
// every second for nothing delays the frames that carry live values.
export function setHTML(el, html) {
  if (el._html === html) return false;
  el._html = html;
  el.innerHTML = html;
  return true;
}

export function ago(ms) {
  if (ms == null) return "–";
  const s = Math.max(0, ms / 1000);
  // Five-second steps: precise enough to judge freshness, calm enough not to redraw every second.
  return s < 90 ? `${Math.floor(s / 5) * 5}${t("ago_s")}` : s < 5400 ? `${Math.round(s / 60)}${t("ago_m")}` : `${Math.round(s / 3600)}${t("ago_h")}`;
}

// The incident counters as on Seoul's wall (화재, 구조, 구급, 재난), plus traffic accidents and the rest.
const COUNTERS = [["fires", ["fire"]], ["rescues", ["rescue"]], ["ems", ["ems"]], ["disasters", ["flood", "collapse", "gas_leak"]],
  ["traffic_accidents", ["traffic_accident"]], ["other_incidents", ["other"]]];

export function caiBadge(cai) {
  if (!cai) return `<span class="cai none">–</span>`;
  const g = caiGrade(cai.index);
  return `<span class="cai" style="background:${GRADE_COLORS[g]}">${cai.index} ${t(GRADE_KEYS[g])}</span>`;
}

export class StatusPanel {
  constructor(el, live, units) { this.el = el; this.live = live; this.units = units; }

  render() {
    const live = this.live;
    const air = live.air?.city;
    const weather = live.thingsOf("weather")[0];
    const w = weather ? live.thingValues(weather) : {};
    const wv = (q, digits) => (w[q] ? `${fmt(w[q].value, digits)}<small>${esc(this.units[q] ?? "")}</small>` : "–");
    const kinds = Object.entries(live.freshness);
    const counts = live.counts();
    setHTML(this.el.querySelector(".body"), `
      <div class="counters">
        ${COUNTERS.map(([key, kinds]) => { const n = kinds.reduce((sum, k) => sum + (counts[k] ?? 0), 0);
          return `<div class="counter" data-counter="${key}" title="${esc(key === "disasters" ? t("disasters_long") : t(key))}"><i style="background:${INCIDENT_COLORS[kinds[0]]}"></i><b class="${n ? "on" : ""}">${n}</b><span>${t(key)}</span></div>`; }).join("")}
      </div>
      <div class="status-row">
        <div class="cai-block">
          <h3>${t("cai")}</h3>
          <div class="cai-big" style="color:${air ? GRADE_COLORS[caiGrade(air.index)] : "inherit"}">${air ? air.index : "–"}</div>
          <div>${air ? `${t(GRADE_KEYS[caiGrade(air.index)])} · ${t("deciding")} ${esc(air.pollutant.toUpperCase())}` : t("none")}</div>
        </div>
        <div class="weather-block">
          <h3>${t("weather")}</h3>
          <div class="wx"><span>${t("temperature")}</span><b>${wv("temperature", 1)}</b></div>
          <div class="wx"><span>${t("humidity")}</span><b>${wv("humidity", 0)}</b></div>
          <div class="wx"><span>${t("wind")}</span><b>${wv("wind_speed", 1)}</b></div>
          <div class="wx"><span>${t("precipitation")}</span><b>${wv("precipitation", 1)}</b></div>
        </div>
      </div>
      <h3>${t("freshness")}</h3>
      <table class="fresh">${kinds.map(([kind, f]) => `
        <tr class="${f.stale > 0.05 * f.datastreams ? "warn" : ""}"><td>${esc(kindName(kind))}</td>
        <td><b>${f.fresh.toLocaleString()}</b>${t("of")}${f.datastreams.toLocaleString()}</td>
        <td>${f.stale ? `${f.stale.toLocaleString()} ${t("stale_sources")}` : ""}</td><td>${ago(f.age_s == null ? null : f.age_s * 1000)}</td></tr>`).join("")}
      </table>`);
  }
}

export class IndicatorsPanel {
  constructor(el) { this.el = el; this.data = null; }

  async load() { this.data = await (await fetch("/api/indicators")).json(); this.render(); }

  render() {
    if (!this.data) return;
    const lang = getLang();
    const d = this.data;
    this.el.querySelector(".badge-example").hidden = !d.example;
    this.el.querySelector(".badge-example").title = t("example_long");
    const rows = d.indicators.map((i) => {
      const met = i.progress >= 1;
      const pct = Math.round(Math.min(1, i.progress) * 100);
      return `<tr><td class="name"><small class="theme">${esc(lang === "ko" ? i.theme_ko : i.theme_en)} · ${esc(i.period)}</small>
        ${esc(lang === "ko" ? i.name_ko : i.name_en)}</td>
        <td class="num"><b>${fmt(i.actual)}</b> <small>${esc(i.unit)}</small></td>
        <td class="num">${fmt(i.target)}</td>
        <td class="bar"><div class="progress ${met ? "met" : ""}"><i style="width:${pct}%"></i></div></td>
        <td>${sparkline(i.trend, { width: 90, height: 24, color: met ? "#4ade80" : "#93c5fd" })}</td></tr>`;
    }).join("");
    this.el.querySelector(".body").innerHTML = `<table class="indicators"><thead><tr><th></th>
      <th>${t("actual")}</th><th>${t("target")}</th><th></th><th>${t("trend")}</th></tr></thead><tbody>${rows}</tbody></table>`;
  }
}

export class EventFeed {
  constructor(el, timeZone) { this.el = el; this.items = []; this.fmt = new Intl.DateTimeFormat("ko-KR", { timeZone, hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false }); }

  add(kind, text, level = "info", time = Date.now()) {
    this.items.unshift({ kind, text, level, time });
    if (this.items.length > 60) this.items.length = 60;
    this.render();
  }

  render() {
    this.el.querySelector(".body").innerHTML = `<ol class="events">${this.items.map((e) => `
      <li class="${e.level}"><time>${this.fmt.format(e.time)}</time><span class="kind">${esc(t(e.kind))}</span><span>${esc(typeof e.text === "function" ? e.text() : e.text)}</span></li>`).join("")}</ol>`;
  }
}

// The selected area: the city, or a district with its stations and sensors, values and history.
export class DetailPanel {
  constructor(el, historyEl, live, map, city, quantities, units) {
    this.el = el; this.historyEl = historyEl; this.live = live; this.map = map; this.city = city; this.quantities = quantities; this.units = units;
    this.gu = null; this.range = "24h"; this.sparks = new Map();
    this.chart = new HistoryChart(historyEl.querySelector(".chart"));
    for (const b of historyEl.querySelectorAll("[data-range]")) b.addEventListener("click", () => { this.range = b.dataset.range; this.loadHistory(); });
  }

  // settledGu names the area whose list and chart have finished loading: tests (and a kiosk's health
  // check) wait for it before timing live values, which compete with those loads on a slow machine.
  select(gu) {
    this.gu = gu; this.sparks.clear(); this.settledGu = undefined; this.render();
    Promise.all([this.loadHistory(), this.loadSparks()]).then(() => { if (this.gu === gu) this.settledGu = gu ?? "city"; }, () => {});
  }

  // What the list shows for a district: its air station, weather station, hotspots and sensors,
  // each with its newest value, in that order.
  listed() {
    if (!this.gu) return [];
    // Sensors are listed when they report what their row shows (the layer's quantity, else PM2.5).
    const things = this.live.thingsOf(null, this.gu)
      .filter((th) => th.kind !== "road_link" && (th.kind !== "sdot" || th.streams.has(this.primaryQuantity(th))));
    const order = { air_station: 0, weather: 1, hotspot: 2, sdot: 4 };
    things.sort((a, b) => (order[a.kind] ?? 3) - (order[b.kind] ?? 3) || a.name.localeCompare(b.name));
    this.listedTotal = things.length;
    return things.slice(0, MAX_LISTED);
  }

  primaryQuantity(th) {
    const q = this.map.layerQuantity();
    if (th.streams.has(q)) return q;
    return { air_station: "pm25", hotspot: "congestion_level", weather: "temperature", sdot: "pm25", road_link: "road_speed" }[th.kind] ?? th.streams.keys().next().value;
  }

  render() {
    const live = this.live;
    const body = this.el.querySelector(".body");
    const title = this.el.querySelector(".area-name");
    const back = this.el.querySelector(".back");
    back.hidden = !this.gu;
    if (!this.gu) {
      title.textContent = nameOf(this.city.name);
      const air = live.air?.city;
      // Where to look first: the worst air by district, the most crowded hotspots.
      const guName = (code) => { const p = this.map.districts.features.find((x) => x.properties.code === code)?.properties; return p ? (getLang() === "ko" ? p.name_ko : p.name_en) : code; };
      const worstAir = Object.entries(live.air?.gu ?? {}).sort((a, b) => b[1].index - a[1].index).slice(0, 5);
      const now = live.serverTime;
      const crowded = live.thingsOf("hotspot").map((th) => ({ th, id: th.streams.get("congestion_level"), people: th.streams.get("population_max") }))
        .filter((x) => x.id != null && live.isFresh(x.id, now))
        .sort((a, b) => live.value.get(b.id) - live.value.get(a.id) || (live.value.get(b.people) ?? 0) - (live.value.get(a.people) ?? 0)).slice(0, 6);
      setHTML(body, `<div class="area-summary">${caiBadge(air)} <span>${t("city_avg")}</span></div>
        <div class="city-lists"><table class="regions">${this.city.regions.map((r) => `<tr><td>${esc(nameOf(r.name))}</td><td>${caiBadge(live.air?.region?.[r.code])}</td></tr>`).join("")}</table>
        <div><h3>${t("worst_air")}</h3><table>${worstAir.map(([gu, c]) => `<tr><td>${esc(guName(gu))}</td><td>${caiBadge(c)}</td></tr>`).join("")}</table></div></div>
        <h3>${t("most_crowded")}</h3><table class="things">${crowded.map(({ th, id, people }) => {
          const level = Math.round(live.value.get(id));
          return `<tr><td class="name">${esc(th.name)}</td><td><span class="crowd" style="background:${CROWD_COLORS[level - 1] ?? "#334155"}">${t(`crowd_${level}`)}</span></td>
            <td class="num">${people != null && live.value.has(people) ? `≤ ${fmt(live.value.get(people), 0)} ${t("people")}` : ""}</td></tr>`;
        }).join("")}</table>`);
      return;
    }
    const scrolled = body.querySelector(".things-scroll")?.scrollTop ?? 0;
    const f = this.map.districts.features.find((x) => x.properties.code === this.gu);
    title.textContent = getLang() === "ko" ? f.properties.name_ko : f.properties.name_en;
    const agg = live.aggregates.gu?.[this.gu] ?? {};
    const mean = (kind, q) => agg[kind]?.[q]?.mean;
    const now = live.serverTime;
    const rows = this.listed().map((th) => {
      const q = this.primaryQuantity(th);
      const id = th.streams.get(q);
      const v = id != null ? live.value.get(id) : undefined;
      const fresh = id != null && live.isFresh(id, now);
      return `<tr data-thing="${th.id}" class="${fresh ? "" : "stale"}"><td class="kind-${th.kind}">●</td><td class="name">${esc(th.name)}${th.simulated ? ` <small class="sim">SIM</small>` : ""}</td>
        <td class="q">${esc(nameOf(this.quantities[q]?.name) || q)}</td><td class="num"><b class="v" data-ds="${id}">${fmt(v)}</b> <small>${esc(this.units[q] ?? "")}</small></td>
        <td class="spark-cell">${this.sparks.get(th.id) ?? ""}</td></tr>`;
    }).join("");
    const changed = setHTML(body, `<div class="area-summary">${caiBadge(live.air?.gu?.[this.gu])}
        <span>PM10 <b>${fmt(mean("air_station", "pm10"))}</b> · PM2.5 <b>${fmt(mean("air_station", "pm25"))}</b> µg/m³ ·
        ${t("layer_road_speed")} <b>${fmt(mean("road_link", "road_speed"))}</b> km/h</span></div>
      <h3>${t("things_here")} <small>${this.listedTotal > MAX_LISTED ? `${MAX_LISTED} / ${this.listedTotal}` : this.listedTotal}</small></h3>
      <div class="things-scroll"><table class="things">${rows}</table></div>`);
    if (!changed) return;
    body.querySelector(".things-scroll").scrollTop = scrolled;
    for (const tr of body.querySelectorAll("tr[data-thing]")) tr.addEventListener("click", () => this.map.map.flyTo({ center: [live.things.get(+tr.dataset.thing).lon, live.things.get(+tr.dataset.thing).lat], zoom: 14 }));
  }

  // Cheap live update of the listed values, without rebuilding the panel.
  update(changed) {
    const now = this.live.serverTime;
    for (const el of this.el.querySelectorAll("b.v[data-ds]")) {
      const id = +el.dataset.ds;
      if (changed && !changed.has(id)) continue;
      const v = this.live.value.get(id);
      const text = fmt(v);
      if (el.textContent !== text) el.textContent = text;
      el.closest("tr").classList.toggle("stale", !this.live.isFresh(id, now));
    }
  }

  async loadSparks() {
    const gu = this.gu;
    const token = (this._sparkToken = (this._sparkToken ?? 0) + 1);
    this.sparks.clear();
    if (!gu) return;
    const end = this.live.serverTime || Date.now();
    await Promise.all(this.listed().map(async (th) => {
      const id = th.streams.get(this.primaryQuantity(th));
      if (id == null) return;
      const h = await (await fetch(`/api/history?datastream=${id}&resolution=hour&start=${end - 86400000}&end=${end}`)).json();
      this.sparks.set(th.id, sparkline(h.v ?? [], { width: 110, height: 26 }));
    }));
    if (token === this._sparkToken) this.render();
  }

  async loadHistory() {
    const token = (this._historyToken = (this._historyToken ?? 0) + 1);
    const q = this.map.layerQuantity();
    const quantity = q === "cai" || q === "fresh_share" ? "pm25" : q;
    const kind = { road_speed: "road_link", congestion_level: "hotspot" }[quantity] ?? (this.map.layer === "sdot" ? "sdot" : "air_station");
    const end = this.live.serverTime || Date.now();
    const days = this.range === "7d" ? 7 : 1;
    const place = this.gu ? `&gu=${this.gu}` : "";
    const url = `/api/history?quantity=${quantity}&kind=${kind}${place}&resolution=${days > 1 ? "hour" : "minute"}&start=${end - days * 86400000}&end=${end}`;
    const h = await (await fetch(url)).json();
    if (token !== this._historyToken) return; // a newer request (another area, range or layer) owns the chart
    for (const b of this.historyEl.querySelectorAll("[data-range]")) b.classList.toggle("on", b.dataset.range === this.range);
    this.historyEl.querySelector(".chart-title").textContent = `${this.el.querySelector(".area-name").textContent} · ${nameOf(this.quantities[quantity]?.name) || quantity} (${kind})`;
    this.chart.show({ title: "", unit: this.units[quantity] ?? h.unit ?? "", timeZone: this.city.timezone,
      series: [{ name: this.gu ? this.el.querySelector(".area-name").textContent : t("city_avg"), t: h.t ?? [], v: h.v ?? [] }] });
  }
}
