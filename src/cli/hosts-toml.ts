import type { Merged } from './client-file.js';

/**
 * The line inside pullgate's `[host."…"]` table that marks it as pullgate's, so a later run (with
 * another mirror address, or `--remove`) finds it among an operator's own hosts.
 */
export const PULLGATE_MARK = '# managed by pullgate (`pullgate hosts containerd --remove` takes it out)';
/** The first line of the files pullgate writes; files of older versions start with it too. */
const OWN_COMMENT = /^# \S+ through pullgate; falls back to /;

/** One table of a hosts.toml: its header line and every line up to the next header. */
interface Table {
  lines: string[];
  /** The URL of `[host."URL"]` and its subtables (`[host."URL".header]`); undefined for other tables. */
  host: string | undefined;
}

interface Parsed {
  /** Top-level lines before the first table: `server = …`, its `capabilities`, `ca`, comments. */
  preamble: string[];
  tables: Table[];
}

const HEADER = /^\s*\[/;
const HOST_HEADER = /^\s*\[\s*host\s*\.\s*"([^"]*)"\s*[.\]]/;
const SERVER = /^\s*server\s*=/;

/**
 * A minimal reader of the hosts.toml subset containerd documents (no TOML library is among the
 * dependencies): a line whose first non-blank character is `[` starts a table, and everything else
 * belongs to the table above it, kept byte for byte. It does not understand multi-line strings or
 * arrays whose lines start with `[`; containerd's hosts.toml has neither.
 */
function parse(text: string): Parsed {
  const parsed: Parsed = { preamble: [], tables: [] };
  const lines = text.replace(/\n$/, '').split('\n');
  for (const line of lines) {
    if (HEADER.test(line)) {
      parsed.tables.push({ lines: [line], host: HOST_HEADER.exec(line)?.[1] });
      continue;
    }
    const table = parsed.tables.at(-1);
    if (table === undefined) parsed.preamble.push(line);
    else table.lines.push(line);
  }
  return parsed;
}

/** Tables written by pullgate: marked ones (with their subtables), the current mirror's, and an old file's own host. */
function ownHosts(parsed: Parsed, mirrorUrl: string | undefined): Set<string> {
  const own = new Set<string>();
  for (const table of parsed.tables) {
    if (table.host === undefined) continue;
    if (table.host === mirrorUrl || table.lines.some((line) => line.trim() === PULLGATE_MARK)) own.add(table.host);
  }
  // A file pullgate wrote before the mark existed: its one host table is pullgate's.
  const legacy = parsed.preamble.some((line) => OWN_COMMENT.test(line));
  const first = parsed.tables.find((table) => table.host !== undefined)?.host;
  if (legacy && own.size === 0 && first !== undefined) own.add(first);
  return own;
}

function trimBlank(lines: string[]): string[] {
  const out = [...lines];
  while (out.length > 0 && out.at(-1)?.trim() === '') out.pop();
  return out;
}

function render(preamble: string[], tables: string[][]): string {
  const blocks = [trimBlank(preamble), ...tables.map(trimBlank)].filter((block) => block.length > 0);
  return `${blocks.map((block) => block.join('\n')).join('\n\n')}\n`;
}

/**
 * pullgate's hosts.toml merged into an existing one: its own earlier host tables are replaced, every
 * other `[host."…"]` table (an operator's or cloud provider's mirror) and the top-level lines (its
 * `server = …`) stay as they are, and pullgate's host goes before the first of them (containerd
 * tries hosts in file order, then `server`). `generated` is the file pullgate writes on its own.
 */
export function mergeHostsToml(existing: string | undefined, generated: string, mirrorUrl: string): Merged {
  if (existing === undefined) return { content: generated, changed: true, note: `pullgate's host ${mirrorUrl}` };
  const ours = parse(generated);
  const parsed = parse(existing);
  const own = ownHosts(parsed, mirrorUrl);
  const kept = parsed.tables.filter((table) => table.host === undefined || !own.has(table.host));
  const preamble = parsed.preamble.some((line) => SERVER.test(line))
    ? parsed.preamble
    : [...parsed.preamble.filter((line) => line.trim() !== ''), ...ours.preamble.filter((line) => SERVER.test(line))];
  const withOwnComment = preamble.some((line) => OWN_COMMENT.test(line)) ? preamble : [...ours.preamble.filter((line) => OWN_COMMENT.test(line)), ...preamble];
  const firstHost = kept.findIndex((table) => table.host !== undefined);
  const at = firstHost === -1 ? kept.length : firstHost;
  const tables = [...kept.slice(0, at).map((t) => t.lines), ...ours.tables.map((t) => t.lines), ...kept.slice(at).map((t) => t.lines)];
  const content = render(withOwnComment, tables);
  const others = new Set(kept.flatMap((table) => (table.host === undefined ? [] : [table.host])));
  const replaced = [...own].filter((host) => host !== mirrorUrl);
  const note = [
    `pullgate's host ${mirrorUrl} first`,
    ...(others.size > 0 ? [`kept ${[...others].join(', ')}`] : []),
    ...(replaced.length > 0 ? [`replaced pullgate's earlier ${replaced.join(', ')}`] : []),
  ].join('; ');
  return { content, changed: content !== existing, note };
}

/**
 * An existing hosts.toml without pullgate's host tables: `content` undefined when nothing but
 * pullgate's lines and `server = …` is left (the file can go), `removed` 0 when it had none.
 */
export function removeFromHostsToml(existing: string): { content: string | undefined; removed: string[] } {
  const parsed = parse(existing);
  const own = ownHosts(parsed, undefined);
  if (own.size === 0) return { content: existing, removed: [] };
  const kept = parsed.tables.filter((table) => table.host === undefined || !own.has(table.host));
  const preamble = parsed.preamble.filter((line) => !OWN_COMMENT.test(line));
  const meaningful = kept.length > 0 || preamble.some((line) => line.trim() !== '' && !line.trim().startsWith('#') && !SERVER.test(line));
  return { content: meaningful ? render(preamble, kept.map((t) => t.lines)) : undefined, removed: [...own] };
}
