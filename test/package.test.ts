/**
 * The published package: `npm run build` output compiles from src alone, the
 * `stowage` entry and its subpaths export the documented API with type declarations, the
 * main entry runs without the dependencies only S3 and HTTP need, and every locked
 * dependency declares support for the oldest Node version Stowage promises.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import semver from 'semver';

const repo = new URL('..', import.meta.url).pathname;
const out = mkdtempSync(join(tmpdir(), 'stowage-build-'));
after(() => rmSync(out, { recursive: true, force: true }));

/** What each entry of package.json `exports` must offer, by name. */
const ENTRIES = {
  '.': ['createStorage', 'createStorageFromEnv', 'createStorageFromUrl', 'Storage', 'StorageError', 'ErrorCodes', 'keyTemplate', 'verifySignedUrl', 'FsDriver', 'MemoryDriver', 'S3Driver', 'migrate', 'buildApp', 'stowageRoutes', 'Authenticator', 'withMetrics', 'DriverLayer'],
  './s3': ['S3Driver', 'PROVIDERS', 'PROFILES', 'DEFAULT_RETRY_POLICY'],
  './http': ['buildApp', 'stowageRoutes', 'runServer', 'Authenticator', 'DEFAULT_MAX_UPLOAD_SIZE', 'ERROR_CATALOGUE'],
  './migrate': ['migrate'],
} satisfies Record<string, string[]>;
/** The dependencies only the S3 driver, the HTTP service and metrics need (top-level folders of node_modules). */
const HEAVY = ['@aws-sdk', '@smithy', 'fastify', '@fastify', 'prom-client', 'jose'];

type Exports = Record<keyof typeof ENTRIES, { types: string; default: string }>;

describe('package', () => {
  it('builds to JS and declarations and exports the public API', async () => {
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
    execFileSync(process.execPath, [tsc, '-p', join(repo, 'tsconfig.build.json'), '--outDir', join(out, 'dist'), '--tsBuildInfoFile', join(out, 'build.tsbuildinfo')], { stdio: 'inherit' });
    const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { name: string; exports: Exports };
    assert.equal(pkg.name, 'stowage');
    writeFileSync(join(out, 'package.json'), JSON.stringify({ name: 'stowage', type: 'module', exports: pkg.exports }));
    symlinkSync(join(repo, 'node_modules'), join(out, 'node_modules'));
    assert.deepEqual(Object.keys(pkg.exports).filter((e) => e !== './package.json').sort(), Object.keys(ENTRIES).sort(), 'the documented entries, no more');
    for (const [entry, names] of Object.entries(ENTRIES) as [keyof typeof ENTRIES, string[]][]) {
      assert.ok(existsSync(join(out, pkg.exports[entry].types)), `type declarations of ${entry} are emitted`);
      const api = (await import(join(out, pkg.exports[entry].default))) as Record<string, unknown>;
      for (const name of names) assert.ok(name in api, `${entry} exports ${name}`);
    }
    const api = (await import(join(out, pkg.exports['.'].default))) as Record<string, unknown>;
    const { createStorage } = api as { createStorage: (o: { driver: string }) => { put: (k: string, v: string) => Promise<{ size: number }> } };
    assert.equal((await createStorage({ driver: 'memory' }).put('k', 'abc')).size, 3);
  });

  it('runs fs and memory storages with the AWS SDK, Fastify, prom-client and jose not installed', () => {
    // An app whose node_modules holds the built package and every dependency but the heavy
    // ones: hard links, so the copy is quick and takes no space. Outside `out`, whose
    // node_modules has them all and would be found by walking up.
    const app = mkdtempSync(join(tmpdir(), 'stowage-light-'));
    after(() => rmSync(app, { recursive: true, force: true }));
    const modules = join(app, 'node_modules');
    execFileSync('cp', ['-al', join(repo, 'node_modules'), modules]);
    for (const name of HEAVY) rmSync(join(modules, name), { recursive: true, force: true });
    mkdirSync(join(modules, 'stowage'));
    cpSync(join(out, 'dist'), join(modules, 'stowage', 'dist'), { recursive: true });
    cpSync(join(out, 'package.json'), join(modules, 'stowage', 'package.json'));
    const program = `
import assert from 'node:assert/strict';
import { createStorage, createStorageFromEnv, keyTemplate, isStorageError } from 'stowage';
const fs = createStorage({ driver: 'fs', root: ${JSON.stringify(join(app, 'store'))} });
await fs.put('docs/report.docx', 'hello');
assert.equal((await fs.get('docs/report.docx')).toString(), 'hello');
assert.equal((await fs.stat('docs/report.docx')).contentType, 'application/vnd.openxmlformats-officedocument.wordprocessingml.document');
const memory = createStorage({ driver: 'memory' });
await memory.copyFrom(fs, 'docs/report.docx', 'copy.docx');
assert.deepEqual((await memory.list()).objects.map((o) => o.key), ['copy.docx']);
const fromEnv = createStorageFromEnv({ STORAGE_URL: 'memory:' });
assert.equal(fromEnv.backend, 'memory');
assert.match(keyTemplate('u/{uuid}.{ext}').build({ contentType: 'image/png' }), /^u[/][0-9a-f-]{36}[.]png$/);
// What needs a missing package says which one.
const s3Options = { driver: 's3', bucket: 'photos', endpoint: 'http://127.0.0.1:9', region: 'us-east-1', accessKeyId: 'k', secretAccessKey: 's' };
assert.throws(() => createStorage(s3Options), (err) => isStorageError(err, 'E_CONFIG_INVALID') && err.message.includes('npm install @aws-sdk/client-s3'));
await assert.rejects(import('stowage/http'), /fastify/);
console.log('ok');
`;
    writeFileSync(join(app, 'program.mjs'), program);
    const run = spawnSync(process.execPath, [join(app, 'program.mjs')], { cwd: app, encoding: 'utf8' });
    assert.equal(run.stderr, '');
    assert.equal(run.stdout.trim(), 'ok');
    assert.equal(run.status, 0);
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
