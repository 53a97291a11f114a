/**
 * docs/bench.svg, drawn by hand: throughput per consumer by mode and chunk
 * size beside its baseline, and latency percentiles per mode, both as
 * horizontal bars on log scales.
 */
import type { LatencyBar, ThroughputBar } from './report.js';
import { fmt } from './report.js';

const WIDTH = 960;
const LABEL_W = 290;
const PLOT_X = LABEL_W + 10;
const PLOT_W = WIDTH - PLOT_X - 90;
const BAR_H = 11;
const FONT = 'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"';

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function colorOf(series: string): string {
  if (series.startsWith('filebus')) return '#2b6cb0';
  if (series.startsWith('reference')) return '#dd6b20';
  return '#a0aec0';
}

/** A log10 scale over whole decades covering the values. */
function logScale(values: number[], minFloor: number): { x: (v: number) => number; ticks: number[] } {
  const positive = values.filter((v) => v > 0 && Number.isFinite(v));
  const lo = Math.floor(Math.log10(Math.max(minFloor, Math.min(...positive, 1))));
  const hi = Math.ceil(Math.log10(Math.max(...positive, 10)));
  const x = (v: number): number => PLOT_X + ((Math.log10(Math.max(v, 10 ** lo)) - lo) / (hi - lo || 1)) * PLOT_W;
  const ticks: number[] = [];
  for (let e = lo; e <= hi; e++) ticks.push(10 ** e);
  return { x, ticks };
}

function axis(out: string[], scale: { x: (v: number) => number; ticks: number[] }, top: number, bottom: number, unit: string): void {
  for (const t of scale.ticks) {
    const x = scale.x(t).toFixed(1);
    out.push(`<line x1="${x}" y1="${top}" x2="${x}" y2="${bottom}" stroke="#e2e8f0"/>`);
    out.push(`<text x="${x}" y="${bottom + 14}" font-size="11" text-anchor="middle" fill="#4a5568">${fmt(t)}</text>`);
  }
  out.push(`<text x="${PLOT_X + PLOT_W / 2}" y="${bottom + 30}" font-size="11" text-anchor="middle" fill="#4a5568">${esc(unit)} (log scale)</text>`);
}

function legend(out: string[], y: number, items: { label: string; color: string }[]): void {
  let x = PLOT_X;
  for (const item of items) {
    out.push(`<rect x="${x}" y="${y - 9}" width="12" height="10" fill="${item.color}"/>`);
    out.push(`<text x="${x + 16}" y="${y}" font-size="11" fill="#2d3748">${esc(item.label)}</text>`);
    x += 24 + item.label.length * 6.2;
  }
}

