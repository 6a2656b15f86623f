/**
 * The tus uploads of one service, over the storage's upload sessions: creation (with a
 * length, or deferred), the offset a HEAD reports, PATCH writes with checksums, the
 * completion into the object, termination, and the concatenation of partial uploads.
 * The protocol's headers are routes.ts's; this holds what the upload routes enforce too:
 * the key comes from the upload template (never from the client's metadata), the type
 * from the first bytes (415 when the template does not allow it), the size limit before
 * any byte (a declared length) or while streaming (a deferred one), the caller's
 * permission on the key, and all-or-nothing visibility: the object exists only once every
 * byte arrived, through the session's completion.
 */
import { fileTypeFromBuffer } from 'file-type';
import { StorageError } from '../../core/errors.js';
import { DEFAULT_SESSION_EXPIRES_IN } from '../../core/upload-sessions.js';
import type { Storage } from '../../core/storage.js';
import type { WriteResult } from '../../core/types.js';
import type { WriteChecksum } from '../../core/sessions.js';
import { quotaOf, type QuotaControl } from '../../layers/quota/control.js';
import { HttpError } from '../catalogue.js';
import { checkFileName, choosePolicy, fileType, sniff, SNIFF_BYTES, type CompiledPolicy } from '../routes/uploads.js';
import type { UploadLength } from './protocol.js';
import { newUploadId, TusRecords, type TusRecord } from './records.js';

/** Checks the caller may write `key` (the routes' guard), or throws 401/403. */
export type Authorize = (key: string) => Promise<void>;

/** An upload and its offset, as HEAD and PATCH answer them. */
export interface UploadState {
  record: TusRecord;
  offset: number;
}

/** What a PATCH brings. */
export interface PatchRequest {
  offset: number;
  /** `Upload-Length` sent with a PATCH of a deferred upload. */
  length?: number;
  checksum?: WriteChecksum;
  body: AsyncIterable<Uint8Array>;
  signal?: AbortSignal;
}

/** The metadata values Uppy and tus-js-client send for the file's name and type. */
const NAME_KEYS = ['filename', 'name'];
const TYPE_KEYS = ['filetype', 'type'];

function metadataValue(metadata: readonly [string, string][], keys: readonly string[]): string | undefined {
  return metadata.find(([k]) => keys.includes(k))?.[1];
}

/** E_TOO_LARGE (413) for `what` (a length, or bytes held) over the template's limit. */
function overLimit(what: string, maxSize: number): StorageError {
  return new StorageError('E_TOO_LARGE', `${what} is over the template's limit of ${maxSize} bytes`, { details: { maxSize } });
}

/** Stops a body of a deferred length past the template's size limit (E_TOO_LARGE); the bytes before stay in the session. */
async function* limited(body: AsyncIterable<Uint8Array>, remaining: number, maxSize: number): AsyncGenerator<Uint8Array> {
  let left = remaining;
  for await (const chunk of body) {
    if (chunk.byteLength > left) throw overLimit('the upload', maxSize);
    left -= chunk.byteLength;
    yield chunk;
  }
}

/** The tus uploads of a storage, under its upload templates. */
export class TusUploads {
  readonly #storage: Storage<WriteResult>;
  readonly #policies: Map<string, CompiledPolicy>;
  /** The storage's quotas, if it has any: a declared length is checked against them at creation. */
  readonly #quota: QuotaControl | undefined;
  readonly records: TusRecords;

  constructor(storage: Storage<WriteResult>, policies: Map<string, CompiledPolicy>) {
    this.#storage = storage;
    this.#policies = policies;
    this.#quota = quotaOf(storage.driver);
    this.records = new TusRecords(storage.driver);
  }

