// The wall page: loads the city, mirrors the live picture, and wires the panels together.
// Layout: ?layout=wall (3x2 screens of 1920x1080), screen (one 1920x1080), laptop; by default
// chosen from the window size. ?kiosk=1 hides the cursor, the login and the replay slider (a
// read-only wall). ?focus=0: new severe incidents do not take this page's focus. ?lang=ko|en. ?layer=cai|pm10|pm25|road_speed|congestion|sdot|freshness|owlbus|commerce and
// ?sdot=<quantity> pick what the map shows first.
import { AlarmPanel } from "./alarms.js";
import { Focus, IncidentList, IncidentPanel } from "./incidents.js";
import { getLang, nameOf, onLang, setLang, t, tf } from "./i18n.js";
import { Auth } from "./login.js";
import { CityMap } from "./map.js";
import { DetailPanel, EventFeed, IndicatorsPanel, StatusPanel, esc } from "./panels.js";
import { Replay } from "./replay.js";
import { SDOT_QUANTITIES, legend, unitLabel } from "./scales.js";
import { LiveCity } from "./state.js";
import { OwlbusView } from "./owlbus.js";
import { CommerceView } from "./commerce.js";

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
  document.body.dataset.layout = layout;
  const kiosk = params.get("kiosk") === "1";
  document.body.classList.toggle("kiosk", kiosk);
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
  const events = new EventFeed(document.querySelector("#events .sys"), city.timezone);
  const detail = new DetailPanel(document.getElementById("detail"), document.getElementById("history"), live, map, city, quantities, units);
  indicators.load();
  const guName = (code) => {
    const p = code ? districts.features.find((f) => f.properties.code === code)?.properties : null;
    return p ? (getLang() === "ko" ? p.name_ko : p.name_en) : "";
  };

  // Operations: who is logged in, the incidents (list, detail, focus), the alarms, and replay.
  const auth = new Auth(document.getElementById("account"), document.getElementById("login-dialog"), { kiosk });
  const owlbus = new OwlbusView(map, document.getElementById("legend"), { auth });
  const commerce = new CommerceView(map, document.getElementById("legend"));
  const replayAt = () => replay?.at ?? null;
  const tz = city.timezone;
  const incidentPanel = new IncidentPanel(document.getElementById("incident"), { live, auth, map, guName, timeZone: tz, replayAt });
  const openIncident = (id) => {
    const inc = live.incidents.get(id);
    if (inc) map.map.flyTo({ center: [inc.lon, inc.lat], zoom: Math.max(13, map.map.getZoom()), duration: 800 });
    incidentPanel.open(id);
  };
  const incidentList = new IncidentList(document.querySelector("#events .incident-list"), { live, guName, timeZone: tz, onOpen: openIncident });
  const alarmPanel = new AlarmPanel(document.querySelector("#events .alarm-list"), { live, auth, guName, timeZone: tz, isReplay: () => replayAt() != null });
  const focus = new Focus({ live, map, panel: incidentPanel, banner: document.getElementById("focus-banner"), selectLayer: (l, q) => selectLayer(l, q), guName });
  focus.disabled = params.get("focus") === "0";
  const replay = new Replay(document.getElementById("replay"), document.getElementById("replay-banner"), {
    live, timeZone: tz,
    onEnter: () => { focus.cancel(); incidentPanel.close(); }, // a case open now may not have existed then
    onPicture: () => { detail.loadHistory(); detail.loadSparks(); incidentPanel.render(); alarmPanel.render(); },
    onLeave: () => { detail.loadHistory(); detail.loadSparks(); if (incidentPanel.isOpen) incidentPanel.load(); alarmPanel.render(); },
  });
  map.on("incident", (id) => incidentPanel.open(id));
  incidentPanel.on((id) => incidentList.render(id));
  incidentPanel.onClose(() => { if (focus.active) focus.cancel(); });
  auth.on(() => { incidentPanel.render(); alarmPanel.render(); owlbus.render(); });
  document.addEventListener("keydown", (e) => {
    if (e.key !== "Escape" || document.querySelector("dialog[open]")) return;
    if (focus.active) focus.dismiss();
    else if (incidentPanel.isOpen) incidentPanel.close();
  });

  // Layers, grouped by Seoul's monitoring domains; domains without a source say so.
  const DOMAINS = [
    ["domain_air", ["cai", "pm10", "pm25", "sdot"]], ["domain_traffic", ["road_speed", "owlbus"]], ["domain_disaster", ["congestion", "freshness"]],
    ["domain_water", []], ["domain_projects", []], ["domain_commerce", []],
  ];
  const layersEl = document.getElementById("layers");
  const sdotSelect = document.createElement("select");
  sdotSelect.id = "sdot-quantity";
  const renderLayerButtons = () => {
    layersEl.innerHTML = DOMAINS.map(([d, layers]) => `<div class="domain"><span>${t(d)}</span>${layers.length
      ? layers.map((l) => `<button data-layer="${l}" class="${(owlbus.active ? l === "owlbus" : commerce.active ? l === "commerce" : map.layer === l) ? "on" : ""}">${t(`layer_${l}`)}</button>`).join("")
      : `<em>${t("no_source")}</em>`}</div>`).join("");
    sdotSelect.innerHTML = SDOT_QUANTITIES.map((q) => `<option value="${q}" ${q === map.sdotQuantity ? "selected" : ""}>${esc(nameOf(quantities[q]?.name) || q)}</option>`).join("");
    layersEl.querySelector('[data-layer="sdot"]')?.after(sdotSelect);
    for (const b of layersEl.querySelectorAll("button[data-layer]")) b.addEventListener("click", () => selectLayer(b.dataset.layer));
  };
  const renderLegend = () => {
    if (owlbus.active) return owlbus.renderLegend();
    if (commerce.active) return commerce.renderLegend();
    const l = legend(map.layer, map.sdotQuantity, units);
    document.getElementById("legend").innerHTML = `<div class="legend-title">${t(`layer_${map.layer}`)}${l.unit ? ` <small>(${esc(l.unit)})</small>` : ""}</div>` +
      l.rows.map(([c, label]) => `<div class="row"><i style="background:${c}"></i>${label}</div>`).join("");
  };
  const selectLayer = (layer, sdotQuantity) => {
    // The analytics views: the others hide first, then the one asked for (if any) shows.
    const view = { owlbus, commerce }[layer];
    for (const v of [owlbus, commerce]) if (v !== view) v.select(layer);
    if (view?.select(layer)) { renderLayerButtons(); return; }
    map.setLayer(layer, sdotQuantity);
    renderLayerButtons(); renderLegend(); detail.render(); detail.loadHistory(); detail.loadSparks();
  };
  sdotSelect.addEventListener("change", () => { map.setLayer("sdot", sdotSelect.value); renderLegend(); detail.render(); detail.loadHistory(); detail.loadSparks(); });
  document.getElementById("lang").addEventListener("click", () => setLang(getLang() === "ko" ? "en" : "ko"));
  detail.el.querySelector(".back").addEventListener("click", () => map.back());
  map.on("gu", (code) => detail.select(code));
  map.on("thing", (th) => { if (th?.gu && th.gu !== map.selectedGu) map.drill(th.gu); });

  onLang(() => {
    renderLayerButtons(); renderLegend(); map.relabel(); status.render(); indicators.render(); events.render(); detail.render(); detail.loadHistory();
    incidentList.render(incidentPanel.id); incidentPanel.render(); alarmPanel.render(); focus.renderBanner(); map.selectIncident(map.selectedIncident); auth.render();
    if (replay.replaying) replay.renderBanner(false);
  });

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
  });
  // CAI grade changes, crowding and stale feeds are the server's alarms now (rules evaluated on the
  // stream, recorded, acknowledged); the page adds only what it alone sees: its own connection.
  const showSimulated = () => {
    const simulated = live.simulated || Object.values(live.feeds).some((f) => f.simulated) || [...live.incidents.values()].some((i) => i.simulated);
    document.getElementById("simulated").hidden = !simulated;
  };
  // A feed whose source cannot be reached or answers errors (status state "down"): a red line in the bar
  // naming it and its error, from the feed status the server sends every second with the aggregates.
  const renderFeedsDown = () => {
    const el = document.getElementById("feeds-down");
    const down = Object.entries(live.feeds || {}).filter(([, f]) => f && f.state === "down");
    const since = (iso) => iso ? new Date(iso).toLocaleTimeString(getLang() === "ko" ? "ko-KR" : "en-GB", { timeZone: city.timezone, hour: "2-digit", minute: "2-digit", hour12: false }) : "?";
    const lines = down.map(([name, f]) => tf("feed_down", { feed: name, since: since(f.down_since), error: f.error || "" }));
    const store = live.store;  // commits failing: nothing any feed sends is being kept
    if (store && store.state === "down") lines.unshift(tf("store_down", { since: since(store.down_since), error: store.error || "" }));
    el.textContent = lines.join(" · ");
    el.title = el.textContent;
    el.hidden = !lines.length || replay.replaying;
  };
  onLang(renderFeedsDown);
  live.on("places", () => {
    flushOps();
    renderFeedsDown();
    map.repaint(); status.render(); detail.render();
    document.getElementById("stale").hidden = !(live.connected && !replay.replaying && Object.values(live.freshness).some((f) => f.datastreams && f.fresh === 0));
    showSimulated();
  });
  // Incidents and alarms are redrawn with the aggregates, once a second (or after OPS_REDRAW_MS if
  // none come, as in replay): a feed catching up (the simulator sends a day of cases in its first
  // seconds) may send a thousand changes in a burst, and every extra frame is a full repaint on a
  // wall PC without a GPU, which would hold up the live values.
  const OPS_REDRAW_MS = 1200;
  let opsPending = null, opsTimer = null;
  const flushOps = () => {
    if (!opsPending) return;
    clearTimeout(opsTimer);
    const todo = opsPending;
    opsPending = null;
    if (todo.has("incidents")) { map.setIncidents([...live.incidents.values()]); incidentList.render(incidentPanel.id); status.render(); showSimulated(); }
    if (todo.has("alarms")) alarmPanel.render();
  };
  const redrawOps = (what) => {
    if (!opsPending) { opsPending = new Set(); opsTimer = setTimeout(() => requestAnimationFrame(flushOps), OPS_REDRAW_MS); }
    opsPending.add(what);
  };
  live.on("incidents", () => redrawOps("incidents"));
  live.on("incident", (change, inc) => { incidentPanel.update(inc); focus.consider(change, inc); });
  live.on("alarms", () => redrawOps("alarms"));
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
    document.getElementById("clock").textContent = clockFmt.format(replay.replaying ? replay.at
      : live.serverTime ? live.serverTime + (Date.now() - live.serverTimeAt) : Date.now());
    if (!replay.replaying && Date.now() % 60000 < 1000) replay.followLive();
    if (live.connected && Date.now() - live.lastMessageAt > SILENT_MS) {
      // A cut cable or a host gone dark sends no close: give up on this socket and reconnect.
      document.getElementById("stale").hidden = false;
      live.ws?.close();
    }
  }, 1000);

  // A commerce source connected (citywall up --commerce): the Commerce domain gets its layer.
  const [, , hasCommerce] = await Promise.all([map.ready, auth.load(), commerce.load()]);
  if (hasCommerce) DOMAINS.find(([d]) => d === "domain_commerce")[1].push("commerce");
  renderLayerButtons(); renderLegend(); status.render(); detail.select(null); incidentList.render(null); alarmPanel.render();
  if (params.get("layer") === "owlbus" || (params.get("layer") === "commerce" && hasCommerce)) selectLayer(params.get("layer"));
  live.connect();
  window.citywall = { live, map, owlbus, commerce, detail, events, layout, auth, incidentPanel, incidentList, alarms: alarmPanel, focus, replay, ready: true, readyAt: performance.now() };
  document.body.dataset.ready = "1";
}

main().catch((err) => {
  console.error(err);
  document.getElementById("fatal").hidden = false;
  document.getElementById("fatal").textContent = `citywall: ${err.message}`;
});
