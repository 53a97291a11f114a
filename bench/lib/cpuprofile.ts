/**
 * Reads V8 .cpuprofile files (node --cpu-prof) and strace -c summaries,
 * and boils them down to what costs time: self time per function, grouped
 * by where the code lives, and system calls by count.
 */
import fs from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface FunctionCost {
  readonly name: string;
  readonly where: string;
  readonly selfMs: number;
  readonly share: number;
}

export interface ProfileSummary {
  readonly file: string;
  readonly totalMs: number;
  /** Sampled time not idle: what the process spent running. */
  readonly busyMs: number;
  readonly top: FunctionCost[];
  /** Self time by area: filebus, chokidar, yargs, node internals, GC, program (native), idle. */
  readonly areas: Record<string, number>;
}

function area(url: string, name: string): string {
  if (name === '(idle)') return 'idle';
  if (name === '(garbage collector)') return 'garbage collector';
  if (name === '(program)') return 'native (program)';
  if (name === '(root)') return 'root';
  if (url.includes('/node_modules/chokidar/') || url.includes('/node_modules/readdirp/')) return 'chokidar';
  if (url.includes('/node_modules/yargs') || url.includes('/node_modules/cliui') || url.includes('/node_modules/y18n')) return 'yargs';
  if (url.includes('/node_modules/fs-ext/')) return 'fs-ext';
  if (url.includes('/node_modules/')) return 'other dependencies';
  if (url.includes('/dist/')) return 'filebus';
  if (url.startsWith('node:')) return 'node internals';
  if (url === '') return 'native / builtins';
  return 'other';
}

function shortUrl(url: string): string {
  const dist = url.indexOf('/dist/');
  if (dist >= 0) return url.slice(dist + 1);
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) return url.slice(nm + '/node_modules/'.length);
  return url;
}

export function summarizeProfile(file: string, topN = 12): ProfileSummary {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const byFunction = new Map<string, { name: string; where: string; us: number }>();
  const areas: Record<string, number> = {};
  let total = 0;
  let idle = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const name = functionName || '(anonymous)';
    const a = area(url, name);
    areas[a] = (areas[a] ?? 0) + us / 1000;
    total += us;
    if (a === 'idle') { idle += us; continue; }
    const key = `${name}@${url}:${lineNumber}`;
    const entry = byFunction.get(key) ?? { name, where: url ? `${shortUrl(url)}:${lineNumber + 1}` : a, us: 0 };
    entry.us += us;
    byFunction.set(key, entry);
  }
  const busy = total - idle;
  const top = [...byFunction.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, topN)
    .map((e) => ({ name: e.name, where: e.where, selfMs: e.us / 1000, share: busy ? e.us / busy : 0 }));
  for (const k of Object.keys(areas)) areas[k] = Math.round(areas[k]! * 10) / 10;
  return { file, totalMs: total / 1000, busyMs: busy / 1000, top, areas };
}

export interface SyscallCount {
  readonly name: string;
  readonly calls: number;
  readonly errors: number;
  readonly seconds: number;
}

/** The table strace -c -o FILE writes. */
export function parseStraceSummary(file: string): SyscallCount[] {
  const out: SyscallCount[] = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /^\s*[\d.]+\s+([\d.]+)\s+\d+\s+(\d+)\s+(\d+)?\s*(\w+)\s*$/.exec(line);
    if (m && m[4] !== 'total') out.push({ name: m[4]!, calls: Number(m[2]), errors: Number(m[3] ?? 0), seconds: Number(m[1]) });
  }
  return out.sort((a, b) => b.calls - a.calls);
}
