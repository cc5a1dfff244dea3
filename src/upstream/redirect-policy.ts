import type { LookupAddress } from 'node:dns';
import { lookup } from 'node:dns/promises';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { withinUrlPrefix } from '../auth/url-prefix.js';

/** Resolves a host name to its addresses (IPv4 and IPv6); injected so tests need no DNS. */
export type Resolve = (hostname: string) => Promise<string[]>;

/** The system resolver (getaddrinfo, as undici uses to connect). */
export const systemResolve: Resolve = async (hostname) => (await lookup(hostname, { all: true, verbatim: true })).map((a) => a.address);

/**
 * Which redirects a request may follow: `registry` (manifests, tag lists, referrers) only to the
 * registry's own origin or a trusted prefix; `storage` (blobs) to any host whose addresses are
 * public, as S3 and CDNs are.
 */
export type RedirectScope = 'registry' | 'storage';

type AddressKind = 'public' | 'loopback' | 'private' | 'link-local' | 'unspecified' | 'multicast' | 'reserved';

/** Address ranges that are never a public server: [network, prefix, family, kind]. */
const SPECIAL_RANGES: readonly (readonly [string, number, 'ipv4' | 'ipv6', Exclude<AddressKind, 'public'>])[] = [
  ['0.0.0.0', 8, 'ipv4', 'unspecified'],
  ['10.0.0.0', 8, 'ipv4', 'private'],
  ['100.64.0.0', 10, 'ipv4', 'private'],
  ['127.0.0.0', 8, 'ipv4', 'loopback'],
  ['169.254.0.0', 16, 'ipv4', 'link-local'],
  ['172.16.0.0', 12, 'ipv4', 'private'],
  ['192.0.0.0', 24, 'ipv4', 'reserved'],
  ['192.168.0.0', 16, 'ipv4', 'private'],
  ['198.18.0.0', 15, 'ipv4', 'reserved'],
  ['224.0.0.0', 4, 'ipv4', 'multicast'],
  ['240.0.0.0', 4, 'ipv4', 'reserved'],
  ['::', 128, 'ipv6', 'unspecified'],
  ['::1', 128, 'ipv6', 'loopback'],
  ['fe80::', 10, 'ipv6', 'link-local'],
  ['fec0::', 10, 'ipv6', 'private'],
  ['fc00::', 7, 'ipv6', 'private'],
  ['ff00::', 8, 'ipv6', 'multicast'],
  ['64:ff9b:1::', 48, 'ipv6', 'private'],
];

/** Classifies IP addresses (IPv4-mapped IPv6 included) as public or one of the internal kinds. */
class AddressRules {
  private readonly lists: [Exclude<AddressKind, 'public'>, BlockList][] = [];

  constructor() {
    const byKind = new Map<Exclude<AddressKind, 'public'>, BlockList>();
    for (const [network, prefix, family, kind] of SPECIAL_RANGES) {
      let list = byKind.get(kind);
      if (list === undefined) {
        list = new BlockList();
        byKind.set(kind, list);
        this.lists.push([kind, list]);
      }
      list.addSubnet(network, prefix, family);
    }
  }

  kind(address: string): AddressKind {
    const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
    for (const [kind, list] of this.lists) if (list.check(address, family)) return kind;
    return 'public';
  }
}

function bare(hostname: string): string {
  return hostname.replace(/^\[|\]$/g, '');
}

function canonical(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return (mapped?.[1] ?? address).toLowerCase();
}

/**
 * Decides whether pullgate may follow one registry's redirect, before any byte is sent to the
 * target: never to a non-http(s) URL, a URL with user info, a host the scope does not allow, or
 * an internal (loopback, private, link-local, unspecified, multicast) address that is not one of
 * the registry's own — unless the operator listed the target under `registries.<key>.redirects`.
 */
export class RedirectPolicy {
  private readonly addresses = new AddressRules();
  private readonly registry: URL;

