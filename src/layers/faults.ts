/**
 * A fault-injection layer: wraps any Driver and makes chosen operations fail, slow down,
 * hang, lose their answer after doing their work, or deliver a read stream that breaks
 * part way, at rates set per rule and deterministic for a seed. Stowage's own chaos tests
 * use it, and an app can use it to test its error handling without a broken backend:
 *
 *     const storage = createStorage({ driver: 'memory' }).withDriver((d) =>
 *       withFaults(d, { seed: 42, rules: [{ operations: ['put'], probability: 0.1, fault: { kind: 'error', code: 'E_UNAVAILABLE' } }] }));
 *
 * A fault never changes what a successful call returns; what it injects is a StorageError
 * like a real backend's (its `retryable` follows the code), whose message says it was
 * injected. `injected` lists what was done, for assertions.
 */
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Driver } from '../core/contract.js';
import { StorageError, type ErrorCode } from '../core/errors.js';
import type { NotModified, ObjectStream } from '../core/types.js';
import { DriverLayer, type AsyncDriverOperation } from './layer.js';

/** What a rule does to a call it picks. */
export type Fault =
  /** Fails the call with this code before it reaches the backend. */
  | { kind: 'error'; code: ErrorCode }
  /** Waits this long, then runs the call as usual. */
  | { kind: 'latency'; ms: number }
  /** Answers nothing for `ms`, then fails with E_TIMEOUT, as a backend that stopped responding (closing the layer ends it sooner). */
  | { kind: 'stall'; ms: number }
  /** Runs the call (it takes effect), then fails with this code, as when a reply is lost. */
  | { kind: 'lostReply'; code: ErrorCode }
  /** For `read`: the content stream fails with E_UNAVAILABLE after this many bytes. */
  | { kind: 'cut'; afterBytes: number };

/** One rule: which calls it may pick, how often, and what it does. */
export interface FaultRule {
  /** The operations it applies to; default every one but `close`. */
  operations?: readonly AsyncDriverOperation[];
  /** The chance that it picks a matching call, 0 to 1 (default 1). */
  probability?: number;
  /** It picks at most this many calls (default no limit). */
  times?: number;
  fault: Fault;
}

/** Options of {@link withFaults}. */
export interface FaultOptions {
  /** Seeds the random choices: the same seed and the same calls in the same order inject the same faults. */
  seed: number;
  /** Checked in order for each call; every rule that picks the call applies (latency first, then the rest). */
  rules: readonly FaultRule[];
}

/** One fault that was injected. */
export interface InjectedFault {
  operation: AsyncDriverOperation;
  kind: Fault['kind'];
}

/** The driver {@link withFaults} returns: a Driver, plus the record of what it injected. */
export interface FaultyDriver extends Driver {
  /** Every fault injected so far, in order. */
  readonly injected: readonly InjectedFault[];
}

/** A small seeded generator (mulberry32): uniform numbers in [0, 1), the same sequence for a seed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An injected error: the code's usual `retryable`, and a message that says where it came from. */
function injectedError(code: ErrorCode, operation: string, what: string): StorageError {
  return new StorageError(code, `fault injected into ${operation}: ${what}`);
}

/**
 * `stream`, failing with E_UNAVAILABLE once `limit` bytes have passed. The bytes before
 * the cut arrive intact, as from a connection that broke: the error comes only once they
 * have been read (a stream destroyed while they wait in its buffer would drop them).
 */
function cutAfter(stream: Readable, limit: number): Readable {
  const chunks = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let passed = 0;
  const pull = async (out: Readable) => {
    if (passed >= limit) {
      // Fail once the bytes before the cut are taken; until then, an empty push lets the
      // stream ask again when they are (it does not spin on pushes that add nothing).
      if (out.readableLength === 0) out.destroy(injectedError('E_UNAVAILABLE', 'read', `the stream was cut after ${limit} bytes`));
      else out.push(Buffer.alloc(0));
      return;
    }
    try {
      const next = await chunks.next();
      if (next.done) return void out.push(null);
      const part = next.value.length <= limit - passed ? next.value : next.value.subarray(0, limit - passed);
      passed += part.length;
      out.push(part);
    } catch (err) {
      out.destroy(err as Error);
    }
  };
  return new Readable({
    read() {
      void pull(this);
    },
    destroy(err, done) {
      stream.destroy();
      done(err);
    },
  });
}

