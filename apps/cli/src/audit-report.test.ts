import { describe, expect, it } from 'vitest';
import {
  AUDIT_FORMAT,
  anomalyText,
  escapeHtml,
  escapeMarkdown,
  keyChangeSummary,
  renderHtml,
  renderJson,
  renderMarkdown,
  timeline,
  visible,
  type AuditKeyChange,
  type AuditRelease,
  type AuditReport,
} from './audit-report.js';

const hex = (digit: string) => digit.repeat(64);
const ALICE = { keyid: hex('a'), name: 'alice' };
const BOB = { keyid: hex('b'), name: 'bob' };
const UNNAMED = { keyid: `c0ffee${'0'.repeat(58)}`, name: null };

const CHECKPOINT =
  'cairn.example/log\n9\nq83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=\n\n— cairn.example/log Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n';

function release(overrides: Partial<AuditRelease> & Pick<AuditRelease, 'version'>): AuditRelease {
  return {
    role: 'targets',
    time: '2026-11-02T10:00:00.000Z',
    length: 1234,
    sha256: hex('1'),
    status: 'verified',
    rootVersion: 1,
    threshold: 2,
    signers: [ALICE, BOB],
    log: {
      index: 3,
      entry:
        '{"length":1234,"role":"targets","sha256":"11","time":"2026-11-02T10:00:00.000Z","type":"cairn-metadata/v1","version":2}',
      leafHash: hex('e'),
      inclusionProof: [hex('2'), hex('3')],
    },
    files: [
      { path: 'daily/a.cld', length: 7, sha256: hex('4') },
      { path: 'main.cvd', length: 31999, sha256: hex('5') },
    ],
    ...overrides,
  };
}

const KEY_CHANGE: AuditKeyChange = {
  version: 2,
  time: '2026-11-03T09:00:00.000Z',
  length: 2048,
  sha256: hex('6'),
  status: 'verified',
  signers: [UNNAMED],
  log: { index: 5, entry: '{"role":"root"}', leafHash: hex('7'), inclusionProof: [hex('8')] },
  roles: [
    {
      role: 'targets',
      added: [{ keyid: hex('d'), name: 'carol' }],
      removed: [BOB],
      threshold: { before: 2, after: 2 },
    },
  ],
  logKeyChanged: false,
};

function report(overrides: Partial<AuditReport> = {}): AuditReport {
  return {
    format: AUDIT_FORMAT,
    window: { from: '2026-11-01T00:00:00.000Z', to: '2026-11-30T23:59:59.999Z' },
    mirror: 'https://mirror.example/',
    pinnedRoot: { version: 1, sha256: hex('c') },
    log: {
      origin: 'cairn.example/log',
      key: 'cairn.example/log+0123abcd+AQID',
      checkpoint: { size: 9, rootHash: hex('9'), note: CHECKPOINT },
    },
    anomalies: [],
    releases: [
      release({ version: 2 }),
      release({
        version: 3,
        time: '2026-11-04T08:00:00.000Z',
        signers: [{ keyid: hex('d'), name: 'carol' }, ALICE],
        log: { index: 7, entry: '{}', leafHash: hex('f'), inclusionProof: [] },
        files: [{ path: 'main.cvd', length: 32000, sha256: hex('0') }],
      }),
    ],
    keyChanges: [KEY_CHANGE],
    ...overrides,
  };
}

/** Every row of every `<table class=…>`, its cells joined by ` | `, tags stripped. */
function htmlRows(html: string, tableClass: string): string[] {
  const tables = [
    ...html.matchAll(new RegExp(`<table class="${tableClass}">([\\s\\S]*?)</table>`, 'g')),
  ];
  return tables
    .map((t) =>
      [...(t[1] ?? '').matchAll(/<tr>(.*?)<\/tr>/g)].map((row) =>
        (row[1] ?? '').replace(/<\/t[dh]><t[dh][^>]*>/g, ' | ').replace(/<[^>]+>/g, ''),
      ),
    )
    .flat();
}

