#!/usr/bin/env node
// Fails (exit 1) when src/ has an import cycle between files (type imports included) or between its layers:
// each top folder of src/ (auth/sources belongs to auth) imports only folders below it, so the folders read
// as one order (see the README's Architecture). Run by `npm run lint`; `node scripts/check-imports.mjs [DIR]`.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Relative import specifiers of one TypeScript source (static, type-only, re-exports and dynamic). */
export function importsOf(text) {
  const specs = [];
  for (const m of text.matchAll(/(?:^|[\s;])(?:import|export)\s[^'";]*?from\s+'(\.{1,2}\/[^']+)'/g)) specs.push(m[1]);
  for (const m of text.matchAll(/(?:^|[\s;])import\s+'(\.{1,2}\/[^']+)'/g)) specs.push(m[1]);
  for (const m of text.matchAll(/import\(\s*'(\.{1,2}\/[^']+)'\s*\)/g)) specs.push(m[1]);
  return specs;
}

/** Strongly connected components of more than one node (or a node importing itself). */
export function cycles(nodes, next) {
  let counter = 0;
  const index = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const found = [];
  const visit = (v) => {
    index.set(v, counter);
    low.set(v, counter);
    counter += 1;
    stack.push(v);
    onStack.add(v);
    for (const w of next(v)) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), index.get(w)));
    }
    if (low.get(v) !== index.get(v)) return;
    const component = [];
    let w;
    do {
      w = stack.pop();
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || next(v).includes(v)) found.push(component.sort());
  };
  for (const n of nodes) if (!index.has(n)) visit(n);
  return found;
}

/** A file's layer: its top folder under src/ (auth/sources belongs to auth), or "." for the entry files beside them. */
export function layerOf(file) {
  const dir = path.dirname(file);
  return dir === '.' ? '.' : dir.split(path.sep)[0];
}

/** The import graph of every .ts file under root: file → files it imports, and folder → folder edges with an example. */
export function importGraph(root) {
  const files = [];
  const walk = (dir) => {
    for (const entry of readdirSync(dir)) {
      const full = path.join(dir, entry);
      if (statSync(full).isDirectory()) walk(full);
      else if (full.endsWith('.ts')) files.push(path.relative(root, full));
    }
  };
  walk(root);
  const known = new Set(files);
  const fileEdges = new Map();
  for (const file of files) {
    const targets = importsOf(readFileSync(path.join(root, file), 'utf8'))
      .map((spec) => path.normalize(path.join(path.dirname(file), spec.replace(/\.js$/, '.ts'))))
      .filter((target) => known.has(target));
    fileEdges.set(file, [...new Set(targets)]);
  }
  const folderEdges = new Map();
  for (const [file, targets] of fileEdges) {
    for (const target of targets) {
      const from = layerOf(file);
      const to = layerOf(target);
      if (from === to) continue;
      const edges = folderEdges.get(from) ?? new Map();
      if (!edges.has(to)) edges.set(to, `${file} -> ${target}`);
      folderEdges.set(from, edges);
    }
  }
  return { files, fileEdges, folderEdges };
}

/** Human-readable problems: one line per cycle. */
export function problems(root) {
  const { files, fileEdges, folderEdges } = importGraph(root);
  const out = [];
  for (const c of cycles(files, (f) => fileEdges.get(f) ?? [])) out.push(`file cycle: ${c.join(' <-> ')}`);
  const folders = [...new Set(files.map(layerOf))];
  for (const c of cycles(folders, (d) => [...(folderEdges.get(d)?.keys() ?? [])])) {
    const examples = c.flatMap((from) => c.filter((to) => folderEdges.get(from)?.has(to)).map((to) => folderEdges.get(from).get(to)));
    out.push(`folder cycle: ${c.join(' <-> ')} (${examples.join('; ')})`);
  }
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const root = process.argv[2] ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'src');
  const found = problems(root);
  for (const line of found) console.error(`check-imports: ${line}`);
  if (found.length > 0) process.exit(1);
  console.log(`check-imports: no import cycle between files or folders under ${path.relative(process.cwd(), root) || '.'}`);
}
