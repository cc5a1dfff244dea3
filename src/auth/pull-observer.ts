import type { Challenge } from './challenge.js';
import type { CredentialOrigin, Secret } from './credential.js';

/** How a token was asked for at a Bearer challenge's realm. */
export type TokenGrant = 'refresh-token' | 'basic' | 'anonymous';

/** The end of one token step, as the registry client saw it. */
export type TokenOutcome =
  | { result: 'issued'; expiresAt: number }
  /** The realm is not the registry's host or domain, nor listed: no credential was sent. */
  | { result: 'realm-refused'; reason: string }
  /** A Bearer challenge without a realm. */
  | { result: 'no-realm' }
  /** The token server answered 401/403. */
  | { result: 'denied'; status: number }
  /** Anything else (unreachable, 5xx, an unusable answer); `error` is the domain error thrown. */
  | { result: 'failed'; error: unknown };

/**
 * One step of a pull as the registry client (and the token exchange) performs it. Facts only:
 * never a secret, never an Authorization header.
 */
export type PullEvent =
  /** Routing chose the upstream (reported by whoever routed: the doctor). */
  | { step: 'route'; image: string; registry: string; url: string; repository: string; reference: string }
  /** The credential source answered: the kind of secret and where it came from. */
  | { step: 'credentials'; registry: string; kind: Secret['kind']; source: string; origin: CredentialOrigin }
  /** `GET /v2/` answered: the challenge it carried, if any. */
  | { step: 'ping'; url: string; status: number; challenge: Challenge | undefined }
  /** A request to the registry answered (before redirects are followed). */
  | { step: 'response'; method: 'GET' | 'HEAD'; url: string; status: number; challenge: Challenge | undefined }
  /** A request could not be sent or answered: `error` is the network error (with its `code`). */
  | { step: 'unreachable'; method: string; url: string; error: unknown }
  /** The token server answered one exchange request (the refresh-token POST may fall back to GET). */
  | { step: 'exchange'; grant: TokenGrant; method: 'GET' | 'POST'; realm: string; status: number }
  /** The token for a Bearer challenge: realm, service, scopes and how it ended. */
  | { step: 'token'; realm: string; service: string | undefined; scopes: string[]; outcome: TokenOutcome }
  /** The registry refused the credentials (401 after one fresh token, or 403); `message` is its OCI error message. */
  | { step: 'denied'; method: 'GET' | 'HEAD'; url: string; status: 401 | 403; message: string | undefined };

/**
 * Receives each step of a pull. Optional everywhere: callers write `observe?.({...})`, so with no
 * observer the event object is never built and the hot path allocates nothing for it.
 */
export type PullObserver = (event: PullEvent) => void;
