/** The README's quick start runs as written (with 'stowage' pointing at this checkout). */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

const repo = new URL('..', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'stowage-readme-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('README', () => {
  it('runs the quick start and prints what it promises', () => {
    const readme = readFileSync(join(repo, 'README.md'), 'utf8');
    const block = /<!-- quickstart -->\s*```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    assert.ok(block, 'the README has a quick start block');
    const script = join(dir, 'quickstart.mts');
    writeFileSync(script, `process.chdir(${JSON.stringify(dir)});\n${block.replace("from 'stowage'", `from ${JSON.stringify(join(repo, 'src/index.ts'))}`)}`);
    const output = execFileSync(process.execPath, ['--import', 'tsx', script], { cwd: repo, encoding: 'utf8' });
    const lines = output.trim().split('\n');
    assert.match(lines[0] ?? '', /^user_photos\/42\/[0-9a-f-]{36}\.jpg 1024 [0-9a-f]{64}$/);
    assert.equal(lines[1], '1024 { start: 0, end: 99 }');
    assert.equal(lines[2], '1 true');
    assert.equal(lines[3], 'true');
    assert.equal(lines[4], 'not found: The file was not found.');
    assert.equal(existsSync(join(dir, 'example.jpg')), false, 'the quick start cleans up after itself');
  });
});
