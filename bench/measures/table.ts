// The measure table: every figure the bench takes, in the order of the report; each runs against its peers.
import type { BenchConfig } from '../lib/config.js';
import { clusterFanOutMeasure } from './cluster-fan-out.js';
import { coldPullMeasure } from './cold-pull.js';
import { evictionMeasure } from './eviction.js';
import { fanOutMeasure } from './fan-out.js';
import { growthMeasure } from './growth.js';
import { manifestByDigest } from './manifest-digest.js';
import { manifestByTag } from './manifest-tag.js';
import { rssMeasure } from './rss.js';
import type { Measure } from './types.js';
import { warmBlob } from './warm-blob.js';
import { warmS3Tier } from './warm-s3-tier.js';

/** One entry per measure; a new measure is one file and one line here. */
export function measureTable(config: BenchConfig): Measure[] {
  return [
    warmBlob,
    manifestByTag,
    manifestByDigest,
    coldPullMeasure(undefined),
    ...config.links.map((shape) => coldPullMeasure(shape)),
    fanOutMeasure,
    clusterFanOutMeasure,
    warmS3Tier,
    rssMeasure,
    growthMeasure,
    evictionMeasure,
  ];
}
