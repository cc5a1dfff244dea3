// The Node ceiling for the bench: the least a Node HTTP server can do to serve the bench's files —
// node:http, no routing, hooks, auth or logging; small files answered from memory, large ones read
// into two reused buffers and written as the socket takes them (what pullgate's blob path does).
// With WORKERS > 1 it forks that many processes sharing the port through node:cluster, as `pullgate serve --workers`
// does: the ceiling of any Node server with that many processes.
// Usage: node node-floor-server.mjs ROOT PORT [WORKERS]
import cluster from 'node:cluster';
import { closeSync, openSync, read, readFileSync, readdirSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';

const [root, port, workersArg] = process.argv.slice(2);
const workers = Number(workersArg ?? '1');
const CHUNK = 256 * 1024;
const files = new Map();
for (const name of readdirSync(root)) {
  const path = join(root, name);
  const size = statSync(path).size;
  files.set(`/${name}`, { path, size, bytes: size <= 1024 * 1024 ? readFileSync(path) : undefined });
}

function stream(res, file) {
  const fd = openSync(file.path, 'r');
  const buffers = [Buffer.allocUnsafeSlow(CHUNK), Buffer.allocUnsafeSlow(CHUNK)];
  const free = [true, true];
  let position = 0;
  let i = 0;
  const done = (err) => {
    closeSync(fd);
    if (err) res.destroy(err);
    else res.end();
  };
  const step = () => {
    if (position >= file.size) return done();
    if (!free[i]) return; // resumed by that buffer's write callback
    const k = i;
    free[k] = false;
    read(fd, buffers[k], 0, Math.min(CHUNK, file.size - position), position, (err, n) => {
      if (err || n === 0) return done(err ?? new Error('short read'));
      position += n;
      res.write(n === CHUNK ? buffers[k] : buffers[k].subarray(0, n), (werr) => {
        free[k] = true;
        if (werr) return;
        if (position < file.size && i === k) step();
      });
      i ^= 1;
      step();
    });
  };
  step();
}

function serve() {
  createServer((req, res) => {
    const file = files.get(req.url ?? '');
    if (file === undefined) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': file.size });
    if (file.bytes !== undefined) res.end(file.bytes);
    else stream(res, file);
  }).listen(Number(port), '127.0.0.1');
}

if (workers > 1 && cluster.isPrimary) {
  for (let i = 0; i < workers; i += 1) cluster.fork();
  // A worker that dies takes the peer down: the bench then reports the failure instead of a half-sized figure.
  cluster.on('exit', () => process.exit(1));
  process.on('SIGTERM', () => {
    cluster.removeAllListeners('exit');
    for (const w of Object.values(cluster.workers ?? {})) w?.kill('SIGTERM');
    process.exit(0);
  });
} else {
  serve();
  process.on('SIGTERM', () => process.exit(0));
}
