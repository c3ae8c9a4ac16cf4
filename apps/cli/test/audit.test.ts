/**
 * `cairn audit` end to end: the origin's own code publishes a history into a directory (releases
 * on several days, a publisher added and another revoked by root rotations, and a push that too
 * few publishers signed, so never published), `cairn mirror serve` serves that directory, and
 * the built `cairn audit` reads it back through the mirror with nothing but the pinned root.
 *
 * The report must list exactly what was published in the window (versions, file hashes, signer
 * names, key changes) and nothing of the refused push; every proof in it must verify from the
 * report alone; regenerated, it must be byte for byte the same; and its HTML must open in a real
 * browser (Debian's chromium, driven by playwright-core), which takes a screenshot for people to
 * look at: apps/cli/test-output/audit-report.png, beside the report (test-output/audit-report/).
 */
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsBlobStore } from '@cairn/storage/fs-store';
import { formatCheckpoint, openCheckpoint, parseCheckpoint } from '@cairn/tlog/checkpoint';
import { createEd25519Signer, parseNote, signNote } from '@cairn/tlog/note';
import { checkpointPolicy } from '@cairn/tlog/log-config';
import { leafHash, verifyInclusion } from '@cairn/tlog/merkle';
import { keyRef, LoggedRepository } from '@cairn/origin/testing/logged-repository';
import { fromHex, toHex } from '@cairn/verify/encoding';
import { Ed25519Signer } from '@cairn/verify/signer';
import type { AuditReport } from '../src/audit-report.js';
import { CHROMIUM_ARGS, ensureChromium } from '../../../test/support/chromium.js';
import { builtBin, runBuilt, serveMirrorDir, type CliResult } from './support/run-cli.js';

const cairn = builtBin('main');
const OUTPUT_DIR = fileURLToPath(new URL('../test-output/', import.meta.url));

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** What each release publishes, and what the refused push tried to. */
const R1 = { 'main.cvd': 'main 1\n', 'daily/a.cld': 'daily 1\n' };
const R2 = { 'main.cvd': 'main 1\n', 'daily/a.cld': 'daily 2\n', 'daily/b.cld': 'b 2\n' };
const REFUSED = { 'main.cvd': 'main refused: signed by alice alone\n' };
const R3 = { 'main.cvd': 'main 3\n', 'daily/a.cld': 'daily 3\n' };
/** A legal target path that would be markup, a link, emphasis, new table cells and a reversed
 * extension if a report did not escape it. */
const HOSTILE = 'docs/<img src=x onerror=alert(1)> |*x*|[a](b)\u202Egpj.exe';
const R4 = { 'main.cvd': 'main 4\n', [HOSTILE]: 'hostile\n' };

/** The files of a release as the report lists them: by path, with length and sha256. */
function filesOf(files: Readonly<Record<string, string>>) {
  return Object.entries(files)
    .map(([path, content]) => ({
      path,
      length: Buffer.byteLength(content),
      sha256: sha256(content),
    }))
    .sort((a, b) => (a.path < b.path ? -1 : 1));
}

let work: string;
let repo: LoggedRepository;
let carol: Ed25519Signer;
let rootFile: string;
let mirror: { url: string; stop(): Promise<void> };
/** The targets version each release was published as. */
const versions: Record<'r1' | 'r2' | 'r3' | 'r4', number> = { r1: 0, r2: 0, r3: 0, r4: 0 };
let refusal: unknown;
/** The origin's clock: each publish is at the time last set. */
let clock = new Date('2026-11-01T09:00:00.000Z');
const at = (time: string) => (clock = new Date(time));

/** Starts `cairn mirror serve` over the directory; resolves once it prints its URL. */
function serveMirror(dir: string): Promise<typeof mirror> {
  return serveMirrorDir(cairn, {
    dir,
    name: 'audit',
    cwd: work,
    env: { PATH: process.env.PATH ?? '', HOME: work },
  });
}

function audit(from: string, to: string, out: string, extra: string[] = []): Promise<CliResult> {
  return runBuilt(
    cairn,
    [
      'audit',
      '--mirror',
      mirror.url,
      '--root',
      rootFile,
      '--from',
      from,
      '--to',
      to,
      '--out',
      out,
      ...extra,
    ],
    { cwd: work, env: { PATH: process.env.PATH ?? '', HOME: work } },
  );
}

/** A checkpoint note's body, parsed (not verified). */
function parseCheckpointNote(note: string) {
  return { checkpoint: parseCheckpoint(parseNote(note).text) };
}

