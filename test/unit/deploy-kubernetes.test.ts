import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { loadConfigText } from '../../src/config/load.js';

const ROOT = path.resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const DEPLOY = path.join(ROOT, 'deploy', 'kubernetes');
const work = mkdtempSync(path.join(tmpdir(), 'pullgate-k8s-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A value from YAML seen through the few shapes these tests need, without `any`. */
type Node = Record<string, unknown>;

function isNode(value: unknown): value is Node {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function node(value: unknown, where: string): Node {
  if (!isNode(value)) throw new Error(`${where}: expected a mapping, got ${JSON.stringify(value)}`);
  return value;
}

function list(value: unknown, where: string): Node[] {
  if (!Array.isArray(value)) throw new Error(`${where}: expected a list, got ${JSON.stringify(value)}`);
  return value.map((item, index) => node(item, `${where}[${index}]`));
}

function first<T>(items: T[], where: string): T {
  const [item] = items;
  if (item === undefined) throw new Error(`${where}: empty`);
  return item;
}

function text(value: unknown, where: string): string {
  if (typeof value !== 'string') throw new Error(`${where}: expected a string, got ${JSON.stringify(value)}`);
  return value;
}

/** Follows a dotted path of keys through mappings. */
function at(root: unknown, dotted: string): unknown {
  let current: unknown = root;
  for (const key of dotted.split('.')) current = isNode(current) ? current[key] : undefined;
  return current;
}

interface Manifest {
  file: string;
  doc: Node;
}

function yamlFiles(dir: string): string[] {
  return readdirSync(dir)
    .flatMap((name) => {
      const full = path.join(dir, name);
      return statSync(full).isDirectory() ? yamlFiles(full) : name.endsWith('.yaml') ? [full] : [];
    })
    .sort();
}

function parseFile(file: string): Node[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'));
  if (!Array.isArray(docs)) throw new Error(`${file}: empty`);
  return docs.map((doc, index) => {
    if (doc.errors.length > 0) throw new Error(`${file} document ${index}: ${doc.errors.map((e) => e.message).join('; ')}`);
    return node(doc.toJS(), `${file} document ${index}`);
  });
}

/** The manifests a kustomization lists, in its order. */
function kustomization(dir: string): { kustomization: Node; manifests: Manifest[] } {
  const kustomization = node(parseFile(path.join(dir, 'kustomization.yaml'))[0], `${dir}/kustomization.yaml`);
  const resources = (kustomization.resources as unknown[]).map((entry) => text(entry, 'resources'));
  const manifests = resources.flatMap((resource) => parseFile(path.join(dir, resource)).map((doc) => ({ file: path.join(dir, resource), doc })));
  return { kustomization, manifests };
}

function find(manifests: Manifest[], kind: string, name: string): Node {
  const found = manifests.filter(({ doc }) => doc.kind === kind && at(doc, 'metadata.name') === name);
  expect(found.map(({ file }) => path.relative(DEPLOY, file)), `${kind}/${name}`).toHaveLength(1);
  return first(found, `${kind}/${name}`).doc;
}

function matches(selector: unknown, labels: unknown): boolean {
  const wanted = Object.entries(node(selector, 'selector'));
  const have = node(labels, 'labels');
  return wanted.length > 0 && wanted.every(([key, value]) => have[key] === value);
}

function configText(configMap: Node): string {
  return text(node(configMap.data, 'data')['pullgate.yaml'], 'data["pullgate.yaml"]');
}

/** The env a container gets from its `env` list, with a stand-in value for every secret or field reference. */
function containerEnv(container: Node, values: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const entry of list(container.env ?? [], 'env')) {
    const name = text(entry.name, 'env.name');
    env[name] = typeof entry.value === 'string' ? entry.value : (values[name] ?? `value-of-${name}`);
  }
  return env;
}

function volumeMount(container: Node, volume: string): string {
  const mount = list(container.volumeMounts, 'volumeMounts').find((entry) => entry.name === volume);
  return text(mount?.mountPath, `volumeMounts ${volume}`);
}

function volume(podSpec: Node, name: string): Node {
  return node(list(podSpec.volumes, 'volumes').find((entry) => entry.name === name), `volume ${name}`);
}

/** Runs the CLI from source, as `pullgate …` would run (the built dist/ may lag the tree). */
function cli(args: string[], env: NodeJS.ProcessEnv): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli.ts'), ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: work, PULLGATE_CONFIG: '', ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

const SECRET = 'k8s-test-cluster-secret-0123456789';
const main = kustomization(DEPLOY);
const single = kustomization(path.join(DEPLOY, 'single'));
const nodeHosts = kustomization(path.join(DEPLOY, 'node-hosts'));
const deployment = find(main.manifests, 'Deployment', 'pullgate');
const podSpec = node(at(deployment, 'spec.template.spec'), 'pod spec');
const podLabels = at(deployment, 'spec.template.metadata.labels');
const container = first(list(podSpec.containers, 'containers'), 'containers');
const configMap = find(main.manifests, 'ConfigMap', 'pullgate-config');
const namespace = text(main.kustomization.namespace, 'namespace');

describe('deploy/kubernetes manifests', () => {
  it('every YAML file parses, every object has apiVersion, kind and metadata.name, and every manifest is listed in its kustomization', () => {
    const listed = new Set([...main.manifests, ...single.manifests, ...nodeHosts.manifests].map(({ file }) => file));
    for (const file of yamlFiles(DEPLOY)) {
      for (const doc of parseFile(file)) {
        expect(typeof doc.apiVersion, file).toBe('string');
        expect(typeof doc.kind, file).toBe('string');
        if (doc.kind === 'Kustomization') continue;
        expect(typeof at(doc, 'metadata.name'), file).toBe('string');
        expect(listed.has(file), `${path.relative(DEPLOY, file)} is in no kustomization`).toBe(true);
      }
    }
    for (const { manifests, kustomization: k } of [main, single, nodeHosts]) {
      for (const { doc, file } of manifests) {
        if (doc.kind !== 'Namespace') expect(at(doc, 'metadata.namespace'), file).toBe(k.namespace);
      }
    }
  });

  it('the Deployment runs 3 replicas of the pullgate image with serve --config, probes on /readyz and /healthz, resources and a locked-down security context', () => {
    expect(at(deployment, 'spec.replicas')).toBe(3);
    expect(matches(at(deployment, 'spec.selector.matchLabels'), podLabels)).toBe(true);
    expect(container.image).toBe('pullgate:latest');
    expect(container.args).toEqual(['serve', '--config', '/etc/pullgate/pullgate.yaml']);
    expect(volumeMount(container, 'config')).toBe('/etc/pullgate');
    expect(at(container, 'readinessProbe.httpGet.path')).toBe('/readyz');
    expect(at(container, 'livenessProbe.httpGet.path')).toBe('/healthz');
    const ports = list(container.ports, 'ports');
    for (const probe of ['readinessProbe', 'livenessProbe']) {
      const port = at(container, `${probe}.httpGet.port`);
      expect(ports.find((entry) => entry.name === port || entry.containerPort === port)?.containerPort, probe).toBe(5000);
    }
    expect(at(container, 'resources.requests.memory')).toBeDefined();
    expect(at(container, 'resources.requests.cpu')).toBeDefined();
    expect(at(container, 'resources.limits.memory')).toBe('256Mi');
    const security = node(container.securityContext, 'securityContext');
    expect(security).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 1000,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(at(podSpec, 'securityContext.seccompProfile.type')).toBe('RuntimeDefault');
    expect(podSpec.automountServiceAccountToken).toBe(false);
    // Service links would add PULLGATE_*_SERVICE_* variables, and unknown PULLGATE_REGISTRY_* ones stop the server.
    expect(podSpec.enableServiceLinks).toBe(false);
    const spread = list(podSpec.topologySpreadConstraints, 'topologySpreadConstraints');
    expect(spread.some((entry) => entry.topologyKey === 'kubernetes.io/hostname' && matches(at(entry, 'labelSelector.matchLabels'), podLabels))).toBe(true);
  });

  it('the PodDisruptionBudget selects the Deployment pods and keeps at least 2 of 3', () => {
    const pdb = find(main.manifests, 'PodDisruptionBudget', 'pullgate');
    expect(matches(at(pdb, 'spec.selector.matchLabels'), podLabels)).toBe(true);
    const spec = node(pdb.spec, 'pdb spec');
    expect(spec.maxUnavailable === 1 || spec.minAvailable === 2).toBe(true);
  });

  it('the client Service serves 5000 and the headless peers Service 5001 with clusterIP None, both on the Deployment pods', () => {
    const client = find(main.manifests, 'Service', 'pullgate');
    expect(matches(at(client, 'spec.selector'), podLabels)).toBe(true);
    expect(list(at(client, 'spec.ports'), 'ports').map((port) => port.port)).toEqual([5000]);
    const peers = find(main.manifests, 'Service', 'pullgate-peers');
    expect(at(peers, 'spec.clusterIP')).toBe('None');
    expect(at(peers, 'spec.publishNotReadyAddresses')).toBe(true);
    expect(matches(at(peers, 'spec.selector'), podLabels)).toBe(true);
    expect(list(at(peers, 'spec.ports'), 'ports').map((port) => port.port)).toEqual([5001]);
  });

  it('the NetworkPolicy admits 5001 only from the Deployment pods, 5000 from the cluster, and leaves egress open', () => {
    const policy = find(main.manifests, 'NetworkPolicy', 'pullgate');
    expect(matches(at(policy, 'spec.podSelector.matchLabels'), podLabels)).toBe(true);
    expect(at(policy, 'spec.policyTypes')).toContain('Ingress');
    const rules = list(at(policy, 'spec.ingress'), 'ingress');
    const portsOf = (rule: Node): unknown[] => list(rule.ports, 'ports').map((port) => port.port);
    // Every rule names its ports: a rule without ports would open 5001 too.
    for (const rule of rules) expect(portsOf(rule).length).toBeGreaterThan(0);
    const peerRules = rules.filter((rule) => portsOf(rule).includes(5001) || portsOf(rule).includes('peer'));
    expect(peerRules).toHaveLength(1);
    const peerFrom = list(first(peerRules, 'peer rules').from, 'from');
    expect(peerFrom).toHaveLength(1);
    expect(Object.keys(first(peerFrom, 'from'))).toEqual(['podSelector']);
    expect(matches(at(peerFrom[0], 'podSelector.matchLabels'), podLabels)).toBe(true);
    expect(rules.some((rule) => portsOf(rule).includes(5000))).toBe(true);
    expect(at(policy, 'spec.egress')).toEqual([{}]);
  });

  it('the ConfigMap passes the config loader with the env the Deployment gives, and its paths and names agree with the other manifests', () => {
    const env = containerEnv(container, { PULLGATE_CLUSTER_SECRET: SECRET, POD_IP: '10.244.1.7' });
    const config = loadConfigText(configText(configMap), env, 'configmap.yaml', '/');
    // Every ${VAR} of the config is set by the Deployment.
    expect(config.unsetVariables).toEqual([]);
    expect(config.listen.port).toBe(5000);
    expect(config.storage.path).toBe(volumeMount(container, 'cache'));
    expect(at(volume(podSpec, 'cache'), 'emptyDir.sizeLimit')).toBeDefined();
    expect(config.storage.s3).toMatchObject({ bucket: 'pullgate', prefix: 'cache/', forcePathStyle: true });
    expect(config.cluster?.listen).toEqual({ host: '0.0.0.0', port: 5001 });
    expect(config.cluster?.peers).toEqual([{ kind: 'dns', name: `pullgate-peers.${namespace}.svc.cluster.local`, port: 5001 }]);
    expect(config.cluster?.secret).toBe(SECRET);
    expect(config.cluster?.self).toBe('10.244.1.7:5001');
    expect(config.clients.anonymous).toBe(true);
    expect(configText(configMap)).toMatch(/^\s*anonymous: true\s*$/m);
    // The S3 keys and the cluster secret come from Secrets that exist and hold those keys.
    for (const name of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'PULLGATE_CLUSTER_SECRET']) {
      const entry = list(container.env, 'env').find((item) => item.name === name);
      const ref = node(at(entry, 'valueFrom.secretKeyRef'), `${name} secretKeyRef`);
      const secret = find(main.manifests, 'Secret', text(ref.name, 'secret name'));
      expect(Object.keys(node(secret.stringData, 'stringData'))).toContain(ref.key);
    }
  });

  it('registry logins are a kubernetes.io/dockerconfigjson Secret whose mounted .dockerconfigjson the config reads', () => {
    const secret = find(main.manifests, 'Secret', 'pullgate-registry');
    expect(secret.type).toBe('kubernetes.io/dockerconfigjson');
    const json = JSON.parse(text(node(secret.stringData, 'stringData')['.dockerconfigjson'], '.dockerconfigjson')) as unknown;
    expect(Object.keys(node(at(json, 'auths'), 'auths')).length).toBeGreaterThan(0);
    expect(at(volume(podSpec, 'registry-auth'), 'secret.secretName')).toBe('pullgate-registry');
    const mount = volumeMount(container, 'registry-auth');
    const config = loadConfigText(configText(configMap), { PULLGATE_CLUSTER_SECRET: SECRET, POD_IP: '10.0.0.1' }, 'configmap.yaml', '/');
    const paths = [...config.registries.values()].flatMap((registry) => (registry.auth.type === 'docker-config' ? [registry.auth.path] : []));
    expect(paths.length).toBeGreaterThan(0);
    for (const file of paths) expect(file).toBe(path.posix.join(mount, '.dockerconfigjson'));
  });

  it('the placeholder cluster secret is refused, so an unedited deployment does not start with a guessable secret', () => {
    const placeholder = text(at(find(main.manifests, 'Secret', 'pullgate-cluster'), 'stringData.secret'), 'secret');
    expect(placeholder).toContain('REPLACE_ME');
    expect(() => loadConfigText(configText(configMap), { PULLGATE_CLUSTER_SECRET: placeholder, POD_IP: '10.0.0.1' }, 'configmap.yaml', '/')).toThrow(
      /cluster\.secret: must be at least 16 characters/,
    );
  });

  it('pullgate config check accepts the extracted ConfigMap config with the Deployment env (exit 0), and masks the secret', () => {
    const file = path.join(work, 'pullgate.yaml');
    writeFileSync(file, configText(configMap));
    const result = cli(['config', 'check', file], { PULLGATE_CLUSTER_SECRET: SECRET, POD_IP: '10.244.1.7' });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout).toContain(`# ${file}: valid`);
    expect(result.stdout).not.toContain(SECRET);
    expect(result.stdout).not.toContain('# warning');
  });
});

