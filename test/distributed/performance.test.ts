/**
 * A-to-B throughput and latency on the GlusterFS volume, printed by the run
 * (docs/distributed.md records them). The assertions only check that the
 * figures are real: every byte and message arrived.
 */
import { describe, expect, it } from 'vitest';
import { mountConfig, mounts } from './harness.js';
import { describeLatency, describeThroughput, measureLatency, measureThroughput } from './performance.js';

const m = mounts();
const config = mountConfig();
const MiB = 1024 * 1024;

describe.skipIf(!m)(`A-to-B figures (${config})`, () => {
  it('throughput: multicast and back-pressure, producer on A, consumer on B with default flags, 64 KiB and 1 MiB chunks', async () => {
    const runs = [['multicast', 16 * MiB, []], ['multicast', 64 * MiB, ['--block-size', String(MiB)]],
      ['back-pressure', 4 * MiB, []], ['back-pressure', 32 * MiB, ['--block-size', String(MiB)]]] as const;
    for (const [mode, size, flags] of runs) {
      const t = await measureThroughput(mode, size, [...flags]);
      console.log(`[${config}] ${describeThroughput(t)}${flags.length ? ` with ${flags.join(' ')}` : ''}`);
      expect(t.exact).toBe(true);
    }
  });

  it('latency: 100 messages 20 ms apart, multicast, consumer on B polling every 0.1 s (default) and 0.02 s', async () => {
    for (const interval of [0.1, 0.02]) {
      const l = await measureLatency('multicast', interval);
      console.log(`[${config}] ${describeLatency(l)}`);
      expect(l.received).toBe(l.sent);
    }
  });
});
