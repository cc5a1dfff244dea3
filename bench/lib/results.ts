// What a measure hands back to the driver: rows of figures per peer, CPU-seconds rows, verdicts on targets,
// notes, and extra tables; the driver renders them (lib/render.ts) without knowing any measure.
import type { PeerName } from '../peers/types.js';
import type { Table } from './report.js';

/** One peer's figure in a row: the samples of repeated runs (median shown, min–max beside it), or a text. */
export interface Cell {
  samples?: readonly number[];
  /** Decimals shown (default 0). */
  digits?: number;
  /** Appended to the number, e.g. " s", " MiB". */
  unit?: string;
  /** Shown instead of the number (counts, two figures in one cell …). */
  text?: string;
  /** Marks a figure whose run had errors. */
  failed?: boolean;
}

/** One row of the figures table: what was measured, and each peer's figure. */
export interface FigureRow {
  label: string;
  cells: Partial<Record<PeerName, Cell>>;
  /** Counts rather than rates or times: no pullgate/peer ratio. */
  noRatio?: boolean;
}

/** CPU-seconds of a peer's process per unit of work (one pull, 10k requests, one GiB), one sample per run. */
export interface CpuRow {
  label: string;
  cells: Partial<Record<PeerName, readonly number[]>>;
}

/** A target of an issue and whether this run met it (undefined: not measured). */
export interface Verdict {
  issue: number;
  target: string;
  measured: string;
  met: boolean | undefined;
}

/** A series for the PNG chart (x and y per point); drawn only when charts are enabled. */
export interface ChartSeries {
  name: string;
  points: readonly { x: number; y: number }[];
}

export interface Chart {
  title: string;
  xLabel: string;
  yLabel: string;
  /** Bars when the x values are categories (labels), lines otherwise. */
  kind: 'line' | 'bars';
  categories?: readonly string[];
  series: readonly ChartSeries[];
  logX?: boolean;
}

/** Everything one measure reports. */
export interface MeasureReport {
  figures: FigureRow[];
  cpu: CpuRow[];
  targets: Verdict[];
  notes: string[];
  tables: { title: string; table: Table }[];
  charts: Chart[];
}

export function emptyReport(): MeasureReport {
  return { figures: [], cpu: [], targets: [], notes: [], tables: [], charts: [] };
}
