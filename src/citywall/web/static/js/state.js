// The page's mirror of the live city: the registry (who each datastream id is), the newest value
// of every datastream, per-place aggregates, the CAI and feed freshness, kept current over the
// /api/live WebSocket. It reconnects by itself and reports every change to its listeners.

const json = async (url) => {
  const r = await fetch(url, { cache: "no-store" });
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.json();
};

export class LiveCity {
  constructor() {
    this.things = new Map(); // id -> {id, key, name, kind, lon, lat, gu, dong, simulated, streams: Map(quantity -> ds id)}
    this.simulated = false; // any Thing simulated
    this.ds = new Map(); // ds id -> {thing, quantity, interval}
    this.value = new Map(); // ds id -> value
    this.time = new Map(); // ds id -> phenomenon time (ms)
    this.aggregates = { city: {}, gu: {}, region: {} };
    this.freshness = {};
    this.feeds = {};
    this.air = { gu: {}, stations: {}, city: null };
    this.incidents = new Map(); // id -> incident (the active ones): the snapshot's list kept current by incident messages
    this.incidentCounts = null; // kind -> n as the server counted them at the last snapshot
    this.alarms = new Map(); // id -> alarm (the open ones)
    this.operations = { focus_severity: "critical", focus_seconds: 60 }; // the server's focus and escalation settings
    // Replay: while set, live messages are dropped (the socket stays open); resume() asks for a fresh snapshot.
    this.replaying = false;
    this.serverTime = 0; // the platform clock (ms) as of the last snapshot or aggregates message
    this.serverTimeAt = 0; // when that message arrived (local ms)
    this.connected = false;
    this.lastMessageAt = 0;
    this.listeners = { values: [], places: [], connection: [], registry: [], incident: [], incidents: [], alarm: [], alarms: [] };
    this.stats = { deltas: 0, lagSamples: [] }; // read by the browser tests and the wall benchmark
    this._registryPending = null;
  }

  on(kind, fn) { this.listeners[kind].push(fn); }
  _emit(kind, ...args) { for (const fn of this.listeners[kind]) fn(...args); }

  async loadRegistry() {
    const r = await json("/api/registry");
    const th = r.things;
    for (let i = 0; i < th.id.length; i++) {
      if (this.things.has(th.id[i])) continue;
      this.things.set(th.id[i], { id: th.id[i], key: th.key[i], name: th.name[i], kind: th.kind[i], lon: th.lon[i], lat: th.lat[i],
        gu: th.gu[i], dong: th.dong[i], simulated: th.simulated[i], streams: new Map() });
      this.simulated ||= th.simulated[i];
    }
    const d = r.datastreams;
    const added = [];
    for (let i = 0; i < d.id.length; i++) {
      if (this.ds.has(d.id[i])) continue;
      const thing = this.things.get(d.thing[i]);
      if (!thing) continue; // registered between the server's two reads: the next load has it
      this.ds.set(d.id[i], { id: d.id[i], thing, quantity: d.quantity[i], interval: d.interval_s[i] });
      thing.streams.set(d.quantity[i], d.id[i]);
      added.push(d.id[i]);
    }
    if (added.length) this._emit("registry", added);
  }

  // A delta may name a datastream registered after the page loaded: fetch the registry once.
  _ensureKnown(ids) {
    if (this._registryPending || ids.every((id) => this.ds.has(id))) return;
    this._registryPending = this.loadRegistry().catch(() => {}).finally(() => { this._registryPending = null; });
  }

