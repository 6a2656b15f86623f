/** What every route module receives. */
import type { Storage } from '../../core/storage.js';

/** Shared settings of the routes. */
export interface RouteContext {
  storage: Storage;
  /** Secret of the signed `/files/` links (fs and memory backends). */
  signingSecret?: string;
  /** Largest upload accepted, in bytes. */
  maxUploadSize: number;
}
