/**
 * Where an S3 upload session lives in the bucket, below the driver's prefix:
 *
 *   .stowage/sessions/<id>.json           its state: the record, the multipart upload's
 *                                         id and committed parts, the tail's name and size
 *   .stowage/sessions/<id>/tail-<offset>  the bytes past the last whole part (fewer than
 *                                         a part), a new name per write (the session's
 *                                         offset after it), so a crash never loses the old one
 *   the multipart upload at the key       the whole parts, made on the first one
 *   .stowage/sessions/<id>/sealed         a partial session's bytes once read for a
 *                                         concatenation: its upload (made there, not at
 *                                         the key) completed, so S3 can read it
 *
 * The offset a later process sees is recomputed from ListParts plus the tail and
 * checked against the state: a state claiming bytes the bucket lost is E_UNAVAILABLE.
 */
import { mapConcurrently } from '../../core/concurrency.js';
import { StorageError, isStorageError } from '../../core/errors.js';
import { sessionNotFound, type SessionRecord } from '../../core/sessions.js';
import { listStoredParts, type S3Call } from './multipart.js';
import type { ResolvedS3Options } from './options.js';
import { PartSchedule } from './part-sizes.js';
import { s3 } from './sdk.js';
import { RESERVED_SEGMENT } from '../../core/keys.js';

/** Below the driver's prefix, where sessions live. */
const SESSIONS_AREA = `${RESERVED_SEGMENT}/sessions/`;
/** States read at once when listing them all. */
const READ_CONCURRENCY = 16;

/** A whole part the session committed. */
export interface SessionPart {
  partNumber: number;
  size: number;
  etag: string;
}

/** The state object's content. */
export interface SessionState {
  version: 1;
  record: SessionRecord;
  /** The multipart upload, once the first whole part was sent. */
  uploadId?: string;
  /** The first part's size; parts grow from it unless `equalParts`. */
  partSize: number;
  equalParts: boolean;
  maxParts: number;
  parts: SessionPart[];
  /** The bytes past the last part: the tail object's name (below the session's folder) and size. */
  tail?: { name: string; size: number };
  /** Set before the upload is completed: an upload gone after this completed, it was not lost. */
  completing?: boolean;
  /** A partial session whose bytes are in its sealed object (no upload, parts or tail any more). */
  sealed?: boolean;
}

/** Where one session's objects are. */
export class SessionPlace {
  readonly #o: ResolvedS3Options;
  readonly id: string;

  constructor(o: ResolvedS3Options, id: string) {
    this.#o = o;
    this.id = id;
  }

  /** The state object's S3 key. */
  get stateKey(): string {
    return `${this.#o.prefix}${SESSIONS_AREA}${this.id}.json`;
  }

  /** The folder of the session's tails. */
  get tailFolder(): string {
    return `${this.#o.prefix}${SESSIONS_AREA}${this.id}/`;
  }

  /** The S3 key of a tail object. */
  tailKey(name: string): string {
    return this.tailFolder + name;
  }

  /** The S3 key a partial session's bytes are sealed into (kept by `deleteTails` unless `all`). */
  get sealedKey(): string {
    return this.tailFolder + 'sealed';
  }

  /** Where the session's multipart upload is made: at the object's key, or for a partial session at its sealed key. */
  uploadKey(record: SessionRecord): string {
    return record.partial ? this.sealedKey : this.#o.prefix + record.key;
  }
}

/** The state of a partial session once its upload completed at its sealed key. */
export function sealedState(state: SessionState): SessionState {
  return { ...state, uploadId: undefined, parts: [], tail: undefined, completing: undefined, sealed: true };
}

/** The S3 key of the sessions' area, for listing them. */
function sessionsArea(o: ResolvedS3Options): string {
  return `${o.prefix}${SESSIONS_AREA}`;
}

/** The size of part `partNumber` of the session. */
export function sessionPartSize(state: SessionState, partNumber: number): number {
  return new PartSchedule({ partSize: state.partSize, maxParts: state.maxParts, equalParts: state.equalParts, provider: '' }).sizeOf(partNumber);
}

function revive(state: SessionState): SessionState {
  const r = state.record as SessionRecord & { createdAt: string | Date; expiresAt: string | Date };
  return { ...state, record: { ...r, createdAt: new Date(r.createdAt), expiresAt: new Date(r.expiresAt) } };
}

/** Reads a session's state; E_NOT_FOUND when there is none (never created, completed, aborted). */
export async function readSessionState(call: S3Call, o: ResolvedS3Options, place: SessionPlace): Promise<SessionState> {
  let text: string;
  try {
    const out = await call(`read upload session ${place.id}`, (c) => c.send(new (s3().GetObjectCommand)({ Bucket: o.bucket, Key: place.stateKey })));
    text = (await out.Body?.transformToString('utf8')) ?? '';
  } catch (err) {
    if (isStorageError(err, 'E_NOT_FOUND')) throw sessionNotFound(place.id, err);
    throw err;
  }
  let state: SessionState;
  try {
    state = JSON.parse(text) as SessionState;
  } catch (err) {
    throw new StorageError('E_UNAVAILABLE', `upload session ${place.id} has an unreadable state object`, { cause: err, retryable: false });
  }
  if (state.version !== 1 || typeof state.record?.id !== 'string' || !Array.isArray(state.parts)) {
    throw new StorageError('E_UNAVAILABLE', `upload session ${place.id} has a state object of an unknown form`, { retryable: false });
  }
  return revive(state);
}

