/** Lifecycle rules: what is accepted, and errors that name the source, the rule and the field. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkLifecycleRules, parseLifecycleRules, StorageError } from '../../src/index.js';
import { lifecycleFromEnv } from '../../src/lifecycle/env.js';

/** The error `fn` throws, checked to be E_CONFIG_INVALID. */
function configError(fn: () => unknown): StorageError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof StorageError, String(err));
    assert.equal(err.code, 'E_CONFIG_INVALID', err.message);
    return err;
  }
  assert.fail('expected E_CONFIG_INVALID');
}

describe('lifecycle rules', () => {
  it('accepts the three kinds of rule and resolves their ages and defaults', () => {
    const rules = checkLifecycleRules([
      { prefix: 'temp/', expireAfter: '24h' },
      { prefix: '', abortIncompleteAfter: '7d' },
      { prefix: 'a/', abortIncompleteAfter: '90s', only: 'uploads' },
      { prefix: 'uploads/', orphans: { keep: '/srv/keys.txt', minAge: '30m' } },
      { prefix: 'b/', orphans: { keep: ['b/x', 'b/y'] } },
    ]);
    assert.deepEqual(rules, [
      { index: 0, kind: 'expire', prefix: 'temp/', ageMs: 86_400_000 },
      { index: 1, kind: 'abortIncomplete', prefix: '', ageMs: 7 * 86_400_000, uploads: true, sessions: true },
      { index: 2, kind: 'abortIncomplete', prefix: 'a/', ageMs: 90_000, uploads: true, sessions: false },
      { index: 3, kind: 'orphans', prefix: 'uploads/', keep: '/srv/keys.txt', minAgeMs: 1_800_000 },
      { index: 4, kind: 'orphans', prefix: 'b/', keep: new Set(['b/x', 'b/y']), minAgeMs: 3_600_000 },
    ]);
  });

  it('names the source, the rule index and the field of a bad rule', () => {
    const cases: [unknown, number | undefined, string | undefined, RegExp][] = [
      [{ prefix: 'temp/' }, undefined, undefined, /must be an array of rules/],
      [[{ prefix: 'temp/', expireAfter: 'yesterday' }], 0, 'expireAfter', /rule 0 field expireAfter must be a duration like 90s/],
      [[{ prefix: 'ok/', expireAfter: '1h' }, { prefix: 'x/' }], 1, undefined, /rule 1 must have exactly one of expireAfter, abortIncompleteAfter or orphans/],
      [[{ prefix: 'x/', expireAfter: '1h', abortIncompleteAfter: '1d' }], 0, undefined, /has expireAfter and abortIncompleteAfter/],
      [[{ prefix: '', expireAfter: '1h' }], 0, 'prefix', /an expiry never sweeps a whole storage/],
      [[{ prefix: 'x/', expireAfter: '1h', only: 'uploads' }], 0, 'only', /applies only to an abortIncompleteAfter rule/],
      [[{ prefix: 'x/', abortIncompleteAfter: '1h', only: 'parts' }], 0, 'only', /must be "uploads" or "sessions"/],
      [[{ prefix: '/abs', expireAfter: '1h' }], 0, 'prefix', /starts with "\/"/],
      [[{ prefix: 'x/', expireAfter: '1h', expireAfterDays: 3 }], 0, undefined, /"expireAfterDays"/],
      [[{ prefix: 'x/', orphans: { keep: '' } }], 0, 'orphans.keep', /must name a file/],
      [[{ prefix: 'x/', orphans: { keep: 'k.txt', minAge: 5 } }], 0, 'orphans.minAge', /must be a duration/],
      [[{ expireAfter: '1h' }], 0, 'prefix', /must be a string/],
    ];
    for (const [rules, rule, field, message] of cases) {
      const err = configError(() => checkLifecycleRules(rules, 'STOWAGE_LIFECYCLE'));
      assert.match(err.message, /^invalid lifecycle rules in STOWAGE_LIFECYCLE: /);
      assert.match(err.message, message);
      assert.deepEqual(err.details, { variables: ['STOWAGE_LIFECYCLE'], ...(rule === undefined ? {} : { rule }), ...(field === undefined ? {} : { field }) }, err.message);
    }
  });

  it('refuses a bad key in a keep list given in code, naming its position', () => {
    assert.throws(() => checkLifecycleRules([{ prefix: 'b/', orphans: { keep: ['b/ok', 'b/bad/'] } }]), (err: StorageError) => err.code === 'E_INVALID_ARGUMENT' && /lifecycle rule 0 keep item 2: .*ends with "\/"/.test(err.message));
  });

  it('parses JSON, naming the source when it is not JSON', () => {
    assert.equal(parseLifecycleRules('[{"prefix":"t/","expireAfter":"1d"}]', '--rules')[0]?.kind, 'expire');
    assert.match(configError(() => parseLifecycleRules('[{prefix:', '--rules')).message, /^invalid lifecycle rules in --rules: is not valid JSON/);
  });

  it('reads the service variables: none without STOWAGE_LIFECYCLE, the interval and dry run, errors naming the variable', () => {
    assert.equal(lifecycleFromEnv({}), undefined);
    assert.equal(lifecycleFromEnv({ STOWAGE_LIFECYCLE: ' ' }), undefined);
    const rules = '[{"prefix":"temp/","expireAfter":"24h"}]';
    assert.deepEqual(lifecycleFromEnv({ STOWAGE_LIFECYCLE: rules }), { rules: [{ prefix: 'temp/', expireAfter: '24h' }], intervalMs: 3_600_000, dryRun: false });
    assert.deepEqual(lifecycleFromEnv({ STOWAGE_LIFECYCLE: rules, STOWAGE_LIFECYCLE_INTERVAL: '15m', STOWAGE_LIFECYCLE_DRY_RUN: 'yes' }), { rules: [{ prefix: 'temp/', expireAfter: '24h' }], intervalMs: 900_000, dryRun: true });
    assert.deepEqual(configError(() => lifecycleFromEnv({ STOWAGE_LIFECYCLE: rules, STOWAGE_LIFECYCLE_INTERVAL: 'hourly' })).details, { variables: ['STOWAGE_LIFECYCLE_INTERVAL'] });
    assert.deepEqual(configError(() => lifecycleFromEnv({ STOWAGE_LIFECYCLE: rules, STOWAGE_LIFECYCLE_INTERVAL: '0s' })).details, { variables: ['STOWAGE_LIFECYCLE_INTERVAL'] });
    assert.deepEqual(configError(() => lifecycleFromEnv({ STOWAGE_LIFECYCLE: rules, STOWAGE_LIFECYCLE_DRY_RUN: 'maybe' })).details, { variables: ['STOWAGE_LIFECYCLE_DRY_RUN'] });
    assert.deepEqual(configError(() => lifecycleFromEnv({ STOWAGE_LIFECYCLE: '[{"prefix":"t/","expireAfter":"1 day"}]' })).details, { variables: ['STOWAGE_LIFECYCLE'], rule: 0, field: 'expireAfter' });
  });
});
