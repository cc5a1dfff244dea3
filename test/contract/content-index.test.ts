import { SqliteContentIndex } from '../../src/storage/sqlite-index.js';
import { runContentIndexContract } from './content-index.contract.js';

// The implementation production uses (SQLite), in memory: as fast as a Map-based reference would be.
runContentIndexContract('sqlite', () => SqliteContentIndex.open(':memory:'));