async function reportIn(out: string): Promise<AuditReport> {
  return JSON.parse(await readFile(join(out, 'audit.json'), 'utf8')) as AuditReport;
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'cairn-audit-'));
  const dir = join(work, 'repository');
  repo = await LoggedRepository.create({ store: new FsBlobStore(dir), now: () => clock });
  const { alice, bob } = repo.keys;
  carol = await Ed25519Signer.generate();

  at('2026-11-02T10:00:00.000Z');
  versions.r1 = (await repo.publish(R1)).targetsVersion;
  at('2026-11-03T10:00:00.000Z');
  versions.r2 = (await repo.publish(R2)).targetsVersion;
  at('2026-11-04T10:00:00.000Z');
  expect(
    await repo.changeRoot({
      kind: 'add-publisher',
      publisher: { ...keyRef(carol), name: 'carol' },
    }),
  ).toBe(2);
  // Threshold 2: alice alone cannot publish.
  at('2026-11-05T10:00:00.000Z');
  refusal = await repo.publish(REFUSED, [alice]).then(
    () => undefined,
    (error: unknown) => error,
  );
  // Revoking bob waits for a release that alice and carol sign; it publishes root v3 with it.
  at('2026-11-06T10:00:00.000Z');
  expect(await repo.changeRoot({ kind: 'revoke-publisher', keyid: bob.keyid })).toBeUndefined();
  versions.r3 = (await repo.publish(R3, [alice, carol])).targetsVersion;
  at('2026-11-07T10:00:00.000Z');
  versions.r4 = (await repo.publish(R4, [carol, alice])).targetsVersion;

  rootFile = join(dir, 'metadata', '1.root.json');
  mirror = await serveMirror(dir);
}, 120_000);

afterAll(async () => {
  await mirror?.stop();
  await rm(work, { recursive: true, force: true });
});

