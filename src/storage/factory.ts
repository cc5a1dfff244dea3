import type { Config, S3Config } from '../config/config.js';
import type { Logger } from 'pino';
import type { Clock } from '../core/deps.js';
import type { ContentStore } from './content-store.js';
import { S3ContentStore } from './s3-store.js';

/**
 * Which shared store to build, with what it needs. The local tier is always the filesystem store on
 * `storage.path`, which the cache opens itself; a new shared backend is a new kind here.
 */
export type StoreSpec = { kind: 's3' } & S3Config;

export type StoreKind = StoreSpec['kind'];

/** What a store may need besides its spec. */
export interface StoreDeps {
  clock: Clock;
  logger?: Logger;
}

type Builder<K extends StoreKind> = (spec: Extract<StoreSpec, { kind: K }>, deps: StoreDeps) => ContentStore;

/** One builder per kind: a new kind without an entry does not compile. */
const BUILDERS: { [K in StoreKind]: Builder<K> } = {
  s3: (spec, deps) =>
    new S3ContentStore({
      endpoint: spec.endpoint,
      region: spec.region,
      bucket: spec.bucket,
      prefix: spec.prefix,
      forcePathStyle: spec.forcePathStyle,
      ...(deps.logger === undefined ? {} : { logger: deps.logger }),
    }),
};

/** Builds the content store a spec names. */
export function createContentStore(spec: StoreSpec, deps: StoreDeps): ContentStore {
  // BUILDERS[spec.kind] is the builder of exactly spec's kind; TypeScript cannot correlate the two.
  const build = BUILDERS[spec.kind] as (spec: StoreSpec, deps: StoreDeps) => ContentStore;
  return build(spec, deps);
}

/** The shared store a config asks for: the one `storage.s3` names, if set. */
export function sharedStoreSpec(storage: Config['storage']): StoreSpec | undefined {
  return storage.s3 === undefined ? undefined : { kind: 's3', ...storage.s3 };
}
