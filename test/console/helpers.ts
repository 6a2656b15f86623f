/** What the console's browser tests share: fixtures, waiting on the page, screenshots. */
import { join } from 'node:path';
import type { Locator, Page } from 'playwright-core';

/** A WAV of `seconds` of silence (8 kHz, 8-bit mono): what an <audio> element can play. */
export function wav(seconds: number): Buffer {
  const data = Buffer.alloc(8000 * seconds, 128);
  const header = Buffer.alloc(44);
  header.write('RIFF', 0);
  header.writeUInt32LE(36 + data.length, 4);
  header.write('WAVEfmt ', 8);
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20);
  header.writeUInt16LE(1, 22);
  header.writeUInt32LE(8000, 24);
  header.writeUInt32LE(8000, 28);
  header.writeUInt16LE(1, 32);
  header.writeUInt16LE(8, 34);
  header.write('data', 36);
  header.writeUInt32LE(data.length, 40);
  return Buffer.concat([header, data]);
}

/** A full-page screenshot of `page` as `<dir>/<name>.png`. */
export const screenshot = (page: Page, dir: string, name: string) => page.screenshot({ path: join(dir, `${name}.png`), fullPage: true });

/**
 * Waits until `check` holds, asking every 20 ms. (The console's policy forbids evaluating
 * strings, which Playwright's waitForFunction does: the checks read the page from Node.)
 */
export async function until(what: string, check: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A property of the element `locator` finds, read in the page. */
export function property(locator: Locator, name: string): Promise<unknown> {
  return locator.evaluate((el: unknown, key: string) => (el as Record<string, unknown>)[key], name);
}