describe('visible', () => {
  it('shows controls, invisible and bidirectional characters as escapes', () => {
    expect(visible('a\nb\tc\u0000')).toBe('a\\u{000a}b\\u{0009}c\\u{0000}');
    expect(visible('invoice\u202Efdp.exe')).toBe('invoice\\u{202e}fdp.exe');
    expect(visible('al\u200Bice')).toBe('al\\u{200b}ice');
    expect(visible('\u2066x\u2069 \u00AD \uFEFF \u009B')).toBe(
      '\\u{2066}x\\u{2069} \\u{00ad} \\u{feff} \\u{009b}',
    );
    expect(visible('élan 日本 🙂')).toBe('élan 日本 🙂');
  });
});

describe('escapeHtml', () => {
  it('escapes markup and both quotes', () => {
    expect(escapeHtml(`<img src=x onerror="alert(1)">&'`)).toBe(
      '&#60;img src=x onerror=&#34;alert(1)&#34;&#62;&#38;&#39;',
    );
  });
});

describe('escapeMarkdown', () => {
  it('escapes what could make a link, an image, HTML, emphasis or a new cell', () => {
    expect(escapeMarkdown('[x](http://e.example) ![i](y) <b>*_|`~&amp;#')).toBe(
      '\\[x\\]\\(http://e.example\\) \\!\\[i\\]\\(y\\) \\<b\\>\\*\\_\\|\\`\\~\\&amp;\\#',
    );
    expect(escapeMarkdown('a\\b\nc')).toBe('a\\\\b\\\\u\\{000a\\}c');
  });
});

describe('timeline', () => {
  it('puts releases and key changes in log order', () => {
    expect(timeline(report()).map((i) => `${i.kind}@${i.index}`)).toEqual([
      'release@3',
      'key-change@5',
      'release@7',
    ]);
  });

  it('describes a key change role by role', () => {
    expect(keyChangeSummary(KEY_CHANGE)).toBe('targets: added carol; removed bob');
    expect(
      keyChangeSummary({
        ...KEY_CHANGE,
        roles: [
          { role: 'root', added: [UNNAMED], removed: [], threshold: { before: null, after: 1 } },
          { role: 'targets', added: [], removed: [], threshold: { before: 1, after: 2 } },
        ],
        logKeyChanged: true,
      }),
    ).toBe('root: added c0ffee000000; threshold 1 · targets: threshold 1 → 2 · new log key');
  });
});

describe('renderJson', () => {
  it('is the model itself, in field order, with a trailing newline', () => {
    const json = renderJson(report());
    expect(JSON.parse(json)).toEqual(report());
    expect(json.endsWith('}\n')).toBe(true);
    expect(Object.keys(JSON.parse(json) as object)).toEqual([
      'format',
      'window',
      'mirror',
      'pinnedRoot',
      'log',
      'anomalies',
      'releases',
      'keyChanges',
    ]);
    expect(renderJson(report())).toBe(json);
  });
});

