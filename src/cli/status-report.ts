import type { BusStatus, ProducerStatus } from '../status/bus-status.js';
import { formatBytes, formatSeconds } from './format.js';

/** `filebus status` without --json: the BusStatus as aligned lines for a person. */
export function formatStatus(status: BusStatus, now = Date.parse(status.checkedAt)): string {
  const lines: string[] = [];
  const field = (name: string, value: string): void => {
    lines.push(`${`${name}:`.padEnd(11)}${value}`);
  };
  field('bus', status.filename);
  field('mode', status.mode);
  const held = status.lock.held === null ? '' : status.lock.held ? ', held now' : ', free';
  field('lock', `${status.lock.strategy}${held}`);
  field('producer', status.producerLive === true ? 'live'
    : status.producerLive === false ? 'none running'
      : 'no filebus producer running (a reference producer does not register, so one may be)');
  for (const producer of status.producers) lines.push(`  ${describeProducer(producer, now)}`);
  const newest = status.newestChunk;
  if (newest === null) {
    field('newest', 'no chunk yet');
  } else {
    const parts = [newest.number === null ? 'chunk' : `chunk ${newest.number}`];
    if (newest.bytes !== null) parts.push(formatBytes(newest.bytes));
    if (newest.ageSeconds !== null) parts.push(`${formatSeconds(newest.ageSeconds)} ago`);
    if (newest.endOfStream) parts.push('end of stream');
    field('newest', parts.join(', '));
  }
  const { retained } = status;
  const range = retained.oldest !== null && retained.newest !== null ? ` (segments ${retained.oldest} to ${retained.newest})` : '';
  field('retained', `${retained.chunks} chunk${retained.chunks === 1 ? '' : 's'}, ${formatBytes(retained.bytes)}${range}`);
  if (status.mode === 'multicast') {
    const alive = status.consumers.filter((c) => c.alive).length;
    field('consumers', `${status.consumers.length}, ${alive} alive`);
    if (status.consumers.length > 0) lines.push(...table(status));
  }
  return `${lines.join('\n')}\n`;
}

function describeProducer(p: ProducerStatus, now: number): string {
  const parts = [`pid ${p.pid} on ${p.host}`, p.alive ? 'alive' : 'dead (killed before it finished)'];
  if (p.mode !== null) parts.push(p.mode);
  if (p.chunks !== null && p.bytes !== null) parts.push(`${p.chunks} chunks, ${formatBytes(p.bytes)}`);
  if (p.lastChunkAt !== null) parts.push(`last chunk ${formatSeconds(Math.max(0, now - Date.parse(p.lastChunkAt)) / 1000)} ago`);
  return parts.join(', ');
}

function table(status: BusStatus): string[] {
  const rows = [['CONSUMER', 'ALIVE', 'POSITION', 'LAG CHUNKS', 'LAG BYTES']];
  for (const c of status.consumers) {
    rows.push([c.name ?? `${c.id} (anonymous)`, c.alive ? 'yes' : 'no', String(c.position), String(c.lagChunks), formatBytes(c.lagBytes)]);
  }
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => `  ${row.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd()}`);
}
