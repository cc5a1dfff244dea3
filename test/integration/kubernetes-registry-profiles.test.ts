import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MockAgent } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import type { CredentialSource } from '../../src/auth/credential.js';
import { TokenCache } from '../../src/auth/token-cache.js';
import { loadConfigText } from '../../src/config/load.js';
import { RedirectPolicy } from '../../src/upstream/redirect-policy.js';
import { RegistryClient } from '../../src/upstream/registry-client.js';
import { FakeClock } from '../helpers/fake-clock.js';

const ROOT = path.resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const CONFIGS = [
  'deploy/kubernetes/configmap.yaml',
  'deploy/kubernetes/single/configmap.yaml',
  'deploy/kubernetes/node-hosts/configmap.yaml',
  'config/pullgate.yaml',
] as const;
const K8S = 'registry.k8s.io';
const MANIFEST = '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}';
/** Where registry.k8s.io sends a pull today: a regional Artifact Registry host. */
const ARTIFACT_REGISTRY = 'https://us-west1-docker.pkg.dev';

/** The pullgate.yaml a ConfigMap carries (or the embedded config file itself). */
function configTextOf(file: string): string {
  const text = readFileSync(path.join(ROOT, file), 'utf8');
  if (!file.startsWith('deploy/')) return text;
  const [doc] = parseAllDocuments(text);
  const data: unknown = doc === undefined || Array.isArray(doc) ? undefined : doc.toJS();
  const yaml = (data as { data?: Record<string, unknown> } | undefined)?.data?.['pullgate.yaml'];
  if (typeof yaml !== 'string') throw new Error(`${file}: no data["pullgate.yaml"]`);
  return yaml;
}

const anonymous: CredentialSource = {
  get: () => Promise.resolve({ secret: { kind: 'anonymous' }, source: 'test', origin: { kind: 'none', chain: 'test', searched: [], problems: [] }, fingerprint: 'anonymous' }),
  invalidate: () => undefined,
};

const agents: MockAgent[] = [];
afterEach(async () => {
  for (const agent of agents.splice(0)) await agent.close();
});

describe('registry.k8s.io through the shipped configs', () => {
  it.each(CONFIGS)('%s follows registry.k8s.io redirecting a manifest to Artifact Registry', async (file) => {
    const config = loadConfigText(configTextOf(file), { PULLGATE_CLUSTER_SECRET: 'k8s-test-cluster-secret-0123456789', POD_IP: '10.0.0.1' }, file, '/');
    const registry = config.registries.get(K8S);
    if (registry === undefined) throw new Error(`${file}: no ${K8S}`);
    expect(registry.url).toBe(`https://${K8S}`);

    // A registry that answers like registry.k8s.io (a 307 to a regional pkg.dev host) and the host behind it.
    const agent = new MockAgent();
    agents.push(agent);
    agent.disableNetConnect();
    const k8s = agent.get(`https://${K8S}`);
    k8s.intercept({ path: '/v2/pause/manifests/3.10', method: 'GET' }).reply(307, '', { headers: { location: `${ARTIFACT_REGISTRY}/v2/k8s-artifacts-prod/images/pause/manifests/3.10` } });
    const pkg = agent.get(ARTIFACT_REGISTRY);
    pkg.intercept({ path: '/v2/k8s-artifacts-prod/images/pause/manifests/3.10', method: 'GET' }).reply(200, MANIFEST, { headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } });

    const clock = new FakeClock();
    const client = new RegistryClient(registry, {
      dispatcher: agent,
      redirectDispatcher: agent,
      tokens: new TokenCache(() => Promise.reject(new Error('no token exchange expected')), clock),
      credentials: anonymous,
      timeoutMs: 5_000,
      deadlineMs: 30_000,
      maxRedirects: 3,
      // A public address for every name: the redirect is judged by the config's trusted prefixes, not by DNS.
      redirectPolicy: new RedirectPolicy(registry.key, registry.url, registry.redirects, () => Promise.resolve(['34.1.2.3'])),
    });
    // Learn "no challenge" first, as an open registry answers.
    k8s.intercept({ path: '/v2/', method: 'GET' }).reply(200, '{}');
    await client.probe();
    const response = await client.request({ method: 'GET', repository: 'pause', path: '/manifests/3.10', headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    expect(response.status).toBe(200);
    const chunks: Buffer[] = [];
    for await (const chunk of response.body) chunks.push(Buffer.from(chunk as Uint8Array));
    expect(Buffer.concat(chunks).toString()).toBe(MANIFEST);
    agent.assertNoPendingInterceptors();
  });

  it('a registry.k8s.io entry with a url of its own (another server) gets no built-in redirects', () => {
    const config = loadConfigText(`registries:\n  ${K8S}: { url: "http://127.0.0.1:6302" }\n`, {}, 'test', '/');
    expect(config.registries.get(K8S)?.redirects).toEqual([]);
    const own = loadConfigText(`registries:\n  ${K8S}: { redirects: ["https://cdn.example/"] }\n`, {}, 'test', '/');
    expect(own.registries.get(K8S)?.redirects).toEqual(['https://cdn.example/']);
  });
});