export function drawSvg(throughput: readonly ThroughputBar[], latency: readonly LatencyBar[], subtitle: string): string {
  const out: string[] = [];
  let y = 28;
  out.push(`<text x="16" y="${y}" font-size="17" font-weight="600" fill="#1a202c">filebus benchmark</text>`);
  y += 18;
  out.push(`<text x="16" y="${y}" font-size="11" fill="#4a5568">${esc(subtitle)}</text>`);

  // Throughput panel.
  y += 30;
  out.push(`<text x="16" y="${y}" font-size="14" font-weight="600" fill="#1a202c">Throughput per consumer (MB/s), by mode and chunk size</text>`);
  y += 20;
  const seriesNames = [...new Set(throughput.map((b) => (b.series.startsWith('baseline') ? 'baseline (cat / tee)' : b.series)))];
  legend(out, y, seriesNames.map((s) => ({ label: s, color: colorOf(s) })));
  y += 12;
  const groups = [...new Set(throughput.map((b) => b.group))];
  const tScale = logScale(throughput.map((b) => b.mbps), 1);
  const tTop = y;
  const tBarsFrom = out.length;
  for (const group of groups) {
    const bars = throughput.filter((b) => b.group === group);
    const h = bars.length * (BAR_H + 2) + 8;
    out.push(`<text x="${LABEL_W}" y="${(y + h / 2 + 3).toFixed(1)}" font-size="11" text-anchor="end" fill="#2d3748">${esc(group)}</text>`);
    let by = y + 4;
    for (const bar of bars) {
      const w = Math.max(1, tScale.x(bar.mbps) - PLOT_X);
      out.push(`<rect x="${PLOT_X}" y="${by}" width="${w.toFixed(1)}" height="${BAR_H}" fill="${colorOf(bar.series)}"><title>${esc(`${group} — ${bar.series}: ${fmt(bar.mbps)} MB/s`)}</title></rect>`);
      out.push(`<text x="${(PLOT_X + w + 4).toFixed(1)}" y="${by + BAR_H - 1}" font-size="10" fill="#2d3748">${bar.mbps > 0 ? fmt(bar.mbps) : 'failed'}</text>`);
      by += BAR_H + 2;
    }
    y += h;
  }
  const tBars = out.splice(tBarsFrom);
  axis(out, tScale, tTop, y + 4, 'MB/s delivered to each consumer');
  out.push(...tBars);
  y += 50;

  // Latency panel.
  out.push(`<text x="16" y="${y}" font-size="14" font-weight="600" fill="#1a202c">Latency, 100-byte messages at 100/s (ms), write to producer → read from consumer</text>`);
  y += 20;
  const pColors = { p50: '#2c5282', p90: '#4299e1', p99: '#90cdf4', max: '#cbd5e0' } as const;
  legend(out, y, (Object.keys(pColors) as (keyof typeof pColors)[]).map((k) => ({ label: k, color: pColors[k] })));
  y += 12;
  const lScale = logScale(latency.flatMap((l) => [l.p50, l.p90, l.p99, l.max]), 0.001);
  const lTop = y;
  const barsFrom = out.length;
  for (const row of latency) {
    const h = 4 * (BAR_H - 2 + 2) + 8;
    out.push(`<text x="${LABEL_W}" y="${(y + h / 2 + 3).toFixed(1)}" font-size="11" text-anchor="end" fill="#2d3748">${esc(row.label)}</text>`);
    let by = y + 4;
    for (const key of ['p50', 'p90', 'p99', 'max'] as const) {
      const v = row[key];
      const w = Math.max(1, lScale.x(v) - PLOT_X);
      out.push(`<rect x="${PLOT_X}" y="${by}" width="${w.toFixed(1)}" height="${BAR_H - 2}" fill="${pColors[key]}"><title>${esc(`${row.label} ${key}: ${fmt(v)} ms`)}</title></rect>`);
      out.push(`<text x="${(PLOT_X + w + 4).toFixed(1)}" y="${by + BAR_H - 3}" font-size="9" fill="#2d3748">${key} ${fmt(v)}</text>`);
      by += BAR_H;
    }
    y += h;
  }
  const bars = out.splice(barsFrom);
  axis(out, lScale, lTop, y + 4, 'milliseconds');
  out.push(...bars);
  for (const target of [{ v: 1, label: 'p50 target 1 ms', anchor: 'end' }, { v: 5, label: 'p99 target 5 ms', anchor: 'start' }]) {
    const x = lScale.x(target.v);
    out.push(`<line x1="${x.toFixed(1)}" y1="${lTop}" x2="${x.toFixed(1)}" y2="${y + 4}" stroke="#e53e3e" stroke-dasharray="4 3"/>`);
    out.push(`<text x="${(x + (target.anchor === 'end' ? -3 : 3)).toFixed(1)}" y="${lTop - 2}" font-size="9" text-anchor="${target.anchor}" fill="#e53e3e">${target.label}</text>`);
  }
  y += 46;

  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${y}" viewBox="0 0 ${WIDTH} ${y}" ${FONT}>`,
    `<rect width="${WIDTH}" height="${y}" fill="#ffffff"/>`,
    ...out,
    '</svg>',
    '',
  ].join('\n');
}
