/**
 * The cases every quota store must pass (src/layers/quota/store.ts is the contract), run
 * by each store's own test file on a real store: the Redis one on a real redis-server,
 * the embedded one on a real folder. They use only the contract, nothing of a store's
 * insides.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { counterId, QuotaRefused, type CounterUsage, type QuotaRefusal, type QuotaStore, type ReservationItem } from '../../../src/layers/quota/store.js';

/** A fresh, empty store, already opened, and how to close it (and drop what it left). */
export type OpenStore = () => Promise<{ store: QuotaStore; close: () => Promise<void> }>;

const USERS = 'users/*/';
const ALICE = counterId(USERS, 'users/alice/');
const BOB = counterId(USERS, 'users/bob/');
const TEAM = counterId('teams/*/', 'teams/red/');
const LONG = 3_600_000;

/** One item: `bytes` (and `objects`) on `counter` under the given limits. */
function item(counter: string, bytes: number, limits: { maxBytes?: number; maxObjects?: number } = {}, objects = 0): ReservationItem {
  return { counter, bytes, objects, ...limits };
}

function usage(bytes: number, objects: number, reservedBytes: number, reservedObjects: number): CounterUsage {
  return { bytes, objects, reservedBytes, reservedObjects };
}

/** Asserts that `promise` rejects with QuotaRefused carrying exactly `refusal`. */
async function refused(promise: Promise<unknown>, refusal: QuotaRefusal): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof QuotaRefused, `expected QuotaRefused, got ${String(err)}`);
    assert.deepEqual(err.refusal, refusal);
    return true;
  });
}

async function usageOf(store: QuotaStore, counter: string): Promise<CounterUsage | undefined> {
  return (await store.read([counter])).get(counter);
}

