// Requests that change something (acknowledge, assign, advance an incident, log in): the session
// cookie goes along on its own; the server's refusal (401, 403, 409, 422) comes back as a message to
// show, never as an exception the operator does not see.
const expiredHandlers = [];
export const onSessionExpired = (fn) => expiredHandlers.push(fn);

// Epoch ms as the city's wall clock; hh:mm:ss, or with the date when it is not today.
export function timeFormatter(timeZone) {
  const hms = new Intl.DateTimeFormat("ko-KR", { timeZone, hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
  const full = new Intl.DateTimeFormat("ko-KR", { timeZone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false });
  return { time: (ms) => (ms == null ? "–" : hms.format(ms)), dateTime: (ms) => (ms == null ? "–" : full.format(ms)) };
}

export async function getJson(url) {
  const r = await fetch(url, { cache: "no-store" });
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.json();
}

export async function send(url, body, { quietAuth = false } = {}) {
  let r;
  try {
    r = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body ?? {}), credentials: "same-origin" });
  } catch (err) {
    return { ok: false, status: 0, data: null, message: err.message };
  }
  let data = null;
  try { data = await r.json(); } catch { /* an empty or non-JSON answer: the status says enough */ }
  const detail = data?.detail;
  const message = typeof detail === "string" ? detail
    : Array.isArray(detail) ? detail.map((d) => `${(d.loc ?? []).slice(1).join(".")}: ${d.msg}`).join("; ")
    : `HTTP ${r.status}`;
  if (r.status === 401 && !quietAuth) for (const fn of expiredHandlers) fn();
  return { ok: r.ok, status: r.status, data, message };
}
