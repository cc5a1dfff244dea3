import { readFileSync } from 'node:fs';
import { Agent, type Dispatcher } from 'undici';
import { keychainFor, type KeychainDeps } from '../auth/keychain.js';
import { TokenCache } from '../auth/token-cache.js';
import type { Config, MirrorConfig, RegistryConfig } from '../config/config.js';
import type { Deps } from '../core/deps.js';
import { ConfigError } from '../core/errors.js';
import { RedirectPolicy, systemResolve, type Resolve } from './redirect-policy.js';
import { RegistryClient } from './registry-client.js';
import type { CredentialSource } from '../auth/credential.js';
import { EndpointBreaker, type BreakerState } from './endpoint-breaker.js';
import { EndpointChain, type Endpoint } from './endpoint-chain.js';
import { exchangeToken } from './token-exchange.js';
import type { UpstreamOutcomes } from './upstream-outcomes.js';
import { RegistryWatch } from './registry-watch.js';
import { RateRation } from './rate-ration.js';
import type { RecentEvents } from '../util/recent-events.js';

/** The dispatcher for one registry: the shared one, or an Agent with its `ca` / `insecure` TLS settings. */
export function dispatcherFor(registry: RegistryConfig, shared: Dispatcher): Dispatcher {
  if (registry.ca === undefined && !registry.insecure) return shared;
  let ca: Buffer | undefined;
  if (registry.ca !== undefined) {
    try {
      ca = readFileSync(registry.ca);
    } catch (err) {
      throw new ConfigError(`registries.${registry.key}.ca: cannot read ${registry.ca}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  }
  return new Agent({ connect: { ca, rejectUnauthorized: !registry.insecure } });
}

/** Settings of the redirect Agents (CDNs, S3), as the default upstream Agent's. */
const REDIRECT_AGENT_OPTIONS = { connections: 64, keepAliveTimeout: 30_000, connect: { timeout: 10_000 } } as const;

/** What one registry client needs from the process: the keychain's deps and the shared dispatcher. */
export type ClientDeps = KeychainDeps & { dispatcher: Dispatcher };

/**
 * The RegistryClient for one configured registry, as the server uses it (and doctor, which
 * drives this same client): its TLS settings, credential source, redirect policy and Agent.
 */
export function createRegistryClient(
  registry: RegistryConfig,
  config: Config,
  deps: ClientDeps,
  tokens: TokenCache,
  resolve: Resolve = systemResolve,
  outcomes?: UpstreamOutcomes,
  watch?: RegistryWatch,
  credentials: CredentialSource = keychainFor(registry, deps),
): RegistryClient {
  const redirectPolicy = new RedirectPolicy(registry.key, registry.url, registry.redirects, resolve);
  return new RegistryClient(registry, {
    dispatcher: dispatcherFor(registry, deps.dispatcher),
    // Its own Agent: the policy's lookup vets the addresses each redirect socket connects to.
    redirectDispatcher: new Agent({ ...REDIRECT_AGENT_OPTIONS, connect: { ...REDIRECT_AGENT_OPTIONS.connect, lookup: redirectPolicy.lookup } }),
    tokens,
    credentials,
    timeoutMs: config.upstream.timeoutMs,
    deadlineMs: config.upstream.deadlineMs,
    maxRedirects: config.upstream.maxRedirects,
    redirectPolicy,
    outcomes,
    watch,
  });
}

/** The token cache of one server (or one doctor run): exchanges through the shared dispatcher. */
export function createTokenCache(config: Config, deps: ClientDeps): TokenCache {
  return new TokenCache((request) => exchangeToken(request, { dispatcher: deps.dispatcher, clock: deps.clock, timeoutMs: config.upstream.timeoutMs, deadlineMs: config.upstream.deadlineMs }), deps.clock, deps.hostTokens);
}

/**
 * The RegistryConfig a mirror's client uses: the mirror's url and auth, the registry's repository lists.
 * `key` is the mirror's host, under which its credentials are looked up (docker-config, helpers).
 */
export function mirrorRegistry(registry: RegistryConfig, mirror: MirrorConfig): RegistryConfig {
  return { key: new URL(mirror.url).host, url: mirror.url, auth: mirror.auth, realms: [], redirects: [], ca: undefined, insecure: false, repositories: registry.repositories };
}

/**
 * The RegistryClient of one mirror of a registry, as the server uses it (and doctor): errors and metrics
 * name the registry; the credentials are the mirror's own, looked up under its host.
 */
export function createMirrorClient(
  registry: RegistryConfig,
  mirror: MirrorConfig,
  config: Config,
  deps: ClientDeps,
  tokens: TokenCache,
  resolve: Resolve = systemResolve,
  outcomes?: UpstreamOutcomes,
): RegistryClient {
  const own = mirrorRegistry(registry, mirror);
  return createRegistryClient({ ...own, key: registry.key }, config, deps, tokens, resolve, outcomes, undefined, keychainFor(own, deps));
}

/** One endpoint's state, for the `pullgate_upstream_endpoint_up` gauge, doctor and the status page. */
export interface EndpointState {
  registry: string;
  endpoint: string;
  mirror: boolean;
  tags: boolean;
  breaker: BreakerState;
}

/** One EndpointChain per configured registry (its url and mirrors), sharing one token cache and one RegistryWatch. */
export class Upstreams {
  readonly tokens: TokenCache;
  /** What the registries' answers said (health, rate limits), for the status page and the gauges. */
  readonly watch: RegistryWatch;
  /** When pulls of a registry are rationed (`rateLimit.reserve`, or a 429 holding it). */
  readonly ration: RateRation;
  private readonly clients = new Map<string, EndpointChain>();

  /**
   * `resolve` looks up redirect targets' addresses (the system resolver unless a test injects one);
   * `outcomes` hears how every request to a registry ended (failure metrics, /readyz); `recent` receives
   * upstream failures for the status page.
   */
  constructor(config: Config, deps: Deps, resolve: Resolve = systemResolve, outcomes?: UpstreamOutcomes, recent?: RecentEvents) {
    this.tokens = createTokenCache(config, deps);
    this.watch = new RegistryWatch(deps.clock, recent);
    const reserves = new Map([...config.registries.values()].flatMap((registry): [string, number][] => (registry.reserve === undefined ? [] : [[registry.key, registry.reserve]])));
    this.ration = new RateRation(this.watch, reserves, deps.clock, deps.logger);
    for (const registry of config.registries.values()) {
      const breaker = (url: string): EndpointBreaker =>
        new EndpointBreaker(deps.clock, (up, state) => {
          if (up) deps.logger.info({ registry: registry.key, endpoint: url }, 'upstream endpoint answers again');
          else deps.logger.warn({ registry: registry.key, endpoint: url, retryAt: state.state === 'down' ? new Date(state.retryAt).toISOString() : undefined }, 'upstream endpoint failing: skipped until its back-off ends');
        });
      const endpoints: Endpoint[] = [
        { url: registry.url, client: createRegistryClient(registry, config, deps, this.tokens, resolve, outcomes, this.watch), mirror: false, tags: true, breaker: breaker(registry.url) },
      ];
      for (const mirror of registry.mirrors ?? []) {
        const client = createMirrorClient(registry, mirror, config, deps, this.tokens, resolve, outcomes);
        endpoints.push({ url: mirror.url, client, mirror: true, tags: mirror.tags, breaker: breaker(mirror.url) });
      }
      this.clients.set(registry.key, new EndpointChain(registry, endpoints));
    }
  }

  /** Every endpoint of every registry with its breaker state, in the order they are tried. */
  endpointStates(): EndpointState[] {
    const out: EndpointState[] = [];
    for (const chain of this.clients.values()) {
      for (const endpoint of chain.endpoints) {
        out.push({ registry: chain.registry.key, endpoint: endpoint.url, mirror: endpoint.mirror, tags: endpoint.tags, breaker: endpoint.breaker.state() });
      }
    }
    return out;
  }

  /** The endpoints of a configured registry key (routing has already refused unknown ones). */
  get(registry: string): EndpointChain {
    const client = this.clients.get(registry);
    if (!client) throw new ConfigError(`registry ${registry} has no upstream client`);
    return client;
  }
}
