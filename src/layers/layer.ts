/**
 * The base of every layer: a Driver that forwards each operation of the contract to the
 * driver it wraps. A layer extends it and overrides only what it changes, so an
 * operation it does not mention still reaches the inner driver; and since the class
 * implements every method of `Driver`, an operation added to the contract does not
 * compile until it is forwarded here too.
 *
 * Operations that return a promise run through `around`, one place for a layer that
 * acts on all of them alike (measuring, logging, injecting faults).
 */
import type { Readable } from 'node:stream';
import type { PutBody, PutBodyChecks } from '../core/body.js';
import type { Driver, DriverCapabilities, DriverListOptions, DriverOperation, DriverPresignPostOptions, DriverPutOptions, DriverReadOptions, DriverSignedUrlOptions, ObjectLocation } from '../core/contract.js';
import type { InternalFilesPage, InternalPutOptions } from '../core/internal-files.js';
import type { DriverSessionCompleteOptions, DriverSessionWriteOptions, SessionBody, SessionRecord } from '../core/sessions.js';
import type { IncompleteUpload, ListPage, NotModified, ObjectInfo, ObjectStream, PresignedPost, SignedUrl, VerifyOptions, WriteResult, PutFileResult } from '../core/types.js';

/** The operations whose result is a promise: all but `location`. */
export type AsyncDriverOperation = Exclude<DriverOperation, 'location'>;

/** A Driver around `inner` that changes nothing until a subclass overrides something. */
export class DriverLayer implements Driver {
  /** The driver this layer wraps (itself maybe a layer). */
  readonly inner: Driver;

  constructor(inner: Driver) {
    this.inner = inner;
  }

  /** The inner driver's name: a layer is not a backend of its own. */
  get name(): string {
    return this.inner.name;
  }

  /** The inner driver's capabilities; override when the layer changes what is supported. */
  get capabilities(): DriverCapabilities {
    return this.inner.capabilities;
  }

  /**
   * Runs one forwarded operation. The default just runs it; override to act on every
   * operation (call `run()` to reach the inner driver).
   */
  protected around<T>(_operation: AsyncDriverOperation, run: () => Promise<T>): Promise<T> {
    return run();
  }

  put(key: string, body: PutBody, opts: DriverPutOptions): Promise<WriteResult> {
    return this.around('put', () => this.inner.put(key, body, opts));
  }

  putFile(key: string, path: string, opts: DriverPutOptions, checks: PutBodyChecks): Promise<WriteResult & Partial<PutFileResult>> {
    return this.around('putFile', () => this.inner.putFile(key, path, opts, checks));
  }

  stat(key: string): Promise<ObjectInfo> {
    return this.around('stat', () => this.inner.stat(key));
  }

  read(key: string, opts: DriverReadOptions): Promise<ObjectStream | NotModified> {
    return this.around('read', () => this.inner.read(key, opts));
  }

  delete(key: string): Promise<void> {
    return this.around('delete', () => this.inner.delete(key));
  }

  deleteMany(keys: readonly string[]): Promise<number> {
    return this.around('deleteMany', () => this.inner.deleteMany(keys));
  }

  copy(from: string, to: string): Promise<ObjectInfo> {
    return this.around('copy', () => this.inner.copy(from, to));
  }

  /** Forwards `source` as it is: the inner driver recognises it by `source.location()`, which layers forward too. */
  copyFrom(source: Driver, from: string, to: string): Promise<ObjectInfo | undefined> {
    return this.around('copyFrom', () => this.inner.copyFrom(source, from, to));
  }

  move(from: string, to: string): Promise<ObjectInfo> {
    return this.around('move', () => this.inner.move(from, to));
  }

  list(opts: DriverListOptions): Promise<ListPage> {
    return this.around('list', () => this.inner.list(opts));
  }

  signedUrl(key: string, opts: DriverSignedUrlOptions): Promise<SignedUrl> {
    return this.around('signedUrl', () => this.inner.signedUrl(key, opts));
  }

  presignPost(key: string, opts: DriverPresignPostOptions): Promise<PresignedPost> {
    return this.around('presignPost', () => this.inner.presignPost(key, opts));
  }

  check(): Promise<Record<string, unknown>> {
    return this.around('check', () => this.inner.check());
  }

  verify(opts: VerifyOptions): Promise<Record<string, unknown>> {
    return this.around('verify', () => this.inner.verify(opts));
  }

  incompleteUploads(prefix: string): Promise<IncompleteUpload[]> {
    return this.around('incompleteUploads', () => this.inner.incompleteUploads(prefix));
  }

  abortUpload(upload: IncompleteUpload): Promise<void> {
    return this.around('abortUpload', () => this.inner.abortUpload(upload));
  }

  createSession(record: SessionRecord): Promise<SessionRecord> {
    return this.around('createSession', () => this.inner.createSession(record));
  }

  getSession(id: string): Promise<SessionRecord> {
    return this.around('getSession', () => this.inner.getSession(id));
  }

  writeSession(id: string, body: SessionBody, opts: DriverSessionWriteOptions): Promise<SessionRecord> {
    return this.around('writeSession', () => this.inner.writeSession(id, body, opts));
  }

  completeSession(id: string, opts: DriverSessionCompleteOptions): Promise<ObjectInfo> {
    return this.around('completeSession', () => this.inner.completeSession(id, opts));
  }

  abortSession(id: string): Promise<void> {
    return this.around('abortSession', () => this.inner.abortSession(id));
  }

  readSession(id: string, opts: { signal?: AbortSignal }): Promise<Readable> {
    return this.around('readSession', () => this.inner.readSession(id, opts));
  }

  listSessions(prefix: string): Promise<SessionRecord[]> {
    return this.around('listSessions', () => this.inner.listSessions(prefix));
  }

  putInternal(name: string, data: Uint8Array, opts?: InternalPutOptions): Promise<void> {
    return this.around('putInternal', () => this.inner.putInternal(name, data, opts));
  }

  readInternal(name: string): Promise<Uint8Array | undefined> {
    return this.around('readInternal', () => this.inner.readInternal(name));
  }

  deleteInternal(names: readonly string[]): Promise<void> {
    return this.around('deleteInternal', () => this.inner.deleteInternal(names));
  }

  listInternal(prefix: string, cursor?: string): Promise<InternalFilesPage> {
    return this.around('listInternal', () => this.inner.listInternal(prefix, cursor));
  }

  location(): ObjectLocation | undefined {
    return this.inner.location();
  }

  close(): Promise<void> {
    return this.around('close', () => this.inner.close());
  }
}
