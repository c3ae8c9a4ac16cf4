/**
 * The audit report of `cairn audit`: one model, three renderings.
 *
 * The model (`AuditReport`) is what the JSON file holds, field for field and in this order: the
 * window, the checkpoint every proof was verified against (its signed note text, so anyone can
 * verify it again), the anomalies, every release and every key change in the window. Each logged
 * file carries its exact log entry, leaf hash and inclusion proof, so a reader with nothing but
 * the report and the log's public key can re-check it.
 *
 * The Markdown is for reading in a repository; the HTML is one self-contained page (inline CSS,
 * no script, no external asset) with the anomalies on top, a timeline, and a table per release.
 *
 * Everything here is pure and deterministic: the same model renders to the same bytes, so a
 * report regenerated from the same public data is byte-identical. Every name, path and note
 * that came from the repository is treated as hostile: control and bidirectional-override
 * characters are shown as `\u{…}` escapes, then the text is escaped for the output format.
 */

export const AUDIT_FORMAT = 'cairn-audit/v1';

export interface AuditReport {
  readonly format: typeof AUDIT_FORMAT;
  /** The window, inclusive at both ends, as ISO 8601 UTC times. */
  readonly window: { readonly from: string; readonly to: string };
  /** Only when given on the command line, so a regenerated report stays byte-identical. */
  readonly generatedAt?: string;
  /** The mirror the log and the metadata were read from. */
  readonly mirror: string;
  /** The root the auditor trusted (`--root`): everything else was verified from it. */
  readonly pinnedRoot: { readonly version: number; readonly sha256: string };
  readonly log: AuditLog;
  readonly anomalies: readonly AuditAnomaly[];
  /** In log order. */
  readonly releases: readonly AuditRelease[];
  /** In log order. */
  readonly keyChanges: readonly AuditKeyChange[];
}

/** The log as of the run: every proof in the report is against its checkpoint. */
export interface AuditLog {
  /** The checkpoint origin line the root declares, e.g. `cairn.example/log`. */
  readonly origin: string;
  /** The log's public key (C2SP vkey) as the root declares it. */
  readonly key: string;
  /** null when the mirror's checkpoint did not verify (a CHECKPOINT_INVALID anomaly): then no
   * inclusion proof could be checked and every proof in the report is empty. */
  readonly checkpoint: AuditCheckpoint | null;
}

export interface AuditCheckpoint {
  readonly size: number;
  /** The tree's root hash, hex. */
  readonly rootHash: string;
  /** The signed note, verbatim: verify it with the log key, then each proof against it. */
  readonly note: string;
}

/** Where a metadata file is in the log, and the proof that it is. */
export interface AuditLogEntry {
  readonly index: number;
  /** The entry's exact bytes (canonical JSON), whose RFC 6962 leaf hash is `leafHash`. */
  readonly entry: string;
  readonly leafHash: string;
  /** The inclusion proof of `leafHash` at `index` in the checkpoint's tree, hex, leaf upwards. */
  readonly inclusionProof: readonly string[];
}

/** A key: its id, and the publisher name the root gives it (`x-cairn-name`), if any. */
export interface AuditKey {
  readonly keyid: string;
  readonly name: string | null;
}

export interface AuditFile {
  readonly path: string;
  readonly length: number;
  /** null when the targets metadata lists no sha256 for it (only other algorithms). */
  readonly sha256: string | null;
}

/**
 * What the mirror's copy of a logged file is: `verified` (its bytes match the log entry and its
 * signatures meet the threshold of the root of its time), else why not; each non-verified
 * status comes with an anomaly.
 */
export type AuditStatus = 'verified' | 'missing' | 'mismatch' | 'malformed' | 'unsigned';

export interface AuditRelease {
  /** `targets`, or a delegated targets role. */
  readonly role: string;
  readonly version: number;
  /** When the origin logged it. */
  readonly time: string;
  /** The metadata file as logged: its length and sha256. */
  readonly length: number;
  readonly sha256: string;
  readonly status: AuditStatus;
  /** The root version its signatures were checked under, and the role's threshold there
   * (null when the file could not be read). */
  readonly rootVersion: number;
  readonly threshold: number | null;
  /** The keys whose signatures verify, each once. */
  readonly signers: readonly AuditKey[];
  readonly log: AuditLogEntry;
  /** Every target file, sorted by path; empty when the file could not be read. */
  readonly files: readonly AuditFile[];
}

