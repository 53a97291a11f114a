import { checkLockStrategy, livenessFor } from '../lock/strategy.js';
import { resolveBusOptions, type BusOptions } from '../options.js';
import { checkConsumerName, removeCursor } from '../wire/cursor-file.js';
import { busPaths, consumersDir } from '../wire/layout.js';

/**
 * Forgets a named multicast consumer: its cursor goes, and with it the
 * segments it alone was holding become eligible for deletion. Refuses
 * (ERR_FILEBUS_CONSUMER) while that consumer runs, and
 * (ERR_FILEBUS_LOCK_STRATEGY) when `options.lock` is not the bus's lock
 * strategy, since that decides how a running consumer is recognised.
 * Resolves to false when there was no such consumer.
 */
export async function removeConsumer(options: BusOptions, name: string): Promise<boolean> {
  const resolved = resolveBusOptions(options);
  const paths = busPaths(resolved.filename);
  checkLockStrategy(paths, resolved.lock);
  return removeCursor(consumersDir(paths), checkConsumerName(name), livenessFor(resolved.lock));
}
