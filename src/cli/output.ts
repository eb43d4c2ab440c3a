/** Prints rows as an aligned text table. */
export function table(rows: Array<Record<string, unknown>>, columns: string[]): string {
  if (!rows.length) return '(none)\n';
  const cells = rows.map((r) => columns.map((c) => fmt(r[c])));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const line = (vals: string[]) =>
    vals
      .map((v, i) => v.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(columns.map((c) => c.toUpperCase())), ...cells.map(line)].join('\n') + '\n';
}

function fmt(v: unknown): string {
  if (v === null || v === undefined) return '-';
  if (v instanceof Date) return v.toISOString().replace(/\.\d{3}Z$/, 'Z');
  if (Array.isArray(v)) return v.join(',');
  return String(v);
}

export function printJson(v: unknown): void {
  process.stdout.write(JSON.stringify(v, (_k, val) => (val instanceof Uint8Array || Buffer.isBuffer(val) ? undefined : val), 2) + '\n');
}

export { writeFileAtomic } from '../core/files.ts';

/** Normalizes a serial typed by a human or copied from openssl: "0A:1B..." -> "0a1b...". */
export function normalizeSerial(s: string): string {
  let hex = s.replace(/[:\s]/g, '').toLowerCase().replace(/^0x/, '');
  if (!/^[0-9a-f]+$/.test(hex)) return hex;
  if (hex.length % 2) hex = `0${hex}`;
  return hex;
}
