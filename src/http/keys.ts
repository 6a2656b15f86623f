/**
 * Keys in URL paths: taken from the raw request path, each segment percent-decoded
 * exactly once, then put through the core key rules. A segment that decodes to
 * something containing "/" (an encoded %2F) is refused, since it would silently change
 * the key's folder structure; `..`, `%2e%2e`, NUL and backslashes fail the key rules.
 */
import { StorageError } from '../core/errors.js';
import { normalizeKey } from '../core/keys.js';

/** The key after `routePrefix` (e.g. `/api/objects/`) in a raw request URL. */
export function keyFromUrl(rawUrl: string, routePrefix: string): string {
  const query = rawUrl.indexOf('?');
  const path = query === -1 ? rawUrl : rawUrl.slice(0, query);
  const at = path.indexOf(routePrefix);
  const encoded = at === -1 ? '' : path.slice(at + routePrefix.length);
  // Most keys have nothing encoded: they are their own decoding.
  if (!encoded.includes('%')) return normalizeKey(encoded);
  const segments = encoded.split('/').map((segment) => {
    let decoded: string;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      throw new StorageError('E_INVALID_KEY', `invalid key in URL: ${JSON.stringify(segment)} is not valid percent-encoding`);
    }
    if (decoded.includes('/')) throw new StorageError('E_INVALID_KEY', 'invalid key in URL: an encoded "/" (%2F) is not allowed inside a segment');
    return decoded;
  });
  return normalizeKey(segments.join('/'));
}