/** Replaces a session's state (one PutObject of a few hundred bytes, re-sent on retry). */
export async function writeSessionState(call: S3Call, o: ResolvedS3Options, place: SessionPlace, state: SessionState): Promise<void> {
  const body = JSON.stringify(state);
  await call(`write upload session ${place.id}`, (c) => c.send(new (s3().PutObjectCommand)({ Bucket: o.bucket, Key: place.stateKey, Body: body, ContentType: 'application/json' })));
}

/**
 * Checks the state against the bucket: every committed part is in the upload with its
 * size and ETag, and the tail object has its size. Parts past the committed ones (sent
 * by a write that did not commit) are ignored: the next part of that number replaces
 * them. An upload that is gone after `completing` means the session completed (a partial
 * one: sealed, when its sealed object holds its bytes). A sealed session's object must
 * hold its offset.
 */
export async function checkSessionState(call: S3Call, o: ResolvedS3Options, place: SessionPlace, state: SessionState): Promise<'ok' | 'completed' | 'sealed'> {
  const lost = (what: string) => new StorageError('E_UNAVAILABLE', `upload session ${place.id} records ${state.record.offset} bytes, but ${what}; it cannot be resumed`, { retryable: false });
  const sizeOf = (key: string) =>
    call(`check upload session ${place.id}`, (c) => c.send(new (s3().HeadObjectCommand)({ Bucket: o.bucket, Key: key }))).then(
      (out) => out.ContentLength,
      (err: unknown) => {
        if (isStorageError(err, 'E_NOT_FOUND')) return undefined;
        throw err;
      },
    );
  const checkSealed = async () => {
    if ((await sizeOf(place.sealedKey)) !== state.record.offset) throw lost('its sealed object is missing or has another size');
  };
  if (state.sealed) {
    await checkSealed();
    return 'ok';
  }
  if (state.uploadId !== undefined && state.parts.length > 0) {
    const stored = await listStoredParts(call, o.bucket, place.uploadKey(state.record), state.uploadId);
    if (!stored) {
      // A partial session's upload completes into its sealed object, which must hold it all.
      if (state.completing && state.record.partial) return checkSealed().then(() => 'sealed' as const);
      if (state.completing) return 'completed';
      throw lost('its multipart upload is gone');
    }
    for (const part of state.parts) {
      const have = stored.get(part.partNumber);
      if (have?.size !== part.size || have.etag !== part.etag) throw lost(`part ${part.partNumber} is missing or was replaced`);
    }
  }
  if (state.tail && (await sizeOf(place.tailKey(state.tail.name))) !== state.tail.size) throw lost('its tail object is missing or has another size');
  const parts = state.parts.reduce((sum, p) => sum + p.size, 0);
  if (parts + (state.tail?.size ?? 0) !== state.record.offset) throw lost(`its parts and tail hold ${parts + (state.tail?.size ?? 0)}`);
  return 'ok';
}

/** Every session state of the driver's prefix (not the tails), read; unreadable ones are skipped. */
export async function listSessionStates(call: S3Call, o: ResolvedS3Options): Promise<SessionState[]> {
  const ids: string[] = [];
  let token: string | undefined;
  do {
    const out = await call('list upload sessions', (c) => c.send(new (s3().ListObjectsV2Command)({ Bucket: o.bucket, Prefix: sessionsArea(o), Delimiter: '/', ContinuationToken: token })));
    for (const item of out.Contents ?? []) {
      const name = (item.Key ?? '').slice(sessionsArea(o).length);
      if (/^[0-9a-f]{32}\.json$/.test(name)) ids.push(name.slice(0, -5));
    }
    token = out.IsTruncated ? out.NextContinuationToken : undefined;
  } while (token);
  const states = await mapConcurrently(ids, READ_CONCURRENCY, (id) => readSessionState(call, o, new SessionPlace(o, id)).catch(() => undefined));
  return states.filter((s): s is SessionState => s !== undefined);
}

/** Deletes the session's tail objects but `keep`, those a crashed write left too (with `all`, the writer's lease and the sealed object as well); failures are ignored. */
export async function deleteTails(call: S3Call, o: ResolvedS3Options, place: SessionPlace, opts: { keep?: string; all?: boolean } = {}): Promise<void> {
  const out = await call('list session tails', (c) => c.send(new (s3().ListObjectsV2Command)({ Bucket: o.bucket, Prefix: place.tailFolder }))).catch(() => undefined);
  const doomed = (out?.Contents ?? []).map((item) => item.Key ?? '').filter((key) => (opts.all || key.startsWith(place.tailKey('tail-'))) && key !== (opts.keep === undefined ? undefined : place.tailKey(opts.keep)));
  for (const Key of doomed) await call('delete a session tail', (c) => c.send(new (s3().DeleteObjectCommand)({ Bucket: o.bucket, Key }))).catch(() => undefined);
}
