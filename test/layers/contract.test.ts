/**
 * Every operation of the Driver contract, from its one list (DRIVER_OPERATIONS), reaches
 * the inner driver through every layer, with the same arguments and the same result; and
 * the fallback driver passes each one to the backend its documentation says. A recording
 * driver built from the same list stands inside, so an operation added to the contract
 * is checked here without a line of this file naming it (the argument table below is
 * typed by the contract, so it does not compile until the new operation is in it).
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import {
  BASE_DRIVER_CAPABILITIES,
  DRIVER_OPERATIONS,
  DriverLayer,
  EmbeddedQuotaStore,
  FallbackDriver,
  MemoryDriver,
  PutBody,
  StorageError,
  storageMetrics,
  withFaults,
  withMetrics,
  withQuotas,
  type Driver,
  type DriverCapabilities,
  type DriverOperation,
  type IncompleteUpload,
  type ObjectInfo,
  type WriteResult,
} from '../../src/index.js';
import { rejectsWith } from '../conformance/harness.js';

/** One call the recording driver saw. */
interface Call {
  operation: DriverOperation;
  args: unknown[];
}

const info: ObjectInfo = { key: 'k', size: 1, etag: 'e', contentType: 'text/plain', lastModified: new Date(0), metadata: {} };
const upload: IncompleteUpload = { key: 'k', uploadId: 'u1', initiated: new Date(0) };

/** Arguments to call each operation with. */
const ARGS: Record<DriverOperation, unknown[]> = {
  put: ['k', new PutBody('x'), { contentType: 'text/plain', metadata: {} }],
  putFile: ['k', '/tmp/file', { contentType: 'text/plain', metadata: {} }, {}],
  stat: ['k'],
  read: ['k', { ifNoneMatch: 'e', range: { start: 0 } }],
  delete: ['k'],
  deleteMany: [['k', 'l']],
  copy: ['k', 'l'],
  copyFrom: [{ name: 'source' }, 'k', 'l'],
  move: ['k', 'l'],
  list: [{ prefix: '', limit: 10 }],
  signedUrl: ['k', { method: 'GET', expiresIn: 60 }],
  presignPost: ['k', { expiresIn: 60 }],
  check: [],
  verify: [{ createBucket: true }],
  incompleteUploads: ['prefix/'],
  abortUpload: [upload],
  createSession: [{ id: 'a'.repeat(32), key: 'k', offset: 0 }],
  getSession: ['a'.repeat(32)],
  writeSession: ['a'.repeat(32), { offset: 0 }, { offset: 0 }],
  completeSession: ['a'.repeat(32), { sha256: 'b'.repeat(64) }],
  abortSession: ['a'.repeat(32)],
  readSession: ['a'.repeat(32), {}],
  listSessions: ['prefix/'],
  putInternal: ['variants/a', new Uint8Array([1]), { cache: true }],
  readInternal: ['variants/a'],
  deleteInternal: [['variants/a']],
  listInternal: ['variants/', 'variants/a'],
  location: [],
  close: [],
};

/** What the recording driver answers: results the fallback driver can work with too. */
function resultOf(operation: DriverOperation): unknown {
  switch (operation) {
    case 'stat':
    case 'put':
    case 'putFile':
    case 'copy':
    case 'copyFrom':
      return { ...info };
    case 'read':
      return { stream: undefined, info: { ...info } };
    case 'list':
      return { objects: [], prefixes: [] };
    case 'incompleteUploads':
      return [upload];
    case 'check':
    case 'verify':
      return { checked: true };
    case 'createSession':
    case 'getSession':
    case 'writeSession':
      return { answer: operation, id: 'a'.repeat(32), key: 'k', offset: 0, expiresAt: new Date(0) };
    default:
      return { answer: operation };
  }
}

/** A driver built from DRIVER_OPERATIONS that records every call and answers from `resultOf`. */
function recorder(name: string, capabilities: Partial<DriverCapabilities> = {}): Driver & { calls: Call[]; results: Map<DriverOperation, unknown> } {
  const calls: Call[] = [];
  const results = new Map<DriverOperation, unknown>();
  const driver: Record<string, unknown> = {
    name,
    capabilities: { ...BASE_DRIVER_CAPABILITIES, conditionalWrites: true, rangeReads: true, keyIsPrefix: true, ...capabilities },
    calls,
    results,
  };
  for (const operation of DRIVER_OPERATIONS) {
    driver[operation] = (...args: unknown[]) => {
      calls.push({ operation, args });
      const result = resultOf(operation);
      results.set(operation, result);
      return operation === 'location' ? result : Promise.resolve(result);
    };
  }
  return driver as unknown as Driver & { calls: Call[]; results: Map<DriverOperation, unknown> };
}

