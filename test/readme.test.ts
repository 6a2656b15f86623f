/** The README's examples run as written (with 'stowage' pointing at this checkout): the quick start and the example layers. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

const repo = new URL('..', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'stowage-readme-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Writes the README's code block after `<!-- marker -->` to a script in the temp folder, run from there; returns its path. */
function writeBlock(marker: string): string {
  const readme = readFileSync(join(repo, 'README.md'), 'utf8');
  const block = new RegExp(`<!-- ${marker} -->\\s*\`\`\`ts\\n([\\s\\S]*?)\`\`\``).exec(readme)?.[1];
  assert.ok(block, `the README has a ${marker} block`);
  const script = join(dir, `${marker}.mts`);
  // The script lives in the temp folder: its imports are pointed at this checkout and its dependencies.
  const code = block.replace("from 'stowage'", `from ${JSON.stringify(join(repo, 'src/index.ts'))}`).replace("from 'sharp'", `from ${JSON.stringify(join(repo, 'node_modules/sharp/dist/index.mjs'))}`);
  writeFileSync(script, `process.chdir(${JSON.stringify(dir)});\n${code}`);
  return script;
}

/** Runs a README block; returns what it printed. */
function runBlock(marker: string): string {
  return execFileSync(process.execPath, ['--import', 'tsx', writeBlock(marker)], { cwd: repo, encoding: 'utf8' });
}

const EXAMPLES = ['quickstart', 'layer-example', 'outbox-example', 'quota-example', 'variants-example'];

describe('README', () => {
  it('runs the quick start and prints what it promises', () => {
    const lines = runBlock('quickstart').trim().split('\n');
    assert.match(lines[0] ?? '', /^user_photos\/42\/[0-9a-f-]{36}\.jpg 1024 [0-9a-f]{64}$/);
    assert.equal(lines[1], '1024 { start: 0, end: 99 }');
    assert.equal(lines[2], '1 true');
    assert.equal(lines[3], 'true');
    assert.equal(lines[4], 'not found: The file was not found.');
    assert.equal(existsSync(join(dir, 'example.jpg')), false, 'the quick start cleans up after itself');
  });

  it('runs the example layers and prints what it promises', () => {
    assert.deepEqual(runBlock('layer-example').trim().split('\n'), ['2', 'memory false']);
  });

  it('runs the outbox example and prints what it promises', () => {
    assert.deepEqual(runBlock('outbox-example').trim().split('\n'), ['queued reports/q3.txt 17 E_UNAVAILABLE', 'quarterly numbers', 'delivered 1 pending 0']);
  });

  it('runs the quota example and prints what it promises', () => {
    assert.deepEqual(runBlock('quota-example').trim().split('\n'), ['alert users/ann/ warn 900', 'refused 200', '900 1000 warn']);
  });

  it('runs the image variants example and prints what it promises', () => {
    assert.deepEqual(runBlock('variants-example').trim().split('\n'), ['image/avif 200 200 false', 'image/webp 1024 683', 'true']);
  });

  it('compiles the examples with the strict settings of the project', () => {
    const tsc = join(repo, 'node_modules/typescript/bin/tsc');
    const settings = ['--noEmit', '--strict', '--noImplicitOverride', '--noUncheckedIndexedAccess', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--lib', 'es2024'];
    const paths = ['--types', 'node', '--typeRoots', join(repo, 'node_modules/@types'), '--skipLibCheck', '--allowImportingTsExtensions'];
    // Throws with tsc's report when an example does not compile.
    execFileSync(process.execPath, [tsc, ...settings, ...paths, ...EXAMPLES.map(writeBlock)], { cwd: dir, encoding: 'utf8' });
  });
});
