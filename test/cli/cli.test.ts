/** The CLI as a real process on local locations: commands, output, exit codes, migrate and gc. */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createStorage } from '../../src/index.js';
import { treeSnapshot } from '../drivers/fs/helpers.js';
import { cli } from './run.js';

let dir: string;
let loc: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stowage-cli-'));
  loc = `local:${join(dir, 'store')}`;
  const s = createStorage({ driver: 'fs', root: join(dir, 'store') });
  await s.put('photos/a.jpg', Buffer.alloc(3000, 1), { contentType: 'image/jpeg', metadata: { owner: 'ann' } });
  await s.put('photos/2024/b.jpg', Buffer.alloc(10, 2));
  await s.put('tmp/upload-1', 'x');
  await s.put('фото/ключ.txt', 'unicode');
});
after(async () => rm(dir, { recursive: true, force: true }));

describe('stowage CLI', () => {
  it('prints help and exits 0; a usage error exits 2 with the reason on stderr', async () => {
    const help = await cli(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /migrate/);
    const bad = await cli(['frobnicate']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /unknown command 'frobnicate'/);
    const badLocation = await cli(['-s', 'ftp://x', 'ls']);
    assert.equal(badLocation.code, 2);
    assert.match(badLocation.stderr, /^stowage: .*unknown scheme "ftp:"/);
  });

  it('prints the package version, alone or with other options', async () => {
    const { version } = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    for (const args of [['--version'], ['-V'], ['--json', '--version']]) {
      const result = await cli(args);
      assert.deepEqual([result.code, result.stdout, result.stderr], [0, `${version}\n`, ''], args.join(' '));
    }
  });

  it('lists a level, or everything with -r, as columns or JSON', async () => {
    const top = await cli(['-s', loc, 'ls']);
    assert.equal(top.code, 0);
    assert.match(top.stdout, /DIR +photos\//);
    const all = await cli(['ls', '-r', '--json', `${loc}#photos/`]);
    const parsed = JSON.parse(all.stdout) as { objects: { key: string; size: number }[] };
    assert.deepEqual(parsed.objects.map((o) => [o.key, o.size]), [['photos/2024/b.jpg', 10], ['photos/a.jpg', 3000]]);
    assert.match((await cli(['-s', loc, 'ls', '-r', 'photos/'])).stdout, /2\.9 KiB +image\/jpeg +photos\/a\.jpg/);
  });

  it('stats, cats and gets objects; a missing one exits 3', async () => {
    const stat = await cli(['-s', loc, 'stat', 'photos/a.jpg', '--json']);
    const info = JSON.parse(stat.stdout) as { size: number; metadata: Record<string, string>; sha256: string };
    assert.deepEqual([info.size, info.metadata.owner, info.sha256.length], [3000, 'ann', 64]);
    assert.equal((await cli(['cat', `${loc}#фото/ключ.txt`])).stdout, 'unicode');
    const file = join(dir, 'got.jpg');
    assert.equal((await cli(['-s', loc, 'get', 'photos/a.jpg', file])).code, 0);
    assert.equal((await readFile(file)).length, 3000);
    const missing = await cli(['-s', loc, 'stat', 'photos/none.jpg']);
    assert.equal(missing.code, 3);
    assert.match(missing.stderr, /no object at "photos\/none\.jpg"/);
  });

  it('puts files and stdin, copies and moves across locations, and counts with du', async () => {
    const other = `local:${join(dir, 'other')}`;
    await writeFile(join(dir, 'in.txt'), 'from a file');
    assert.equal((await cli(['-s', loc, 'put', join(dir, 'in.txt'), 'docs/in.txt', '-t', 'text/markdown'])).code, 0);
    assert.equal((await cli(['-s', loc, 'put', '-', 'docs/stdin.txt'], { input: 'from stdin' })).code, 0);
    assert.equal((await cli(['cp', `${loc}#docs/in.txt`, `${other}#copied/`])).code, 0);
    assert.equal((await cli(['mv', `${loc}#docs/stdin.txt`, `${other}#moved.txt`])).code, 0);
    assert.equal((await cli(['cat', `${other}#copied/in.txt`])).stdout, 'from a file');
    assert.equal((await cli(['-s', loc, 'stat', 'docs/stdin.txt'])).code, 3, 'mv removed the source');
    const du = JSON.parse((await cli(['du', `${other}`, '--json'])).stdout) as { objects: number; bytes: number };
    assert.deepEqual(du, { prefix: '', objects: 2, bytes: 21 });
  });

  it('refuses to delete without --yes when not on a terminal, and deletes with it', async () => {
    const refused = await cli(['-s', loc, 'rm', 'docs/in.txt']);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /refusing without --yes/);
    assert.equal((await cli(['-s', loc, 'rm', '-r', '--yes', 'docs/'])).code, 0);
    assert.equal((await cli(['-s', loc, 'ls', '-r', 'docs/', '--json'])).stdout.includes('"key"'), false);
  });

  it('presigns links on the local backend when a signing secret is configured', async () => {
    const env = { STORAGE_PUBLIC_URL: 'http://127.0.0.1:8080', STORAGE_SIGNING_SECRET: 'cli-test-secret-0123456789' };
    const res = await cli(['-s', loc, 'presign', 'photos/a.jpg', '--expires', '60'], { env });
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /^http:\/\/127\.0\.0\.1:8080\/files\/photos\/a\.jpg\?X-Stowage-Method=GET/);
    assert.equal((await cli(['-s', loc, 'presign', 'photos/a.jpg', '--expires', 'soon'], { env })).code, 2);
  });

  it('checks health: 0 when reachable, 1 when not', async () => {
    assert.equal((await cli(['health', loc])).code, 0);
    await writeFile(join(dir, 'not-a-folder'), 'x');
    const down = await cli(['health', `local:${join(dir, 'not-a-folder')}`]);
    assert.equal(down.code, 1);
    assert.match(down.stdout, /UNAVAILABLE/);
  });

  it('migrates with a dry run, then for real with verify and delete-source', async () => {
    const src = `local:${join(dir, 'mig-src')}`;
    const dst = `local:${join(dir, 'mig-dst')}`;
    const s = createStorage({ driver: 'fs', root: join(dir, 'mig-src') });
    for (let i = 0; i < 40; i++) await s.put(`m/${i}.bin`, Buffer.alloc(100 + i, i), { metadata: { n: String(i) } });
    const dry = JSON.parse((await cli(['migrate', '--from', src, '--to', dst, '--dry-run', '--json'])).stdout) as { copied: number; dryRun: boolean };
    assert.deepEqual([dry.copied, dry.dryRun], [40, true]);
    assert.equal((await cli(['ls', '-r', dst, '--json'])).stdout.includes('"key"'), false, 'a dry run writes nothing');
    const real = await cli(['migrate', '--from', src, '--to', dst, '--concurrency', '4', '--delete-source', '--json']);
    assert.equal(real.code, 0, real.stderr);
    assert.equal(real.stderr, '', 'no progress bar when stderr is not a terminal');
    const report = JSON.parse(real.stdout) as { copied: number; verified: number; deleted: number };
    assert.deepEqual([report.copied, report.verified, report.deleted], [40, 40, 40]);
    const moved = await createStorage({ driver: 'fs', root: join(dir, 'mig-dst') }).stat('m/7.bin');
    assert.deepEqual([moved.size, moved.metadata.n], [107, '7']);
    assert.equal((await s.usage()).objects, 0);
    const same = await cli(['migrate', '--from', src, '--to', src]);
    assert.equal(same.code, 2);
  });

  it('gc: reports by default, deletes old temporary objects and orphans with --yes', async () => {
    const report = await cli(['gc', 'temp', `${loc}#tmp/`, '--older-than', '0s']);
    assert.equal(report.code, 0);
    assert.match(report.stdout, /would delete 1 .*dry run/);
    assert.equal((await cli(['-s', loc, 'stat', 'tmp/upload-1'])).code, 0, 'a dry run deletes nothing');
    assert.match((await cli(['gc', 'temp', `${loc}#tmp/`, '--older-than', '1d', '--yes'])).stdout, /deleted 0/);
    assert.match((await cli(['gc', 'temp', `${loc}#tmp/`, '--older-than', '0s', '--yes'])).stdout, /deleted 1/);
    const orphans = await cli(['gc', 'orphans', `${loc}#photos/`, '--keep', '-', '--yes', '--json'], { input: 'photos/a.jpg\n' });
    assert.deepEqual((JSON.parse(orphans.stdout) as { objects: { key: string }[] }).objects.map((o) => o.key), ['photos/2024/b.jpg']);
    assert.equal((await cli(['-s', loc, 'stat', 'photos/a.jpg'])).code, 0);
    assert.equal((await cli(['-s', loc, 'stat', 'photos/2024/b.jpg'])).code, 3);
    const local = await cli(['gc', 'uploads', loc, '--older-than', '0s']);
    assert.match(local.stdout, /would abort 0/);
    assert.equal((await cli(['gc', 'temp', `${loc}#tmp/`, '--older-than', 'yesterday'])).code, 2);
  });

  it('gc sessions: reports expired upload sessions, aborts them with --yes, and keeps live ones', async () => {
    const root = join(dir, 'gc-sessions');
    const s = createStorage({ driver: 'fs', root });
    const expiring = await s.sessions.create('big/video.mp4', { expiresIn: 1 });
    await s.sessions.write(expiring.id, 0, Buffer.alloc(5000, 1));
    const live = await s.sessions.create('big/live.mp4');
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const dry = await cli(['gc', 'sessions', `local:${root}`]);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, new RegExp(`would abort 1 .*dry run[\\s\\S]*big/video.mp4 \\(session ${expiring.id}`));
    const acted = JSON.parse((await cli(['gc', 'sessions', `local:${root}`, '--yes', '--json'])).stdout) as { acted: boolean; sessions: { id: string }[] };
    assert.deepEqual([acted.acted, acted.sessions.map((x) => x.id)], [true, [expiring.id]]);
    assert.deepEqual((await s.sessions.cleanup({ dryRun: true })).sessions, [], 'nothing expired is left');
    assert.deepEqual((await s.sessions.list()).map((x) => x.id), [live.id]);
  });
});

