import type { Clock } from '../../src/core/deps.js';

/** A clock that moves only when the test says so. */
export class FakeClock implements Clock {
  constructor(private current = Date.parse('2026-01-01T00:00:00Z')) {}
  now(): number {
    return this.current;
  }
  advance(ms: number): void {
    this.current += ms;
  }
}
