/**
 * A base class for drivers: what a driver must write itself is abstract, and every
 * operation a backend may lack gets the answer the contract documents for a driver
 * without it (E_UNSUPPORTED, no incomplete uploads, no server-side copies, `verify`
 * as `check`). A driver overrides what it does natively and says so in `capabilities`.
 */
import type { Readable } from 'node:stream';
import type { PutBody, PutBodyChecks } from '../core/body.js';
import type { Driver, DriverCapabilities, DriverListOptions, DriverPresignPostOptions, DriverPutOptions, DriverReadOptions, DriverSignedUrlOptions, ObjectLocation } from '../core/contract.js';
import { StorageError } from '../core/errors.js';
import type { InternalFilesPage, InternalPutOptions } from '../core/internal-files.js';
import type { DriverSessionCompleteOptions, DriverSessionWriteOptions, SessionBody, SessionRecord } from '../core/sessions.js';
import type { IncompleteUpload, ListPage, NotModified, ObjectInfo, ObjectStream, PresignedPost, SignedUrl, VerifyOptions } from '../core/types.js';

/**
 * The capabilities that match BaseDriver's defaults: nothing native, no multipart
 * uploads. A driver spreads them and adds its own: `{ ...BASE_DRIVER_CAPABILITIES,
 * conditionalWrites: true, rangeReads: true, keyIsPrefix: true }`.
 */
export const BASE_DRIVER_CAPABILITIES = {
  nativeSignedUrls: false,
  nativePresignPost: false,
  nativeMove: false,
  nativePutFile: false,
  multipartUploads: false,
  sessions: false,
  internalFiles: false,
} as const satisfies Partial<DriverCapabilities>;

/** E_UNSUPPORTED for an operation this driver lacks, naming the capability that says so. */
export function unsupported(backend: string, what: string, capability: keyof DriverCapabilities): StorageError {
  return new StorageError('E_UNSUPPORTED', `the ${backend} backend ${what} (capabilities.${capability} is false)`, { backend });
}

/** The defaults of every optional operation; extend it and implement the abstract ones. */
export abstract class BaseDriver implements Driver {
  abstract readonly name: string;
  abstract readonly capabilities: DriverCapabilities;

  abstract put(key: string, body: PutBody, opts: DriverPutOptions): Promise<ObjectInfo>;
  abstract stat(key: string): Promise<ObjectInfo>;
  abstract read(key: string, opts: DriverReadOptions): Promise<ObjectStream | NotModified>;
  abstract delete(key: string): Promise<void>;
  abstract deleteMany(keys: readonly string[]): Promise<number>;
  abstract copy(from: string, to: string): Promise<ObjectInfo>;
  abstract list(opts: DriverListOptions): Promise<ListPage>;
  abstract check(): Promise<Record<string, unknown>>;

  /** E_UNSUPPORTED: Storage streams the file through `put` instead. */
  async putFile(_key: string, _path: string, _opts: DriverPutOptions, _checks: PutBodyChecks): Promise<ObjectInfo> {
    throw unsupported(this.name, 'stores local files only as streams', 'nativePutFile');
  }

  /** No server-side copy from any source: the caller streams. */
  async copyFrom(_source: Driver, _from: string, _to: string): Promise<ObjectInfo | undefined> {
    return undefined;
  }

  /** E_UNSUPPORTED: Storage copies, then deletes. */
  async move(_from: string, _to: string): Promise<ObjectInfo> {
    throw unsupported(this.name, 'has no move of its own', 'nativeMove');
  }

  /** E_UNSUPPORTED: Storage issues HMAC-signed links instead. */
  async signedUrl(_key: string, _opts: DriverSignedUrlOptions): Promise<SignedUrl> {
    throw unsupported(this.name, 'cannot presign URLs', 'nativeSignedUrls');
  }

  /** E_UNSUPPORTED: Storage issues HMAC-signed forms instead. */
  async presignPost(_key: string, _opts: DriverPresignPostOptions): Promise<PresignedPost> {
    throw unsupported(this.name, 'cannot presign POST forms', 'nativePresignPost');
  }

  /** The same as `check`: nothing to create. */
  async verify(_opts: VerifyOptions): Promise<Record<string, unknown>> {
    return this.check();
  }

  /** None: partial writes here are temp files, not billed uploads. */
  async incompleteUploads(_prefix: string): Promise<IncompleteUpload[]> {
    return [];
  }

  /** E_UNSUPPORTED: there are no multipart uploads to abort. */
  async abortUpload(_upload: IncompleteUpload): Promise<void> {
    throw unsupported(this.name, 'has no multipart uploads to abort', 'multipartUploads');
  }

  /** E_UNSUPPORTED: no upload sessions (and so none of the operations below). */
  async createSession(_record: SessionRecord): Promise<SessionRecord> {
    throw unsupported(this.name, 'has no upload sessions', 'sessions');
  }

  /** E_UNSUPPORTED: no upload sessions. */
  async getSession(_id: string): Promise<SessionRecord> {
    throw unsupported(this.name, 'has no upload sessions', 'sessions');
  }

  /** E_UNSUPPORTED: no upload sessions. */
  async writeSession(_id: string, _body: SessionBody, _opts: DriverSessionWriteOptions): Promise<SessionRecord> {
    throw unsupported(this.name, 'has no upload sessions', 'sessions');
  }

  /** E_UNSUPPORTED: no upload sessions. */
  async completeSession(_id: string, _opts: DriverSessionCompleteOptions): Promise<ObjectInfo> {
    throw unsupported(this.name, 'has no upload sessions', 'sessions');
  }

  /** E_UNSUPPORTED: no upload sessions. */
  async abortSession(_id: string): Promise<void> {
    throw unsupported(this.name, 'has no upload sessions', 'sessions');
  }

  /** E_UNSUPPORTED: no upload sessions. */
  async readSession(_id: string, _opts: { signal?: AbortSignal }): Promise<Readable> {
    throw unsupported(this.name, 'has no upload sessions', 'sessions');
  }

  /** None: no upload sessions. */
  async listSessions(_prefix: string): Promise<SessionRecord[]> {
    return [];
  }

  /** E_UNSUPPORTED: no internal files. */
  async putInternal(_name: string, _data: Uint8Array, _opts?: InternalPutOptions): Promise<void> {
    throw unsupported(this.name, 'keeps no internal files', 'internalFiles');
  }

  /** E_UNSUPPORTED: no internal files. */
  async readInternal(_name: string): Promise<Uint8Array | undefined> {
    throw unsupported(this.name, 'keeps no internal files', 'internalFiles');
  }

  /** E_UNSUPPORTED: no internal files. */
  async deleteInternal(_names: readonly string[]): Promise<void> {
    throw unsupported(this.name, 'keeps no internal files', 'internalFiles');
  }

  /** None: no internal files. */
  async listInternal(_prefix: string, _cursor?: string): Promise<InternalFilesPage> {
    return { names: [] };
  }

  /** No location another driver could copy from inside a service. */
  location(): ObjectLocation | undefined {
    return undefined;
  }

  /** Nothing to release. */
  async close(): Promise<void> {}
}
