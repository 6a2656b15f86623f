/**
 * The published package: `npm run build` output compiles from src alone, the
 * `stowage` entry exports the documented API with type declarations, and every locked
 * dependency declares support for the oldest Node version Stowage promises.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import semver from 'semver';

const repo = new URL('..', import.meta.url).pathname;
const out = mkdtempSync(join(tmpdir(), 'stowage-build-'));
after(() => rmSync(out, { recursive: true, force: true }));

describe('package', () => {
  it('builds to JS and declarations and exports the public API', async () => {
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
    execFileSync(process.execPath, [tsc, '-p', join(repo, 'tsconfig.build.json'), '--outDir', join(out, 'dist'), '--tsBuildInfoFile', join(out, 'build.tsbuildinfo')], { stdio: 'inherit' });
    const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { name: string; exports: { '.': { types: string; default: string } } };
    assert.equal(pkg.name, 'stowage');
    writeFileSync(join(out, 'package.json'), JSON.stringify({ name: 'stowage', type: 'module', exports: pkg.exports }));
    symlinkSync(join(repo, 'node_modules'), join(out, 'node_modules'));
    assert.ok(existsSync(join(out, pkg.exports['.'].types)), 'type declarations are emitted');
    const api = (await import(join(out, pkg.exports['.'].default))) as Record<string, unknown>;
    for (const name of ['createStorage', 'createStorageFromEnv', 'Storage', 'StorageError', 'ErrorCodes', 'keyTemplate', 'verifySignedUrl']) {
      assert.ok(name in api, `exports ${name}`);
    }
    const { createStorage } = api as { createStorage: (o: { driver: string }) => { put: (k: string, v: string) => Promise<{ size: number }> } };
    assert.equal((await createStorage({ driver: 'memory' }).put('k', 'abc')).size, 3);
  });

  it('publishes no install-time scripts, and source maps only for sources it ships', () => {
    const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    // npm runs these when a package is installed; a published library must not compile or fetch anything then.
    for (const hook of ['preinstall', 'install', 'postinstall', 'prepare']) assert.equal(pkg.scripts[hook], undefined, `package.json has no "${hook}" script`);
    // npm pack runs prepack (the build) first, as npm publish does.
    const [packed] = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--silent'], { cwd: repo, encoding: 'utf8' })) as [{ files: { path: string }[] }];
    const shipped = new Set(packed.files.map((f) => f.path));
    assert.ok(shipped.has('dist/index.js') && shipped.has('dist/index.d.ts'), 'the build is in the package');
    assert.ok(![...shipped].some((f) => f.endsWith('.tsbuildinfo')), 'no compiler state in the package');
    const maps = [...shipped].filter((f) => f.endsWith('.map'));
    assert.ok(maps.length > 0);
    for (const map of maps) {
      const { sources } = JSON.parse(readFileSync(join(repo, map), 'utf8')) as { sources: string[] };
      for (const source of sources) {
        const target = join(map, '..', source);
        assert.ok(shipped.has(target), `${map} points at ${target}, which the package must ship`);
      }
    }
  });

  it('installs only packages whose engines include the oldest Node version it supports', () => {
    const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { engines: { node: string } };
    const oldest = semver.minVersion(pkg.engines.node)?.version;
    assert.ok(oldest, `engines.node ${pkg.engines.node} names a lowest version`);
    const lock = JSON.parse(readFileSync(join(repo, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string; engines?: { node?: string } }> };
    const refusing = Object.entries(lock.packages)
      .filter(([path, { engines }]) => path !== '' && engines?.node !== undefined && !semver.satisfies(oldest, engines.node))
      .map(([path, { version, engines }]) => `${path.replace(/^node_modules\//, '')}@${version ?? '?'} needs Node ${engines?.node ?? '?'}`);
    assert.deepEqual(refusing, [], `these need a newer Node than ${oldest}: hold them back in package.json "overrides"`);
  });
});