  #policy(record: TusRecord): CompiledPolicy {
    const policy = this.#policies.get(record.template);
    if (!policy) throw new HttpError('E_UPLOAD_GONE', `the upload template ${JSON.stringify(record.template)} of this upload is no longer configured`);
    return policy;
  }

  /**
   * A new upload (not a final one: see `concatenate`), by the template `templateName` (or
   * the only one): 413 for a length over its limit and 400 for a bad file name before
   * anything is stored, and the caller must be allowed to write where the template puts
   * the upload's files.
   */
  async create(identity: string, templateName: string | undefined, length: UploadLength, metadata: Map<string, string>, partial: boolean, authorize: Authorize): Promise<TusRecord> {
    const { name, policy } = choosePolicy(this.#policies, templateName);
    if (length.size !== undefined && length.size > policy.maxSize) {
      throw overLimit(`Upload-Length ${length.size}`, policy.maxSize);
    }
    const pairs = [...metadata];
    const fileName = metadataValue(pairs, NAME_KEYS);
    if (fileName !== undefined) checkFileName(policy, fileName);
    // Where the template puts this caller's files (the type, so the extension, comes with the first bytes).
    const folderKey = policy.template.build({ userId: identity, ext: 'bin' });
    await authorize(folderKey);
    // A declared length the quota has no room for is refused now (507), before the client sends a byte;
    // the session's reservation holds the room once the first bytes arrive.
    if (length.size !== undefined) await this.#quota?.checkUpload(folderKey, length.size, false);
    const now = Date.now();
    return this.records.save({
      v: 1,
      id: newUploadId(),
      identity,
      template: name,
      ...(length.size === undefined ? {} : { size: length.size }),
      metadata: pairs,
      createdAt: new Date(now).toISOString(),
      expiresAt: new Date(now + DEFAULT_SESSION_EXPIRES_IN * 1000).toISOString(),
      ...(partial ? { partial: true as const } : {}),
    });
  }

  /** The upload with its offset: the stored size once finished, else what its session holds. */
  async state(id: string, identity: string): Promise<UploadState> {
    const record = await this.records.load(id, identity);
    return { record, offset: await this.#offset(record) };
  }

  async #offset(record: TusRecord): Promise<number> {
    if (record.stored) return record.stored.size;
    if (record.session === undefined) return 0;
    return (await this.#storage.sessions.get(record.session)).offset;
  }

  /**
   * Appends a PATCH's bytes at its offset (409 for another offset), and stores the object
   * once the upload holds its length. The first bytes decide the type and the key.
   */
  async patch(id: string, identity: string, patch: PatchRequest, authorize: Authorize): Promise<UploadState> {
    let record = await this.records.load(id, identity);
    // The caller may still write where the upload goes (a key's permissions can be revoked mid-upload).
    if (record.key !== undefined) await authorize(record.key);
    if (record.parts) throw new StorageError('E_ACCESS_DENIED', 'a final upload is made of its partial uploads and takes no PATCH', { publicMessage: 'A final upload takes no PATCH.' });
    const offset = await this.#offset(record);
    if (patch.offset !== offset) {
      throw new StorageError('E_OFFSET_MISMATCH', `the upload is at offset ${offset}, not ${patch.offset}: ask for its offset (HEAD) and write from there`, { details: { offset } });
    }
    if (record.stored) return { record, offset };
    const policy = this.#policy(record);
    if (patch.length !== undefined) {
      if (record.size !== undefined && patch.length !== record.size) throw new StorageError('E_INVALID_ARGUMENT', `Upload-Length: the upload's length is already ${record.size}`, { details: { header: 'Upload-Length' } });
      if (patch.length > policy.maxSize) throw overLimit(`Upload-Length ${patch.length}`, policy.maxSize);
      if (patch.length < offset) throw new StorageError('E_INVALID_ARGUMENT', `Upload-Length ${patch.length} is less than the ${offset} bytes already uploaded`, { details: { header: 'Upload-Length' } });
    }
    const size = record.size ?? patch.length;
    let body: AsyncIterable<Uint8Array> = patch.body;
    if (record.session === undefined) {
      const { head, body: whole } = await sniff(patch.body);
      if (head.length === 0) return { record, offset };
      record = await this.#start(record, policy, head, size, authorize);
      body = whole;
    }
    if (size === undefined) body = limited(body, policy.maxSize - offset, policy.maxSize);
    const session = await this.#storage.sessions.write(record.session as string, offset, body, { size: patch.length, checksum: patch.checksum, signal: patch.signal });
    if (patch.length !== undefined && record.size === undefined) record = await this.records.save({ ...record, size: patch.length });
    if (record.partial || record.size === undefined || session.offset !== record.size) return { record, offset: session.offset };
    const info = await this.#storage.sessions.complete(record.session as string, { ifNoneMatch: '*' });
    record = await this.records.save({ ...record, stored: { key: info.key, size: info.size } });
    return { record, offset: info.size };
  }

  /**
   * Starts the upload's session once its first bytes are known: their type must be one
   * the template allows (a partial upload's is checked when it is joined, from its first
   * bytes, kept in its record), and gives the key, which the caller must be allowed to write.
   */
  async #start(record: TusRecord, policy: CompiledPolicy, head: Buffer, size: number | undefined, authorize: Authorize): Promise<TusRecord> {
    let key: string;
    let contentType: string | undefined;
    let typed: Partial<TusRecord>;
    if (record.partial) {
      key = policy.template.build({ userId: record.identity, ext: 'part' });
      typed = { head: head.subarray(0, SNIFF_BYTES).toString('base64') };
    } else {
      const type = fileType(policy, await fileTypeFromBuffer(head), metadataValue(record.metadata, TYPE_KEYS) ?? '');
      key = policy.template.build({ userId: record.identity, ext: type.ext });
      contentType = type.mime;
      typed = { type: type.mime, key };
    }
    await authorize(key);
    const fileName = metadataValue(record.metadata, NAME_KEYS);
    const expiresIn = Math.max(1, Math.floor((Date.parse(record.expiresAt) - Date.now()) / 1000));
    const session = await this.#storage.sessions.create(key, { contentType, size, metadata: fileName === undefined ? {} : { 'original-name': fileName }, expiresIn, partial: record.partial === true });
    // Saved before a byte is written: a crash after leaves a record naming the session that holds them.
    return this.records.save({ ...record, ...typed, session: session.id });
  }

  /** Ends an upload: frees its session's bytes and leaves a tombstone (410 from then on). A stored object stays. */
  async terminate(id: string, identity: string): Promise<void> {
    const record = await this.records.load(id, identity);
    if (record.session !== undefined && record.stored === undefined) await this.#storage.sessions.abort(record.session);
    await this.records.save({ ...record, gone: 'terminated' });
  }

  /**
   * A final upload joining finished partial uploads of this caller, in order, stored at
   * once: the type comes from the first part's first bytes, the key from the template,
   * and the whole must fit the template's limit. The parts are gone afterwards (410).
   */
  async concatenate(identity: string, templateName: string | undefined, partIds: readonly string[], metadata: Map<string, string>, authorize: Authorize): Promise<TusRecord> {
    const { name, policy } = choosePolicy(this.#policies, templateName);
    const parts = await Promise.all(partIds.map((id) => this.records.load(id, identity)));
    let total = 0;
    for (const part of parts) {
      if (!part.partial) throw new StorageError('E_INVALID_ARGUMENT', `Upload-Concat: upload ${part.id} is not a partial upload`, { details: { header: 'Upload-Concat' } });
      const offset = await this.#offset(part);
      if (part.size === undefined || offset !== part.size || part.session === undefined) {
        throw new StorageError('E_INVALID_ARGUMENT', `Upload-Concat: partial upload ${part.id} holds ${offset} of its ${part.size ?? 'undeclared'} bytes; finish it first`, { details: { header: 'Upload-Concat' } });
      }
      total += part.size;
    }
    if (total > policy.maxSize) throw overLimit(`the partial uploads' ${total} bytes`, policy.maxSize);
    const pairs = [...metadata];
    const head = Buffer.from(parts[0]?.head ?? '', 'base64');
    const claimed = metadataValue(pairs, TYPE_KEYS) ?? metadataValue(parts[0]?.metadata ?? [], TYPE_KEYS) ?? '';
    const type = fileType(policy, await fileTypeFromBuffer(head), claimed);
    const key = policy.template.build({ userId: identity, ext: type.ext });
    await authorize(key);
    const fileName = metadataValue(pairs, NAME_KEYS) ?? metadataValue(parts[0]?.metadata ?? [], NAME_KEYS);
    const info = await this.#storage.sessions.concat(key, parts.map((p) => p.session as string), { contentType: type.mime, metadata: fileName === undefined ? {} : { 'original-name': fileName }, ifNoneMatch: '*' });
    for (const part of parts) await this.records.save({ ...part, gone: 'concatenated' });
    const now = new Date();
    return this.records.save({
      v: 1, id: newUploadId(), identity, template: name, size: total, metadata: pairs, createdAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + DEFAULT_SESSION_EXPIRES_IN * 1000).toISOString(), parts: [...partIds], type: type.mime, key, stored: { key: info.key, size: info.size },
    });
  }
}
