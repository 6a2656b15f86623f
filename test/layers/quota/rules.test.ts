/**
 * Quota rules and their configuration: which quotas a key counts against, which a folder
 * lies in, and the errors for rules and variables that are wrong, each naming the problem.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createStorageFromEnv, QuotaMatcher, type QuotaRules } from '../../../src/index.js';

const RULES: QuotaRules = { '': { maxBytes: 100 }, 'users/*/': { maxBytes: 10, maxObjects: 2, warnAt: 0.5 }, 'teams/red/': { maxObjects: 3 } };

describe('quota rules', () => {
  const matcher = new QuotaMatcher(RULES);

  it('matches a key against every quota it lies under, with the folder a * matched', () => {
    assert.deepEqual(matcher.match('users/ann/photos/1.jpg').map((q) => [q.pattern, q.prefix, q.maxBytes, q.warnAt]), [['', '', 100, 0.9], ['users/*/', 'users/ann/', 10, 0.5]]);
    assert.deepEqual(matcher.match('teams/red/a').map((q) => q.prefix), ['', 'teams/red/']);
    // A key must lie below the folder: users/ann is a file beside the folders, not in one.
    assert.deepEqual(matcher.match('users/ann').map((q) => q.pattern), ['']);
    assert.deepEqual(matcher.match('teams/blue/a').map((q) => q.pattern), ['']);
  });

  it('names the quotas a folder lies in', () => {
    assert.deepEqual(matcher.covering('users/ann/').map((q) => q.prefix), ['', 'users/ann/']);
    assert.deepEqual(matcher.covering('users/').map((q) => q.prefix), ['']);
    assert.deepEqual(matcher.covering('').map((q) => q.prefix), ['']);
  });

  it('refuses rules that are wrong, naming the pattern and the field', () => {
    const bad: [unknown, RegExp][] = [
      [{ users: { maxBytes: 1 } }, /pattern "users" must be "" \(the whole storage\) or end with "\/"/],
      [{ 'a/**/': { maxBytes: 1 } }, /a "\*" that is not a whole segment/],
      [{ 'a//': { maxBytes: 1 } }, /an empty, "\." or "\.\." segment/],
      [{ 'a/': {} }, /pattern "a\/" needs maxBytes or maxObjects/],
      [{ 'a/': { maxBytes: -1 } }, /"a\/"\.maxBytes must be a whole number >= 0/],
      [{ 'a/': { maxBytes: 1, warnAt: 2 } }, /"a\/"\.warnAt must be a fraction above 0 and at most 1/],
      [{ 'a/': { maxbytes: 1 } }, /unknown field\(s\) maxbytes/],
      [{}, /no quota is given/],
      [[], /quotas must be an object of patterns/],
    ];
    for (const [rules, message] of bad) assert.throws(() => new QuotaMatcher(rules as QuotaRules), (err: Error & { code?: string }) => err.code === 'E_CONFIG_INVALID' && message.test(err.message), JSON.stringify(rules));
  });

  it('reads STOWAGE_QUOTAS and its companions from the environment, refusing what does not fit together', () => {
    const env = (extra: Record<string, string>) => () => createStorageFromEnv({ STORAGE_BACKEND: 'memory', ...extra });
    assert.throws(env({ STOWAGE_QUOTAS: '{not json' }), /STOWAGE_QUOTAS is not JSON/);
    assert.throws(env({ STOWAGE_QUOTAS: '{"users":{"maxBytes":1}}' }), /invalid quota configuration \(STOWAGE_QUOTAS\): pattern "users"/);
    assert.throws(env({ STOWAGE_QUOTA_DIR: '/tmp/q' }), /STOWAGE_QUOTA_DIR is set but STOWAGE_QUOTAS is not/);
    assert.throws(env({ STOWAGE_QUOTAS: '{"a/":{"maxBytes":1}}' }), /quotas on a backend other than fs need a place for their counters/);
    assert.throws(env({ STOWAGE_QUOTAS: '{"a/":{"maxBytes":1}}', STOWAGE_QUOTA_DIR: '/tmp/q', STOWAGE_QUOTA_REDIS_URL: 'redis://127.0.0.1:1' }), /both set/);
    assert.throws(env({ STOWAGE_QUOTAS: '{"a/":{"maxBytes":1}}', STOWAGE_QUOTA_REDIS_URL: 'http://x' }), /STOWAGE_QUOTA_REDIS_URL must be a redis:\/\/ or rediss:\/\/ URL/);
    assert.throws(env({ STOWAGE_QUOTAS: '{"a/":{"maxBytes":1}}', STOWAGE_QUOTA_DIR: '/tmp/q', STOWAGE_QUOTA_LEASE_SECONDS: '5' }), /applies to the Redis store only/);
    // A Redis password is never echoed.
    assert.throws(env({ STOWAGE_QUOTAS: '{"a/":{"maxBytes":1}}', STOWAGE_QUOTA_REDIS_URL: 'ftp://:hunter2@x' }), (err: Error) => !err.message.includes('hunter2'));
  });
});
