/**
 * Base URLs a storage is configured with, and the public URLs of objects: what
 * `publicUrl(key)` returns under `publicBaseUrl` (a CDN, a public bucket, the HTTP
 * service's public-read route), with each key segment percent-encoded once.
 */
import { StorageError } from './errors.js';
import { encodeKeyPath } from './keys.js';

/**
 * Parses a base URL a setting names: http(s), no query or fragment (a path is fine).
 * E_CONFIG_INVALID names the setting otherwise.
 */
export function httpBaseUrl(text: string, option: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new StorageError('E_CONFIG_INVALID', `${option} ${JSON.stringify(text)} is not a valid URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new StorageError('E_CONFIG_INVALID', `${option} must be an http:// or https:// URL`);
  if (url.search || url.hash) throw new StorageError('E_CONFIG_INVALID', `${option} must not have a query or fragment`);
  return url;
}

/** A public base URL ready to have an encoded key appended: checked, ending in one `/`. */
export function normalizePublicBaseUrl(text: string): string {
  return `${httpBaseUrl(text, 'publicBaseUrl').href.replace(/\/+$/, '')}/`;
}

/**
 * The public URL of a normalized key under a base from {@link normalizePublicBaseUrl}, or
 * E_CONFIG_INVALID saying how to configure one.
 */
export function publicUrlOf(base: string | undefined, key: string): string {
  if (base === undefined) {
    throw new StorageError('E_CONFIG_INVALID', 'publicUrl needs a public base URL: set the publicBaseUrl option (STORAGE_PUBLIC_BASE_URL), e.g. https://cdn.example.com/media/', { key });
  }
  return base + encodeKeyPath(key);
}
