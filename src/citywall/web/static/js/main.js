// The wall page: loads the city, mirrors the live picture, and wires the panels together.
// Layout: ?layout=wall (3x2 screens of 1920x1080), screen (one 1920x1080), laptop; by default
// chosen from the window size. ?kiosk=1 hides the cursor. ?lang=ko|en. ?layer=cai|pm10|pm25|
// road_speed|congestion|sdot|freshness and ?sdot=<quantity> pick what the map shows first.
import { CityMap } from "./map.js";
import { getLang, nameOf, onLang, setLang, t } from "./i18n.js";
import { DetailPanel, EventFeed, IndicatorsPanel, StatusPanel, esc } from "./panels.js";
import { SDOT_QUANTITIES, caiGrade, legend, unitLabel } from "./scales.js";
import { LiveCity } from "./state.js";

const params = new URLSearchParams(location.search);

function chooseLayout() {
  const asked = params.get("layout");
  if (["wall", "screen", "laptop"].includes(asked)) return asked;
  return innerWidth >= 5000 ? "wall" : innerWidth >= 1800 && innerHeight >= 1000 ? "screen" : "laptop";
}

const getJson = async (url) => { const r = await fetch(url); if (!r.ok) throw new Error(`${url}: ${r.status}`); return r.json(); };

