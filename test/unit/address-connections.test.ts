import { describe, expect, it } from 'vitest';
import { AddressConnections } from '../../src/access/client-limits.js';

describe('AddressConnections (clients.connections.perAddress)', () => {
  it('counts IPv4 per address, IPv6 per /64 and IPv4-mapped IPv6 as IPv4, and forgets an address with none open', () => {
    const limit = new AddressConnections(2);
    const a = limit.admit('2001:db8:1:2::1');
    const b = limit.admit('2001:db8:1:2:ffff::9');
    expect(a.ok && b.ok).toBe(true);
    // A third address of the same /64 is refused; the next /64 is another client.
    expect(limit.admit('2001:db8:1:2:0:0:0:3')).toEqual({ ok: false, key: '2001:db8:1:2::/64' });
    expect(limit.admit('2001:db8:1:3::1').ok).toBe(true);
    const v4 = limit.admit('192.0.2.7');
    expect(limit.admit('::ffff:192.0.2.7').ok).toBe(true);
    expect(limit.admit('192.0.2.7')).toEqual({ ok: false, key: '192.0.2.7' });
    expect(limit.admit('192.0.2.8').ok).toBe(true);
    // Releasing (twice is harmless) frees one slot.
    if (!a.ok || !v4.ok) throw new Error('admitted above');
    a.release();
    a.release();
    expect(limit.admit('2001:db8:1:2::77').ok).toBe(true);
    expect(limit.admit('2001:db8:1:2::78').ok).toBe(false);
    v4.release();
    expect(limit.addresses).toBe(4);
  });
});
