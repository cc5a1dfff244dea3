import type { StatusReport } from './status-report.js';

/** Seconds between the page's own reloads (a meta refresh: works without JavaScript). */
export const REFRESH_SECONDS = 15;

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
/** Text for HTML content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
/** `1536` → `1.5 KiB`. */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value.toFixed(0) : value.toFixed(1)} ${UNITS[unit] ?? 'B'}`;
}

/** A ratio as a percentage with one decimal (`0.6667` → `66.7%`); `–` when there is none yet. */
export function formatPercent(ratio: number | null): string {
  return ratio === null ? '–' : `${(ratio * 100).toFixed(1)}%`;
}

function formatDuration(seconds: number): string {
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
  return `${Math.floor(seconds / 86_400)} d ${Math.floor((seconds % 86_400) / 3600)} h`;
}

/** `2026-12-07T10:00:00.000Z` → `10:00:00 UTC` (today) or `2026-12-06 10:00 UTC`, with how long ago. */
function formatTime(iso: string | null, now: string): string {
  if (iso === null) return '–';
  const at = Date.parse(iso);
  const ago = Math.max(0, Math.round((Date.parse(now) - at) / 1000));
  const day = iso.slice(0, 10) === now.slice(0, 10);
  return `${day ? iso.slice(11, 19) : `${iso.slice(0, 10)} ${iso.slice(11, 16)}`} UTC (${formatDuration(ago)} ago)`;
}

/** A figure with its raw value beside the text, so checks (and scripts) need not parse the formatting. */
function figure(name: string, value: number | string | null, text: string): string {
  return `<span data-figure="${escapeHtml(name)}" data-value="${escapeHtml(String(value ?? ''))}">${escapeHtml(text)}</span>`;
}

function bar(fraction: number, label: string): string {
  const width = Math.max(0, Math.min(100, fraction * 100)).toFixed(1);
  return `<div class="bar" role="img" aria-label="${escapeHtml(label)}"><div style="width:${width}%"></div></div>`;
}

/** Requests per minute of the last hour as stacked bars (hits below, misses above), inline SVG. */
function chart(history: StatusReport['history']): string {
  const width = 600;
  const height = 90;
  const step = width / Math.max(1, history.length);
  const most = Math.max(1, ...history.map((m) => m.hits + m.misses));
  const bars = history
    .map((m, i) => {
      const x = (i * step + 1).toFixed(1);
      const w = Math.max(1, step - 2).toFixed(1);
      const hit = (m.hits / most) * height;
      const miss = (m.misses / most) * height;
      const title = `${m.minute.slice(11, 16)} UTC: ${m.hits} hits, ${m.misses} misses`;
      return (
        `<g><title>${escapeHtml(title)}</title>` +
        `<rect class="hit" x="${x}" y="${(height - hit).toFixed(1)}" width="${w}" height="${hit.toFixed(1)}"/>` +
        `<rect class="miss" x="${x}" y="${(height - hit - miss).toFixed(1)}" width="${w}" height="${miss.toFixed(1)}"/></g>`
      );
    })
    .join('');
  return `<svg class="chart" viewBox="0 0 ${width} ${height}" preserveAspectRatio="none" role="img" aria-label="requests per minute, last hour: hits and misses">${bars}</svg>`;
}

function table(head: string[], rows: string[][], empty: string): string {
  if (rows.length === 0) return `<p class="muted">${escapeHtml(empty)}</p>`;
  return `<table><thead><tr>${head.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
}

