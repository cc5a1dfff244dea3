import { describe, expect, it } from 'vitest';
import { interpolate } from '../../src/config/interpolate.js';

describe('interpolate', () => {
  it('replaces ${VAR} inside a string', () => {
    const result = interpolate({ url: 'https://${HOST}:${PORT}/' }, { HOST: 'reg.example', PORT: '5000' });
    expect(result).toEqual({ value: { url: 'https://reg.example:5000/' }, unset: [], unsetAt: [] });
  });

  it('uses the default of ${VAR:-default} when the variable is unset or empty', () => {
    expect(interpolate('${LISTEN:-127.0.0.1:5000}', {}).value).toBe('127.0.0.1:5000');
    expect(interpolate('${LISTEN:-127.0.0.1:5000}', { LISTEN: '' }).value).toBe('127.0.0.1:5000');
    expect(interpolate('${LISTEN:-127.0.0.1:5000}', {}).unset).toEqual([]);
  });

  it('prefers the variable over the default when it is set', () => {
    expect(interpolate('${LISTEN:-127.0.0.1:5000}', { LISTEN: '0.0.0.0:80' }).value).toBe('0.0.0.0:80');
  });

  it('allows an empty default', () => {
    expect(interpolate('a${X:-}b', {})).toEqual({ value: 'ab', unset: [], unsetAt: [] });
  });

  it('turns $$ into a literal $ and does not expand what follows it', () => {
    expect(interpolate('pa$$word', {}).value).toBe('pa$word');
    const escaped = interpolate('$${HOME}', { HOME: '/root' });
    expect(escaped).toEqual({ value: '${HOME}', unset: [], unsetAt: [] });
  });

  it('leaves a lone $ and malformed references alone', () => {
    expect(interpolate('cost $5 ${ } ${1X}', {}).value).toBe('cost $5 ${ } ${1X}');
  });

  it('reports unset variables once each, sorted, and substitutes ""', () => {
    const result = interpolate({ a: '${ZED}', b: ['${ALPHA}', '${ZED}'], c: 'x${ALPHA}y' }, {});
    expect(result.value).toEqual({ a: '', b: ['', ''], c: 'xy' });
    expect(result.unset).toEqual(['ALPHA', 'ZED']);
  });

  it('records the config path of every use of an unset variable', () => {
    const result = interpolate({ registries: { 'ghcr.io': { auth: { username: '${U:-x}', password: '${GITHUB_TOKEN}' } } }, list: ['a', '${ZED}'] }, {});
    expect(result.unsetAt).toEqual([
      { path: 'registries.ghcr.io.auth.password', variable: 'GITHUB_TOKEN' },
      { path: 'list[1]', variable: 'ZED' },
    ]);
  });

  it('walks nested objects and arrays', () => {
    const doc = {
      registries: {
        'ghcr.io': { auth: { type: 'token', token: '${GH_TOKEN}' } },
        list: [{ deep: ['${A}', { deeper: '${B}' }] }],
      },
    };
    expect(interpolate(doc, { GH_TOKEN: 'ghp_x', A: '1', B: '2' }).value).toEqual({
      registries: {
        'ghcr.io': { auth: { type: 'token', token: 'ghp_x' } },
        list: [{ deep: ['1', { deeper: '2' }] }],
      },
    });
  });

  it('keeps numbers, booleans and null as they are', () => {
    const doc = { n: 5, b: false, z: null, s: '${S}' };
    expect(interpolate(doc, { S: 'x' }).value).toEqual({ n: 5, b: false, z: null, s: 'x' });
  });

  it('inserts values verbatim: no YAML parsing, no type change, no second expansion', () => {
    const env = { P: 'x: y\n- z', NUM: '123', BOOL: 'true', NEST: '${P}' };
    const result = interpolate({ p: '${P}', n: '${NUM}', b: '${BOOL}', nest: '${NEST}' }, env);
    expect(result.value).toEqual({ p: 'x: y\n- z', n: '123', b: 'true', nest: '${P}' });
  });

  it('does not interpolate keys', () => {
    expect(interpolate({ '${K}': 'v' }, { K: 'k' }).value).toEqual({ '${K}': 'v' });
  });

  it('does not modify the input document', () => {
    const doc = { a: '${A}', list: ['${A}'] };
    interpolate(doc, { A: 'x' });
    expect(doc).toEqual({ a: '${A}', list: ['${A}'] });
  });
});
