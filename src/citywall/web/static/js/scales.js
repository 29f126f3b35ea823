// What each map layer shows and how it is coloured: official Korean grade colours for air,
// Seoul TOPIS speed bands for roads, the four crowding levels of Seoul's real-time city data.
import { t } from "./i18n.js";

export const GRADE_COLORS = ["#1e88e5", "#2e9d4f", "#f39c12", "#e53935"];
export const NO_DATA = "#3b4252";
export const STALE = "#6b7280";
const GRADE_KEYS = ["grade_good", "grade_moderate", "grade_unhealthy", "grade_very_unhealthy"];

// Upper bounds of the good, moderate and unhealthy bands (24 h PM grades, ug/m3).
const PM_BANDS = { pm10: [30, 80, 150], pm25: [15, 35, 75] };
const band = (v, bounds) => { const i = bounds.findIndex((b) => v <= b); return i < 0 ? bounds.length : i; };
export const pmGrade = (q, v) => band(Math.floor(v), PM_BANDS[q]);
export const caiGrade = (index) => band(index, [50, 100, 250]);

// TOPIS bands: urban expressways free above 70 km/h and congested below 30; other roads 25 and 15.
export function speedLevel(kmh, roadType) {
  const [free, jam] = roadType === "도시고속도로" ? [70, 30] : [25, 15];
  return kmh >= free ? 0 : kmh >= jam ? 1 : 2;
}
export const SPEED_COLORS = ["#2e9d4f", "#f39c12", "#e53935"];
export const CROWD_COLORS = ["#2e9d4f", "#f5d02f", "#f39c12", "#e53935"];

// A continuous ramp for S-DoT quantities that have no official grades.
const RAMPS = {
  temperature: [-15, 35, "°C"], humidity: [0, 100, "%"], noise: [35, 85, "dB"], illuminance: [0, 60000, "lx"],
  uv_index: [0, 11, ""], wind_speed: [0, 10, "m/s"], vibration: [0, 1, "mm/s"], visitors: [0, 300, ""], globe_temperature: [-15, 40, "°C"],
};
const RAMP_COLORS = ["#313695", "#4575b4", "#74add1", "#abd9e9", "#fee090", "#fdae61", "#f46d43", "#d73027"];
export function ramp(q, v) {
  const [lo, hi] = RAMPS[q] ?? [0, 100];
  const x = Math.max(0, Math.min(0.9999, (v - lo) / (hi - lo)));
  return RAMP_COLORS[Math.floor(x * RAMP_COLORS.length)];
}

export const SDOT_QUANTITIES = ["pm25", "pm10", "temperature", "humidity", "noise", "illuminance", "uv_index", "wind_speed"];

export function colorFor(quantity, value, thing) {
  if (value == null || Number.isNaN(value)) return NO_DATA;
  if (quantity === "pm10" || quantity === "pm25") return GRADE_COLORS[pmGrade(quantity, value)];
  if (quantity === "cai") return GRADE_COLORS[caiGrade(value)];
  if (quantity === "road_speed") return SPEED_COLORS[speedLevel(value, thing?.roadType)];
  if (quantity === "congestion_level") return CROWD_COLORS[Math.max(0, Math.min(3, Math.round(value) - 1))];
  if (quantity === "fresh_share") return value >= 0.95 ? "#2e9d4f" : value >= 0.5 ? "#f39c12" : "#e53935";
  return ramp(quantity, value);
}

// Legend rows [color, label] for a layer, with its unit.
export function legend(layer, sdotQuantity, units) {
  const pm = (q) => {
    const b = PM_BANDS[q];
    return [[GRADE_COLORS[0], `${t(GRADE_KEYS[0])} 0–${b[0]}`], [GRADE_COLORS[1], `${t(GRADE_KEYS[1])} ${b[0] + 1}–${b[1]}`],
      [GRADE_COLORS[2], `${t(GRADE_KEYS[2])} ${b[1] + 1}–${b[2]}`], [GRADE_COLORS[3], `${t(GRADE_KEYS[3])} ${b[2] + 1}+`]];
  };
  switch (layer) {
    case "cai":
      return { unit: "CAI", rows: [[GRADE_COLORS[0], `${t("grade_good")} 0–50`], [GRADE_COLORS[1], `${t("grade_moderate")} 51–100`],
        [GRADE_COLORS[2], `${t("grade_unhealthy")} 101–250`], [GRADE_COLORS[3], `${t("grade_very_unhealthy")} 251–500`]] };
    case "pm10": case "pm25":
      return { unit: "µg/m³", rows: pm(layer) };
    case "road_speed":
      return { unit: "km/h", rows: [[SPEED_COLORS[0], `${t("speed_free")} ≥25 (≥70)`], [SPEED_COLORS[1], `${t("speed_slow")} 15–25 (30–70)`],
        [SPEED_COLORS[2], `${t("speed_jam")} <15 (<30)`]] };
    case "congestion":
      return { unit: "", rows: CROWD_COLORS.map((c, i) => [c, `${i + 1} ${t(`crowd_${i + 1}`)}`]) };
    case "freshness":
      return { unit: "", rows: [["#2e9d4f", `${t("fresh_ok")} ≥95%`], ["#f39c12", "50–95%"], ["#e53935", "<50%"], [STALE, t("fresh_stale")], [NO_DATA, t("fresh_none")]] };
    case "sdot": {
      if (sdotQuantity === "pm10" || sdotQuantity === "pm25") return { unit: "µg/m³", rows: pm(sdotQuantity) };
      const [lo, hi, unit] = RAMPS[sdotQuantity] ?? [0, 100, units[sdotQuantity] ?? ""];
      const step = (hi - lo) / RAMP_COLORS.length;
      return { unit, rows: RAMP_COLORS.map((c, i) => [c, `${fmt(lo + i * step)}–${fmt(lo + (i + 1) * step)}`]) };
    }
    default:
      return { unit: "", rows: [] };
  }
}

export function fmt(v, digits) {
  if (v == null || Number.isNaN(v)) return "–";
  const d = digits ?? (Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : Math.abs(v) >= 1 ? 1 : 3);
  return v.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: 0 });
}

// Display form of the platform's unit symbols (the API keeps plain ASCII codes).
const UNIT_LABELS = { degC: "°C", "ug/m3": "µg/m³", pct: "%", "%": "%", lx: "lx", "km/h": "km/h", "m/s": "m/s", dB: "dB", deg: "°", mm: "mm", ppm: "ppm" };
export const unitLabel = (symbol) => UNIT_LABELS[symbol] ?? symbol ?? "";

// Incidents by kind: fire red as on Seoul's wall; rescue, EMS and each kind of disaster distinct from
// it, from each other and from the air-quality fills under them.
export const INCIDENT_COLORS = {
  fire: "#ff3b30", rescue: "#ff9f0a", ems: "#ffd60a", traffic_accident: "#22d3ee",
  flood: "#6366f1", collapse: "#b08968", gas_leak: "#84cc16", other: "#e2e8f0",
};
export const INCIDENT_KINDS = Object.keys(INCIDENT_COLORS);
// The severities shared by alarms and incidents, lowest first (citywall.alerts.severity).
export const SEVERITIES = ["informational", "low", "medium", "high", "critical"];
export const SEVERITY_RANK = Object.fromEntries(SEVERITIES.map((s, i) => [s, i]));
export const SEVERITY_COLORS = { informational: "#64748b", low: "#0ea5e9", medium: "#eab308", high: "#f97316", critical: "#dc2626" };
