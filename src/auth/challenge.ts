/** One parsed `WWW-Authenticate` challenge: lower-cased scheme and parameter names. */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

const TOKEN_CHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;

/** Scans RFC 7235 challenges, leniently: space-separated parameters and unquoted URLs are accepted. */
class Scanner {
  private pos = 0;
  constructor(private readonly text: string) {}

  get done(): boolean {
    return this.pos >= this.text.length;
  }

  skipSpace(): void {
    while (!this.done && /\s/.test(this.text.charAt(this.pos))) this.pos++;
  }

  skipSeparators(): void {
    while (!this.done && /[\s,]/.test(this.text.charAt(this.pos))) this.pos++;
  }

  peek(): string {
    return this.text.charAt(this.pos);
  }

  token(): string {
    const start = this.pos;
    while (!this.done && TOKEN_CHAR.test(this.text.charAt(this.pos))) this.pos++;
    return this.text.slice(start, this.pos);
  }

  /** Reads `name=` if it is next; otherwise leaves the position alone and returns undefined. */
  paramName(): string | undefined {
    const start = this.pos;
    const name = this.token();
    this.skipSpace();
    if (name !== '' && this.peek() === '=' && this.text.charAt(this.pos + 1) !== '=') {
      this.pos++;
      return name;
    }
    this.pos = start;
    return undefined;
  }

  value(): string {
    this.skipSpace();
    if (this.peek() !== '"') {
      const start = this.pos;
      while (!this.done && !/[\s,]/.test(this.text.charAt(this.pos))) this.pos++;
      return this.text.slice(start, this.pos);
    }
    this.pos++;
    let out = '';
    while (!this.done) {
      const char = this.text.charAt(this.pos++);
      if (char === '"') return out;
      if (char === '\\' && this.pos < this.text.length) out += this.text.charAt(this.pos++);
      else out += char;
    }
    return out;
  }

  /** Skips a token68 (`Basic dXNlcg==`) that stands where parameters would. */
  skipToken68(): void {
    while (!this.done && /[A-Za-z0-9\-._~+/=]/.test(this.peek())) this.pos++;
  }
}

/**
 * Parses every challenge in one or more `WWW-Authenticate` header values. Several challenges may
 * share a line; a repeated parameter keeps its last value; an empty value does not end parsing.
 */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  const lines = header === undefined ? [] : Array.isArray(header) ? header : [header];
  const challenges: Challenge[] = [];
  for (const line of lines) {
    const scanner = new Scanner(line);
    scanner.skipSeparators();
    while (!scanner.done) {
      const scheme = scanner.token();
      if (scheme === '') break;
      const params: Record<string, string> = {};
      scanner.skipSpace();
      let sawParam = false;
      for (;;) {
        scanner.skipSpace();
        const name = scanner.paramName();
        if (name === undefined) break;
        params[name.toLowerCase()] = scanner.value();
        sawParam = true;
        scanner.skipSpace();
        if (scanner.peek() === ',') scanner.skipSeparators();
      }
      if (!sawParam) scanner.skipToken68();
      challenges.push({ scheme: scheme.toLowerCase(), params });
      scanner.skipSeparators();
    }
  }
  return challenges;
}

/** Picks the challenge pullgate answers: Bearer over Basic; others (Negotiate …) are ignored. */
export function chooseChallenge(challenges: Challenge[]): Challenge | undefined {
  return challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic');
}
