/**
 * The current filebus across the two mounts: producer on A, consumers on B
 * (and on A), each mode, with and without file monitoring on B. Prints one
 * block per scenario and, with --json FILE, the results (without the
 * per-segment lists).
 *
 *   npx tsx test/distributed/crosshost.ts [--json FILE] [--only lossy,back-pressure,multicast]
 *
 * Needs FILEBUS_MOUNT_A and FILEBUS_MOUNT_B (setup.sh), and a built dist/.
 */
import fs from 'node:fs';
import { describe, runScenario, type Scenario, type ScenarioResult } from './harness.js';

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const only = flag('--only')?.split(',');
const jsonOut = flag('--json');

const POLL = ['--no-file-monitoring', '--sleep-interval', '0.05'];
const WATCH: string[] = [];
const MiB = 1024 * 1024;

const scenarios: Array<{ name: string; s: Scenario }> = [
  // Lossy, paced so that a coherent file system delivers every chunk to every consumer.
  { name: 'lossy paced', s: { mode: 'lossy', size: 2 * MiB, throttleMs: 150, consumers: [{ host: 'B', flags: POLL }, { host: 'B', flags: WATCH }, { host: 'A', flags: WATCH }] } },
  // Lossy at full speed: chunks are missed by design; nothing stale, repeated or torn may appear.
  { name: 'lossy full speed', s: { mode: 'lossy', size: 4 * MiB, consumers: [{ host: 'B', flags: POLL }, { host: 'B', flags: WATCH }, { host: 'A', flags: WATCH }] } },
  { name: 'back-pressure B poll', s: { mode: 'back-pressure', size: 4 * MiB, consumers: [{ host: 'B', flags: POLL }] } },
  { name: 'back-pressure B watch', s: { mode: 'back-pressure', size: 4 * MiB, consumers: [{ host: 'B', flags: WATCH }] } },
  { name: 'back-pressure B poll + A watch', s: { mode: 'back-pressure', size: 4 * MiB, consumers: [{ host: 'B', flags: POLL }, { host: 'A', flags: WATCH }] } },
  { name: 'back-pressure B poll + B poll', s: { mode: 'back-pressure', size: 4 * MiB, consumers: [{ host: 'B', flags: POLL }, { host: 'B', flags: POLL }] } },
  { name: 'multicast', s: { mode: 'multicast', size: 4 * MiB, consumers: [{ host: 'B', flags: POLL }, { host: 'B', flags: WATCH }, { host: 'A', flags: WATCH }] } },
  { name: 'multicast window 4', s: { mode: 'multicast', size: 4 * MiB, producerFlags: ['--window', '4'], consumers: [{ host: 'B', flags: POLL }, { host: 'B', flags: WATCH }, { host: 'A', flags: WATCH }] } },
];

const out: Array<{ name: string } & Omit<ScenarioResult, 'consumers'> & { consumers: unknown[] }> = [];
for (const { name, s } of scenarios) {
  if (only && !only.includes(s.mode)) continue;
  const r = await runScenario({ timeoutMs: 60_000, ...s });
  console.log(`[${name}] ${describe(r)}`);
  out.push({
    name,
    ...r,
    consumers: r.consumers.map(({ segments, ...c }) => ({ ...c, segmentCount: segments.length })),
  });
}
if (jsonOut) fs.writeFileSync(jsonOut, JSON.stringify({
  mountOptionsA: process.env.FILEBUS_GLUSTER_ACTIVE_MOUNT_OPTIONS_A,
  mountOptionsB: process.env.FILEBUS_GLUSTER_ACTIVE_MOUNT_OPTIONS_B,
  volumeOptions: process.env.FILEBUS_GLUSTER_ACTIVE_VOLUME_OPTIONS,
  results: out,
}, null, 2) + '\n');
