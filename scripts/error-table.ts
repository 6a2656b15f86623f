/**
 * The README's table of HTTP error codes, rendered from the catalogue
 * (src/http/catalogue.ts), so the two cannot drift: `npm run docs:errors` rewrites the
 * table between its markers, and test/http/error-catalogue.test.ts fails when the
 * README is not what this would write.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ERROR_CATALOGUE, HTTP_ERROR_CODES } from '../src/http/catalogue.js';

/** The README this rewrites. */
export const README_PATH = fileURLToPath(new URL('../README.md', import.meta.url));

/** The markers around the rendered table; everything between them is replaced. */
const START = '<!-- error-codes: written by `npm run docs:errors` from src/http/catalogue.ts; edit the catalogue, not this table -->';
const END = '<!-- /error-codes -->';

/** The table: one row per code, by status (codes of one status in the catalogue's order). */
export function renderErrorTable(): string {
  const codes = [...HTTP_ERROR_CODES].sort((a, b) => ERROR_CATALOGUE[a].status - ERROR_CATALOGUE[b].status);
  const rows = codes.map((code) => {
    const { status, description, message } = ERROR_CATALOGUE[code];
    return `| \`${code}\` | ${status} | ${description} | ${message} |`;
  });
  return ['| code | HTTP | when | message, unless a more specific one is given |', '| --- | --- | --- | --- |', ...rows].join('\n');
}

/** `readme` with the table between the markers rendered anew; fails when the markers are missing. */
export function withErrorTable(readme: string): string {
  const start = readme.indexOf(START);
  const end = readme.indexOf(END, start);
  if (start === -1 || end === -1) throw new Error(`README.md lacks the markers of the error table: ${START} ... ${END}`);
  return `${readme.slice(0, start + START.length)}\n${renderErrorTable()}\n${readme.slice(end)}`;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const readme = readFileSync(README_PATH, 'utf8');
  const updated = withErrorTable(readme);
  if (updated === readme) console.log('README.md: the error table is up to date');
  else {
    writeFileSync(README_PATH, updated);
    console.log('README.md: error table rewritten from src/http/catalogue.ts');
  }
}