describe('deploy/kubernetes/node-hosts', () => {
  const daemonSet = find(nodeHosts.manifests, 'DaemonSet', 'pullgate-node-hosts');
  const spec = node(at(daemonSet, 'spec.template.spec'), 'pod spec');
  const init = first(list(spec.initContainers, 'initContainers'), 'initContainers');
  const command = [...(init.command as string[]), ...(init.args as string[])].join(' ');
  const hostsConfig = configText(find(nodeHosts.manifests, 'ConfigMap', 'pullgate-node-hosts'));

  it('an init container with the pullgate image writes hosts.toml into the host /etc/containerd/certs.d, then a pause container stays', () => {
    expect(init.image).toBe('pullgate:latest');
    expect(command).toContain('hosts containerd');
    expect(command).toContain('--out /host/etc/containerd/certs.d');
    expect(command).toContain('--config /etc/pullgate/pullgate.yaml');
    expect(command).toContain('--mirror "$mirror"');
    // A way to take pullgate's hosts out again before the DaemonSet goes (MODE=remove).
    expect(command).toContain('hosts containerd --out /host/etc/containerd/certs.d --remove');
    expect(containerEnv(init, {}).MODE).toBe('write');
    expect(volumeMount(init, 'containerd-certs')).toBe('/host/etc/containerd/certs.d');
    expect(at(volume(spec, 'containerd-certs'), 'hostPath.path')).toBe('/etc/containerd/certs.d');
    expect(list(spec.containers, 'containers').map((c) => c.image)).toEqual([expect.stringMatching(/\/pause:/)]);
    expect(at(init, 'securityContext.allowPrivilegeEscalation')).toBe(false);
    expect(at(init, 'securityContext.capabilities.drop')).toEqual(['ALL']);
    expect(spec.automountServiceAccountToken).toBe(false);
    // The mirror address is looked up from the client Service (cluster DNS works in the pod, not on the node).
    const env = containerEnv(init, {});
    const service = find(main.manifests, 'Service', 'pullgate');
    expect(env.MIRROR_SERVICE).toBe(`${text(at(service, 'metadata.name'), 'name')}.${namespace}.svc.cluster.local`);
    expect(env.MIRROR_PORT).toBe(String(first(list(at(service, 'spec.ports'), 'ports'), 'ports').port));
  });

  it('its config lists the same registries, with the same URLs, as the mirror config, and holds no secret', () => {
    const mirror = loadConfigText(configText(configMap), { PULLGATE_CLUSTER_SECRET: SECRET, POD_IP: '10.0.0.1' }, 'configmap.yaml', '/');
    const hosts = loadConfigText(hostsConfig, {}, 'node-hosts/configmap.yaml', '/');
    const urls = (config: typeof mirror): [string, string][] => [...config.registries.values()].map((registry) => [registry.key, registry.url]);
    expect(urls(hosts)).toEqual(urls(mirror));
    expect(hosts.cluster).toBeUndefined();
    expect(hostsConfig).not.toContain('${');
  });

  it('the command the init container runs writes one hosts.toml per registry pointing at the mirror address', () => {
    const file = path.join(work, 'hosts.yaml');
    writeFileSync(file, hostsConfig);
    const out = path.join(work, 'certs.d');
    const result = cli(['hosts', 'containerd', '--config', file, '--out', out, '--mirror', '10.96.0.50:5000'], {});
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const registries = [...loadConfigText(hostsConfig, {}, 'hosts.yaml', '/').registries.keys()];
    expect(readdirSync(out).sort()).toEqual([...registries].sort());
    const docker = readFileSync(path.join(out, 'docker.io', 'hosts.toml'), 'utf8');
    expect(docker).toContain('server = "https://registry-1.docker.io"');
    expect(docker).toContain('[host."http://10.96.0.50:5000"]');
  });
});

