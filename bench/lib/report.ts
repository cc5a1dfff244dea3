// Table and number formatting for the bench report (Markdown and padded text).

export interface Table {
  header: readonly string[];
  rows: readonly (readonly string[])[];
}

/** A Markdown table (pipes in cells escaped). */
export function markdownTable(t: Table): string {
  const esc = (s: string): string => s.replace(/\|/g, '\\|');
  const line = (cells: readonly string[]): string => `| ${cells.map(esc).join(' | ')} |`;
  return [line(t.header), line(t.header.map(() => '---')), ...t.rows.map(line)].join('\n');
}

/** The same table with padded columns, for a terminal. */
export function textTable(t: Table): string {
  const widths = t.header.map((h, i) => Math.max(h.length, ...t.rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ').trimEnd();
  return [line(t.header), widths.map((w) => '-'.repeat(w)).join('-+-'), ...t.rows.map(line)].join('\n');
}

export function fmt(n: number, digits = 0): string {
  if (!Number.isFinite(n)) return 'n/a';
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** A ratio as `1.23×` (`n/a` when the denominator is 0 or missing). */
export function ratio(a: number, b: number): string {
  return b > 0 && Number.isFinite(a) && Number.isFinite(b) ? `${fmt(a / b, a / b >= 100 ? 0 : 2)}×` : 'n/a';
}
