import { isLoopback } from '../access/exposure.js';
import { ClientUnauthorized, StatusRefused } from '../core/errors.js';
import type { ClientAuth } from '../client-auth/client-auth.js';
import { certificateUser } from '../http/preflight.js';

/** A request for `/` or `/api/status`, as both listeners see it. */
export interface StatusAsker {
  authorization: string | undefined;
  /** The TCP peer. */
  address: string;
  /** The connection (a verified client certificate names a user). */
  socket: unknown;
}

export interface StatusAccessOptions {
  /** Whether the listener is reachable from other machines (not loopback). */
  exposed: boolean;
  /** `status.allow`: users, groups, `authenticated`, `anonymous`; undefined = nobody but loopback peers. */
  allow: readonly string[] | undefined;
  /** `clients.groups`. */
  groups: ReadonlyMap<string, readonly string[]>;
  /** `clients.htpasswd` checks, when configured. */
  auth: ClientAuth | undefined;
}

const ANONYMOUS = 'anonymous';
const AUTHENTICATED = 'authenticated';

/**
 * Who may see the status page: anyone while the listener is loopback; on an exposed listener,
 * loopback peers and the subjects of `status.allow`. Refusals are those of `/v2/`: 401 with a Basic
 * challenge when a login could help (a login is possible and some subject other than `anonymous` is
 * allowed), else 403.
 */
export class StatusAccess {
  constructor(private readonly options: StatusAccessOptions) {}

  /** Resolves when the asker may see the status; throws ClientUnauthorized, LoginThrottled or StatusRefused. */
  async check(asker: StatusAsker): Promise<void> {
    const { exposed, allow, groups, auth } = this.options;
    if (!exposed || isLoopback(asker.address)) return;
    const subjects = allow ?? [];
    const user = auth !== undefined && asker.authorization !== undefined ? await auth.check(asker.authorization, asker.address) : certificateUser(asker.socket);
    if (user === undefined) {
      if (subjects.includes(ANONYMOUS)) return;
      if (auth !== undefined && subjects.some((s) => s !== ANONYMOUS)) {
        throw new ClientUnauthorized('missing', 'the status page requires a login (status.allow): send the credentials of clients.htpasswd');
      }
      throw new StatusRefused(refusal(allow));
    }
    const mine = new Set([AUTHENTICATED, user]);
    for (const [group, members] of groups) if (members.includes(user)) mine.add(group);
    if (subjects.some((s) => mine.has(s))) return;
    throw new StatusRefused(refusal(allow));
  }
}

function refusal(allow: readonly string[] | undefined): string {
  return allow === undefined
    ? 'the status page is shown on this listener only to loopback peers: list who may see it in status.allow'
    : 'status.allow does not list this client';
}
