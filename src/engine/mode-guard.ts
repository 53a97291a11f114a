import fs from 'node:fs';
import { FilebusError } from '../errors.js';
import type { Liveness } from '../lock/liveness.js';
import type { BusMode } from '../options.js';
import { consumersDir, producersDir, segmentsDir, type BusPaths } from '../wire/layout.js';
import { inspectRegistrations, type ProducerState } from '../wire/producer-registry.js';
import type { ChunkSource } from './contracts.js';

/**
 * A back-pressure or multicast consumer on a bus whose producers run in
 * another mode would wait for ever (a multicast consumer on a lossy bus
 * sees no segments) or take chunks meant for others (a back-pressure
 * consumer on a lossy or multicast bus deletes FILE). Producers record
 * their mode in their registrations (wire/producer-registry.ts): such a
 * consumer refuses to start while a live producer of another mode is
 * there, and stops within MODE_CHECK_MS when one starts later.
 *
 * Lossy consumers only read FILE, whoever writes it: they are never
 * refused (they eavesdrop on the other modes, as the reference's do).
 */
const MODE_CHECK_MS = 1000;

/** What the guard needs of a bus. */
export interface GuardedBus {
  readonly paths: BusPaths;
  readonly options: { readonly mode: BusMode };
  readonly liveness: Liveness;
  /** Ends every wait of the source; it then ends or throws ERR_FILEBUS_ABORTED. */
  close(): Promise<void>;
}

/** Throws ERR_FILEBUS_MODE when a live producer of the bus runs in another mode than `mode`. */
export function refuseOtherMode(paths: BusPaths, mode: BusMode, liveness: Liveness): void {
  const error = otherModeError(paths, mode, liveness);
  if (error) throw error;
}

/** The consumer's chunks, until a producer of another mode turns up: then that error, after the source has let go of the bus. */
export async function* guardMode(bus: GuardedBus, source: ChunkSource): ChunkSource {
  const { paths, liveness } = bus;
  const { mode } = bus.options;
  let failure: FilebusError | undefined;
  const timer = setInterval(() => {
    try {
      failure = otherModeError(paths, mode, liveness);
    } catch { /* unreadable registrations: looked at again next time */ }
    if (failure === undefined) return;
    clearInterval(timer);
    void bus.close();
  }, MODE_CHECK_MS);
  timer.unref();
  try {
    yield* source;
  } catch (error) {
    if (failure === undefined) throw error;
  } finally {
    clearInterval(timer);
  }
  if (failure === undefined) return;
  // A multicast consumer that came first made the multicast directories:
  // left empty on a bus of another mode, they would make it look multicast.
  if (mode === 'multicast') for (const dir of [consumersDir(paths), segmentsDir(paths)]) removeIfEmpty(dir);
  throw failure;
}

function otherModeError(paths: BusPaths, mode: BusMode, liveness: Liveness): FilebusError | undefined {
  const other = inspectRegistrations(producersDir(paths), liveness).find((p): p is ProducerState & { record: NonNullable<ProducerState['record']> } =>
    p.live && p.record !== undefined && p.record.mode !== mode);
  if (!other) return undefined;
  const { mode: found, pid, host } = other.record;
  return new FilebusError('ERR_FILEBUS_MODE',
    `${paths.file} is a ${found} bus (producer ${pid} on ${host}), not ${mode}: start the consumer with ${MODE_FLAGS[found]}`,
    { path: paths.file });
}

const MODE_FLAGS: Record<BusMode, string> = {
  lossy: 'no mode flag',
  'back-pressure': '--back-pressure',
  multicast: '--multicast',
};

function removeIfEmpty(dir: string): void {
  try { fs.rmdirSync(dir); } catch { /* not empty (another consumer's cursor, a segment), or gone */ }
}