describe('cairn audit over a generated history', () => {
  let full: AuditReport;
  let fullOut: string;

  beforeAll(async () => {
    fullOut = join(work, 'full');
    const result = await audit('2026-11-02', '2026-11-07', fullOut);
    expect(result.stderr).toMatch(
      /^reading the log and its metadata through http:\/\/127\.0\.0\.1:\d+\nread \d+ files in \d+\.\d s\n$/,
    );
    expect(result.code).toBe(0);
    full = await reportIn(fullOut);
  });

  it('refused the push that too few publishers signed', () => {
    expect(refusal).toBeInstanceOf(Error);
    expect((refusal as Error).message).toMatch(/too few signatures/);
    expect([versions.r1, versions.r2, versions.r3, versions.r4]).toEqual([
      versions.r1,
      versions.r1 + 1,
      versions.r1 + 2,
      versions.r1 + 3,
    ]);
  });

  it('lists exactly the releases: versions, times, files, signers', () => {
    const alice = { keyid: repo.keys.alice.keyid, name: 'alice' };
    const bob = { keyid: repo.keys.bob.keyid, name: 'bob' };
    const c = { keyid: carol.keyid, name: 'carol' };
    expect(
      full.releases.map((r) => ({
        role: r.role,
        version: r.version,
        time: r.time,
        status: r.status,
        rootVersion: r.rootVersion,
        threshold: r.threshold,
        signers: r.signers,
        files: r.files,
      })),
    ).toEqual([
      {
        role: 'targets',
        version: versions.r1,
        time: '2026-11-02T10:00:00.000Z',
        status: 'verified',
        rootVersion: 1,
        threshold: 2,
        signers: [alice, bob],
        files: filesOf(R1),
      },
      {
        role: 'targets',
        version: versions.r2,
        time: '2026-11-03T10:00:00.000Z',
        status: 'verified',
        rootVersion: 1,
        threshold: 2,
        signers: [alice, bob],
        files: filesOf(R2),
      },
      {
        role: 'targets',
        version: versions.r3,
        time: '2026-11-06T10:00:00.000Z',
        status: 'verified',
        rootVersion: 3,
        threshold: 2,
        signers: [alice, c],
        files: filesOf(R3),
      },
      {
        role: 'targets',
        version: versions.r4,
        time: '2026-11-07T10:00:00.000Z',
        status: 'verified',
        rootVersion: 3,
        threshold: 2,
        signers: [alice, c],
        files: filesOf(R4),
      },
    ]);
  });

  it('lists exactly the key changes: carol added, then bob removed', () => {
    expect(
      full.keyChanges.map((k) => ({
        version: k.version,
        time: k.time,
        status: k.status,
        roles: k.roles,
        logKeyChanged: k.logKeyChanged,
      })),
    ).toEqual([
      {
        version: 2,
        time: '2026-11-04T10:00:00.000Z',
        status: 'verified',
        roles: [
          {
            role: 'targets',
            added: [{ keyid: carol.keyid, name: 'carol' }],
            removed: [],
            threshold: { before: 2, after: 2 },
          },
        ],
        logKeyChanged: false,
      },
      {
        version: 3,
        time: '2026-11-06T10:00:00.000Z',
        status: 'verified',
        roles: [
          {
            role: 'targets',
            added: [],
            removed: [{ keyid: repo.keys.bob.keyid, name: 'bob' }],
            threshold: { before: 2, after: 2 },
          },
        ],
        logKeyChanged: false,
      },
    ]);
    expect(full.anomalies).toEqual([]);
    expect(full.pinnedRoot).toEqual({
      version: 1,
      sha256: createHash('sha256').update(readFileSync(rootFile)).digest('hex'),
    });
  });

  it('holds nothing of the refused push, in any format', async () => {
    const refusedHash = sha256(REFUSED['main.cvd']);
    for (const name of ['audit.json', 'audit.md', 'audit.html']) {
      const text = await readFile(join(fullOut, name), 'utf8');
      expect(text).not.toContain(refusedHash);
      expect(text).not.toContain('2026-11-05');
    }
  });

  it('can be verified again from the report alone: checkpoint, entries, proofs', async () => {
    const checkpoint = full.log.checkpoint;
    if (checkpoint === null) throw new Error('no checkpoint');
    const policy = await checkpointPolicy({
      origin: full.log.origin,
      key: full.log.key,
      witnesses: [],
      witnessThreshold: 0,
    });
    const opened = await openCheckpoint(checkpoint.note, policy);
    expect(opened.checkpoint.size).toBe(checkpoint.size);
    expect(toHex(opened.checkpoint.rootHash)).toBe(checkpoint.rootHash);
    for (const logged of [...full.releases, ...full.keyChanges]) {
      const leaf = await leafHash(new TextEncoder().encode(logged.log.entry));
      expect(toHex(leaf)).toBe(logged.log.leafHash);
      const entry = JSON.parse(logged.log.entry) as Record<string, unknown>;
      expect([entry.sha256, entry.length, entry.time]).toEqual([
        logged.sha256,
        logged.length,
        logged.time,
      ]);
      await verifyInclusion(
        leaf,
        logged.log.index,
        checkpoint.size,
        logged.log.inclusionProof.map((h) => fromHex(h) ?? new Uint8Array()),
        opened.checkpoint.rootHash,
      );
    }
  });

  it('prints the checkpoint it verified against and the files it wrote', async () => {
    const result = await audit('2026-11-02', '2026-11-07', join(work, 'printed'));
    const checkpoint = full.log.checkpoint;
    expect(result.stdout.split('\n')).toEqual([
      '✔ 2026-11-02T00:00:00.000Z to 2026-11-07T23:59:59.999Z: 4 releases, 2 key changes, no anomalies',
      `  checkpoint (every proof is against it): ${checkpoint?.size} entries, root hash ${checkpoint?.rootHash}`,
      ...(checkpoint?.note
        .trimEnd()
        .split('\n')
        .map((line) => `    ${line}`.trimEnd()) ?? []),
      `  wrote ${join(work, 'printed', 'audit.html')}`,
      `  wrote ${join(work, 'printed', 'audit.md')}`,
      `  wrote ${join(work, 'printed', 'audit.json')}`,
      `  wrote ${join(work, 'printed', 'checkpoint.txt')}`,
      '',
    ]);
  });

  it('filters the window exactly, both ends inclusive', async () => {
    const out = join(work, 'narrow');
    const result = await audit('2026-11-03T10:00:00Z', '2026-11-06T10:00:00.000+00:00', out);
    expect(result.code).toBe(0);
    const narrow = await reportIn(out);
    expect(narrow.window).toEqual({
      from: '2026-11-03T10:00:00.000Z',
      to: '2026-11-06T10:00:00.000Z',
    });
    expect(narrow.releases.map((r) => r.version)).toEqual([versions.r2, versions.r3]);
    expect(narrow.keyChanges.map((k) => k.version)).toEqual([2, 3]);
    // The same release reads the same in either window, proof and all.
    expect(narrow.releases[0]).toEqual(full.releases[1]);

    const later = join(work, 'later');
    expect((await audit('2026-11-06T10:00:00.001Z', '2026-11-30', later)).code).toBe(0);
    const l = await reportIn(later);
    expect([l.releases.map((r) => r.version), l.keyChanges]).toEqual([[versions.r4], []]);
  });

  it('is byte-identical when regenerated, and writes only what --format asks', async () => {
    const again = join(work, 'again');
    expect((await audit('2026-11-02', '2026-11-07', again)).code).toBe(0);
    for (const name of ['audit.json', 'audit.md', 'audit.html']) {
      expect(await readFile(join(again, name))).toEqual(await readFile(join(fullOut, name)));
    }
    const only = join(work, 'only-md');
    expect((await audit('2026-11-02', '2026-11-07', only, ['--format', 'md'])).code).toBe(0);
    expect(await readFile(join(only, 'audit.md'))).toEqual(
      await readFile(join(fullOut, 'audit.md')),
    );
    await expect(readFile(join(only, 'audit.json'))).rejects.toThrow('ENOENT');
  });

  it('has a Markdown table per release, one row per file', async () => {
    const md = await readFile(join(fullOut, 'audit.md'), 'utf8');
    const tables = md.split('| Path | Length | SHA-256 |\n| --- | --- | --- |\n').slice(1);
    expect(tables.map((t) => t.split('\n\n')[0]?.split('\n').length)).toEqual([2, 3, 2, 2]);
    expect(md).toContain(
      `| docs/\\<img src=x onerror=alert\\(1\\)\\> \\|\\*x\\*\\|\\[a\\]\\(b\\)\\\\u\\{202e\\}gpj.exe | 8 | \`${sha256('hostile\n')}\` |`,
    );
    expect(md).toContain(`| daily/b.cld | 4 | \`${sha256('b 2\n')}\` |`);
  });

  it('refuses a bad date with BAD_DATE, exit 2', async () => {
    const result = await audit('2026-11-02', '2026-11-31', join(work, 'bad'));
    expect([result.code, result.stderr.split('\n')[0]]).toEqual([
      2,
      '✘ BAD_DATE: --to: no such day, received "2026-11-31"',
    ]);
  });

  describe('the HTML report in headless Chromium', () => {
    beforeAll(() => {
      ensureChromium();
    }, 900_000);

    it('opens, reads as expected, and is captured in a screenshot', async () => {
      const profile = await mkdtemp(join(tmpdir(), 'cairn-chromium-'));
      const context = await chromium.launchPersistentContext(profile, {
        executablePath: ensureChromium(),
        headless: true,
        args: [...CHROMIUM_ARGS],
        viewport: { width: 1200, height: 900 },
      });
      try {
        const page = await context.newPage();
        const requests: string[] = [];
        page.on('request', (request) => requests.push(request.url()));
        const url = pathToFileURL(join(fullOut, 'audit.html')).href;
        await page.goto(url);
        expect(await page.title()).toBe(
          'Cairn audit report: 2026-11-02T00:00:00.000Z to 2026-11-07T23:59:59.999Z',
        );
        expect(await page.locator('#anomalies').innerText()).toBe(
          'No anomalies\n\nEvery check the monitor makes passed for this window.',
        );
        const timeline = await page.locator('#timeline li').allInnerTexts();
        expect(timeline.map((t) => t.split(' ').slice(0, 3).join(' '))).toEqual([
          '2026-11-02T10:00:00.000Z RELEASE targets',
          '2026-11-03T10:00:00.000Z RELEASE targets',
          '2026-11-04T10:00:00.000Z KEY CHANGE',
          '2026-11-06T10:00:00.000Z KEY CHANGE',
          '2026-11-06T10:00:00.000Z RELEASE targets',
          '2026-11-07T10:00:00.000Z RELEASE targets',
        ]);
        const tables = page.locator('table.files');
        expect(await tables.count()).toBe(4);
        const rows: number[] = [];
        for (let i = 0; i < 4; i++) rows.push(await tables.nth(i).locator('tbody tr').count());
        expect(rows).toEqual([2, 3, 2, 2]);
        // The hostile path is text, shown with its bidirectional override made visible.
        expect(await tables.nth(3).locator('tbody tr').nth(0).innerText()).toBe(
          `docs/<img src=x onerror=alert(1)> |*x*|[a](b)\\u{202e}gpj.exe\t8\t${sha256('hostile\n')}`,
        );
        expect(await page.locator('img, script, a[href^="http"]').count()).toBe(0);
        expect(await tables.nth(1).locator('tbody tr').nth(1).innerText()).toBe(
          `daily/b.cld\t4\t${sha256('b 2\n')}`,
        );
        expect(await page.locator('section.release h3').allInnerTexts()).toEqual(
          [versions.r1, versions.r2, versions.r3, versions.r4].map((v) => `Release targets v${v}`),
        );
        // Self-contained: the page asked for nothing but itself.
        expect(requests).toEqual([url]);

        // The report itself beside its screenshot, for people to read.
        await mkdir(join(OUTPUT_DIR, 'audit-report'), { recursive: true });
        for (const name of ['audit.html', 'audit.md', 'audit.json']) {
          await copyFile(join(fullOut, name), join(OUTPUT_DIR, 'audit-report', name));
        }
        const screenshot = join(OUTPUT_DIR, 'audit-report.png');
        await page.screenshot({ path: screenshot, fullPage: true });
        const png = await readFile(screenshot);
        expect(png.subarray(0, 8)).toEqual(
          Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
        );
        console.log(`audit report screenshot: ${screenshot}`);
      } finally {
        await context.close();
        await rm(profile, { recursive: true, force: true });
      }
    });
  });

  describe('at a pinned --checkpoint, after the log has grown', () => {
    let pinned: string;
    let firstSize: number;
    const all = ['audit.json', 'audit.md', 'audit.html'];

    /** A note of the log's origin signed by `seed` as the log's name: the log key's seed, or not. */
    async function signedBy(seed: Uint8Array, size: number, rootHash: Uint8Array) {
      const origin = full.log.origin;
      const signer = await createEd25519Signer(origin, seed);
      return signNote(formatCheckpoint({ origin, size, rootHash, extensions: [] }), [signer]);
    }

    async function auditAt(note: string, out: string): Promise<CliResult> {
      const file = join(work, `${out}.checkpoint.txt`);
      await writeFile(file, note);
      return audit('2026-11-02', '2026-11-07', join(work, out), ['--checkpoint', file]);
    }

    beforeAll(async () => {
      pinned = join(fullOut, 'checkpoint.txt');
      // The log grows past the report: a root rotation and a release after the window. The
      // mirror now serves a root v4 the pinned tree does not hold: logged later, not unlogged.
      at('2026-11-08T09:00:00.000Z');
      const dave = await Ed25519Signer.generate();
      expect(
        await repo.changeRoot({
          kind: 'add-publisher',
          publisher: { ...keyRef(dave), name: 'dave' },
        }),
      ).toBe(4);
      at('2026-11-08T10:00:00.000Z');
      await repo.publish({ 'main.cvd': 'main 5\n' }, [repo.keys.alice, carol]);
      firstSize = (await reportIn(fullOut)).log.checkpoint?.size ?? 0;
    });

    it('wrote the checkpoint note beside the reports', async () => {
      expect(await readFile(pinned, 'utf8')).toBe(full.log.checkpoint?.note);
    });

    it('without --checkpoint, proves against the bigger checkpoint: another report', async () => {
      const out = join(work, 'grown');
      expect((await audit('2026-11-02', '2026-11-07', out)).code).toBe(0);
      const report = await reportIn(out);
      // The rotation and the release appended four entries (root v4 among them).
      expect(report.log.checkpoint?.size).toBe(firstSize + 4);
      expect(report.anomalies).toEqual([]);
      expect(report.releases.map((r) => r.version)).toEqual(full.releases.map((r) => r.version));
      expect(await readFile(join(out, 'audit.json'))).not.toEqual(
        await readFile(join(fullOut, 'audit.json')),
      );
      expect(await readFile(join(out, 'checkpoint.txt'), 'utf8')).toBe(report.log.checkpoint?.note);
    });

    it('with --checkpoint, is byte for byte the first report, and says so', async () => {
      const out = join(work, 'pinned');
      const result = await audit('2026-11-02', '2026-11-07', out, ['--checkpoint', pinned]);
      expect(result.code).toBe(0);
      for (const name of [...all, 'checkpoint.txt']) {
        expect(await readFile(join(out, name))).toEqual(await readFile(join(fullOut, name)));
      }
      const current = (await reportIn(join(work, 'grown'))).log.checkpoint;
      const checkpoint = full.log.checkpoint;
      expect(result.stdout.split('\n').slice(1, 2)).toEqual([
        `  checkpoint (pinned by --checkpoint; every proof is against it): ${checkpoint?.size} entries, root hash ${checkpoint?.rootHash}`,
      ]);
      expect(result.stdout).toContain(
        `\n  consistent with the mirror's current checkpoint: ${current?.size} entries, root hash ${current?.rootHash}\n  wrote `,
      );
    });

    it('refuses a forked checkpoint with SPLIT_VIEW, exit 1, writing nothing', async () => {
      const size = full.log.checkpoint?.size ?? 0;
      const forged = await signedBy(
        repo.keys.log.exportSecretKey(),
        size,
        new Uint8Array(32).fill(0x5a),
      );
      const result = await auditAt(forged, 'forked');
      expect(result.code).toBe(1);
      expect(result.stderr.split('\n').slice(1)).toEqual([
        `✘ SPLIT_VIEW: split view: the log's checkpoints at sizes ${size} and ${size + 4} cannot both be true (consistency proof does not lead to both tree heads)`,
        '  hint: the log was forked: keep the --checkpoint file and this output as evidence, and report it to the repository',
        '',
      ]);
      await expect(readFile(join(work, 'forked', 'audit.json'))).rejects.toThrow('ENOENT');
    });

    it('refuses a checkpoint not signed by the log key with CHECKPOINT_INVALID, exit 1', async () => {
      const { checkpoint } = parseCheckpointNote(full.log.checkpoint?.note ?? '');
      const foreign = await signedBy(
        new Uint8Array(32).fill(9),
        checkpoint.size,
        checkpoint.rootHash,
      );
      const result = await auditAt(foreign, 'foreign');
      expect(result.code).toBe(1);
      expect(result.stderr.split('\n').slice(1)).toEqual([
        `✘ CHECKPOINT_INVALID: the checkpoint given does not verify under this log's key: checkpoint is not signed by the log key ${full.log.origin}`,
        "  hint: --checkpoint must be a checkpoint of this repository's log, signed by the log key its root declares",
        '',
      ]);
      await expect(readFile(join(work, 'foreign', 'audit.json'))).rejects.toThrow('ENOENT');
    });

    it("refuses a checkpoint bigger than the mirror's with CHECKPOINT_AHEAD, exit 1", async () => {
      const size = (full.log.checkpoint?.size ?? 0) + 10;
      const ahead = await signedBy(repo.keys.log.exportSecretKey(), size, new Uint8Array(32));
      const result = await auditAt(ahead, 'ahead');
      expect(result.code).toBe(1);
      expect(result.stderr.split('\n').slice(1)).toEqual([
        `✘ CHECKPOINT_AHEAD: the checkpoint given has ${size} entries, the mirror's current one only ${size - 6}`,
        '  hint: --mirror is behind the --checkpoint: use a mirror that has synced past it, or the origin',
        '',
      ]);
      await expect(readFile(join(work, 'ahead', 'audit.json'))).rejects.toThrow('ENOENT');
    });
  });

  // Last: it alters the repository the tests above read.
  it('reports a logged file the mirror serves altered, on top and beside its release', async () => {
    const file = join(work, 'repository', 'metadata', `${versions.r2}.targets.json`);
    const original = await readFile(file, 'utf8');
    await writeFile(file, original.replace('"version"', ' "version"'));
    const out = join(work, 'altered');
    // Pinned: the log has grown since the first report (above), its proofs have not.
    const result = await audit('2026-11-02', '2026-11-07', out, [
      '--checkpoint',
      join(fullOut, 'checkpoint.txt'),
    ]);
    expect(result.code).toBe(3);
    expect(result.stdout.split('\n')[0]).toBe(
      '✘ 2026-11-02T00:00:00.000Z to 2026-11-07T23:59:59.999Z: 4 releases, 2 key changes, 1 anomaly',
    );
    const report = await reportIn(out);
    const r2 = report.releases[1];
    expect([r2?.version, r2?.status, r2?.files, r2?.signers]).toEqual([
      versions.r2,
      'mismatch',
      [],
      [],
    ]);
    expect(
      report.anomalies.map((a) => [a.code, a.severity, a.logIndex, a.role, a.version]),
    ).toEqual([['ENTRY_MISMATCH', 'critical', r2?.log.index, 'targets', versions.r2]]);
    // Everything else reads as before.
    expect(report.releases.filter((r) => r !== r2)).toEqual(
      full.releases.filter((_, i) => i !== 1),
    );
    const html = await readFile(join(out, 'audit.html'), 'utf8');
    expect(html).toContain('<section id="anomalies" class="box bad">\n<h2>1 anomaly</h2>');
    expect(html.match(/CRITICAL ENTRY_MISMATCH/g)).toHaveLength(2);
  });
});