/** Validates the rules once, so a typo fails at construction rather than silently injecting nothing. */
function checkRules(rules: readonly FaultRule[]): void {
  rules.forEach((rule, i) => {
    const p = rule.probability ?? 1;
    if (!(p >= 0 && p <= 1)) throw new StorageError('E_INVALID_ARGUMENT', `fault rule ${i}: probability must be between 0 and 1, got ${String(rule.probability)}`);
    if (rule.times !== undefined && !(Number.isInteger(rule.times) && rule.times >= 0)) throw new StorageError('E_INVALID_ARGUMENT', `fault rule ${i}: times must be a whole number >= 0`);
    const { fault } = rule;
    if ((fault.kind === 'latency' || fault.kind === 'stall') && !(fault.ms >= 0)) throw new StorageError('E_INVALID_ARGUMENT', `fault rule ${i}: ${fault.kind} ms must be >= 0`);
    if (fault.kind === 'cut' && !(Number.isInteger(fault.afterBytes) && fault.afterBytes >= 0)) throw new StorageError('E_INVALID_ARGUMENT', `fault rule ${i}: afterBytes must be a whole number >= 0`);
    if (fault.kind === 'cut' && rule.operations !== undefined && rule.operations.some((o) => o !== 'read')) throw new StorageError('E_INVALID_ARGUMENT', `fault rule ${i}: a cut applies to read only`);
  });
}

/** The layer itself; see the module comment. */
class FaultLayer extends DriverLayer implements FaultyDriver {
  /** The rules, each with how many calls it has picked. */
  readonly #rules: { rule: FaultRule; used: number }[];
  readonly #random: () => number;
  /** Ends every stall in progress (on close). */
  readonly #closing = new AbortController();
  readonly #injected: InjectedFault[] = [];

  constructor(inner: Driver, options: FaultOptions) {
    super(inner);
    checkRules(options.rules);
    this.#rules = options.rules.map((rule) => ({ rule, used: 0 }));
    this.#random = seededRandom(options.seed);
  }

  get injected(): readonly InjectedFault[] {
    return this.#injected;
  }

  /** The faults of the rules that pick this call, each rule rolling once, in rule order. */
  #pick(operation: AsyncDriverOperation): Fault[] {
    const picked: Fault[] = [];
    for (const state of this.#rules) {
      const { rule } = state;
      const applies = rule.operations ? rule.operations.includes(operation) : rule.fault.kind !== 'cut' || operation === 'read';
      if (!applies || (rule.times !== undefined && state.used >= rule.times)) continue;
      if (this.#random() >= (rule.probability ?? 1)) continue;
      state.used++;
      picked.push(rule.fault);
      this.#injected.push({ operation, kind: rule.fault.kind });
    }
    return picked;
  }

  protected override async around<T>(operation: AsyncDriverOperation, run: () => Promise<T>): Promise<T> {
    if (operation === 'close') {
      // End the stalls first: nothing may hang past close.
      this.#closing.abort();
      return run();
    }
    const faults = this.#pick(operation);
    for (const f of faults) if (f.kind === 'latency') await sleep(f.ms);
    const failure = faults.find((f) => f.kind === 'error');
    if (failure) throw injectedError(failure.code, operation, `the backend failed with ${failure.code}`);
    const stall = faults.find((f) => f.kind === 'stall');
    if (stall) {
      await sleep(stall.ms, undefined, { signal: this.#closing.signal }).catch(() => undefined);
      throw injectedError('E_TIMEOUT', operation, `the backend did not answer (stalled ${stall.ms} ms)`);
    }
    const result = await run();
    const lost = faults.find((f) => f.kind === 'lostReply');
    if (lost) {
      if (operation === 'read') (result as ObjectStream | NotModified as ObjectStream).stream?.destroy();
      throw injectedError(lost.code, operation, `the operation ran but its answer was lost (${lost.code})`);
    }
    const cut = faults.find((f) => f.kind === 'cut');
    if (cut && operation === 'read') {
      const read = result as ObjectStream | NotModified;
      // Drop bytes held in memory so the caller reads the stream that breaks.
      if (!read.notModified) return { ...read, stream: cutAfter(read.stream, cut.afterBytes), bytes: undefined } as T;
    }
    return result;
  }
}

/**
 * Wraps `driver` in a layer that injects faults by `options.rules`, deterministically for
 * `options.seed` (see {@link FaultRule}). With no rules it changes nothing.
 */
export function withFaults(driver: Driver, options: FaultOptions): FaultyDriver {
  return new FaultLayer(driver, options);
}
