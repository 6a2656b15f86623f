/**
 * What the browser tests share: Debian's Chromium (playwright-core drives it), the flags
 * it runs with on this closed network, and a clear error when it is not installed.
 */
import { existsSync } from 'node:fs';

/** Debian's package installs it here (`apt-get install chromium`). */
export const CHROMIUM = '/usr/bin/chromium';

// The machine's network is closed: without these Chromium keeps trying to reach Google.
/** The flags every browser test launches Chromium with. */
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Throws, saying how to install it, when Chromium is missing. */
export function requireChromium(): void {
  if (!existsSync(CHROMIUM)) throw new Error(`the browser tests need Chromium at ${CHROMIUM}: install Debian's package with "apt-get install chromium"`);
}
