/**
 * Content types a browser may run as a page with script. Served inline from the
 * service's origin, such a file could read and write everything the service holds
 * (stored XSS), so the HTTP service serves them only as attachments, signed links cannot
 * turn an object into one (`responseContentType`), and the default upload policy
 * refuses them. One list, shared by all three.
 */

/** Active types that no suffix or family rule below catches. */
const ACTIVE_TYPES: ReadonlySet<string> = new Set([
  'text/html',
  'text/xml',
  'text/xsl',
  'application/xml',
  // Flash, and the browsers that still hand it to a plugin.
  'application/x-shockwave-flash',
  'application/futuresplash',
  // Old WAP pages, still rendered as markup by some engines.
  'text/vnd.wap.wml',
]);

/** The lowercased `type/subtype` of a Content-Type, without parameters; undefined when malformed. */
export function contentTypeEssence(contentType: string): string | undefined {
  const essence = (contentType.split(';')[0] ?? '').trim().toLowerCase();
  return /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/.test(essence) ? essence : undefined;
}

/**
 * Whether a browser could render a response of this type as a document that runs
 * script: HTML, XHTML, SVG and any other XML (`+xml` suffixes included, which covers
 * XSLT, MathML, RSS and Atom), JavaScript and ECMAScript under every alias, `multipart/*`
 * (`x-mixed-replace` renders each part by its own type), `message/*` (MHTML), Flash,
 * and a type that cannot even be parsed (a browser may sniff it).
 */
export function isActiveContentType(contentType: string): boolean {
  const essence = contentTypeEssence(contentType);
  if (essence === undefined) return true;
  if (ACTIVE_TYPES.has(essence)) return true;
  const [family = '', subtype = ''] = essence.split('/');
  if (family === 'multipart' || family === 'message') return true;
  return subtype.endsWith('+xml') || subtype.includes('javascript') || subtype.includes('ecmascript') || subtype.includes('jscript') || subtype === 'livescript';
}
