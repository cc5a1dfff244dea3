import { MemoryContentIndex } from '../../src/storage/memory-index.js';
import { SqliteContentIndex } from '../../src/storage/sqlite-index.js';
import { runContentIndexContract } from './content-index.contract.js';

runContentIndexContract('memory', () => new MemoryContentIndex());
runContentIndexContract('sqlite', () => SqliteContentIndex.open(':memory:'));