describe('stowage CLI: read-only use of local folders', () => {
  it('fails on a folder that does not exist with exit 3 and a message naming it, creating nothing', async () => {
    const parent = join(dir, 'typo-parent');
    await mkdir(parent);
    const missing = join(parent, 'no', 'such', 'dir');
    const target = `local:${join(dir, 'typo-target')}`;
    for (const args of [
      ['-s', `local:${missing}`, 'ls'],
      ['ls', '-r', `local:${missing}#photos/`],
      ['cat', `local:${missing}#a.txt`],
      ['-s', `local:${missing}`, 'stat', 'a.txt'],
      ['du', `local:${missing}`],
      ['verify', `local:${missing}`],
      ['migrate', '--from', `local:${missing}`, '--to', target, '--dry-run'],
      ['migrate', '--from', `local:${missing}`, '--to', target],
    ]) {
      const res = await cli(args);
      assert.equal(res.code, 3, `${args.join(' ')}: ${res.stderr}`);
      assert.ok(res.stderr.includes(`storage root ${missing} does not exist`), `${args.join(' ')}: ${res.stderr}`);
    }
    assert.deepEqual(await readdir(parent), [], 'nothing was created');
    await assert.rejects(readdir(join(dir, 'typo-target')), { code: 'ENOENT' }, 'nor at the target');
  });

  it('leaves a plain folder byte for byte as it was after ls -r, cat, stat, du, verify, health and migrate --from', async () => {
    const plain = join(dir, 'plain');
    await mkdir(join(plain, 'photos', '2024'), { recursive: true });
    await writeFile(join(plain, 'photos', '2024', 'b.jpg'), Buffer.alloc(300 * 1024, 7));
    await writeFile(join(plain, 'photos', 'a.jpg'), 'a small photo');
    await writeFile(join(plain, 'ключ.txt'), 'unicode');
    const src = `local:${plain}`;
    const before = await treeSnapshot(plain);
    const run = async (args: string[]) => {
      const res = await cli(args);
      assert.equal(res.code, 0, `${args.join(' ')}: ${res.stderr}`);
      return res.stdout;
    };
    assert.match(await run(['ls', '-r', src]), /photos\/2024\/b\.jpg/);
    assert.match(await run(['-s', src, 'ls']), /DIR +photos\//);
    assert.equal(await run(['cat', `${src}#ключ.txt`]), 'unicode');
    assert.match(await run(['-s', src, 'stat', 'photos/a.jpg']), /image\/jpeg/);
    assert.deepEqual(JSON.parse(await run(['du', src, '--json'])), { prefix: '', objects: 3, bytes: 300 * 1024 + 13 + 7 });
    assert.match(await run(['verify', src]), /checked 3 objects/);
    assert.match(await run(['health', src]), /^ok/);
    const target = join(dir, 'plain-copy');
    assert.match(await run(['migrate', '--from', src, '--to', `local:${target}`, '--dry-run']), /would copy 3/);
    assert.match(await run(['migrate', '--from', src, '--to', `local:${target}`, '--verify']), /copied 3/);
    assert.equal((await cli(['cat', `local:${target}#photos/a.jpg`])).stdout, 'a small photo');
    assert.deepEqual(await treeSnapshot(plain), before, 'the source folder is exactly as it was');
  });
});