describe('deploy/kubernetes/single', () => {
  const deploymentOne = find(single.manifests, 'Deployment', 'pullgate');
  const spec = node(at(deploymentOne, 'spec.template.spec'), 'pod spec');
  const containerOne = first(list(spec.containers, 'containers'), 'containers');

  it('one replica on a PersistentVolumeClaim at storage.path, recreated rather than rolled, without s3 or cluster', () => {
    expect(at(deploymentOne, 'spec.replicas')).toBe(1);
    expect(at(deploymentOne, 'spec.strategy.type')).toBe('Recreate');
    const claim = text(at(volume(spec, 'cache'), 'persistentVolumeClaim.claimName'), 'claimName');
    expect(at(find(single.manifests, 'PersistentVolumeClaim', claim), 'spec.accessModes')).toEqual(['ReadWriteOnce']);
    const config = loadConfigText(configText(find(single.manifests, 'ConfigMap', 'pullgate-config')), containerEnv(containerOne, {}), 'single/configmap.yaml', '/');
    expect(config.unsetVariables).toEqual([]);
    expect(config.storage.path).toBe(volumeMount(containerOne, 'cache'));
    expect(config.storage.s3).toBeUndefined();
    expect(config.cluster).toBeUndefined();
    expect(at(containerOne, 'readinessProbe.httpGet.path')).toBe('/readyz');
    expect(at(containerOne, 'livenessProbe.httpGet.path')).toBe('/healthz');
    expect(node(containerOne.securityContext, 'securityContext')).toMatchObject(node(container.securityContext, 'securityContext'));
    // Two workers, each with its own heap: the limit is sized for them, and the count is not left to the node's cores.
    expect(containerOne.args).toEqual(['serve', '--config', '/etc/pullgate/pullgate.yaml', '--workers', '2']);
    expect(at(containerOne, 'resources.limits.memory')).toBe('384Mi');
    expect(at(containerOne, 'resources.requests.memory')).toBeDefined();
  });

  it('its namespace, Service and registry Secret are the same as the cluster variant (kustomize reads no file outside the directory)', () => {
    for (const [kind, name] of [
      ['Namespace', 'pullgate'],
      ['Service', 'pullgate'],
      ['Secret', 'pullgate-registry'],
    ] as const) {
      expect(find(single.manifests, kind, name), `${kind}/${name}`).toEqual(find(main.manifests, kind, name));
    }
  });
});

