// Renders the measures' reports as the bench's text and Markdown: figures (median, min–max) with pullgate's ratio
// to every other peer, CPU-seconds per unit of work, extra tables (the growth curve), targets met, and notes.
import { PEERS } from '../peers/table.js';
import { PEER_NAMES, type PeerName } from '../peers/types.js';
import { type Table, fmt, markdownTable, ratio, textTable } from './report.js';
import type { Cell, CpuRow, FigureRow, MeasureReport, Verdict } from './results.js';
import { median, spread } from './stats.js';

/** "1,234 (1,200–1,260)": the median of repeated runs with their spread. */
export function samplesText(xs: readonly number[], digits = 0, unit = ''): string {
  if (xs.length === 0) return '—';
  const m = `${fmt(median(xs), digits)}${unit}`;
  if (xs.length === 1) return m;
  const { min, max } = spread(xs);
  return `${m} (${fmt(min, digits)}–${fmt(max, digits)})`;
}

function cellText(row: FigureRow, name: PeerName): string {
  const c: Cell | undefined = row.cells[name];
  if (c === undefined) return '';
  let text = c.text ?? samplesText(c.samples ?? [], c.digits ?? 0, c.unit ?? '');
  if (c.failed === true) text += ' (errors!)';
  const ref = PEERS[name].relativeTo;
  const refSamples = ref === undefined ? undefined : row.cells[ref]?.samples;
  if (ref !== undefined && c.text === undefined && c.samples !== undefined && refSamples !== undefined) {
    text += `; ${ratio(median(c.samples), median(refSamples))} ${PEERS[ref].label}`;
  }
  return text;
}

function present(rows: readonly { cells: Partial<Record<PeerName, unknown>> }[]): PeerName[] {
  return PEER_NAMES.filter((p) => rows.some((r) => r.cells[p] !== undefined));
}

function figuresTable(rows: readonly FigureRow[]): Table {
  const peers = present(rows);
  const others = peers.filter((p) => p !== 'pullgate' && rows.some((r) => !r.noRatio && r.cells.pullgate?.samples !== undefined && r.cells[p]?.samples !== undefined));
  return {
    header: ['Measure', ...peers.map((p) => PEERS[p].label), ...others.map((p) => `pullgate/${PEERS[p].label}`)],
    rows: rows.map((r) => [
      r.label,
      ...peers.map((p) => cellText(r, p)),
      ...others.map((p) => {
        const a = r.cells.pullgate?.samples;
        const b = r.cells[p]?.samples;
        return r.noRatio === true || a === undefined || b === undefined ? '' : ratio(median(a), median(b));
      }),
    ]),
  };
}

function cpuTable(rows: readonly CpuRow[]): Table {
  const peers = present(rows);
  const others = peers.filter((p) => p !== 'pullgate');
  return {
    header: ['CPU-seconds of the server (its process and all its descendants)', ...peers.map((p) => PEERS[p].label), ...others.map((p) => `pullgate/${PEERS[p].label}`)],
    rows: rows.map((r) => [
      r.label,
      ...peers.map((p) => samplesText(r.cells[p] ?? [], 3)),
      ...others.map((p) => {
        const a = r.cells.pullgate;
        const b = r.cells[p];
        return a === undefined || b === undefined ? '' : ratio(median(a), median(b));
      }),
    ]),
  };
}

function targetsTable(verdicts: readonly Verdict[]): Table {
  const met = (v: Verdict): string => (v.met === undefined ? 'not measured' : v.met ? 'yes' : 'NO');
  return { header: ['Issue', 'Target', 'Measured', 'Met'], rows: verdicts.map((v) => [String(v.issue), v.target, v.measured, met(v)]) };
}

/** Merges the measures' reports into one text (terminal) and one Markdown (bench/results.md) document. */
export function render(machine: Record<string, string>, reports: readonly MeasureReport[], errors: readonly string[], charts: readonly string[]): { text: string; markdown: string } {
  const figures = reports.flatMap((r) => r.figures).filter((r) => Object.keys(r.cells).length > 0);
  const cpu = reports.flatMap((r) => r.cpu).filter((r) => Object.keys(r.cells).length > 0);
  const extra = reports.flatMap((r) => r.tables);
  const targets = reports.flatMap((r) => r.targets);
  const notes = [...reports.flatMap((r) => r.notes), ...errors.map((e) => `FAILED ${e}`)];
  const sections: { title: string; table: Table }[] = [
    ...(figures.length > 0 ? [{ title: 'Figures (median of the runs, min–max in brackets)', table: figuresTable(figures) }] : []),
    ...(cpu.length > 0 ? [{ title: 'CPU-seconds per unit of work (median, min–max)', table: cpuTable(cpu) }] : []),
    ...extra,
    ...(targets.length > 0 ? [{ title: 'Targets', table: targetsTable(targets) }] : []),
  ];
  const machineLines = Object.entries(machine).map(([k, v]) => `${k}: ${v}`);
  const text = [
    '',
    'pullgate benchmark',
    ...machineLines.map((m) => `  ${m}`),
    ...sections.flatMap((s) => ['', s.title, textTable(s.table)]),
    '',
    ...notes.map((n) => `- ${n}`),
    '',
  ].join('\n');
  const markdown = [
    '# pullgate benchmark',
    '',
    'Written by `npm run bench` (bench/run.ts: a table of peers × measures; see issues 3 and 14).',
    '',
    ...machineLines.map((m) => `- ${m}`),
    ...sections.flatMap((s) => ['', `## ${s.title}`, '', markdownTable(s.table)]),
    ...(charts.length > 0 ? ['', '## Charts', '', ...charts.map((c) => `![${c}](${c})`)] : []),
    '',
    '## Notes',
    '',
    ...notes.map((n) => `- ${n}`),
    '',
  ].join('\n');
  return { text, markdown };
}
