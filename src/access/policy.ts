import { Memo } from '../util/memo.js';
import type { AccessRule } from '../config/config.js';
import { RepositoryPattern } from '../util/repository-pattern.js';

export type { AccessRule };

/** Who is asking: a user from clients.htpasswd, or nobody (anonymous). */
export interface Subject {
  user: string | undefined;
}


/** The outcome for one (subject, name): the rule that decided it, or none (denied: nothing matched). */
export interface AccessDecision {
  allowed: boolean;
  rule: AccessRule | undefined;
}

/** The subjects that refer to nobody in particular. */
const ANONYMOUS = 'anonymous';
const AUTHENTICATED = 'authenticated';
/** Decisions remembered per policy: names and users repeat on every layer of a pull. */
const MEMO_SIZE = 10_000;

interface CompiledRule {
  rule: AccessRule;
  patterns: RepositoryPattern[];
}

/**
 * `clients.access`: an ordered list of allow/deny rules over subjects and resolved repository names
 * (`<registry key>/<repository>`); the first rule whose subjects and patterns both match decides,
 * and nothing matching means deny.
 */
export class AccessPolicy {
  private readonly compiled: CompiledRule[];
  private readonly groupsOf = new Map<string, Set<string>>();
  private readonly memo = new Memo<string, AccessDecision>(MEMO_SIZE);

  constructor(
    readonly rules: readonly AccessRule[],
    groups: ReadonlyMap<string, readonly string[]>,
  ) {
    this.compiled = rules.map((rule) => ({ rule, patterns: rule.patterns.map((p) => new RepositoryPattern(p)) }));
    for (const [group, members] of groups) {
      for (const member of members) {
        const set = this.groupsOf.get(member) ?? new Set<string>();
        set.add(group);
        this.groupsOf.set(member, set);
      }
    }
  }

  /** Decides whether `subject` may pull `name` (`ghcr.io/org/app`). */
  decide(subject: Subject, name: string): AccessDecision {
    const key = `${subject.user ?? ''}\n${subject.user === undefined ? 'a' : 'u'}\n${name}`;
    const known = this.memo.get(key);
    if (known !== undefined) return known;
    const decision = this.evaluate(subject, name);
    this.memo.set(key, decision);
    return decision;
  }

  /** True when some authenticated user could be allowed `name`: a login would help an anonymous client. */
  loginCouldHelp(name: string): boolean {
    return this.compiled.some(({ rule, patterns }) => rule.effect === 'allow' && rule.subjects.some((s) => s !== ANONYMOUS) && patterns.some((p) => p.matches(name)));
  }

  /**
   * What anonymous clients may pull: `none`, `some` names, or `all` (an allow `**` for anonymous that no
   * earlier deny for anonymous narrows). Decides whether `/v2/` asks for a login (see loginMayWiden).
   */
  anonymousScope(): 'none' | 'some' | 'all' {
    let scope: 'none' | 'some' = 'none';
    let narrowed = false;
    for (const { rule } of this.compiled) {
      if (!rule.subjects.includes(ANONYMOUS)) continue;
      if (rule.effect === 'deny') {
        narrowed = true;
        continue;
      }
      if (!narrowed && rule.patterns.includes('**')) return 'all';
      scope = 'some';
    }
    return scope;
  }

  /**
   * True when logging in could let a client pull more than it may anonymously: anonymous clients may
   * pull nothing, or not everything while some rule allows users, groups or `authenticated` something.
   */
  loginMayWiden(): boolean {
    const scope = this.anonymousScope();
    if (scope === 'none') return true;
    return scope === 'some' && this.compiled.some(({ rule }) => rule.effect === 'allow' && rule.subjects.some((s) => s !== ANONYMOUS));
  }

  private evaluate(subject: Subject, name: string): AccessDecision {
    for (const { rule, patterns } of this.compiled) {
      if (!this.covers(rule, subject)) continue;
      if (!patterns.some((p) => p.matches(name))) continue;
      return { allowed: rule.effect === 'allow', rule };
    }
    return { allowed: false, rule: undefined };
  }

  private covers(rule: AccessRule, subject: Subject): boolean {
    const user = subject.user;
    if (user === undefined) return rule.subjects.includes(ANONYMOUS);
    const groups = this.groupsOf.get(user);
    return rule.subjects.some((s) => s === AUTHENTICATED || s === user || (groups?.has(s) ?? false));
  }
}

/** A one-line description of a rule for error details and logs (never the other rules). */
export function describeRule(rule: AccessRule | undefined): string {
  if (rule === undefined) return 'no rule of clients.access matched (nothing matching means deny)';
  return `${rule.origin}: ${rule.effect} ${rule.patterns.join(', ')} for ${rule.subjects.join(', ')}`;
}
