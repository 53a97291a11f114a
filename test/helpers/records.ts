/**
 * Fixed-size tagged records, so a test can tell from a consumer's output
 * alone which producer wrote each record, in which order, and whether any
 * record was cut or mixed with another.
 *
 * A record is RECORD_SIZE bytes: `<tag><seq, 10 digits>:<filler>\n`, where
 * the filler is derived from tag and seq (a torn or spliced record fails the
 * check).
 */
export const RECORD_SIZE = 32;

function filler(tag: string, seq: number): string {
  const width = RECORD_SIZE - tag.length - 10 - 2;
  const alphabet = 'abcdefghijklmnopqrstuvwxyz';
  let out = '';
  for (let i = 0; i < width; i++) out += alphabet[(seq * 7 + i + tag.charCodeAt(0)) % 26];
  return out;
}

export function record(tag: string, seq: number): string {
  const text = `${tag}${String(seq).padStart(10, '0')}:${filler(tag, seq)}\n`;
  if (Buffer.byteLength(text) !== RECORD_SIZE) throw new Error(`bad record size for tag ${tag}`);
  return text;
}

/** `count` records with sequence numbers 0..count-1. */
export function records(tag: string, count: number): Buffer {
  return Buffer.from(Array.from({ length: count }, (_, i) => record(tag, i)).join(''));
}

export interface ParsedRecord {
  tag: string;
  seq: number;
}

/**
 * Splits output into records and checks each one; throws on a partial or
 * malformed record, naming its offset.
 */
export function parseRecords(output: Buffer, tagLength = 1): ParsedRecord[] {
  if (output.length % RECORD_SIZE !== 0) {
    throw new Error(`output of ${output.length} bytes is not a whole number of ${RECORD_SIZE}-byte records`);
  }
  const result: ParsedRecord[] = [];
  for (let offset = 0; offset < output.length; offset += RECORD_SIZE) {
    const text = output.subarray(offset, offset + RECORD_SIZE).toString('latin1');
    const tag = text.slice(0, tagLength);
    const seq = Number(text.slice(tagLength, tagLength + 10));
    if (!/^\d{10}$/.test(text.slice(tagLength, tagLength + 10)) || text !== record(tag, seq)) {
      throw new Error(`torn or corrupt record at byte ${offset}: ${JSON.stringify(text)}`);
    }
    result.push({ tag, seq });
  }
  return result;
}

/** The sequence numbers of one tag, in output order. */
export function seqsOf(parsed: readonly ParsedRecord[], tag: string): number[] {
  return parsed.filter((r) => r.tag === tag).map((r) => r.seq);
}

export function range(count: number): number[] {
  return Array.from({ length: count }, (_, i) => i);
}

export function isIncreasing(values: readonly number[]): boolean {
  return values.every((v, i) => i === 0 || v > values[i - 1]!);
}