const STYLE = `
:root{--bg:#f6f7f9;--card:#fff;--ink:#1d2433;--muted:#667085;--ok:#12a150;--bad:#d92d20;--hit:#2e90fa;--miss:#f79009;--line:#e4e7ec}
@media (prefers-color-scheme:dark){:root{--bg:#111418;--card:#1b2027;--ink:#e6e9ef;--muted:#98a2b3;--line:#2c333d}}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--bg);color:var(--ink)}
header{display:flex;gap:1rem;align-items:baseline;flex-wrap:wrap;padding:1rem 1.5rem;border-bottom:1px solid var(--line);background:var(--card)}
header h1{font-size:1.25rem;margin:0}main{padding:1rem 1.5rem;display:grid;gap:1rem;grid-template-columns:repeat(auto-fit,minmax(220px,1fr))}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:.9rem 1rem}section.wide{grid-column:1/-1}
h2{font-size:.8rem;text-transform:uppercase;letter-spacing:.05em;color:var(--muted);margin:0 0 .5rem}
.big{font-size:2rem;font-weight:650}.muted{color:var(--muted)}.small{font-size:.85em}
table{width:100%;border-collapse:collapse}th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}th{color:var(--muted);font-weight:500}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.bar{height:8px;background:var(--line);border-radius:4px;overflow:hidden;margin:.35rem 0}.bar div{height:100%;background:var(--hit)}
.ok{color:var(--ok)}.bad{color:var(--bad)}.chart{width:100%;height:90px;display:block}.chart .hit{fill:var(--hit)}.chart .miss{fill:var(--miss)}
.legend span{display:inline-block;width:.7em;height:.7em;border-radius:2px;margin:0 .3em 0 .8em}code{font-size:.9em}
`;

/**
 * The status page, rendered on the server from the same report as `/api/status`: self-contained (inline
 * CSS and SVG, no scripts, fonts or images from elsewhere), reloads itself, every figure correct without
 * JavaScript. Every value from the report is escaped.
 */