describe('renderMarkdown', () => {
  it('has a table per release, a key change table, the timeline and the checkpoint', () => {
    const md = renderMarkdown(report());
    const lines = md.split('\n');
    expect(lines[0]).toBe(
      '# Cairn audit report: 2026-11-01T00:00:00.000Z to 2026-11-30T23:59:59.999Z',
    );
    expect(lines.slice(1, 7)).toEqual([
      '',
      '- Mirror: https://mirror.example/',
      `- Pinned root: version 1, sha256 \`${hex('c')}\``,
      `- Log: cairn.example/log, 9 entries, root hash \`${hex('9')}\``,
      '- 2 releases, 1 key change, 0 anomalies',
      '',
    ]);
    expect(md).toContain(
      '## Anomalies\n\nNo anomalies: every check the monitor makes passed for this window.\n',
    );
    expect(md).toContain(
      [
        '## Timeline',
        '',
        '- 2026-11-02T10:00:00.000Z, log index 3: release targets v2: 2 files, signed by alice, bob',
        '- 2026-11-03T09:00:00.000Z, log index 5: key change root v2: targets: added carol; removed bob',
        '- 2026-11-04T08:00:00.000Z, log index 7: release targets v3: 1 file, signed by carol, alice',
      ].join('\n'),
    );
    expect(md).toContain(
      [
        '### Release targets v2',
        '',
        '- Logged: 2026-11-02T10:00:00.000Z',
        '- Status: verified',
        `- Metadata: 1234 bytes, sha256 \`${hex('1')}\``,
        '- Signed by: alice (`aaaaaaaaaaaa`), bob (`bbbbbbbbbbbb`) (threshold 2 under root v1)',
        '- Log index: 3',
        '- Log entry: `{"length":1234,"role":"targets","sha256":"11","time":"2026-11-02T10:00:00.000Z","type":"cairn-metadata/v1","version":2}`',
        `- Leaf hash: \`${hex('e')}\``,
        '- Inclusion proof (2 hashes, leaf upwards):',
        `  1. \`${hex('2')}\``,
        `  2. \`${hex('3')}\``,
        '',
        '| Path | Length | SHA-256 |',
        '| --- | --- | --- |',
        `| daily/a.cld | 7 | \`${hex('4')}\` |`,
        `| main.cvd | 31999 | \`${hex('5')}\` |`,
        '',
      ].join('\n'),
    );
    expect(md).toContain(
      [
        '| Role | Added | Removed | Threshold |',
        '| --- | --- | --- | --- |',
        '| targets | carol (`dddddddddddd`) | bob (`bbbbbbbbbbbb`) | 2 |',
      ].join('\n'),
    );
    expect(md).toContain('- Signed by: `c0ffee000000`\n');
    expect(md.endsWith(['```', CHECKPOINT.trimEnd(), '```', ''].join('\n'))).toBe(true);
  });

  it('keeps hostile paths and names inside their cell', () => {
    const hostile = report({
      releases: [
        release({
          version: 2,
          signers: [{ keyid: hex('a'), name: '*eve* | [x](y)' }],
          files: [{ path: 'a|b\n| evil | 1 | x |<script>', length: 1, sha256: null }],
        }),
      ],
      keyChanges: [],
    });
    const md = renderMarkdown(hostile);
    expect(md).toContain('| a\\|b\\\\u\\{000a\\}\\| evil \\| 1 \\| x \\|\\<script\\> | 1 | none |');
    expect(md).toContain('- Signed by: \\*eve\\* \\| \\[x\\]\\(y\\) (`aaaaaaaaaaaa`)');
    // Every table line has exactly its columns' unescaped pipes.
    for (const line of md.split('\n').filter((l) => l.startsWith('| '))) {
      expect(line.replace(/\\\\/g, '').replace(/\\\|/g, '').split('|').length - 1).toBe(4);
    }
  });

  it('lists anomalies on top and beside their release', () => {
    const md = renderMarkdown(
      report({
        anomalies: [
          {
            code: 'CHECKPOINT_INVALID',
            severity: 'critical',
            message: 'log/checkpoint: bad signature',
          },
          {
            code: 'BELOW_POLICY',
            severity: 'warning',
            message: '1 approval, policy asks 2',
            logIndex: 7,
            time: '2026-11-04T08:00:00.000Z',
            role: 'targets',
            version: 3,
          },
        ],
      }),
    );
    expect(md).toContain(
      [
        '## Anomalies',
        '',
        '- **CRITICAL CHECKPOINT\\_INVALID: log/checkpoint: bad signature**',
        '- **WARNING BELOW\\_POLICY \\(log index 7, targets v3, 2026-11-04T08:00:00.000Z\\): 1 approval, policy asks 2**',
        '',
      ].join('\n'),
    );
    expect(md).toContain(
      '### Release targets v3\n\n- **WARNING BELOW\\_POLICY \\(log index 7, targets v3, 2026-11-04T08:00:00.000Z\\): 1 approval, policy asks 2**\n\n- Logged:',
    );
  });
});