  connect() {
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/live`;
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.onmessage = (ev) => { if (this.ws === ws) this._onMessage(JSON.parse(ev.data)); };
    ws.onopen = () => { this._retry = 0; };
    ws.onclose = () => {
      if (this.ws !== ws) return; // replaced on purpose (resume): the new socket carries on
      if (this.connected) { this.connected = false; this._emit("connection", false); }
      const wait = Math.min(5000, 250 * 2 ** (this._retry = (this._retry ?? 0) + 1));
      setTimeout(() => this.connect(), wait);
    };
    ws.onerror = () => ws.close();
  }

  // Stop applying live messages (replay); the deltas missed meanwhile are not replayed one by one:
  // resume() opens a new socket, whose first message is a snapshot of the present.
  pause() { this.replaying = true; }

  resume() {
    this.replaying = false;
    const old = this.ws;
    this.ws = null;
    old?.close();
    this.connect();
  }

  // A whole picture (the live snapshot, or /api/replay's past moment) drawn by the same listeners.
  applyPicture(msg) {
    this.value.clear(); this.time.clear();
    this._applyValues(msg.datastreams);
    this._applyPlaces(msg);
    this._applyOperations(msg);
    this._emit("incidents"); // before places: the page redraws incidents and alarms with the places
    this._emit("alarms");
    this._emit("values", msg.datastreams.ids);
    this._emit("places", msg);
  }

  _applyOperations(msg) {
    if (msg.operations) this.operations = msg.operations;
    if (msg.incidents) {
      this.incidents = new Map(msg.incidents.filter((i) => i.active).map((i) => [i.id, i]));
      this.incidentCounts = msg.incident_counts ?? null;
    }
    if (msg.alarms) this.alarms = new Map(msg.alarms.filter((a) => a.open).map((a) => [a.id, a]));
  }

  // Active incidents per kind: the server's count from the last snapshot, kept current from the list.
  counts() {
    const out = { fire: 0, ems: 0, rescue: 0, traffic_accident: 0, flood: 0, collapse: 0, gas_leak: 0, other: 0 };
    if (this.incidentCounts && !this._countsStale) return { ...out, ...this.incidentCounts };
    for (const i of this.incidents.values()) out[i.kind] = (out[i.kind] ?? 0) + 1;
    return out;
  }

  _onMessage(msg) {
    this.lastMessageAt = Date.now();
    if (this.replaying) return;
    if (msg.type === "snapshot") {
      this._countsStale = false;
      if (!this.connected) { this.connected = true; this.stats.firstSnapshotAt ??= performance.now(); this._emit("connection", true); }
      this.applyPicture(msg);
    } else if (msg.type === "incident") {
      const inc = msg.incident;
      if (inc.active) this.incidents.set(inc.id, inc); else this.incidents.delete(inc.id);
      this._countsStale = true;
      this._emit("incident", msg.change, inc);
      this._emit("incidents");
    } else if (msg.type === "alarm") {
      const a = msg.alarm;
      if (a.open) this.alarms.set(a.id, a); else this.alarms.delete(a.id);
      this._emit("alarm", a);
      this._emit("alarms");
    } else if (msg.type === "delta") {
      this._applyValues(msg.datastreams);
      this.stats.deltas += 1;
      let newest = 0;
      for (const x of msg.datastreams.t) if (x > newest) newest = x;
      this._emit("values", msg.datastreams.ids, newest);
    } else if (msg.type === "aggregates") {
      this._applyPlaces(msg);
      this._emit("places", msg);
    }
  }

  _applyValues({ ids, t, v }) {
    for (let i = 0; i < ids.length; i++) { this.value.set(ids[i], v[i]); this.time.set(ids[i], t[i]); }
    this._ensureKnown(ids);
  }

  _applyPlaces(msg) {
    if (msg.time_ms) { this.serverTime = msg.time_ms; this.serverTimeAt = Date.now(); }
    if (msg.aggregates) this.aggregates = msg.aggregates;
    if (msg.freshness) this.freshness = msg.freshness;
    if (msg.feeds) this.feeds = msg.feeds;
    if (msg.store) this.store = msg.store;
    if (msg.air) this.air = msg.air;
  }

  // On-screen lag (read by the wall benchmark): from the newest phenomenon time of a delta to the
  // frame that shows it. Meaningful when the sender stamps observations with their send time.
  recordLag(newest, shownAt) {
    const s = this.stats.lagSamples;
    s.push(shownAt - newest);
    if (s.length > 20000) s.splice(0, s.length - 20000);
  }

  // Newest values of a thing: quantity -> {value, time}.
  thingValues(thing) {
    const out = {};
    for (const [q, id] of thing.streams) if (this.value.has(id)) out[q] = { value: this.value.get(id), time: this.time.get(id), id };
    return out;
  }

  isFresh(dsId, now) {
    const d = this.ds.get(dsId);
    const tm = this.time.get(dsId);
    return d && tm != null && (now - tm) / 1000 <= 3 * d.interval;
  }

  thingsOf(kind, gu) {
    const out = [];
    for (const th of this.things.values()) if ((!kind || th.kind === kind) && (!gu || th.gu === gu)) out.push(th);
    return out;
  }
}
