import fs from 'node:fs';
import path from 'node:path';

/**
 * What kind of file system holds a bus, as far as filebus cares: whether
 * other hosts may change it. On such a file system inotify reports only
 * this host's own changes, and the client's caches may show another host's
 * changes late (docs/distributed.md), so filebus polls there and takes a
 * few extra steps to read what the server holds rather than what it cached.
 */
export interface FileSystemInfo {
  /** A short name: the mount table's type where known (fuse.glusterfs, nfs4), else the statfs family (fuse, nfs). */
  readonly name: string;
  /** Other hosts may change it: network, cluster and FUSE file systems. */
  readonly network: boolean;
  /** How `network` was decided: the statfs magic, the mount table, or FILEBUS_NETWORK_FS. */
  readonly source: 'statfs' | 'mounts' | 'environment';
}

/** statfs(2) f_type values (Linux magic.h and the file systems' own headers). */
const NETWORK_MAGIC = new Map<number, string>([
  [0x6969, 'nfs'],
  [0xff534d42, 'cifs'],
  [0xfe534d42, 'smb2'],
  [0x517b, 'smb'],
  [0x00c36400, 'ceph'],
  [0x01021997, '9p'],
  [0x5346414f, 'afs'],
  [0x6b414653, 'afs'],
  [0x73757245, 'coda'],
  [0x564c, 'ncp'],
  [0x0bd00bd0, 'lustre'],
  [0x47504653, 'gpfs'],
  [0x19830326, 'beegfs'],
  [0xaad7aaea, 'panfs'],
  [0x20030528, 'orangefs'],
  [0x01161970, 'gfs2'],
  [0x7461636f, 'ocfs2'],
  [0x786f4256, 'vboxsf'],
  [0x65735546, 'fuse'],
]);

/** Mount table types of network and cluster file systems (for magics not listed above). */
const NETWORK_TYPES = /^(nfs\d?|cifs|smb\d?|smbfs|ceph|9p|afs|coda|ncpfs|lustre|gpfs|beegfs|glusterfs|gfs2|ocfs2|panfs|pvfs2|orangefs|vboxsf|virtiofs|fuse(\..*)?)$/;

/**
 * FUSE file systems that only ever hold this host's data. Every other FUSE
 * file system (glusterfs, sshfs, s3fs, virtiofs, ...) counts as network:
 * polling there costs latency, while trusting events would cost correctness.
 */
const LOCAL_FUSE_TYPES = new Set(['fuseblk', 'fuse.fuse-overlayfs', 'fuse.lxcfs']);

/**
 * Decides for the directory `dir` (or its nearest existing ancestor).
 * `FILEBUS_NETWORK_FS=1` (or `0`) overrides the detection, for file systems
 * it does not know.
 */
export function detectFileSystem(dir: string): FileSystemInfo {
  const existing = nearestExisting(dir);
  const forced = process.env.FILEBUS_NETWORK_FS?.trim().toLowerCase();
  const mountType = mountTypeOf(existing);
  if (forced === '1' || forced === 'yes' || forced === 'true') return { name: mountType ?? 'forced', network: true, source: 'environment' };
  if (forced === '0' || forced === 'no' || forced === 'false') return { name: mountType ?? 'forced', network: false, source: 'environment' };
  let magic: number | undefined;
  try {
    magic = fs.statfsSync(existing).type >>> 0;
  } catch { /* fall back to the mount table */ }
  const family = magic === undefined ? undefined : NETWORK_MAGIC.get(magic);
  if (family === 'fuse') {
    return { name: mountType ?? 'fuse', network: mountType === undefined || !LOCAL_FUSE_TYPES.has(mountType), source: mountType ? 'mounts' : 'statfs' };
  }
  if (family !== undefined) return { name: mountType ?? family, network: true, source: 'statfs' };
  if (mountType !== undefined && NETWORK_TYPES.test(mountType) && !LOCAL_FUSE_TYPES.has(mountType)) {
    return { name: mountType, network: true, source: 'mounts' };
  }
  return { name: mountType ?? (magic === undefined ? 'unknown' : `0x${magic.toString(16)}`), network: false, source: mountType ? 'mounts' : 'statfs' };
}

function nearestExisting(dir: string): string {
  let d = path.resolve(dir);
  for (;;) {
    if (fs.existsSync(d)) {
      try {
        return fs.realpathSync(d);
      } catch {
        return d;
      }
    }
    const parent = path.dirname(d);
    if (parent === d) return d;
    d = parent;
  }
}

/**
 * The type of the mount holding `file` according to /proc/self/mountinfo:
 * the longest mount point containing it, the last one listed when mounts
 * are stacked. Undefined where there is no such table (not Linux).
 */
function mountTypeOf(file: string): string | undefined {
  let table: string;
  try {
    table = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return undefined;
  }
  let best: { point: string; type: string } | undefined;
  for (const line of table.split('\n')) {
    const fields = line.split(' ');
    const dash = fields.indexOf('-');
    if (dash < 0 || fields.length < dash + 2 || fields.length < 5) continue;
    const point = unescape(fields[4]!);
    const inside = point === '/' || file === point || file.startsWith(point.endsWith('/') ? point : `${point}/`);
    if (inside && (!best || point.length >= best.point.length)) best = { point, type: fields[dash + 1]! };
  }
  return best?.type;
}

/** mountinfo writes space, tab, newline and backslash in paths as octal escapes. */
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}