  constructor(
    private readonly key: string,
    registryUrl: string,
    private readonly trusted: readonly string[],
    private readonly resolve: Resolve,
  ) {
    this.registry = new URL(registryUrl);
  }

  /** Why the redirect to `target` may not be followed, or undefined when it may. */
  async refusal(target: URL, scope: RedirectScope): Promise<string | undefined> {
    if (target.protocol !== 'https:' && target.protocol !== 'http:') return `${this.key} redirected to a ${target.protocol} URL`;
    if (target.username !== '' || target.password !== '') return `${this.key} redirected to a URL with user info (${target.host})`;
    if (this.trusted.some((prefix) => withinUrlPrefix(target, prefix, { wildcardHost: true }))) return undefined;
    const fix = `if it is trusted, list it: registries.${this.key}.redirects: ["${target.origin}/"]`;
    if (scope === 'registry') {
      if (target.origin === this.registry.origin) return undefined;
      return `${this.key} redirected a registry request to ${target.origin}, which is not the registry's own origin; ${fix}`;
    }
    const addresses = await this.addressesOf(target.hostname);
    const foreign = await this.foreignInternal(addresses);
    if (foreign === undefined) return undefined;
    return `${this.key} redirected to ${target.host}, a ${foreign[1]} address (${foreign[0]}) that is not the registry's own; ${fix}`;
  }

  /**
   * A `lookup` for the redirect connections' sockets: the addresses a connection really uses pass
   * the same address rule at connect time, so a name cannot resolve to a public address for the
   * check and to an internal one for the connection (DNS rebinding). The registry's own host and
   * hosts of trusted prefixes are not restricted, as in refusal().
   */
  readonly lookup: LookupFunction = (hostname, options, callback) => {
    this.vetted(hostname, options.family).then(
      (addresses) => {
        if (options.all === true) {
          callback(null, addresses.map((address): LookupAddress => ({ address, family: isIP(address) })));
          return;
        }
        const [first = ''] = addresses;
        callback(null, first, isIP(first));
      },
      (err: unknown) => callback(err instanceof Error ? err : new Error(String(err)), ''),
    );
  };

  private async vetted(hostname: string, family: number | string | undefined): Promise<string[]> {
    const wanted = family === 4 || family === 'IPv4' ? 4 : family === 6 || family === 'IPv6' ? 6 : 0;
    const addresses = (await this.addressesOf(hostname)).filter((address) => wanted === 0 || isIP(address) === wanted);
    if (addresses.length === 0) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
    if (this.trustedHost(bare(hostname))) return addresses;
    const foreign = await this.foreignInternal(addresses);
    if (foreign !== undefined) {
      throw Object.assign(new Error(`refusing to connect to ${hostname}: it resolved to a ${foreign[1]} address (${foreign[0]}) that is not the registry's own`), { code: 'EREDIRECTREFUSED' });
    }
    return addresses;
  }

  /** True for the registry's own host and the hosts of trusted prefixes. */
  private trustedHost(hostname: string): boolean {
    if (hostname === bare(this.registry.hostname)) return true;
    return this.trusted.some((prefix) => {
      let allowed: URL;
      try {
        allowed = new URL(prefix);
      } catch {
        return false;
      }
      const host = bare(allowed.hostname);
      return host.startsWith('*.') ? hostname.endsWith(host.slice(1)) && hostname.length > host.length - 1 : host === hostname;
    });
  }

  /** The first of `addresses` that is internal and not one of the registry host's own, with its kind. */
  private async foreignInternal(addresses: string[]): Promise<[string, AddressKind] | undefined> {
    const internal = addresses.map((address): [string, AddressKind] => [address, this.addresses.kind(address)]).filter(([, kind]) => kind !== 'public');
    if (internal.length === 0) return undefined;
    const own = new Set((await this.addressesOf(this.registry.hostname)).map(canonical));
    return internal.find(([address]) => !own.has(canonical(address)));
  }

  private async addressesOf(hostname: string): Promise<string[]> {
    const host = bare(hostname);
    if (isIP(host) !== 0) return [host];
    return this.resolve(host);
  }
}
