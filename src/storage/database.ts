import Database from 'better-sqlite3';

type Db = Database.Database;

/** Schema migrations, applied in order; `PRAGMA user_version` records how many have run. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE blobs (
     digest      TEXT PRIMARY KEY,
     size        INTEGER NOT NULL,
     kind        TEXT NOT NULL CHECK (kind IN ('blob', 'manifest')),
     media_type  TEXT,
     created_at  INTEGER NOT NULL,
     last_access INTEGER NOT NULL
   );
   CREATE INDEX blobs_last_access ON blobs (last_access);
   CREATE TABLE links (
     registry   TEXT NOT NULL,
     repository TEXT NOT NULL,
     digest     TEXT NOT NULL REFERENCES blobs (digest) ON DELETE CASCADE,
     PRIMARY KEY (registry, repository, digest)
   ) WITHOUT ROWID;
   CREATE INDEX links_digest ON links (digest);
   CREATE TABLE tags (
     registry     TEXT NOT NULL,
     repository   TEXT NOT NULL,
     tag          TEXT NOT NULL,
     digest       TEXT NOT NULL,
     media_type   TEXT NOT NULL,
     validated_at INTEGER NOT NULL,
     PRIMARY KEY (registry, repository, tag)
   ) WITHOUT ROWID;`,
  // The host's cache size, shared by every process over this index (serve --workers): one row kept exact by
  // triggers inside the transactions that add or delete blob rows, filled here from the rows an older index
  // already holds. And the lease that lets one process at a time run an eviction pass.
  `CREATE TABLE usage (
     id    INTEGER PRIMARY KEY CHECK (id = 1),
     bytes INTEGER NOT NULL,
     count INTEGER NOT NULL
   );
   INSERT INTO usage (id, bytes, count) SELECT 1, COALESCE(SUM(size), 0), COUNT(*) FROM blobs;
   CREATE TRIGGER blobs_usage_insert AFTER INSERT ON blobs BEGIN
     UPDATE usage SET bytes = bytes + NEW.size, count = count + 1 WHERE id = 1;
   END;
   CREATE TRIGGER blobs_usage_delete AFTER DELETE ON blobs BEGIN
     UPDATE usage SET bytes = bytes - OLD.size, count = count - 1 WHERE id = 1;
   END;
   CREATE TRIGGER blobs_usage_resize AFTER UPDATE OF size ON blobs BEGIN
     UPDATE usage SET bytes = bytes + NEW.size - OLD.size WHERE id = 1;
   END;
   CREATE TABLE leases (
     name       TEXT PRIMARY KEY,
     holder     TEXT,
     expires_at INTEGER NOT NULL
   ) WITHOUT ROWID;
   INSERT INTO leases (name, holder, expires_at) VALUES ('eviction', NULL, 0);`,
  // Manifests and tags counted in the usage row too, so `cache stats` reads one row instead of scanning a
  // million (0.2–1 s at 1M rows, more than half of the command's time when the pages are not in memory).
  `ALTER TABLE usage ADD COLUMN manifests INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE usage ADD COLUMN tags INTEGER NOT NULL DEFAULT 0;
   UPDATE usage SET manifests = (SELECT COUNT(*) FROM blobs WHERE kind = 'manifest'), tags = (SELECT COUNT(*) FROM tags) WHERE id = 1;
   DROP TRIGGER blobs_usage_insert;
   CREATE TRIGGER blobs_usage_insert AFTER INSERT ON blobs BEGIN
     UPDATE usage SET bytes = bytes + NEW.size, count = count + 1, manifests = manifests + (NEW.kind = 'manifest') WHERE id = 1;
   END;
   DROP TRIGGER blobs_usage_delete;
   CREATE TRIGGER blobs_usage_delete AFTER DELETE ON blobs BEGIN
     UPDATE usage SET bytes = bytes - OLD.size, count = count - 1, manifests = manifests - (OLD.kind = 'manifest') WHERE id = 1;
   END;
   CREATE TRIGGER blobs_usage_kind AFTER UPDATE OF kind ON blobs BEGIN
     UPDATE usage SET manifests = manifests + (NEW.kind = 'manifest') - (OLD.kind = 'manifest') WHERE id = 1;
   END;
   CREATE TRIGGER tags_usage_insert AFTER INSERT ON tags BEGIN
     UPDATE usage SET tags = tags + 1 WHERE id = 1;
   END;
   CREATE TRIGGER tags_usage_delete AFTER DELETE ON tags BEGIN
     UPDATE usage SET tags = tags - 1 WHERE id = 1;
   END;`,
  // `pullgate import`: when a tag was imported from a bundle (NULL for tags learnt from upstream). An imported
  // tag is served when upstream is unreachable however old it is: an air-gapped mirror has no upstream.
  // `import --pin`: the digests of an imported image kept out of eviction until `cache unpin REF` (a digest
  // stays while any image pins it; a row goes with its blob when `cache rm` removes that).
  `ALTER TABLE tags ADD COLUMN imported_at INTEGER;
   CREATE TABLE pins (
     registry   TEXT NOT NULL,
     repository TEXT NOT NULL,
     reference  TEXT NOT NULL,
     digest     TEXT NOT NULL REFERENCES blobs (digest) ON DELETE CASCADE,
     PRIMARY KEY (registry, repository, reference, digest)
   ) WITHOUT ROWID;
   CREATE INDEX pins_digest ON pins (digest);`,
];

/** How many migrations this version of pullgate knows; an index at this version is current. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/** WAL bytes kept on disk after a checkpoint resets the log (beyond this the file is truncated). */
const WAL_SIZE_LIMIT = 64 * 1024 * 1024;

/** Opens (creating if needed) the SQLite index in WAL mode and brings its schema up to date. */
export function openDatabase(file: string): Db {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT}`);
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  const version = (): number => db.pragma('user_version', { simple: true }) as number;
  const current = version();
  if (current > MIGRATIONS.length) {
    db.close();
    throw new Error(`${file} has schema version ${current}, newer than this pullgate (${MIGRATIONS.length}); upgrade pullgate`);
  }
  if (current < MIGRATIONS.length) {
    // One write transaction that reads the version again inside it: two processes opening an old index at
    // once (a primary and `cache stats`) migrate it once, the second finding it current.
    db.transaction(() => {
      const from = version();
      MIGRATIONS.slice(from).forEach((sql, offset) => {
        db.exec(sql);
        db.pragma(`user_version = ${from + offset + 1}`);
      });
    }).immediate();
  }
  return db;
}

export type { Db };
