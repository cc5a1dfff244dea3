// Names the whole bench shares: the repositories it pushes, the tag, the upstream's users, the Accept header.
import { OCI_MANIFEST } from '../../support/oci-layout.js';

export const MiB = 1024 * 1024;
export const TAG = '1';
export const REPO = { small: 'bench/small', big: 'bench/big', multi: 'bench/multi' } as const;
/** The upstream account the mirrors and the direct pulls use (pull only). */
export const PULLER = { username: 'puller', password: 'bench-pull-5d8e' } as const;
/** The upstream account that pushes the images (pull and push). */
export const SEEDER = { username: 'seeder', password: 'bench-push-a41b' } as const;
export const ACCEPT = `${OCI_MANIFEST}, application/vnd.docker.distribution.manifest.v2+json`;
/** pullgate's cache.tagTTL in the bench: every manifest-by-tag figure is a hit within the TTL. */
export const TAG_TTL = '5m';