export interface AuditRoleChange {
  readonly role: string;
  readonly added: readonly AuditKey[];
  readonly removed: readonly AuditKey[];
  /** before is null when the role is new (the first root seen). */
  readonly threshold: { readonly before: number | null; readonly after: number };
}

export interface AuditKeyChange {
  /** The root version that makes the change. */
  readonly version: number;
  readonly time: string;
  readonly length: number;
  readonly sha256: string;
  readonly status: AuditStatus;
  /** The keys of the previous root's root role whose signatures verify on it. */
  readonly signers: readonly AuditKey[];
  readonly log: AuditLogEntry;
  /** Only the roles whose keys or threshold changed. */
  readonly roles: readonly AuditRoleChange[];
  /** Whether it declares a different log key than the root before it. */
  readonly logKeyChanged: boolean;
}

export interface AuditAnomaly {
  /** The monitor's anomaly code, e.g. `THRESHOLD`, `ENTRY_MISMATCH`, `ROOT_CHAIN_BROKEN`. */
  readonly code: string;
  /** critical: evidence of tampering or a broken log or repository; warning: worth a look. */
  readonly severity: 'critical' | 'warning';
  readonly message: string;
  /** The log entry concerned, when there is one, and its time, role and version. */
  readonly logIndex?: number;
  readonly time?: string;
  readonly role?: string;
  readonly version?: number;
}

// ---------------------------------------------------------------------------------------------
// Shared wording

/**
 * Text from the repository made safe to look at: C0 and C1 controls, DEL, line and paragraph
 * separators, the invisible characters (zero-width spaces and joiners, the soft hyphen, the BOM:
 * `al\u{200b}ice` is not `alice`) and the bidirectional marks, overrides and isolates (which can
 * make `exe.txt` read as `txt.exe`) become visible `\u{…}` escapes. Escaping for the output
 * format comes after this.
 */
export function visible(text: string): string {
  return text.replace(
    // eslint-disable-next-line no-control-regex -- finding control characters is the point
    /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g,
    (c) => `\\u{${(c.codePointAt(0) ?? 0).toString(16).padStart(4, '0')}}`,
  );
}

/** A publisher's name, else the first 12 hex digits of its key id (enough among a repository's
 * few keys). Not escaped. */
export function keyLabel(key: AuditKey): string {
  return key.name ?? key.keyid.slice(0, 12);
}

/** `1 release`, `4 releases`, `2 anomalies`. */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** `targets v3` (not escaped). */
export function releaseTitle(release: AuditRelease): string {
  return `${release.role} v${release.version}`;
}

/** `root v2`. */
export function keyChangeTitle(change: AuditKeyChange): string {
  return `root v${change.version}`;
}

function keyList(keys: readonly AuditKey[]): string {
  return keys.length === 0 ? 'none' : keys.map(keyLabel).join(', ');
}

function thresholdText(change: AuditRoleChange): string {
  const { before, after } = change.threshold;
  return before === null || before === after ? String(after) : `${before} → ${after}`;
}

/** `targets: added carol; removed bob; threshold 1 → 2` (not escaped). */
export function roleChangeSummary(change: AuditRoleChange): string {
  const parts: string[] = [];
  if (change.added.length > 0) parts.push(`added ${keyList(change.added)}`);
  if (change.removed.length > 0) parts.push(`removed ${keyList(change.removed)}`);
  const { before, after } = change.threshold;
  if (before === null) parts.push(`threshold ${after}`);
  else if (before !== after) parts.push(`threshold ${before} → ${after}`);
  return `${change.role}: ${parts.join('; ')}`;
}

/** Everything a key change did, on one line (not escaped). */
export function keyChangeSummary(change: AuditKeyChange): string {
  const parts = change.roles.map(roleChangeSummary);
  if (change.logKeyChanged) parts.push('new log key');
  return parts.length === 0 ? 'no key or threshold changed' : parts.join(' · ');
}

