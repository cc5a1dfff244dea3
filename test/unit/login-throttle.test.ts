import { describe, expect, it } from 'vitest';
import { LoginThrottle, throttleKey } from '../../src/client-auth/login-throttle.js';
import { FakeClock } from '../helpers/fake-clock.js';

const SETTINGS = { failures: 5, lockoutMs: 1_000, maxLockoutMs: 60_000 };

function fail(throttle: LoginThrottle, address: string, times = 1): void {
  for (let i = 0; i < times; i++) {
    throttle.begin(address);
    throttle.settle(address, false);
  }
}

describe('LoginThrottle', () => {
  it('lets 5 failures through, then locks the address out for 1 s, doubling per further failure up to the cap', () => {
    const clock = new FakeClock();
    const throttle = new LoginThrottle(SETTINGS, clock);
    fail(throttle, '10.0.0.1', 4);
    expect(throttle.waitMs('10.0.0.1')).toBe(0);
    fail(throttle, '10.0.0.1');
    expect(throttle.waitMs('10.0.0.1')).toBe(1_000);
    clock.advance(1_000);
    expect(throttle.waitMs('10.0.0.1')).toBe(0);
    fail(throttle, '10.0.0.1');
    expect(throttle.waitMs('10.0.0.1')).toBe(2_000);
    clock.advance(2_000);
    fail(throttle, '10.0.0.1');
    expect(throttle.waitMs('10.0.0.1')).toBe(4_000);
    for (let i = 0; i < 10; i++) {
      clock.advance(throttle.waitMs('10.0.0.1'));
      fail(throttle, '10.0.0.1');
    }
    expect(throttle.waitMs('10.0.0.1')).toBe(60_000);
  });

  it("never slows another address, and a success forgets the address's failures", () => {
    const clock = new FakeClock();
    const throttle = new LoginThrottle(SETTINGS, clock);
    fail(throttle, '10.0.0.1', 5);
    expect(throttle.waitMs('10.0.0.1')).toBeGreaterThan(0);
    expect(throttle.waitMs('10.0.0.2')).toBe(0);
    clock.advance(1_000);
    throttle.begin('10.0.0.1');
    throttle.settle('10.0.0.1', true);
    fail(throttle, '10.0.0.1', 4);
    expect(throttle.waitMs('10.0.0.1')).toBe(0);
  });

  it('forgets failures after maxLockout with neither a failure nor a lockout; a check that errored counts for nothing', () => {
    const clock = new FakeClock();
    const throttle = new LoginThrottle(SETTINGS, clock);
    fail(throttle, '10.0.0.1', 4);
    clock.advance(60_000);
    fail(throttle, '10.0.0.1', 4);
    expect(throttle.waitMs('10.0.0.1')).toBe(0);
    fail(throttle, '10.0.0.1', 2);
    const locked = throttle.waitMs('10.0.0.1');
    expect(locked).toBe(2_000);
    clock.advance(locked + 59_999);
    fail(throttle, '10.0.0.1');
    expect(throttle.waitMs('10.0.0.1')).toBe(4_000);
    clock.advance(4_000 + 60_000);
    fail(throttle, '10.0.0.1');
    expect(throttle.waitMs('10.0.0.1')).toBe(0);
    throttle.begin('10.0.0.1');
    throttle.settle('10.0.0.1', undefined);
    expect(throttle.waitMs('10.0.0.1')).toBe(0);
  });

  it('checks at most `failures` logins from one address at once', () => {
    const throttle = new LoginThrottle(SETTINGS, new FakeClock());
    for (let i = 0; i < 5; i++) throttle.begin('10.0.0.1');
    expect(throttle.waitMs('10.0.0.1')).toBe(1_000);
    throttle.settle('10.0.0.1', true);
    expect(throttle.waitMs('10.0.0.1')).toBe(0);
  });

  it('keys IPv4-mapped addresses as IPv4 and IPv6 by /64', () => {
    expect(throttleKey('::ffff:10.1.2.3')).toBe('10.1.2.3');
    expect(throttleKey('10.1.2.3')).toBe('10.1.2.3');
    expect(throttleKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(throttleKey('2001:db8:1:2:bbbb:cccc:dddd:eeee')).toBe('2001:db8:1:2::/64');
    expect(throttleKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(throttleKey('::1')).toBe('0:0:0:0::/64');
    const throttle = new LoginThrottle(SETTINGS, new FakeClock());
    fail(throttle, '2001:db8:1:2::a', 5);
    expect(throttle.waitMs('2001:db8:1:2::b')).toBeGreaterThan(0);
    expect(throttle.waitMs('2001:db8:1:3::a')).toBe(0);
  });
});
