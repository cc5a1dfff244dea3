import { formatSize } from '../config/units.js';
import { platformSummary } from './manifest-content.js';
import type { WarmEvents, WarmSummary } from './warm.js';

/** What `pullgate warm` shows: WarmEvents plus the end of each image. */
export interface WarmDisplay extends WarmEvents {
  done(summary: WarmSummary): void;
  failed(image: string, message: string): void;
}

/** Redraws of a progress bar are at least this far apart. */
const REDRAW_MS = 100;
const BAR_WIDTH = 24;

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function finished(s: WarmSummary): string {
  const where = s.platforms.length > 0 ? `${platformSummary(s.platforms)}: ` : '';
  return `${where}${s.manifests} manifest${s.manifests === 1 ? '' : 's'}, ${s.blobs} blob${s.blobs === 1 ? '' : 's'}, ${formatSize(s.bytes)} in ${seconds(s.ms)}`;
}

/** One line per event, for logs and pipes. */
export function plainDisplay(write: (line: string) => void): WarmDisplay {
  return {
    planned(image, plan) {
      const size = plan.bytes === undefined ? '' : `, ${formatSize(plan.bytes)}`;
      write(`${image}: ${platformSummary(plan.platforms) || 'single-platform image'}: ${plan.blobs} blob${plan.blobs === 1 ? '' : 's'}${size} to fetch`);
      for (const digest of plan.skipped) write(`${image}: skipping foreign layer ${digest} (clients fetch it from its own URLs)`);
    },
    progress() {
      // Plain output reports whole blobs only.
    },
    blob(image, digest, bytes) {
      write(`${image}: ${digest} ${formatSize(bytes)}`);
    },
    warning(image, text) {
      write(`${image}: WARNING: ${text}`);
    },
    done(summary) {
      write(`${summary.image}: warmed ${finished(summary)}`);
    },
    failed(image, message) {
      write(`${image}: FAILED: ${message}`);
    },
  };
}

/** A progress bar per image, redrawn in place on a terminal; the finished line stays. */
export function terminalDisplay(write: (text: string) => void, now: () => number): WarmDisplay {
  let total: number | undefined;
  let blobs = 0;
  let blobsDone = 0;
  let lastDraw = Number.NEGATIVE_INFINITY;
  const draw = (image: string, bytes: number, force: boolean): void => {
    const at = now();
    if (!force && at - lastDraw < REDRAW_MS) return;
    lastDraw = at;
    const share = total === undefined || total === 0 ? undefined : Math.min(1, bytes / total);
    const filled = share === undefined ? 0 : Math.round(share * BAR_WIDTH);
    const bar = `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}]`;
    const amount = total === undefined ? formatSize(bytes) : `${formatSize(bytes)} / ${formatSize(total)}`;
    const percent = share === undefined ? '' : ` ${Math.floor(share * 100)}%`;
    write(`\r\x1b[2K${image} ${bar}${percent} ${amount}, ${blobsDone}/${blobs} blobs`);
  };
  return {
    planned(image, plan) {
      total = plan.bytes;
      blobs = plan.blobs;
      blobsDone = 0;
      lastDraw = Number.NEGATIVE_INFINITY;
      draw(image, 0, true);
    },
    progress(image, bytes) {
      draw(image, bytes, false);
    },
    blob() {
      blobsDone += 1;
    },
    warning(image, text) {
      write(`\r\x1b[2K${image}: WARNING: ${text}\n`);
      lastDraw = Number.NEGATIVE_INFINITY;
    },
    done(summary) {
      write(`\r\x1b[2K${summary.image}: warmed ${finished(summary)}\n`);
    },
    failed(image, message) {
      write(`\r\x1b[2K${image}: FAILED: ${message}\n`);
    },
  };
}
