import { formatSize } from '../config/units.js';
import type { ExportEvents } from './export.js';

/** Redraws of the progress line are at least this far apart. */
const REDRAW_MS = 100;

/** What `export` and `import` show: their events plus a finished line and failures. */
export interface BundleDisplay extends ExportEvents {
  line(text: string): void;
}

function rate(bytes: number, ms: number): string {
  return ms <= 0 ? '' : `, ${formatSize(Math.round((bytes * 1000) / ms))}/s`;
}

function planText(image: string, plan: Parameters<ExportEvents['planned']>[1]): string {
  const parts = [`${plan.manifests} manifest${plan.manifests === 1 ? '' : 's'}`, `${plan.blobs - plan.leftOut} blob${plan.blobs - plan.leftOut === 1 ? '' : 's'} to write`];
  if (plan.leftOut > 0) parts.push(`${plan.leftOut} left out (--have)`);
  if (plan.platforms > 1) parts.push(`${plan.platforms} platforms`);
  if (plan.signatures > 0) parts.push(`${plan.signatures} cosign tag${plan.signatures === 1 ? '' : 's'}`);
  return `${image}: ${parts.join(', ')}`;
}

/** One line per image and a line per 10% of the bytes, for logs and pipes. */
export function plainBundleDisplay(write: (line: string) => void, now: () => number): BundleDisplay {
  const started = now();
  let lastTenth = -1;
  return {
    planned: (image, plan) => write(planText(image, plan)),
    progress(bytes, total) {
      if (total === undefined || total === 0) return;
      const tenth = Math.floor((10 * bytes) / total);
      if (tenth === lastTenth) return;
      lastTenth = tenth;
      write(`${formatSize(bytes)} / ${formatSize(total)}${rate(bytes, now() - started)}`);
    },
    warning: (image, text) => write(`${image}: WARNING: ${text}`),
    line: write,
  };
}

/** A progress line redrawn in place on a terminal: bytes, share and rate. */
export function terminalBundleDisplay(write: (text: string) => void, now: () => number): BundleDisplay {
  const started = now();
  let lastDraw = Number.NEGATIVE_INFINITY;
  let drawn = false;
  const clear = (): string => (drawn ? '\r\x1b[2K' : '');
  return {
    planned: (image, plan) => write(`${clear()}${planText(image, plan)}\n`),
    progress(bytes, total) {
      const at = now();
      if (at - lastDraw < REDRAW_MS && bytes !== total) return;
      lastDraw = at;
      drawn = true;
      const share = total === undefined || total === 0 ? '' : ` ${Math.floor((100 * bytes) / total)}%`;
      write(`\r\x1b[2K${formatSize(bytes)}${total === undefined ? '' : ` / ${formatSize(total)}`}${share}${rate(bytes, at - started)}`);
    },
    warning: (image, text) => write(`${clear()}${image}: WARNING: ${text}\n`),
    line(text) {
      write(`${clear()}${text}\n`);
      drawn = false;
    },
  };
}