/** Calls `operation` on `driver` with its arguments from the table. */
function invoke(driver: Driver, operation: DriverOperation): unknown {
  return (driver[operation] as (...args: unknown[]) => unknown).apply(driver, ARGS[operation]);
}

/** A layer that overrides one operation and nothing else, as the README tells layer authors to. */
class OnlyPut extends DriverLayer {
  override async put(...args: Parameters<Driver['put']>): Promise<WriteResult> {
    return super.put(...args);
  }
}

const LAYERS: Record<string, (inner: Driver) => Driver> = {
  DriverLayer: (inner) => new DriverLayer(inner),
  withMetrics: (inner) => withMetrics(inner, storageMetrics(new Registry())),
  'a layer overriding only put': (inner) => new OnlyPut(inner),
  'metrics over DriverLayer': (inner) => withMetrics(new DriverLayer(inner), storageMetrics(new Registry())),
  'withFaults without rules': (inner) => withFaults(inner, { seed: 1, rules: [] }),
  // Its quotas cover none of the keys used here, so nothing is metered: every call goes through.
  'withQuotas on keys no quota covers': (inner) => withQuotas(inner, { rules: { 'elsewhere/': { maxBytes: 1 } }, store: new EmbeddedQuotaStore(mkdtempSync(join(tmpdir(), 'stowage-contract-quota-'))) }),
};

/** Operations a layer must look something up for first: the session's record, to know its key. */
const LOOKUPS: Record<string, Partial<Record<DriverOperation, DriverOperation[]>>> = {
  'withQuotas on keys no quota covers': { writeSession: ['getSession', 'writeSession'], completeSession: ['getSession', 'completeSession'] },
};

describe('the contract', () => {
  it('lists every method of a driver as an operation', () => {
    const base = new DriverLayer(recorder('r'));
    const methods = Object.getOwnPropertyNames(DriverLayer.prototype).filter((name) => name !== 'constructor' && typeof (base as unknown as Record<string, unknown>)[name] === 'function');
    assert.deepEqual(methods.filter((m) => m !== 'around').sort(), [...DRIVER_OPERATIONS].sort());
  });
});

for (const [label, wrap] of Object.entries(LAYERS)) {
  describe(`layer: ${label}`, () => {
    it('forwards every operation with its arguments and hands back its result', async () => {
      for (const operation of DRIVER_OPERATIONS) {
        const inner = recorder('inner');
        const result = await invoke(wrap(inner), operation);
        const expected = LOOKUPS[label]?.[operation] ?? [operation];
        assert.deepEqual(inner.calls.map((c) => c.operation), expected, `${operation} reaches the inner driver once`);
        const call = inner.calls.at(-1);
        assert.ok(call);
        assert.equal(call.args.length, ARGS[operation].length, `${operation} passes every argument`);
        call.args.forEach((arg, i) => assert.equal(arg, ARGS[operation][i], `${operation} passes argument ${i} as it is`));
        assert.equal(result, inner.results.get(operation), `${operation} returns the inner result as it is`);
      }
    });

    it("forwards the inner driver's name and capabilities", () => {
      const inner = recorder('inner', { nativeSignedUrls: true, multipartUploads: true });
      const layer = wrap(inner);
      assert.equal(layer.name, 'inner');
      assert.deepEqual(layer.capabilities, inner.capabilities);
    });

    it('hands back failures as they are', async () => {
      const inner = recorder('inner');
      const failure = new Error('inner failure');
      inner.stat = () => Promise.reject(failure);
      await assert.rejects(wrap(inner).stat('k'), (err) => err === failure);
    });
  });
}

/** Which backend(s) each operation of the fallback driver reaches, in order; `unsupported` for those it refuses. */
const FALLBACK: Record<DriverOperation, { primary: DriverOperation[]; secondary: DriverOperation[] } | 'unsupported'> = {
  put: { primary: ['put'], secondary: [] },
  putFile: { primary: ['putFile'], secondary: [] },
  stat: { primary: ['stat'], secondary: [] },
  read: { primary: ['read'], secondary: [] },
  delete: { primary: ['delete'], secondary: ['delete'] },
  deleteMany: { primary: ['deleteMany'], secondary: ['deleteMany'] },
  copy: { primary: ['copy'], secondary: [] },
  copyFrom: { primary: ['copyFrom'], secondary: [] },
  move: { primary: ['copy', 'delete'], secondary: ['delete'] },
  list: { primary: ['list'], secondary: ['list'] },
  signedUrl: 'unsupported',
  presignPost: 'unsupported',
  check: { primary: ['check'], secondary: ['check'] },
  verify: { primary: ['verify'], secondary: ['verify'] },
  incompleteUploads: { primary: ['incompleteUploads'], secondary: ['incompleteUploads'] },
  abortUpload: { primary: ['abortUpload'], secondary: ['abortUpload'] },
  createSession: { primary: ['createSession'], secondary: [] },
  getSession: { primary: ['getSession'], secondary: [] },
  writeSession: { primary: ['writeSession'], secondary: [] },
  completeSession: { primary: ['completeSession'], secondary: [] },
  abortSession: { primary: ['abortSession'], secondary: [] },
  readSession: { primary: ['readSession'], secondary: [] },
  listSessions: { primary: ['listSessions'], secondary: [] },
  putInternal: { primary: ['putInternal'], secondary: [] },
  readInternal: { primary: ['readInternal'], secondary: [] },
  deleteInternal: { primary: ['deleteInternal'], secondary: [] },
  listInternal: { primary: ['listInternal'], secondary: [] },
  location: { primary: [], secondary: [] },
  close: { primary: ['close'], secondary: ['close'] },
};