describe('kubectl kustomize', () => {
  const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' });
  const available = kubectl.status === 0;
  if (!available) console.log(`deploy-kubernetes: kubectl not found (${kubectl.error?.message ?? kubectl.stderr}); the kustomize build check does not run here`);

  it.runIf(available)('builds every kustomization into the manifests it lists, with the image set in images', () => {
    for (const [dir, { manifests }] of [
      [DEPLOY, main],
      [path.join(DEPLOY, 'single'), single],
      [path.join(DEPLOY, 'node-hosts'), nodeHosts],
    ] as const) {
      const result = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8', timeout: 60_000 });
      expect(result.stderr, dir).toBe('');
      expect(result.status, dir).toBe(0);
      const built = parseAllDocuments(result.stdout).map((doc) => node(doc.toJS(), 'built'));
      const names = (docs: Node[]): string[] => docs.map((doc) => `${text(doc.kind, 'kind')}/${text(at(doc, 'metadata.name'), 'name')}`).sort();
      expect(names(built), dir).toEqual(names(manifests.map(({ doc }) => doc)));
      const images = built.flatMap((doc) => {
        const spec = at(doc, 'spec.template.spec');
        return isNode(spec) ? [...list(spec.initContainers ?? [], 'initContainers'), ...list(spec.containers, 'containers')].map((c) => c.image) : [];
      });
      expect(images, dir).toContain('pullgate:latest');
    }
  });
});
