// Charts: Apache ECharts for the selected area's history, a small SVG line for sparklines
// (dozens of them would be dozens of chart instances otherwise).
import * as echarts from "/static/vendor/echarts/echarts.esm.min.mjs";

export function sparkline(values, { width = 120, height = 28, color = "#93c5fd" } = {}) {
  const pts = values.filter((v) => v != null && Number.isFinite(v));
  if (pts.length < 2) return `<svg class="spark" width="${width}" height="${height}"></svg>`;
  const lo = Math.min(...pts), hi = Math.max(...pts), span = hi - lo || 1;
  const step = width / (values.length - 1);
  let d = "", pen = "M";
  values.forEach((v, i) => {
    if (v == null || !Number.isFinite(v)) { pen = "M"; return; }
    d += `${pen}${(i * step).toFixed(1)},${(height - 2 - ((v - lo) / span) * (height - 4)).toFixed(1)} `;
    pen = "L";
  });
  return `<svg class="spark" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" preserveAspectRatio="none"><path d="${d}" fill="none" stroke="${color}" stroke-width="1.6"/></svg>`;
}

export class HistoryChart {
  constructor(el) {
    this.chart = echarts.init(el, "dark", { renderer: "canvas" });
    new ResizeObserver(() => this.chart.resize()).observe(el);
  }

  // series: [{name, t: [ms], v: [..]}]
  show({ title, unit, series, timeZone }) {
    const fontSize = parseFloat(getComputedStyle(this.chart.getDom()).getPropertyValue("--chart-font")) || 12;
    const fmtTime = new Intl.DateTimeFormat("ko-KR", { timeZone, month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false });
    this.chart.setOption({
      backgroundColor: "transparent",
      textStyle: { fontFamily: "Noto Sans KR Variable, sans-serif", fontSize },
      title: { text: title, textStyle: { fontSize: fontSize * 1.1, fontWeight: 500 }, left: 0, top: 0 },
      tooltip: { trigger: "axis", valueFormatter: (v) => (v == null ? "–" : `${Number(v).toFixed(2)} ${unit}`) },
      legend: { top: 0, right: 0, textStyle: { fontSize } },
      grid: { left: fontSize * 4, right: fontSize, top: fontSize * 3, bottom: fontSize * 2.5 },
      xAxis: { type: "time", axisLabel: { fontSize, formatter: (v) => fmtTime.format(v) } },
      yAxis: { type: "value", name: unit, nameTextStyle: { fontSize }, axisLabel: { fontSize }, scale: true },
      series: series.map((s) => ({ name: s.name, type: "line", showSymbol: false, sampling: "lttb", data: s.t.map((x, i) => [x, s.v[i]]) })),
    }, true);
  }
}
