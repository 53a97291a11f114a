import fs from 'node:fs';
import { fcntlSync } from 'fs-ext';

/**
 * Checks, before a command touches the bus, that its standard input or
 * output can carry the stream. A back-pressure consumer, or a named
 * multicast one, removes from the bus what it takes: one whose output goes
 * nowhere would take the stream and lose it. A producer whose input is not
 * a stream (a directory, a closed descriptor) would read nothing and
 * publish an end marker, ending a consumer with nothing.
 *
 * A closed descriptor is the subtle case. Node, at start-up, reopens a
 * closed fd 0, 1 or 2 as /dev/null with O_RDWR (so `filebus consumer >&-`
 * looks like output to /dev/null), where a shell's `> /dev/null` opens it
 * write-only and `< /dev/null` read-only. So /dev/null opened read-write
 * is taken for a closed descriptor. That also refuses a parent that opens
 * /dev/null read-write on purpose (Node's `stdio: 'ignore'` for stdout,
 * Python's `subprocess.DEVNULL`, daemon(3)); the message says what works.
 */
export class StandardStreamError extends Error {
  override readonly name = 'StandardStreamError';
}

const F_GETFL = 3; // the same on Linux and the BSDs
const O_ACCMODE = 3;

interface Descriptor {
  readonly stat: fs.Stats;
  /** O_RDONLY, O_WRONLY or O_RDWR; undefined when fcntl is not available. */
  readonly access: number | undefined;
}

function describe(fd: number): Descriptor | undefined {
  let stat: fs.Stats;
  try {
    stat = fs.fstatSync(fd);
  } catch {
    return undefined; // EBADF: closed, and nobody reopened it
  }
  let access: number | undefined;
  try {
    access = fcntlSync(fd, F_GETFL) & O_ACCMODE;
  } catch { /* unknown: judged by its type alone */ }
  return { stat, access };
}

function isDevNull(stat: fs.Stats): boolean {
  if (!stat.isCharacterDevice()) return false;
  try {
    return fs.statSync('/dev/null').rdev === stat.rdev;
  } catch {
    return false;
  }
}

function closedByParent(d: Descriptor): boolean {
  return d.access === fs.constants.O_RDWR && isDevNull(d.stat);
}

/** Standard output of a consumer: open for writing, and not a closed descriptor Node replaced with /dev/null. */
export function checkStandardOutput(): void {
  const d = describe(1);
  if (!d || closedByParent(d)) {
    throw new StandardStreamError('standard output is closed (or /dev/null opened read-write); nothing is taken from the bus. '
      + 'To discard the stream, redirect it with > /dev/null');
  }
  if (d.access === fs.constants.O_RDONLY) {
    throw new StandardStreamError('standard output is open for reading only; nothing is taken from the bus');
  }
}

/** Standard input of a producer: something to read a stream from. */
export function checkStandardInput(): void {
  const d = describe(0);
  if (!d || closedByParent(d)) {
    throw new StandardStreamError('standard input is closed (or /dev/null opened read-write); nothing is published. '
      + 'For an empty stream, redirect it with < /dev/null');
  }
  if (d.stat.isDirectory()) throw new StandardStreamError('standard input is a directory; nothing is published');
  if (d.access === fs.constants.O_WRONLY) {
    throw new StandardStreamError('standard input is open for writing only; nothing is published');
  }
}