async function main() {
  const app = document.getElementById("app");
  const layout = chooseLayout();
  app.dataset.layout = layout;
  document.body.classList.toggle("kiosk", params.get("kiosk") === "1");
  setLang(params.get("lang") ?? localStorage.getItem("citywall.lang") ?? "ko");

  const live = new LiveCity();
  const [city, districts, quantities, roads] = await Promise.all([
    getJson("/api/city"), getJson("/api/city/districts"), getJson("/api/quantities"), getJson("/api/things?kind=road_link"), live.loadRegistry(),
  ]);
  // Road links are drawn as their lines, which only the full Thing carries.
  const attachRoads = (list) => { for (const r of list) { const th = live.things.get(r.id); if (th) { th.line = r.properties?.line; th.roadType = r.properties?.road_type; } } };
  attachRoads(roads);
  const units = Object.fromEntries(Object.entries(quantities).map(([q, d]) => [q, unitLabel(d.unit.symbol)]));
  units.cai = "";

  const map = new CityMap(document.getElementById("map"), city, districts, live);
  if (params.get("layer")) map.layer = params.get("layer");
  if (params.get("sdot")) map.sdotQuantity = params.get("sdot");
  const status = new StatusPanel(document.getElementById("status"), live, units);
  const indicators = new IndicatorsPanel(document.getElementById("indicators"));
  const events = new EventFeed(document.getElementById("events"), city.timezone);
  const detail = new DetailPanel(document.getElementById("detail"), document.getElementById("history"), live, map, city, quantities, units);
  indicators.load();

  // Layers, grouped by Seoul's monitoring domains; domains without a source say so.
  const DOMAINS = [
    ["domain_air", ["cai", "pm10", "pm25", "sdot"]], ["domain_traffic", ["road_speed"]], ["domain_disaster", ["congestion", "freshness"]],
    ["domain_water", []], ["domain_projects", []], ["domain_commerce", []],
  ];
  const layersEl = document.getElementById("layers");
  const sdotSelect = document.createElement("select");
  sdotSelect.id = "sdot-quantity";
  const renderLayerButtons = () => {
    layersEl.innerHTML = DOMAINS.map(([d, layers]) => `<div class="domain"><span>${t(d)}</span>${layers.length
      ? layers.map((l) => `<button data-layer="${l}" class="${map.layer === l ? "on" : ""}">${t(`layer_${l}`)}</button>`).join("")
      : `<em>${t("no_source")}</em>`}</div>`).join("");
    sdotSelect.innerHTML = SDOT_QUANTITIES.map((q) => `<option value="${q}" ${q === map.sdotQuantity ? "selected" : ""}>${esc(nameOf(quantities[q]?.name) || q)}</option>`).join("");
    layersEl.querySelector('[data-layer="sdot"]')?.after(sdotSelect);
    for (const b of layersEl.querySelectorAll("button[data-layer]")) b.addEventListener("click", () => selectLayer(b.dataset.layer));
  };
  const renderLegend = () => {
    const l = legend(map.layer, map.sdotQuantity, units);
    document.getElementById("legend").innerHTML = `<div class="legend-title">${t(`layer_${map.layer}`)}${l.unit ? ` <small>(${esc(l.unit)})</small>` : ""}</div>` +
      l.rows.map(([c, label]) => `<div class="row"><i style="background:${c}"></i>${label}</div>`).join("");
  };
  const selectLayer = (layer) => {
    map.setLayer(layer);
    renderLayerButtons(); renderLegend(); detail.render(); detail.loadHistory(); detail.loadSparks();
  };
  sdotSelect.addEventListener("change", () => { map.setLayer("sdot", sdotSelect.value); renderLegend(); detail.render(); detail.loadHistory(); detail.loadSparks(); });
  document.getElementById("lang").addEventListener("click", () => setLang(getLang() === "ko" ? "en" : "ko"));
  detail.el.querySelector(".back").addEventListener("click", () => map.back());
  map.on("gu", (code) => detail.select(code));
  map.on("thing", (th) => { if (th?.gu && th.gu !== map.selectedGu) map.drill(th.gu); });

  onLang(() => { renderLayerButtons(); renderLegend(); map.relabel(); status.render(); indicators.render(); events.render(); detail.render(); detail.loadHistory(); });

  // Live updates: values at most once a frame; places (aggregates, CAI, freshness) once a second.
  // A delta's lag is taken when the frame after the one that drew it begins.
  let pending = null, pendingLag = [];
  live.on("values", (ids, newest) => {
    if (!pending) {
      pending = new Set();
      requestAnimationFrame(() => {
        const changed = pending, lags = pendingLag;
        pending = null; pendingLag = [];
        map.repaint(changed); detail.update(changed);
        requestAnimationFrame(() => { const now = Date.now(); for (const t of lags) live.recordLag(t, now); });
      });
    }
    for (const id of ids) pending.add(id);
    if (newest) pendingLag.push(newest);
    crowdEvents(ids);
  });
  const lastGrade = new Map();
  live.on("places", () => {
    map.repaint(); status.render(); detail.render();
    for (const [gu, cai] of Object.entries(live.air?.gu ?? {})) {
      const g = caiGrade(cai.index), before = lastGrade.get(gu);
      lastGrade.set(gu, g);
      if (before != null && before !== g) {
        const f = districts.features.find((x) => x.properties.code === gu);
        events.add("ev_cai", () => `${nameOf({ ko: f.properties.name_ko, en: f.properties.name_en })} CAI ${cai.index} (${t(["grade_good", "grade_moderate", "grade_unhealthy", "grade_very_unhealthy"][g])})`, g >= 2 ? "warn" : "info");
      }
    }
    const stale = Object.values(live.freshness).reduce((n, f) => n + f.stale, 0);
    document.getElementById("stale").hidden = !(live.connected && Object.values(live.freshness).some((f) => f.datastreams && f.fresh === 0));
    if (stale !== lastStale && lastStale != null && Math.abs(stale - lastStale) > 50) events.add("ev_stale", `${stale.toLocaleString()}`, "warn");
    lastStale = stale;
    const simulated = live.simulated || Object.values(live.feeds).some((f) => f.simulated);
    document.getElementById("simulated").hidden = !simulated;
  });
  let lastStale = null;
  const crowdLevel = new Map();
  function crowdEvents(ids) {
    for (const id of ids) {
      const d = live.ds.get(id);
      if (!d || d.quantity !== "congestion_level") continue;
      const level = Math.round(live.value.get(id)), before = crowdLevel.get(id);
      crowdLevel.set(id, level);
      if (before != null && before !== level && (level === 4 || before === 4)) {
        events.add("ev_crowd", () => `${d.thing.name}: ${t(`crowd_${level}`)}`, level === 4 ? "warn" : "info");
      }
    }
  }
  live.on("registry", async (added) => {
    if (added.some((id) => { const th = live.ds.get(id).thing; return th.kind === "road_link" && !th.line; })) {
      attachRoads(await getJson("/api/things?kind=road_link").catch(() => []));
    }
    if (map.map.getSource("things")) map.refreshThings();
    if (live.connected && added.length < live.ds.size) events.add("ev_new_things", `${added.length}`);
  });
  live.on("connection", (up) => {
    document.getElementById("connection").classList.toggle("down", !up);
    document.getElementById("connection").textContent = t(up ? "connected" : "disconnected");
    document.getElementById("connection").dataset.i18n = up ? "connected" : "disconnected";
    events.add(up ? "ev_connected" : "ev_disconnected", "", up ? "info" : "warn");
    if (up) { live.loadRegistry().catch(() => {}); }
  });

  // The platform's clock in the city's time zone; and if a connected socket has carried nothing
  // for SILENT_MS (the server sends freshness every second), the data is delayed.
  const SILENT_MS = 15000;
  const clockFmt = new Intl.DateTimeFormat("ko-KR", { timeZone: city.timezone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
  setInterval(() => {
    document.getElementById("clock").textContent = clockFmt.format(live.serverTime ? live.serverTime + (Date.now() - live.serverTimeAt) : Date.now());
    if (live.connected && Date.now() - live.lastMessageAt > SILENT_MS) {
      // A cut cable or a host gone dark sends no close: give up on this socket and reconnect.
      document.getElementById("stale").hidden = false;
      live.ws?.close();
    }
  }, 1000);

  await map.ready;
  renderLayerButtons(); renderLegend(); status.render(); detail.select(null);
  live.connect();
  window.citywall = { live, map, detail, events, layout, ready: true, readyAt: performance.now() };
  document.body.dataset.ready = "1";
}

main().catch((err) => {
  console.error(err);
  document.getElementById("fatal").hidden = false;
  document.getElementById("fatal").textContent = `citywall: ${err.message}`;
});
