import { FilebusError } from '../errors.js';

/** A command line filebus cannot run: exit code 2, one line on stderr. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/**
 * Runs a library check (options.ts) on a value the CLI read. The check
 * words its refusal with the flag or variable the CLI passed it; in the
 * CLI that refusal is a usage error like any other.
 */
export function asUsage<T>(check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (error instanceof FilebusError && error.code === 'ERR_FILEBUS_INVALID_OPTION') throw new UsageError(error.message);
    throw error;
  }
}
