const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};

/** Parses a duration such as `30s`, `5m`, `24h`, `1h30m` or `250ms` into milliseconds; throws on anything else. */
export function parseDuration(text: string): number {
  const trimmed = text.trim();
  const part = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let total = 0;
  let consumed = 0;
  for (let match = part.exec(trimmed); match; match = part.exec(trimmed)) {
    const [whole, value = '', unit = ''] = match;
    total += Number(value) * (DURATION_UNITS_MS[unit] ?? Number.NaN);
    consumed += whole.length;
  }
  if (trimmed === '0') return 0;
  if (consumed === 0 || consumed !== trimmed.length || !Number.isFinite(total)) {
    throw new Error(`"${text}" is not a duration (examples: 30s, 5m, 24h, 1h30m)`);
  }
  return Math.round(total);
}

/** Parses a size such as `512MiB`, `20GiB`, `1.5GB` or a plain byte count into bytes; throws on anything else. */
export function parseSize(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(text.trim());
  const unit = (match?.[2] ?? '').toLowerCase() || 'b';
  const factor = SIZE_UNITS[unit];
  if (!match || factor === undefined) {
    throw new Error(`"${text}" is not a size (examples: 512MiB, 20GiB, 1000000)`);
  }
  return Math.floor(Number(match[1]) * factor);
}

/** Formats a byte count for humans, in binary units. */
export function formatSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let index = 0;
  while (value >= 1024 && index < units.length - 1) {
    value /= 1024;
    index++;
  }
  return `${index === 0 ? value : value.toFixed(1)}${units[index] ?? 'B'}`;
}

/** Formats milliseconds as the largest exact unit (`5m`, `24h`, `90s`, `250ms`). */
export function formatDuration(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    const size = DURATION_UNITS_MS[unit] ?? 1;
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
