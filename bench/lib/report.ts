/**
 * What a run found: one row per measured number beside its baseline and
 * target, the raw details of every case, and the failures (wrong output, a
 * process that failed) that make the suite exit non-zero. Missed targets
 * are reported, never failed.
 */

export interface Row {
  /** Case number, 1 to 7. */
  readonly case: number;
  /** What was run: mode, chunk size, consumers, file system, input size. */
  readonly what: string;
  readonly impl: string;
  readonly metric: string;
  /** The measured value (median of repetitions); null when skipped or failed. */
  readonly value: number | null;
  readonly baselineName: string;
  readonly baseline: number | null;
  /** How the value compares with the baseline, as the target states it (e.g. filebus/cat). */
  readonly ratio: number | null;
  readonly target: string;
  /** true met, false missed, null no target / not measured. */
  readonly met: boolean | null;
  readonly note?: string;
}

export interface ThroughputBar {
  readonly group: string;
  readonly series: string;
  /** MB/s delivered to each consumer. */
  readonly mbps: number;
}

export interface LatencyBar {
  readonly label: string;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
}

export class Report {
  readonly rows: Row[] = [];
  readonly failures: string[] = [];
  readonly details: Record<string, unknown> = {};
  readonly throughput: ThroughputBar[] = [];
  readonly latency: LatencyBar[] = [];

  add(row: Row): void {
    this.rows.push(row);
  }

  /** Something wrong that is not the benchmark's to fail on (a known bug met on the way); each message once. */
  readonly warnings: string[] = [];

  warn(message: string): void {
    if (this.warnings.includes(message)) return;
    this.warnings.push(message);
    process.stderr.write(`warning: ${message}\n`);
  }

  fail(message: string): void {
    this.failures.push(message);
    process.stderr.write(`FAILURE: ${message}\n`);
  }

  /** The name of the case running now (run.ts sets it): details are kept under it. */
  caseName = '';

  /** Raw figures of the running case, or of one `part` of it (a file system, a consumer count). */
  detail(value: unknown, part?: string): void {
    this.details[part === undefined ? this.caseName : `${this.caseName}.${part}`] = value;
  }
}

/** Three significant digits, without exponent noise. */
export function fmt(value: number | null | undefined, digits = 3): string {
  if (value === null || value === undefined || Number.isNaN(value)) return '-';
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  if (abs >= 10 ** digits) return Math.round(value).toLocaleString('en-US');
  if (abs === 0) return '0';
  return String(Number(value.toPrecision(digits)));
}

function metText(met: boolean | null): string {
  return met === null ? '' : met ? 'met' : 'MISSED';
}

const HEADERS = ['#', 'case', 'impl', 'metric', 'value', 'baseline', 'ratio', 'target', 'met'];

function cells(row: Row): string[] {
  return [
    String(row.case),
    row.what,
    row.impl,
    row.metric,
    row.value === null ? (row.note?.startsWith('skipped') ? 'skipped' : '-') : fmt(row.value),
    row.baseline === null ? '-' : `${fmt(row.baseline)} (${row.baselineName})`,
    fmt(row.ratio),
    row.target,
    metText(row.met),
  ];
}

/** The table for a terminal: fixed-width columns, notes below. */
export function textTable(rows: readonly Row[]): string {
  const body = rows.map(cells);
  const widths = HEADERS.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (r: string[]): string => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  const out = [line(HEADERS), line(widths.map((w) => '-'.repeat(w)))];
  for (const r of body) out.push(line(r));
  const notes = rows.filter((r) => r.note).map((r) => `  case ${r.case}, ${r.what} (${r.impl}): ${r.note}`);
  if (notes.length) out.push('', 'notes:', ...notes);
  return out.join('\n');
}

/** The same table in Markdown, for docs/performance.md. */
export function markdownTable(rows: readonly Row[]): string {
  const esc = (s: string): string => s.replace(/\|/g, '\\|');
  const out = [`| ${HEADERS.join(' | ')} |`, `| ${HEADERS.map(() => '---').join(' | ')} |`];
  for (const row of rows) {
    const c = cells(row).map(esc);
    c[8] = row.met === null ? '' : row.met ? 'met' : '**missed**';
    out.push(`| ${c.join(' | ')} |`);
  }
  const notes = rows.filter((r) => r.note).map((r) => `- case ${r.case}, ${r.what} (${r.impl}): ${r.note}`);
  if (notes.length) out.push('', ...notes);
  return out.join('\n');
}