/** Registers the cases as a node:test suite named `name`, each on a store from `open`. */
export function storeCases(name: string, open: OpenStore): void {
  /** Runs `body` on a fresh store and closes it after, whatever happens. */
  const withStore = (body: (store: QuotaStore) => Promise<void>) => async () => {
    const { store, close } = await open();
    try {
      await body(store);
    } finally {
      await close();
    }
  };
  const later = () => Date.now() + LONG;

  describe(name, () => {
    it('reserves within limits and counts the reservation', withStore(async (store) => {
      assert.equal(await store.reserve({ id: randomUUID(), expiresAt: later(), items: [item(ALICE, 60, { maxBytes: 100 }, 1)] }), 'ok');
      assert.equal(await store.reserve({ id: randomUUID(), expiresAt: later(), items: [item(ALICE, 40, { maxBytes: 100 }, 1), item(TEAM, 7)] }), 'ok');
      assert.deepEqual(await usageOf(store, ALICE), usage(0, 0, 100, 2));
      assert.deepEqual(await usageOf(store, TEAM), usage(0, 0, 7, 0));
    }));

    it('refuses a reservation that would pass a limit, with what was used, reserved and asked, and records nothing', withStore(async (store) => {
      await store.settle([], [{ counter: ALICE, bytes: 30, objects: 1 }]);
      await store.reserve({ id: 'a', expiresAt: later(), items: [item(ALICE, 50, { maxBytes: 100 })] });
      await refused(store.reserve({ id: 'b', expiresAt: later(), items: [item(TEAM, 5), item(ALICE, 21, { maxBytes: 100 })] }), {
        counter: ALICE, kind: 'bytes', limit: 100, used: 30, reserved: 50, asked: 21,
      });
      assert.deepEqual(await usageOf(store, ALICE), usage(30, 1, 50, 0));
      assert.deepEqual(await usageOf(store, TEAM), usage(0, 0, 0, 0), 'the item that fitted was not reserved either');
      assert.equal(await store.reserve({ id: 'b', expiresAt: later(), items: [item(ALICE, 20, { maxBytes: 100 })] }), 'ok', 'exactly up to the limit fits');
    }));

    it('counts a negative settled counter as zero', withStore(async (store) => {
      await store.settle([], [{ counter: ALICE, bytes: -50, objects: -2 }]);
      assert.equal(await store.reserve({ id: 'a', expiresAt: later(), items: [item(ALICE, 100, { maxBytes: 100, maxObjects: 1 }, 1)] }), 'ok');
      await refused(store.reserve({ id: 'b', expiresAt: later(), items: [item(ALICE, 1, { maxBytes: 100 })] }), {
        counter: ALICE, kind: 'bytes', limit: 100, used: 0, reserved: 100, asked: 1,
      });
    }));

    it('lets exactly as many of 40 concurrent reserves through as fit', withStore(async (store) => {
      await store.settle([], [{ counter: ALICE, bytes: 50, objects: 0 }]);
      const results = await Promise.allSettled(
        Array.from({ length: 40 }, () => store.reserve({ id: randomUUID(), expiresAt: later(), items: [item(ALICE, 10, { maxBytes: 255 })] })),
      );
      const ok = results.filter((r) => r.status === 'fulfilled');
      const no = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      assert.equal(ok.length, 20, '(255 - 50) / 10 reservations of 10 bytes fit');
      assert.ok(no.every((r) => r.reason instanceof QuotaRefused), 'the others are refusals');
      assert.deepEqual(await usageOf(store, ALICE), usage(50, 0, 200, 0));
    }));

    it('answers busy for a key another live reservation holds, and frees it on settle or release', withStore(async (store) => {
      const keyed = (id: string) => ({ id, key: 'users/alice/cv.pdf', before: null, expiresAt: later(), items: [item(ALICE, 10, { maxBytes: 100 }, 1)] });
      assert.equal(await store.reserve(keyed('a')), 'ok');
      assert.equal(await store.reserve(keyed('b')), 'busy');
      assert.deepEqual(await usageOf(store, ALICE), usage(0, 0, 10, 1), 'busy reserved nothing');
      assert.equal(await store.reserve({ ...keyed('c'), key: 'users/alice/other.pdf' }), 'ok', 'other keys are free');
      await store.settle(['a'], [{ counter: ALICE, bytes: 10, objects: 1 }]);
      assert.equal(await store.reserve(keyed('b')), 'ok');
      assert.equal(await store.reserve(keyed('d')), 'busy');
      await store.release(['b']);
      assert.equal(await store.reserve(keyed('d')), 'ok');
    }));

    it('replaces a reservation whose id is already held', withStore(async (store) => {
      await store.reserve({ id: 'a', expiresAt: later(), items: [item(ALICE, 60, { maxBytes: 100 })] });
      assert.equal(await store.reserve({ id: 'a', expiresAt: later(), items: [item(ALICE, 90, { maxBytes: 100 })] }), 'ok', 'its own old amount does not count against it');
      assert.deepEqual(await usageOf(store, ALICE), usage(0, 0, 90, 0));
    }));

    it('adds up the items of one request that name the same counter', withStore(async (store) => {
      await store.reserve({ id: 'a', key: 'users/alice/a.txt', before: null, expiresAt: later(), items: [item(ALICE, 10, { maxBytes: 100 }, 1), item(ALICE, 5, {}, 1)] });
      assert.deepEqual(await usageOf(store, ALICE), usage(0, 0, 15, 2));
      await store.grow('a', [item(ALICE, 3), item(ALICE, 4)], later());
      assert.deepEqual(await usageOf(store, ALICE), usage(0, 0, 22, 2));
      await refused(store.reserve({ id: 'b', expiresAt: later(), items: [item(ALICE, 40, { maxBytes: 100 }), item(ALICE, 40, { maxBytes: 100 })] }), {
        counter: ALICE,
        kind: 'bytes',
        limit: 100,
        used: 0,
        reserved: 62,
        asked: 40,
      });
      await store.release(['a']);
      assert.deepEqual(await usageOf(store, ALICE), usage(0, 0, 0, 0), 'released: all of both');
    }));

    it('settles deltas and drops the reservations in one step, returning the usage', withStore(async (store) => {
      await store.reserve({ id: 'a', expiresAt: later(), items: [item(ALICE, 40, {}, 1)] });
      await store.reserve({ id: 'b', expiresAt: later(), items: [item(ALICE, 5, {}, 1)] });
      const after = await store.settle(['a', 'unknown'], [{ counter: ALICE, bytes: 40, objects: 1 }, { counter: BOB, bytes: -3, objects: -1 }]);
      assert.deepEqual(after.get(ALICE), usage(40, 1, 5, 1));
      assert.deepEqual(after.get(BOB), usage(-3, -1, 0, 0));
      await store.settle([], [{ counter: ALICE, bytes: 2, objects: 0 }]);
      assert.deepEqual(await usageOf(store, ALICE), usage(42, 1, 5, 1));
    }));

    it('releases reservations without touching the counters', withStore(async (store) => {
      await store.settle([], [{ counter: ALICE, bytes: 8, objects: 1 }]);
      await store.reserve({ id: 'a', expiresAt: later(), items: [item(ALICE, 40, { maxBytes: 50 }, 1)] });
      await store.release(['a', 'unknown']);
      assert.deepEqual(await usageOf(store, ALICE), usage(8, 1, 0, 0));
      assert.equal(await store.reserve({ id: 'b', expiresAt: later(), items: [item(ALICE, 42, { maxBytes: 50 })] }), 'ok');
    }));

    it('grows a reservation with the same check, leaving it as it was when refused', withStore(async (store) => {
      await store.reserve({ id: 'a', expiresAt: later(), items: [item(ALICE, 50, { maxBytes: 100 })] });
      await refused(store.grow('a', [item(ALICE, 51, { maxBytes: 100 })], later()), { counter: ALICE, kind: 'bytes', limit: 100, used: 0, reserved: 50, asked: 51 });
      assert.deepEqual(await usageOf(store, ALICE), usage(0, 0, 50, 0));
      await store.grow('a', [item(ALICE, 50, { maxBytes: 100 })], later());
      assert.deepEqual(await usageOf(store, ALICE), usage(0, 0, 100, 0));
      await store.grow('fresh', [item(BOB, 7)], later());
      assert.deepEqual(await usageOf(store, BOB), usage(0, 0, 7, 0), 'an unknown id is reserved anew');
      await store.release(['a', 'fresh']);
      assert.deepEqual([await usageOf(store, ALICE), await usageOf(store, BOB)], [usage(0, 0, 0, 0), usage(0, 0, 0, 0)], 'release drops what grow added');
    }));

    it('stops counting lapsed reservations, and renew keeps one alive', withStore(async (store) => {
      // A second of life: the checks before the sleep run well within it on a busy machine.
      const soon = Date.now() + 1000;
      await store.reserve({ id: 'short', expiresAt: soon, items: [item(ALICE, 60, { maxBytes: 100 })] });
      await store.reserve({ id: 'renewed', expiresAt: soon, items: [item(ALICE, 30, { maxBytes: 100 })] });
      await refused(store.reserve({ id: 'b', expiresAt: later(), items: [item(ALICE, 20, { maxBytes: 100 })] }), { counter: ALICE, kind: 'bytes', limit: 100, used: 0, reserved: 90, asked: 20 });
      await store.renew(['renewed', 'unknown'], later());
      await sleep(soon - Date.now() + 100);
      assert.equal(await store.reserve({ id: 'b', expiresAt: later(), items: [item(ALICE, 70, { maxBytes: 100 })] }), 'ok');
      assert.deepEqual(await usageOf(store, ALICE), usage(0, 0, 100, 0));
      await store.renew(['short'], later());
      assert.deepEqual(await usageOf(store, ALICE), usage(0, 0, 100, 0), 'a lapsed reservation is not renewed back');
    }));

    it('hands a lapsed keyed reservation out of takeLapsedWrites exactly once', withStore(async (store) => {
      const before = { size: 3, etag: '"abc"' };
      await store.reserve({ id: 'w', key: 'users/alice/a.txt', before, expiresAt: Date.now() + 200, items: [item(ALICE, 9, { maxBytes: 100 }, 1), item(TEAM, 9)] });
      await store.reserve({ id: 'session:s1', expiresAt: Date.now() + 200, items: [item(ALICE, 4)] });
      await sleep(350);
      const taken = await store.takeLapsedWrites();
      if (store.leaseMs === Infinity) {
        // The contract: the embedded store's writes end with its process, so open() answers them all.
        assert.deepEqual(taken, []);
      } else {
        assert.equal(taken.length, 1, 'the keyed write only, not the session');
        const [w] = taken;
        assert.deepEqual({ ...w!, items: [...w!.items].sort((x, y) => x.counter.localeCompare(y.counter)) }, {
          id: 'w',
          key: 'users/alice/a.txt',
          before,
          items: [item(TEAM, 9), item(ALICE, 9, { maxBytes: 100 }, 1)].sort((x, y) => x.counter.localeCompare(y.counter)),
        });
        assert.deepEqual(await store.takeLapsedWrites(), [], 'handed out once');
        assert.equal(await store.reserve({ id: 'next', key: 'users/alice/a.txt', before: null, expiresAt: later(), items: [] }), 'ok', 'the lapsed write holds its key no more');
      }
      assert.deepEqual(await usageOf(store, ALICE), usage(0, 0, 0, 0));
    }));

    it('resets the counters a listing found and zeroes the others in scope', withStore(async (store) => {
      const carol = counterId(USERS, 'users/carol/');
      await store.settle([], [
        { counter: ALICE, bytes: 100, objects: 4 },
        { counter: BOB, bytes: 50, objects: 2 },
        { counter: TEAM, bytes: 70, objects: 7 },
      ]);
      await store.reserve({ id: 'a', expiresAt: later(), items: [item(ALICE, 10, {}, 1)] });
      await store.reset(new Map([[ALICE, { bytes: 30, objects: 3 }], [carol, { bytes: 5, objects: 1 }]]), [`${USERS}\u001f`]);
      const all = await store.read();
      assert.deepEqual(all.get(ALICE), usage(30, 3, 10, 1), 'set, reservations stay');
      assert.deepEqual(all.get(carol), usage(5, 1, 0, 0), 'a counter the listing found first');
      assert.deepEqual(all.get(BOB), usage(0, 0, 0, 0), 'in scope, not found: zero');
      assert.deepEqual(all.get(TEAM), usage(70, 7, 0, 0), 'out of scope: untouched');
    }));

    it('reads every known counter, or the given ones with zero for untouched ids', withStore(async (store) => {
      assert.deepEqual(await store.read(), new Map(), 'a fresh store knows no counter');
      await store.settle([], [{ counter: ALICE, bytes: 1, objects: 1 }]);
      await store.reserve({ id: 'a', expiresAt: later(), items: [item(TEAM, 2)] });
      assert.deepEqual(await store.read(), new Map([[ALICE, usage(1, 1, 0, 0)], [TEAM, usage(0, 0, 2, 0)]]));
      assert.deepEqual(await store.read([BOB, ALICE]), new Map([[BOB, usage(0, 0, 0, 0)], [ALICE, usage(1, 1, 0, 0)]]));
    }));

    it('reserves an indexed write by what the index holds for its key, read in the same step', withStore(async (store) => {
      const key = 'users/alice/cv.pdf';
      const counters = [{ counter: ALICE, maxBytes: 1000, maxObjects: 5 }, { counter: TEAM }];
      const indexed = (id: string, size: number, objects?: number) => store.reserveIndexed({ id, key, expiresAt: later(), size, ...(objects === undefined ? {} : { objects }), counters });
      assert.deepEqual(await indexed('a', 300), { before: null }, 'a key the index lacks');
      assert.deepEqual(await usageOf(store, ALICE), usage(0, 0, 300, 1), 'its whole size and a new object');
      assert.deepEqual(await usageOf(store, TEAM), usage(0, 0, 300, 1));
      assert.equal(await indexed('b', 10), 'busy', 'the key is held');
      assert.equal(await store.reserve({ id: 'c', key, before: null, expiresAt: later(), items: [] }), 'busy', 'held for reserve too');
      await store.settle(['a'], [{ counter: ALICE, bytes: 300, objects: 1 }, { counter: TEAM, bytes: 300, objects: 1 }], [{ key, size: 300 }]);

      assert.deepEqual(await indexed('b', 450), { before: { size: 300 } }, 'settle recorded the size');
      assert.deepEqual(await usageOf(store, ALICE), usage(300, 1, 150, 0), 'an overwrite reserves what it adds, and no object');
      await store.release(['b']);
      assert.deepEqual(await indexed('c', 100), { before: { size: 300 } });
      assert.deepEqual(await usageOf(store, ALICE), usage(300, 1, 0, 0), 'a smaller overwrite reserves nothing');
      await store.release(['c']);
      await indexed('d', 0, 0);
      assert.deepEqual(await usageOf(store, ALICE), usage(300, 1, 0, 0), 'objects as given (a delete or a move away)');
      await store.settle(['d'], [{ counter: ALICE, bytes: -300, objects: -1 }], [{ key, size: null }]);
      assert.deepEqual(await indexed('e', 5), { before: null }, 'settled as gone: out of the index');
      await store.release(['e']);

      await store.replaceIndex(new Map([[key, 990]]));
      await refused(indexed('f', 2100), { counter: ALICE, kind: 'bytes', limit: 1000, used: 0, reserved: 0, asked: 1110 });
      assert.deepEqual(await usageOf(store, ALICE), usage(0, 0, 0, 0), 'refused: nothing reserved');
      assert.equal(await store.reserve({ id: 'g', key, before: null, expiresAt: later(), items: [] }), 'ok', 'nor the key held');
    }));

    it('computes indexed amounts exactly for sizes up to 2^53', withStore(async (store) => {
      const key = 'users/alice/huge.bin';
      const counters = [{ counter: ALICE }];
      await store.replaceIndex(new Map([[key, 1]]));
      assert.deepEqual(await store.reserveIndexed({ id: 'a', key, expiresAt: later(), size: 2 ** 50 + 3, counters }), { before: { size: 1 } });
      assert.deepEqual(await usageOf(store, ALICE), usage(0, 0, 2 ** 50 + 2, 0), 'a difference of 16 digits, exact');
      await store.release(['a']);
      await store.replaceIndex(new Map());
      await store.reserveIndexed({ id: 'b', key, expiresAt: later(), size: Number.MAX_SAFE_INTEGER, counters });
      assert.deepEqual(await usageOf(store, ALICE), usage(0, 0, Number.MAX_SAFE_INTEGER, 1));
    }));

    it('hands a lapsed indexed write out with the size indexed as what the key held', withStore(async (store) => {
      const key = 'users/alice/a.txt';
      await store.replaceIndex(new Map([[key, 7]]));
      await store.reserveIndexed({ id: 'w', key, expiresAt: Date.now() + 200, size: 9, counters: [{ counter: ALICE }] });
      await sleep(350);
      const taken = await store.takeLapsedWrites();
      if (store.leaseMs === Infinity) assert.deepEqual(taken, [], "the embedded store's writes are open()'s to hand out");
      else assert.deepEqual(taken, [{ id: 'w', key, before: { size: 7 }, items: [item(ALICE, 2)] }]);
    }));

    it('limits objects as it limits bytes', withStore(async (store) => {
      await store.settle([], [{ counter: ALICE, bytes: 0, objects: 1 }]);
      const one = (id: string) => store.reserve({ id, expiresAt: later(), items: [item(ALICE, 1, { maxBytes: 1000, maxObjects: 3 }, 1)] });
      assert.equal(await one('a'), 'ok');
      assert.equal(await one('b'), 'ok');
      await refused(one('c'), { counter: ALICE, kind: 'objects', limit: 3, used: 1, reserved: 2, asked: 1 });
      await store.release(['a']);
      assert.equal(await one('c'), 'ok');
    }));
  });
}
