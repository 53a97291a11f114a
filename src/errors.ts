import os from 'node:os';

/**
 * Every error filebus raises on purpose is a FilebusError with a stable code,
 * so callers (and the CLI) can tell a usage mistake from an I/O failure
 * without parsing messages.
 */
export type FilebusErrorCode =
  /** An option has a value filebus cannot use. */
  | 'ERR_FILEBUS_INVALID_OPTION'
  /** FILE (or a path the bus needs) exists but is the wrong kind of thing. */
  | 'ERR_FILEBUS_BAD_PATH'
  /** The directory holding FILE cannot be created or written. */
  | 'ERR_FILEBUS_DIRECTORY'
  /** Data on disk fails its check: a segment's checksum, a cursor's format. Never emitted. */
  | 'ERR_FILEBUS_CORRUPT'
  /** A named consumer is in use by another live process, or does not exist. */
  | 'ERR_FILEBUS_CONSUMER'
  /**
   * The bus is locked with another strategy than this process's `lock`
   * (`--lock flock` on a bus that uses mkdir locks, or the reverse).
   */
  | 'ERR_FILEBUS_LOCK_STRATEGY'
  /** The operation was cancelled through an AbortSignal or close(). */
  | 'ERR_FILEBUS_ABORTED'
  /** Reading or writing bus files failed (the cause holds the system error). */
  | 'ERR_FILEBUS_IO'
  /**
   * FILE exists but shows no sign of being a bus (no FILE.lock, no lock
   * directory, no registration, no segments): a producer or back-pressure
   * consumer would replace or delete it. `takeOver` (`--take-over`) allows it.
   */
  | 'ERR_FILEBUS_NOT_A_BUS'
  /** The bus's live producers run in another mode than this consumer's. */
  | 'ERR_FILEBUS_MODE'
  /** There is no bus at the path (none of FILE, FILE.lock or a multicast directory exists). */
  | 'ERR_FILEBUS_NOT_FOUND'
  /**
   * A bus file or directory another user could have planted: a symlink, the
   * wrong type, or owned by a user the bus does not trust (util/trust.ts);
   * or a bus directory anyone may write without the sticky bit.
   */
  | 'ERR_FILEBUS_UNTRUSTED';

export class FilebusError extends Error {
  readonly code: FilebusErrorCode;
  /** The bus path the error is about, when there is one. */
  readonly path: string | undefined;

  constructor(code: FilebusErrorCode, message: string, options: { path?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'FilebusError';
    this.code = code;
    this.path = options.path;
  }
}

/** The system error code (`ENOENT`, ...) of an unknown thrown value, if any. */
export function errnoCode(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const code = (error as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

const ESTALE = os.constants.errno.ESTALE ?? 116;

/**
 * ESTALE: a network file system resolved a name to a file that another host
 * has since replaced or removed. libuv has no name for errno 116, so Node
 * reports it as code 'Unknown system error -116'; only the number is reliable.
 */
export function isStale(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { errno, code } = error as { errno?: unknown; code?: unknown };
  return errno === -ESTALE || code === 'ESTALE';
}

/** Wraps a system error from a bus file operation, naming what was being done. */
export function ioError(action: string, path: string, cause: unknown): FilebusError {
  const code = errnoCode(cause);
  const reason = code === 'ENOSPC' ? 'no space left on device' : code === 'EACCES' || code === 'EPERM' ? 'permission denied'
    : isStale(cause) ? 'stale file handle (ESTALE)' : (code ?? String(cause));
  return new FilebusError('ERR_FILEBUS_IO', `cannot ${action} ${path}: ${reason}`, { path, cause });
}

export function abortError(): FilebusError {
  return new FilebusError('ERR_FILEBUS_ABORTED', 'the operation was aborted');
}