export function renderStatusPage(report: StatusReport): string {
  const now = report.generatedAt;
  const { cache, requests, bytes } = report;
  const used = cache.maxBytes > 0 ? cache.bytes / cache.maxBytes : 0;
  const registries = report.registries.map((r) => [
    `<strong data-registry="${escapeHtml(r.name)}">${escapeHtml(r.name)}</strong><br><span class="muted small">${escapeHtml(r.url)}</span>`,
    r.healthy ? '<span class="ok">● healthy</span>' : '<span class="bad">● failing</span>',
    escapeHtml(formatTime(r.lastSuccess, now)),
    r.lastError === null ? '–' : `${escapeHtml(formatTime(r.lastError.time, now))}<br><span class="small">${escapeHtml(r.lastError.reason)}</span>`,
    `${escapeHtml(r.credential.kind)}${r.credential.expiresAt === null ? '' : `<br><span class="small">expires ${escapeHtml(formatTime(r.credential.expiresAt, now))}</span>`}`,
    r.rateLimit === null
      ? '<span class="muted">not stated</span>'
      : `${figure(`ratelimit-remaining:${r.name}`, r.rateLimit.remaining, r.rateLimit.remaining === null ? '?' : String(r.rateLimit.remaining))} of ${escapeHtml(r.rateLimit.limit === null ? '?' : String(r.rateLimit.limit))}` +
        (r.rateLimit.windowSeconds === null ? '' : ` <span class="muted small">per ${escapeHtml(formatDuration(r.rateLimit.windowSeconds))}</span>`),
  ]);
  const repositories = report.topRepositories.map((r) => [
    `<code data-repository="${escapeHtml(r.name)}">${escapeHtml(r.name)}</code>`,
    `<span class="num">${escapeHtml(String(r.pulls))}</span>`,
    escapeHtml(formatBytes(r.bytes)),
  ]);
  const pulls = report.pulls.map((p) => [
    `<code>${escapeHtml(p.repository)}</code><br><span class="muted small">${escapeHtml(p.digest.slice(0, 19))}…</span>`,
    `${escapeHtml(formatBytes(p.bytes))}${p.size === undefined ? '' : ` of ${escapeHtml(formatBytes(p.size))}`}${p.size === undefined || p.size === 0 ? '' : bar(p.bytes / p.size, 'progress')}`,
  ]);
  const workers = report.workers.map((w) => [escapeHtml(w.id), escapeHtml(String(w.pid)), '<span class="ok">serving</span>', escapeHtml(formatDuration(w.uptimeSeconds)), escapeHtml(String(w.requests)), escapeHtml(String(w.pullsInProgress))]);
  const members = report.cluster?.members.map((m) => [escapeHtml(m.id) + (m.id === report.cluster?.self ? ' <span class="muted">(this one)</span>' : ''), m.live ? '<span class="ok">live</span>' : '<span class="bad">down</span>']) ?? [];
  const recent = report.recent.map((e) => [
    escapeHtml(formatTime(e.time, now)),
    e.kind === 'refused' ? 'refused' : '<span class="bad">upstream</span>',
    escapeHtml([e.registry, e.repository].filter((x) => x !== undefined).join('/') || '–') + (e.user === undefined ? '' : ` <span class="muted">(${escapeHtml(e.user)})</span>`),
    escapeHtml(e.reason),
  ]);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta http-equiv="refresh" content="${REFRESH_SECONDS}"><title>pullgate status</title><style>${STYLE}</style></head>
<body><header><h1>pullgate</h1><span class="muted">version ${escapeHtml(report.version)} · up ${escapeHtml(formatDuration(report.uptimeSeconds))} · ${escapeHtml(now.slice(0, 19).replace('T', ' '))} UTC · reloads every ${REFRESH_SECONDS} s · <a href="/api/status">JSON</a></span></header>
<main>
<section><h2>Hit ratio (requests)</h2><div class="big">${figure('hit-ratio', requests.hitRatio, formatPercent(requests.hitRatio))}</div>
<div class="muted">${figure('hits', requests.hits, String(requests.hits))} hits · ${figure('misses', requests.misses, String(requests.misses))} misses · ${figure('requests', requests.total, String(requests.total))} requests</div></section>
<section><h2>Hit ratio (bytes)</h2><div class="big">${figure('byte-hit-ratio', bytes.hitRatio, formatPercent(bytes.hitRatio))}</div>
<div class="muted">${figure('bytes-served', bytes.served, formatBytes(bytes.served))} served · ${figure('bytes-upstream', bytes.fromUpstream, formatBytes(bytes.fromUpstream))} from upstream</div></section>
<section><h2>Bytes saved</h2><div class="big">${figure('bytes-saved', bytes.saved, formatBytes(bytes.saved))}</div><div class="muted">served without going upstream</div></section>
<section><h2>Cache</h2><div class="big">${figure('cache-bytes', cache.bytes, formatBytes(cache.bytes))}</div>${bar(used, 'cache use')}
<div class="muted">of ${figure('cache-max', cache.maxBytes, formatBytes(cache.maxBytes))} (storage.maxSize) · ${figure('cache-blobs', cache.blobs, String(cache.blobs))} blobs · ${figure('cache-manifests', cache.manifests, String(cache.manifests))} manifests · ${figure('cache-tags', cache.tags, String(cache.tags))} tags</div>
<div class="muted small">shared tier: ${cache.shared === null ? 'none' : `s3 bucket <code>${escapeHtml(cache.shared.bucket)}</code>${cache.shared.endpoint === undefined ? '' : ` at ${escapeHtml(cache.shared.endpoint)}`}`}</div></section>
<section class="wide"><h2>Requests per minute, last hour</h2>${chart(report.history)}<div class="legend muted small"><span style="background:var(--hit)"></span>hits<span style="background:var(--miss)"></span>misses</div></section>
<section class="wide"><h2>Upstream registries</h2>${table(['registry', 'health', 'last success', 'last error', 'credential', 'rate limit remaining'], registries, 'no registries configured')}</section>
<section class="wide"><h2>Top repositories</h2>${table(['repository', 'pulls', 'bytes served'], repositories, 'nothing pulled yet')}</section>
<section class="wide"><h2>Pulls in progress</h2>${table(['blob', 'progress'], pulls, 'none right now')}</section>
<section class="wide"><h2>Processes</h2>${table(['process', 'pid', 'state', 'up', 'requests', 'pulls in progress'], workers, 'none')}${members.length === 0 ? '' : `<h2 style="margin-top:1rem">Cluster members</h2>${table(['member', 'state'], members, 'none')}`}</section>
<section class="wide"><h2>Recent refusals and upstream errors</h2>${table(['time', 'kind', 'repository', 'reason'], recent, 'none')}</section>
</main></body></html>
`;
}
