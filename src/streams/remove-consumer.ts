import { resolveBusOptions, type BusOptions } from '../options.js';
import { checkConsumerName, removeCursor } from '../wire/cursor-file.js';
import { busPaths } from '../wire/paths.js';
import { consumersDir } from '../wire/segments.js';

/**
 * Forgets a named multicast consumer: its cursor goes, and with it the
 * segments it alone was holding become eligible for deletion. Refuses
 * (ERR_FILEBUS_CONSUMER) while that consumer runs. Resolves to false when
 * there was no such consumer.
 */
export async function removeConsumer(options: BusOptions, name: string): Promise<boolean> {
  const resolved = resolveBusOptions(options);
  return removeCursor(consumersDir(busPaths(resolved.filename)), checkConsumerName(name));
}