describe('renderHtml', () => {
  it('is one self-contained page: no script, no external resource', () => {
    const html = renderHtml(report());
    expect(html.startsWith('<!DOCTYPE html>\n<html lang="en">')).toBe(true);
    expect(html).not.toMatch(/<script|<link|<img|<iframe|src=|url\(|@import|javascript:/i);
    expect(html).toContain(`content="default-src 'none'; style-src 'unsafe-inline'"`);
    expect(html).toContain(
      '<title>Cairn audit report: 2026-11-01T00:00:00.000Z to 2026-11-30T23:59:59.999Z</title>',
    );
    expect(renderHtml(report())).toBe(html);
  });

  it('has the no-anomalies box, a timeline, and one exact table per release', () => {
    const html = renderHtml(report());
    expect(html).toContain(
      '<section id="anomalies" class="box ok">\n<h2>No anomalies</h2>\n<p>Every check the monitor makes passed for this window.</p>\n</section>',
    );
    expect(html.match(/<table class="files">/g)).toHaveLength(2);
    expect(htmlRows(html, 'files')).toEqual([
      'Path | Length | SHA-256',
      `daily/a.cld | 7 | ${hex('4')}`,
      `main.cvd | 31999 | ${hex('5')}`,
      'Path | Length | SHA-256',
      `main.cvd | 32000 | ${hex('0')}`,
    ]);
    expect(htmlRows(html, 'roles')).toEqual([
      'Role | Added | Removed | Threshold',
      'targets | carol dddddddddddd | bob bbbbbbbbbbbb | 2',
    ]);
    const timelineItems = [
      ...html.matchAll(/<li class="(release|key-change)"><time>([^<]+)<\/time>/g),
    ];
    expect(timelineItems.map((m) => `${m[1]} ${m[2]}`)).toEqual([
      'release 2026-11-02T10:00:00.000Z',
      'key-change 2026-11-03T09:00:00.000Z',
      'release 2026-11-04T08:00:00.000Z',
    ]);
    expect(html).toContain('<a href="#log-5">root v2 · targets: added carol; removed bob</a>');
    expect(html).toContain('<section class="release" id="log-7">');
    expect(html).toContain(`<pre>${CHECKPOINT.trimEnd()}</pre>`);
  });

  it('escapes every hostile name, path, code and message', () => {
    const evil = '<script>alert("x")</script>';
    const html = renderHtml(
      report({
        mirror: `https://m.example/?q="${evil}`,
        anomalies: [{ code: `X${evil}`, severity: 'critical', message: evil, role: evil }],
        releases: [
          release({
            version: 2,
            role: `del${evil}`,
            signers: [{ keyid: `${evil}${hex('a')}`, name: evil }],
            files: [{ path: `${evil}\u202Egpj.exe`, length: 1, sha256: evil }],
          }),
        ],
        keyChanges: [],
      }),
    );
    expect(html).not.toContain('<script');
    expect(html).not.toContain('"x"');
    expect(html).toContain(
      '<td class="path">&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62;\\u{202e}gpj.exe</td>',
    );
    expect(html).toContain(
      '<h3>Release del&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62; v2</h3>',
    );
  });

  it('puts the anomalies on top, before the timeline', () => {
    const anomaly = { code: 'THRESHOLD', severity: 'critical' as const, message: 'one of two' };
    const html = renderHtml(report({ anomalies: [anomaly] }));
    expect(html).toContain(
      '<section id="anomalies" class="box bad">\n<h2>1 anomaly</h2>\n<ul>\n<li class="critical"><strong>CRITICAL THRESHOLD</strong>: one of two</li>\n</ul>',
    );
    expect(html.indexOf('id="anomalies"')).toBeLessThan(html.indexOf('id="timeline"'));
    expect(anomalyText(anomaly)).toBe('CRITICAL THRESHOLD: one of two');
  });

  it('says so when the checkpoint did not verify', () => {
    const html = renderHtml(
      report({
        log: { origin: 'o', key: 'o+1+A', checkpoint: null },
        releases: [],
        keyChanges: [],
      }),
    );
    expect(html).toContain('checkpoint NOT verified');
    expect(html).toContain('<p>No release in this window.</p>');
    expect(html).toContain('<p>Nothing was logged in this window.</p>');
    expect(html).toContain(
      "The mirror's checkpoint did not verify under the log key <code>o+1+A</code>",
    );
  });
});
