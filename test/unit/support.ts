/** Small helpers shared by the unit tests: capture a thrown value and narrow it to its class. */
import { expect } from 'vitest';

/** Runs fn and returns what it threw; fails the test when it returns normally. */
export function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to throw, but it returned');
}

/** Runs fn, asserts it threw an instance of type, and returns the error typed. */
export function thrownAs<T>(fn: () => unknown, type: new (...args: never[]) => T): T {
  const err = thrown(fn);
  expect(err).toBeInstanceOf(type);
  if (!(err instanceof type)) throw new Error(`expected ${type.name}`);
  return err;
}
