/** What a storage failure means to an operator, from the error's code (fs `E…` codes and SQLite's). */
const REASONS: Readonly<Record<string, string>> = {
  EROFS: 'read-only file system',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  ENOENT: 'missing (deleted while running?)',
  ENOTDIR: 'not a directory',
  EIO: 'I/O error',
  SQLITE_READONLY: 'read-only file system (index)',
  SQLITE_FULL: 'no space left on device (index)',
  SQLITE_CANTOPEN: 'cannot open the index',
  SQLITE_IOERR: 'I/O error (index)',
};

/** The error's code (`ENOSPC`, `SQLITE_FULL` …; SQLite's extended codes reduced to the primary one), or `EUNKNOWN`. */
export function storageErrorCode(err: unknown): string {
  const code = err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : 'EUNKNOWN';
  const primary = /^SQLITE_[A-Z]+/.exec(code)?.[0];
  return primary ?? code;
}

/** A short, path-free explanation of a storage failure, e.g. "no space left on device". */
export function storageReason(err: unknown): string {
  const code = storageErrorCode(err);
  return REASONS[code] ?? (err instanceof Error ? err.message : String(err));
}

/** True for a file or directory of the layout that is gone (the storage directory was deleted). */
export function isMissing(err: unknown): boolean {
  return storageErrorCode(err) === 'ENOENT';
}

/** True when the device or quota is full: eviction may help. */
export function isFull(err: unknown): boolean {
  const code = storageErrorCode(err);
  return code === 'ENOSPC' || code === 'EDQUOT' || code === 'SQLITE_FULL';
}

/** True for failures of the file system (any error of a system call) or of SQLite's files, as opposed to a programming error. */
export function isStorageError(err: unknown): boolean {
  if (err instanceof Error && 'syscall' in err && typeof err.syscall === 'string') return true;
  return storageErrorCode(err) in REASONS;
}
