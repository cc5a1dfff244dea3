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
];

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
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    db.close();
    throw new Error(`${file} has schema version ${current}, newer than this pullgate (${MIGRATIONS.length}); upgrade pullgate`);
  }
  MIGRATIONS.slice(current).forEach((sql, offset) => {
    db.transaction(() => {
      db.exec(sql);
      db.pragma(`user_version = ${current + offset + 1}`);
    })();
  });
  return db;
}

export type { Db };
