#!/usr/bin/env node
// Copies the web console (src/console/) and tus-js-client's browser build into
// dist/console/, which the service serves at /console/ once built: the package ships
// everything the console needs, so it works offline and with no CDN.
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const source = new URL('../src/console/', import.meta.url).pathname;
const target = new URL('../dist/console/', import.meta.url).pathname;
mkdirSync(target, { recursive: true });
for (const name of readdirSync(source)) copyFileSync(join(source, name), join(target, name));
copyFileSync(createRequire(import.meta.url).resolve('tus-js-client/dist/tus.min.js'), join(target, 'tus.min.js'));