export type TimelineItem =
  | {
      readonly kind: 'release';
      readonly index: number;
      readonly time: string;
      readonly release: AuditRelease;
    }
  | {
      readonly kind: 'key-change';
      readonly index: number;
      readonly time: string;
      readonly change: AuditKeyChange;
    };

/** Releases and key changes in one list, in log order (the order the origin published them). */
export function timeline(report: AuditReport): TimelineItem[] {
  const items: TimelineItem[] = [
    ...report.releases.map((release) => ({
      kind: 'release' as const,
      index: release.log.index,
      time: release.time,
      release,
    })),
    ...report.keyChanges.map((change) => ({
      kind: 'key-change' as const,
      index: change.log.index,
      time: change.time,
      change,
    })),
  ];
  return items.sort((a, b) => a.index - b.index);
}

/** The one-line text of a timeline item (not escaped). */
export function timelineText(item: TimelineItem): string {
  if (item.kind === 'release') {
    const r = item.release;
    const status = r.status === 'verified' ? '' : ` (${r.status.toUpperCase()})`;
    return `release ${releaseTitle(r)}${status}: ${plural(r.files.length, 'file')}, signed by ${keyList(r.signers)}`;
  }
  const c = item.change;
  const status = c.status === 'verified' ? '' : ` (${c.status.toUpperCase()})`;
  return `key change ${keyChangeTitle(c)}${status}: ${keyChangeSummary(c)}`;
}

function anomalyPlace(a: AuditAnomaly): string {
  const parts: string[] = [];
  if (a.logIndex !== undefined) parts.push(`log index ${a.logIndex}`);
  if (a.role !== undefined)
    parts.push(a.version === undefined ? a.role : `${a.role} v${a.version}`);
  if (a.time !== undefined) parts.push(a.time);
  return parts.join(', ');
}

/** `CRITICAL THRESHOLD (log index 7, targets v3, 2026-…): message` (not escaped). */
export function anomalyText(a: AuditAnomaly): string {
  const place = anomalyPlace(a);
  return `${a.severity.toUpperCase()} ${a.code}${place === '' ? '' : ` (${place})`}: ${a.message}`;
}

function anomaliesAt(report: AuditReport, index: number): AuditAnomaly[] {
  return report.anomalies.filter((a) => a.logIndex === index);
}

function checkpointLines(checkpoint: AuditCheckpoint): string[] {
  return checkpoint.note.replace(/\n$/, '').split('\n');
}

// ---------------------------------------------------------------------------------------------
// JSON

/** The model, two-space indented, one trailing newline. */
export function renderJson(report: AuditReport): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}

// ---------------------------------------------------------------------------------------------
// Markdown

/**
 * Escapes CommonMark's inline syntax (and `|`, which ends a GFM table cell): a hostile path
 * cannot become a link with other text, an image, HTML, an entity, emphasis or a new cell.
 * Escaped text never starts a line here, so block syntax (`-`, `1.`, `>`) cannot apply; line
 * breaks are controls, which `visible` already turned into escapes.
 */
export function escapeMarkdown(text: string): string {
  return visible(text).replace(/[\\`*_{}[\]()<>#!|~&]/g, '\\$&');
}

/** A code span that holds `text` verbatim, whatever backticks it contains (CommonMark 6.1). */
function mdCode(text: string): string {
  const longest = Math.max(0, ...(text.match(/`+/g) ?? []).map((run) => run.length));
  const fence = '`'.repeat(longest + 1);
  const pad = text.startsWith('`') || text.endsWith('`') ? ' ' : '';
  return `${fence}${pad}${text}${pad}${fence}`;
}

function mdTable(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)];
}

function mdKeys(keys: readonly AuditKey[]): string {
  if (keys.length === 0) return 'none';
  return keys
    .map((k) =>
      k.name === null
        ? mdCode(keyLabel(k))
        : `${escapeMarkdown(k.name)} (${mdCode(k.keyid.slice(0, 12))})`,
    )
    .join(', ');
}

function mdLogEntry(log: AuditLogEntry): string[] {
  return [
    `- Log index: ${log.index}`,
    `- Log entry: ${mdCode(visible(log.entry))}`,
    `- Leaf hash: ${mdCode(log.leafHash)}`,
    `- Inclusion proof (${plural(log.inclusionProof.length, 'hash', 'hashes')}, leaf upwards):`,
    ...log.inclusionProof.map((hash, i) => `  ${i + 1}. ${mdCode(hash)}`),
  ];
}

