import { describe, expect, it } from 'vitest';
import { formatDuration, formatSize, parseDuration, parseSize } from '../../src/config/units.js';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

describe('parseDuration', () => {
  it('parses each unit', () => {
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('30s')).toBe(30_000);
    expect(parseDuration('5m')).toBe(300_000);
    expect(parseDuration('24h')).toBe(86_400_000);
    expect(parseDuration('2d')).toBe(172_800_000);
  });

  it('adds compound durations', () => {
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('1m30s')).toBe(90_000);
    expect(parseDuration('1s500ms')).toBe(1_500);
  });

  it('accepts fractions and rounds to whole milliseconds', () => {
    expect(parseDuration('1.5h')).toBe(5_400_000);
    expect(parseDuration('0.0005s')).toBe(1);
  });

  it('accepts a bare 0 and trims surrounding spaces', () => {
    expect(parseDuration('0')).toBe(0);
    expect(parseDuration('  5m ')).toBe(300_000);
  });

  it('refuses anything else, naming the input', () => {
    for (const text of ['', '5', '5x', '5 m', '-5s', 'm', '1h30', 'abc', '5M', '1h 30m']) {
      expect(() => parseDuration(text)).toThrow(`"${text}" is not a duration`);
    }
  });
});

describe('parseSize', () => {
  it('parses binary units', () => {
    expect(parseSize('512MiB')).toBe(512 * MiB);
    expect(parseSize('20GiB')).toBe(20 * GiB);
    expect(parseSize('1KiB')).toBe(1024);
    expect(parseSize('2TiB')).toBe(2 * 1024 ** 4);
  });

  it('parses decimal units and fractions', () => {
    expect(parseSize('1.5GB')).toBe(1_500_000_000);
    expect(parseSize('10kb')).toBe(10_000);
    expect(parseSize('3MB')).toBe(3_000_000);
  });

  it('parses a plain byte count and a "B" suffix', () => {
    expect(parseSize('1000000')).toBe(1_000_000);
    expect(parseSize('42B')).toBe(42);
  });

  it('accepts a space before the unit and any letter case', () => {
    expect(parseSize('1 KiB')).toBe(1024);
    expect(parseSize('1gib')).toBe(GiB);
  });

  it('floors fractional bytes', () => {
    expect(parseSize('1.5')).toBe(1);
    expect(parseSize('0.5KiB')).toBe(512);
  });

  it('refuses anything else, naming the input', () => {
    for (const text of ['', 'abc', '5XB', '-1', 'GiB', '1.5.5MiB', '5 Gigs']) {
      expect(() => parseSize(text)).toThrow(`"${text}" is not a size`);
    }
  });
});

describe('formatSize', () => {
  it('prints bytes below 1 KiB as an integer', () => {
    expect(formatSize(0)).toBe('0B');
    expect(formatSize(1023)).toBe('1023B');
  });

  it('prints larger sizes in the largest binary unit with one decimal', () => {
    expect(formatSize(1024)).toBe('1.0KiB');
    expect(formatSize(1536)).toBe('1.5KiB');
    expect(formatSize(512 * MiB)).toBe('512.0MiB');
    expect(formatSize(20 * GiB)).toBe('20.0GiB');
  });

  it('stops at TiB', () => {
    expect(formatSize(2048 * 1024 ** 4)).toBe('2048.0TiB');
  });

  it('round-trips through parseSize for exact binary sizes', () => {
    for (const bytes of [1024, 512 * MiB, 20 * GiB]) {
      expect(parseSize(formatSize(bytes))).toBe(bytes);
    }
  });
});

describe('formatDuration', () => {
  it('uses the largest unit that divides exactly', () => {
    expect(formatDuration(300_000)).toBe('5m');
    expect(formatDuration(90_000)).toBe('90s');
    expect(formatDuration(3_600_000)).toBe('1h');
    expect(formatDuration(86_400_000)).toBe('1d');
    expect(formatDuration(5_400_000)).toBe('90m');
  });

  it('falls back to milliseconds', () => {
    expect(formatDuration(250)).toBe('250ms');
    expect(formatDuration(1_500)).toBe('1500ms');
    expect(formatDuration(0)).toBe('0ms');
  });

  it('round-trips through parseDuration', () => {
    for (const ms of [0, 250, 1_500, 30_000, 300_000, 5_400_000, 86_400_000]) {
      expect(parseDuration(formatDuration(ms))).toBe(ms);
    }
  });
});
