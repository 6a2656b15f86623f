/**
 * What the tus endpoint keeps of each upload, beside the upload session that holds its
 * bytes: one internal file of the backend per upload (`tus/<id>.json`), so that any
 * instance of the service, after any restart, answers for it. The record holds what the
 * protocol must echo (the length or its deferral, the metadata, the expiry), who created
 * it and by which upload template, and, once the first bytes decided them, the type and
 * key the object gets. A finished upload keeps its record as a receipt (the stored key,
 * for `Stowage-Object-Key`), and a terminated one as a tombstone (410) until it expires.
 */
import { randomBytes } from 'node:crypto';
import type { Driver } from '../../core/contract.js';
import { StorageError } from '../../core/errors.js';
import { HttpError } from '../catalogue.js';

/** An upload id: 32 lowercase hex characters, as in `/api/tus/<id>`. */
export const UPLOAD_ID = /^[0-9a-f]{32}$/;

/** One tus upload, as its internal file holds it. */
export interface TusRecord {
  v: 1;
  id: string;
  /** Who created it (the API key's or token's identity, `anonymous` without auth): only they may use it. */
  identity: string;
  /** The upload template it is stored by. */
  template: string;
  /** `Upload-Length`; absent while deferred. */
  size?: number;
  /** `Upload-Metadata`, as pairs in the order given. */
  metadata: [string, string][];
  createdAt: string;
  expiresAt: string;
  /** `Upload-Concat: partial`: stored only as a part of a final upload. */
  partial?: true;
  /** `Upload-Concat: final`: the partial uploads it joined. */
  parts?: string[];
  /** The upload session holding the bytes, once the first bytes arrived. */
  session?: string;
  /** The type the first bytes showed, and the key it gave (a partial keeps its first bytes instead, in `head`). */
  type?: string;
  key?: string;
  /** A partial upload's first bytes (up to 4100), Base64: the final upload's type is read from its first part's. */
  head?: string;
  /** The receipt of a finished upload: the object stored. */
  stored?: { key: string; size: number };
  /** Terminated (DELETE), or joined into a final upload: gone (410). */
  gone?: 'terminated' | 'concatenated';
}

/** The record's internal file. */
function fileOf(id: string): string {
  return `tus/${id}.json`;
}

/** A fresh upload id. */
export function newUploadId(): string {
  return randomBytes(16).toString('hex');
}

/** When a record's upload expires, in ms; undefined for a record that cannot be read. */
function expiryOf(bytes: Uint8Array | undefined): number | undefined {
  if (bytes === undefined) return undefined;
  try {
    const at = Date.parse((JSON.parse(Buffer.from(bytes).toString('utf8')) as Partial<TusRecord>).expiresAt ?? '');
    return Number.isNaN(at) ? undefined : at;
  } catch {
    return undefined;
  }
}

/** The tus records of one storage's driver. */
export class TusRecords {
  readonly #driver: Driver;

  constructor(driver: Driver) {
    this.#driver = driver;
  }

  /** Writes the record (durably: it is the only place the upload's state lives besides its session). */
  async save(record: TusRecord): Promise<TusRecord> {
    await this.#driver.putInternal(fileOf(record.id), Buffer.from(JSON.stringify(record)));
    return record;
  }

  /**
   * The upload `id` of `identity`: 404 when there is none, or it is another identity's (an
   * id is a secret of its creator: the answer says nothing of other people's uploads); 410
   * when it was terminated, joined into a final upload, or expired.
   */
  async load(id: string, identity: string): Promise<TusRecord> {
    const notFound = () => new StorageError('E_NOT_FOUND', `no tus upload ${id}`, { publicMessage: 'There is no such upload.' });
    if (!UPLOAD_ID.test(id)) throw notFound();
    const bytes = await this.#driver.readInternal(fileOf(id));
    if (bytes === undefined) throw notFound();
    let record: TusRecord;
    try {
      record = JSON.parse(Buffer.from(bytes).toString('utf8')) as TusRecord;
    } catch (err) {
      throw new StorageError('E_UNAVAILABLE', `tus upload ${id} has an unreadable record`, { cause: err, retryable: false });
    }
    if (record.v !== 1 || record.id !== id) throw new StorageError('E_UNAVAILABLE', `tus upload ${id} has a record of an unknown form`, { retryable: false });
    if (record.identity !== identity) throw notFound();
    if (record.gone) throw new HttpError('E_UPLOAD_GONE', `tus upload ${id} was ${record.gone === 'terminated' ? 'terminated' : 'joined into a final upload'}`);
    if (record.stored === undefined && Date.parse(record.expiresAt) <= Date.now()) throw new HttpError('E_UPLOAD_GONE', `tus upload ${id} expired at ${record.expiresAt}`);
    return record;
  }

  /**
   * Removes the records whose upload expired before `before`: tombstones, receipts and
   * abandoned uploads alike (the clean-up of sessions frees an abandoned one's bytes).
   * Returns how many went. An unreadable record is left for a person to look at.
   */
  async removeExpired(before: Date): Promise<number> {
    let removed = 0;
    let cursor: string | undefined;
    do {
      const page = await this.#driver.listInternal('tus/', cursor);
      const expired: string[] = [];
      for (const name of page.names) {
        const expiresAt = expiryOf(await this.#driver.readInternal(name));
        if (expiresAt !== undefined && expiresAt < before.getTime()) expired.push(name);
      }
      await this.#driver.deleteInternal(expired);
      removed += expired.length;
      cursor = page.cursor;
    } while (cursor !== undefined);
    return removed;
  }
}