function mdAnomalies(anomalies: readonly AuditAnomaly[]): string[] {
  return anomalies.map((a) => `- **${escapeMarkdown(anomalyText(a))}**`);
}

export function renderMarkdown(report: AuditReport): string {
  const { from, to } = report.window;
  const checkpoint = report.log.checkpoint;
  const out: string[] = [
    `# Cairn audit report: ${from} to ${to}`,
    '',
    `- Mirror: ${escapeMarkdown(report.mirror)}`,
    `- Pinned root: version ${report.pinnedRoot.version}, sha256 ${mdCode(report.pinnedRoot.sha256)}`,
    `- Log: ${escapeMarkdown(report.log.origin)}, ${checkpoint === null ? 'checkpoint NOT verified' : `${plural(checkpoint.size, 'entry', 'entries')}, root hash ${mdCode(checkpoint.rootHash)}`}`,
    `- ${plural(report.releases.length, 'release')}, ${plural(report.keyChanges.length, 'key change')}, ${plural(report.anomalies.length, 'anomaly', 'anomalies')}`,
  ];
  if (report.generatedAt !== undefined) out.push(`- Generated at: ${report.generatedAt}`);
  out.push('', '## Anomalies', '');
  if (report.anomalies.length === 0) {
    out.push('No anomalies: every check the monitor makes passed for this window.');
  } else {
    out.push(...mdAnomalies(report.anomalies));
  }
  out.push('', '## Timeline', '');
  const items = timeline(report);
  if (items.length === 0) out.push('Nothing was logged in this window.');
  for (const item of items) {
    out.push(`- ${item.time}, log index ${item.index}: ${escapeMarkdown(timelineText(item))}`);
  }
  out.push('', '## Releases');
  if (report.releases.length === 0) out.push('', 'No release in this window.');
  for (const r of report.releases) {
    const anomalies = anomaliesAt(report, r.log.index);
    out.push(
      '',
      `### Release ${escapeMarkdown(releaseTitle(r))}`,
      '',
      ...(anomalies.length === 0 ? [] : [...mdAnomalies(anomalies), '']),
      `- Logged: ${r.time}`,
      `- Status: ${r.status}`,
      `- Metadata: ${r.length} bytes, sha256 ${mdCode(r.sha256)}`,
      `- Signed by: ${mdKeys(r.signers)} (${r.threshold === null ? '' : `threshold ${r.threshold} `}under root v${r.rootVersion})`,
      ...mdLogEntry(r.log),
      '',
      ...mdTable(
        ['Path', 'Length', 'SHA-256'],
        r.files.map((f) => [
          escapeMarkdown(f.path),
          String(f.length),
          f.sha256 === null ? 'none' : mdCode(f.sha256),
        ]),
      ),
    );
  }
  out.push('', '## Key changes');
  if (report.keyChanges.length === 0) out.push('', 'No key change in this window.');
  for (const c of report.keyChanges) {
    const anomalies = anomaliesAt(report, c.log.index);
    out.push(
      '',
      `### Key change ${keyChangeTitle(c)}`,
      '',
      ...(anomalies.length === 0 ? [] : [...mdAnomalies(anomalies), '']),
      `- Logged: ${c.time}`,
      `- Status: ${c.status}`,
      `- Metadata: ${c.length} bytes, sha256 ${mdCode(c.sha256)}`,
      `- Signed by: ${mdKeys(c.signers)}`,
      `- Log key: ${c.logKeyChanged ? 'changed' : 'unchanged'}`,
      ...mdLogEntry(c.log),
      '',
      ...mdTable(
        ['Role', 'Added', 'Removed', 'Threshold'],
        c.roles.map((rc) => [
          escapeMarkdown(rc.role),
          mdKeys(rc.added),
          mdKeys(rc.removed),
          thresholdText(rc),
        ]),
      ),
    );
  }
  out.push('', '## Checkpoint', '');
  if (checkpoint === null) {
    out.push(
      `The mirror's checkpoint did not verify under the log key ${mdCode(report.log.key)}: no inclusion proof could be checked.`,
    );
  } else {
    out.push(
      `Every inclusion proof above was verified against this checkpoint of ${escapeMarkdown(report.log.origin)}, signed by the log key ${mdCode(report.log.key)}:`,
      '',
      // A note's lines are its origin, size, base64 root hash and `— name sig` lines: none
      // starts with a backtick, so none can close the fence.
      '```',
      ...checkpointLines(checkpoint).map(visible),
      '```',
    );
  }
  out.push('');
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------
// HTML

/** Escapes text for an HTML element or a quoted attribute. */
export function escapeHtml(text: string): string {
  return visible(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const CSS = `
:root { color-scheme: light; --ink: #1d2327; --muted: #5f6b76; --line: #d5dbe1; --ok: #1f7a3f; --bad: #b3261e; --warn: #8a5a00; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); margin: 0; background: #f6f7f9; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 32px; background: #fff; }
h1 { font-size: 1.6em; margin: 0 0 4px; }
h2 { font-size: 1.25em; margin: 32px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 1.05em; margin: 24px 0 6px; }
.meta { color: var(--muted); margin: 0; }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0 0 8px; }
.facts dt { font-weight: 600; }
.facts dd { margin: 0; overflow-wrap: anywhere; }
code, pre, .hash { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 0.86em; }
.hash, code { overflow-wrap: anywhere; }
.box { border: 2px solid; border-radius: 6px; padding: 12px 16px; margin: 16px 0; }
.box h2 { margin: 0 0 6px; border: 0; padding: 0; }
.box p { margin: 0; }
.box.ok { border-color: var(--ok); background: #eef8f1; }
.box.bad { border-color: var(--bad); background: #fdf0ef; }
.box ul { margin: 0; padding-left: 20px; }
.critical strong { color: var(--bad); }
.warning strong { color: var(--warn); }
.timeline { list-style: none; margin: 0; padding: 0 0 0 18px; border-left: 3px solid var(--line); }
.timeline li { position: relative; margin: 0 0 10px; padding-left: 10px; }
.timeline li::before { content: ""; position: absolute; left: -26.5px; top: 6px; width: 12px; height: 12px; border-radius: 50%; background: #3b6fb6; }
.timeline li.key-change::before { background: #b7791f; }
.timeline time { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.86em; color: var(--muted); }
.badge { display: inline-block; font-size: 0.72em; font-weight: 700; text-transform: uppercase; letter-spacing: 0.04em; padding: 0 6px; border-radius: 3px; color: #fff; background: #3b6fb6; margin-right: 4px; }
.key-change .badge { background: #b7791f; }
.status-bad { color: var(--bad); font-weight: 700; }
table { border-collapse: collapse; width: 100%; margin: 8px 0; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #eef1f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.path { overflow-wrap: anywhere; }
td.hash { white-space: nowrap; }
.when { white-space: nowrap; }
ol.proof { margin: 4px 0; padding-left: 28px; }
pre { background: #f3f4f6; border: 1px solid var(--line); padding: 8px; white-space: pre-wrap; overflow-wrap: anywhere; }
@media print {
  body { background: #fff; font-size: 11px; }
  main { max-width: none; padding: 0; }
  td.hash { white-space: normal; overflow-wrap: anywhere; }
  section.release, section.key-change { break-inside: avoid; }
}
`.trim();

function htmlKeys(keys: readonly AuditKey[]): string {
  if (keys.length === 0) return 'none';
  return keys
    .map((k) =>
      k.name === null
        ? `<code title="${escapeHtml(k.keyid)}">${escapeHtml(keyLabel(k))}</code>`
        : `<span title="${escapeHtml(k.keyid)}">${escapeHtml(k.name)}</span> <code>${escapeHtml(k.keyid.slice(0, 12))}</code>`,
    )
    .join(', ');
}

function htmlStatus(status: AuditStatus): string {
  return status === 'verified' ? 'verified' : `<span class="status-bad">${status}</span>`;
}

function htmlLogEntry(log: AuditLogEntry): string[] {
  const proof =
    log.inclusionProof.length === 0
      ? ''
      : `<ol class="proof">${log.inclusionProof.map((h) => `<li class="hash">${escapeHtml(h)}</li>`).join('')}</ol>`;
  return [
    `<dt>Log index</dt><dd>${log.index}</dd>`,
    `<dt>Log entry</dt><dd><code>${escapeHtml(log.entry)}</code></dd>`,
    `<dt>Leaf hash</dt><dd class="hash">${escapeHtml(log.leafHash)}</dd>`,
    `<dt>Inclusion proof</dt><dd>${plural(log.inclusionProof.length, 'hash', 'hashes')}, leaf upwards${proof}</dd>`,
  ];
}

function htmlAnomalies(anomalies: readonly AuditAnomaly[]): string[] {
  return anomalies.map((a) => {
    const place = anomalyPlace(a);
    return `<li class="${a.severity}"><strong>${a.severity.toUpperCase()} ${escapeHtml(a.code)}</strong>${place === '' ? '' : ` <span class="meta">(${escapeHtml(place)})</span>`}: ${escapeHtml(a.message)}</li>`;
  });
}

function htmlTimelineItem(item: TimelineItem): string {
  const text =
    item.kind === 'release'
      ? `${escapeHtml(releaseTitle(item.release))}${item.release.status === 'verified' ? '' : ` ${htmlStatus(item.release.status)}`} · ${plural(item.release.files.length, 'file')} · signed by ${htmlKeys(item.release.signers)}`
      : `${escapeHtml(keyChangeTitle(item.change))}${item.change.status === 'verified' ? '' : ` ${htmlStatus(item.change.status)}`} · ${escapeHtml(keyChangeSummary(item.change))}`;
  const badge = item.kind === 'release' ? 'release' : 'key change';
  // Each release and key change is one log entry: its log index names its section.
  return `<li class="${item.kind}"><time>${escapeHtml(item.time)}</time> <span class="badge">${badge}</span> <a href="#log-${item.index}">${text}</a></li>`;
}

export function renderHtml(report: AuditReport): string {
  const { from, to } = report.window;
  const title = `Cairn audit report: ${from} to ${to}`;
  const checkpoint = report.log.checkpoint;
  const summary = [
    `mirror ${escapeHtml(report.mirror)}`,
    `pinned root v${report.pinnedRoot.version}`,
    `log ${escapeHtml(report.log.origin)}${checkpoint === null ? ' (checkpoint NOT verified)' : ` at ${plural(checkpoint.size, 'entry', 'entries')}`}`,
    plural(report.releases.length, 'release'),
    plural(report.keyChanges.length, 'key change'),
  ];
  if (report.generatedAt !== undefined)
    summary.push(`generated at ${escapeHtml(report.generatedAt)}`);
  const out: string[] = [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    // Nothing to run and nothing to fetch: the page reads the same offline and years from now.
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(title)}</title>`,
    `<style>\n${CSS}\n</style>`,
    '</head>',
    '<body>',
    '<main>',
    `<h1>Cairn audit report: <span class="when">${escapeHtml(from)}</span> to <span class="when">${escapeHtml(to)}</span></h1>`,
    `<p class="meta">${summary.join(' · ')}</p>`,
  ];
  if (report.anomalies.length === 0) {
    out.push(
      '<section id="anomalies" class="box ok">',
      '<h2>No anomalies</h2>',
      '<p>Every check the monitor makes passed for this window.</p>',
      '</section>',
    );
  } else {
    out.push(
      '<section id="anomalies" class="box bad">',
      `<h2>${plural(report.anomalies.length, 'anomaly', 'anomalies')}</h2>`,
      '<ul>',
      ...htmlAnomalies(report.anomalies),
      '</ul>',
      '</section>',
    );
  }
  const items = timeline(report);
  out.push('<section id="timeline">', '<h2>Timeline</h2>');
  if (items.length === 0) out.push('<p>Nothing was logged in this window.</p>');
  else out.push('<ol class="timeline">', ...items.map(htmlTimelineItem), '</ol>');
  out.push('</section>', '<section id="releases">', '<h2>Releases</h2>');
  if (report.releases.length === 0) out.push('<p>No release in this window.</p>');
  for (const r of report.releases) {
    const anomalies = anomaliesAt(report, r.log.index);
    out.push(
      `<section class="release" id="log-${r.log.index}">`,
      `<h3>Release ${escapeHtml(releaseTitle(r))}</h3>`,
      ...(anomalies.length === 0 ? [] : ['<ul>', ...htmlAnomalies(anomalies), '</ul>']),
      '<dl class="facts">',
      `<dt>Logged</dt><dd>${escapeHtml(r.time)}</dd>`,
      `<dt>Status</dt><dd>${htmlStatus(r.status)}</dd>`,
      `<dt>Metadata</dt><dd>${r.length} bytes, sha256 <span class="hash">${escapeHtml(r.sha256)}</span></dd>`,
      `<dt>Signed by</dt><dd>${htmlKeys(r.signers)} (${r.threshold === null ? '' : `threshold ${r.threshold} `}under root v${r.rootVersion})</dd>`,
      ...htmlLogEntry(r.log),
      '</dl>',
      '<table class="files">',
      '<thead><tr><th>Path</th><th>Length</th><th>SHA-256</th></tr></thead>',
      '<tbody>',
      ...r.files.map(
        (f) =>
          `<tr><td class="path">${escapeHtml(f.path)}</td><td class="num">${f.length}</td><td class="hash">${f.sha256 === null ? 'none' : escapeHtml(f.sha256)}</td></tr>`,
      ),
      '</tbody>',
      '</table>',
      '</section>',
    );
  }
  out.push('</section>', '<section id="key-changes">', '<h2>Key changes</h2>');
  if (report.keyChanges.length === 0) out.push('<p>No key change in this window.</p>');
  for (const c of report.keyChanges) {
    const anomalies = anomaliesAt(report, c.log.index);
    out.push(
      `<section class="key-change" id="log-${c.log.index}">`,
      `<h3>Key change ${escapeHtml(keyChangeTitle(c))}</h3>`,
      ...(anomalies.length === 0 ? [] : ['<ul>', ...htmlAnomalies(anomalies), '</ul>']),
      '<dl class="facts">',
      `<dt>Logged</dt><dd>${escapeHtml(c.time)}</dd>`,
      `<dt>Status</dt><dd>${htmlStatus(c.status)}</dd>`,
      `<dt>Metadata</dt><dd>${c.length} bytes, sha256 <span class="hash">${escapeHtml(c.sha256)}</span></dd>`,
      `<dt>Signed by</dt><dd>${htmlKeys(c.signers)}</dd>`,
      `<dt>Log key</dt><dd>${c.logKeyChanged ? 'changed' : 'unchanged'}</dd>`,
      ...htmlLogEntry(c.log),
      '</dl>',
      '<table class="roles">',
      '<thead><tr><th>Role</th><th>Added</th><th>Removed</th><th>Threshold</th></tr></thead>',
      '<tbody>',
      ...c.roles.map(
        (rc) =>
          `<tr><td>${escapeHtml(rc.role)}</td><td>${htmlKeys(rc.added)}</td><td>${htmlKeys(rc.removed)}</td><td>${escapeHtml(thresholdText(rc))}</td></tr>`,
      ),
      '</tbody>',
      '</table>',
      '</section>',
    );
  }
  out.push(
    '</section>',
    '<section id="checkpoint">',
    '<h2>Checkpoint</h2>',
    `<p>Everything in this report was verified from the pinned root: version ${report.pinnedRoot.version}, sha256 <span class="hash">${escapeHtml(report.pinnedRoot.sha256)}</span>.</p>`,
  );
  if (checkpoint === null) {
    out.push(
      `<p>The mirror's checkpoint did not verify under the log key <code>${escapeHtml(report.log.key)}</code>: no inclusion proof could be checked.</p>`,
    );
  } else {
    out.push(
      `<p>Every inclusion proof above was verified against this checkpoint of ${escapeHtml(report.log.origin)} (${plural(checkpoint.size, 'entry', 'entries')}, root hash <span class="hash">${escapeHtml(checkpoint.rootHash)}</span>), signed by the log key <code>${escapeHtml(report.log.key)}</code>:</p>`,
      `<pre>${checkpointLines(checkpoint).map(escapeHtml).join('\n')}</pre>`,
    );
  }
  out.push('</section>', '</main>', '</body>', '</html>', '');
  return out.join('\n');
}