describe('fallback driver', () => {
  const both = () => {
    const primary = recorder('primary', { nativePutFile: true, multipartUploads: true });
    const secondary = recorder('secondary', { multipartUploads: true });
    return { primary, secondary, fallback: new FallbackDriver({ primary, secondary }) };
  };

  it('passes every operation to the backend it documents, and refuses only signing', async () => {
    for (const operation of DRIVER_OPERATIONS) {
      const { primary, secondary, fallback } = both();
      const expected = FALLBACK[operation];
      if (expected === 'unsupported') {
        await rejectsWith(invoke(fallback, operation) as Promise<unknown>, 'E_UNSUPPORTED');
        assert.deepEqual([...primary.calls, ...secondary.calls], [], `${operation} reaches neither backend`);
        continue;
      }
      await invoke(fallback, operation);
      assert.deepEqual(primary.calls.map((c) => c.operation), expected.primary, `${operation} on the primary`);
      assert.deepEqual(secondary.calls.map((c) => c.operation), expected.secondary, `${operation} on the secondary`);
    }
  });

  it('hands a copy from another driver to the primary, and offers no location of its own', async () => {
    const { primary, fallback } = both();
    const source = recorder('source');
    assert.deepEqual(await fallback.copyFrom(source, 'k', 'l'), primary.results.get('copyFrom'));
    assert.equal(primary.calls[0]?.args[0], source, 'the source is passed as it is, so the primary can find its location');
    assert.equal(fallback.location(), undefined, 'objects in two backends have no one place a service could copy from');
  });

  it('states what it supports from its backends', () => {
    const { fallback } = both();
    assert.deepEqual(
      { ...fallback.capabilities },
      { conditionalWrites: true, rangeReads: true, keyIsPrefix: true, maxSegmentBytes: undefined, maxObjectSize: undefined, nativeSignedUrls: false, nativePresignPost: false, nativeMove: true, nativePutFile: true, multipartUploads: true, sessions: false, internalFiles: false },
    );
    const plain = new FallbackDriver({ primary: recorder('p'), secondary: recorder('s') });
    assert.equal(plain.capabilities.nativePutFile, false, 'files are streamed when the primary cannot store them natively');
    assert.equal(plain.capabilities.multipartUploads, false);
    assert.equal(new FallbackDriver({ primary: recorder('p', { sessions: true }), secondary: recorder('s') }).capabilities.sessions, true, 'sessions live in the primary');
    assert.equal(new FallbackDriver({ primary: recorder('p', { internalFiles: true }), secondary: recorder('s') }).capabilities.internalFiles, true, 'internal files live in the primary');
  });

  it('lists and aborts incomplete uploads only where a backend keeps them', async () => {
    const primary = recorder('primary', { multipartUploads: true });
    const secondary = recorder('secondary');
    const fallback = new FallbackDriver({ primary, secondary });
    assert.deepEqual(await fallback.incompleteUploads('p/'), [upload]);
    await fallback.abortUpload(upload);
    assert.deepEqual(primary.calls.map((c) => c.operation), ['incompleteUploads', 'abortUpload']);
    assert.deepEqual(secondary.calls, []);
    await rejectsWith(new FallbackDriver({ primary: recorder('p'), secondary: recorder('s') }).abortUpload(upload), 'E_UNSUPPORTED', 'multipart');
  });

  it('brings a secondary-only object over before a conditional putFile, as before a conditional put', async () => {
    const primary = recorder('primary', { nativePutFile: true });
    primary.stat = (key) => Promise.reject(new StorageError('E_NOT_FOUND', `no ${key}`));
    const secondary = new MemoryDriver();
    await secondary.put('k', new PutBody('old'), { contentType: 'text/plain', metadata: {} });
    const fallback = new FallbackDriver({ primary, secondary });
    await fallback.putFile('k', '/tmp/file', { contentType: 'text/plain', metadata: {}, ifNoneMatch: '*' }, {});
    assert.deepEqual(primary.calls.map((c) => c.operation), ['put', 'putFile'], 'the old object is copied over first, so the condition sees it');
  });
});
