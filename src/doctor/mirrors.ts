import type { Config, RegistryConfig } from '../config/config.js';
import { describeError } from '../core/errors.js';
import { DEFAULT_MANIFEST_ACCEPT } from '../proxy/manifests.js';
import { byDigest } from '../upstream/endpoint-chain.js';
import { drain } from '../upstream/http.js';
import { createMirrorClient, createTokenCache, type ClientDeps } from '../upstream/upstreams.js';

/** What doctor asks of a registry's mirrors: the repository, the reference asked, and the digest `url` gave for it (if any). */
export interface MirrorCheck {
  repository: string;
  reference: string;
  digest: string | undefined;
}

/**
 * Asks each mirror of a registry, in order and with its own credentials, for the manifest as pullgate
 * would (a tag only of `tags: true` mirrors; others by the digest `url` gave), one line per mirror with
 * its state. Returns the first mirror that has it, or undefined.
 */
export async function checkMirrors(registry: RegistryConfig, config: Config, deps: ClientDeps, check: MirrorCheck, line: (step: string, text: string) => void): Promise<string | undefined> {
  let serving: string | undefined;
  const mirrors = registry.mirrors ?? [];
  for (const [i, mirror] of mirrors.entries()) {
    const name = `${i + 2}. ${mirror.url} (${mirror.tags ? 'tags and digests' : 'digests only'})`;
    const reference = byDigest(`/manifests/${check.reference}`) || mirror.tags ? check.reference : check.digest;
    if (reference === undefined) {
      line('mirror', `${name}: not asked for tag ${check.reference}, and ${registry.key} gave no digest to ask by`);
      continue;
    }
    const client = createMirrorClient(registry, mirror, config, deps, createTokenCache(config, deps));
    try {
      const response = await client.request({ method: 'HEAD', repository: check.repository, path: `/manifests/${reference}`, headers: { accept: DEFAULT_MANIFEST_ACCEPT } });
      drain(response.body);
      const state = response.status === 200 ? 'up, has it' : response.status >= 500 || response.status === 429 ? 'failing' : response.status === 404 ? 'up, does not have it' : 'up';
      line('mirror', `${name}: HEAD ${mirror.url}/v2/${check.repository}/manifests/${reference} → ${response.status} (${state})`);
      if (response.status === 200) serving ??= mirror.url;
    } catch (err) {
      line('mirror', `${name}: failing: ${describeError(err)}`);
    }
  }
  return serving;
}
