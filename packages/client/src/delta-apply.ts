/**
 * Rebuilding a target from the installed file and downloaded deltas, into a temp file that
 * `Installation.install` can take: the result streams from @cairn/delta's `applyDeltaStream`
 * into the file and is checked, as it is written, against the SIGNED target's length and every
 * hash it lists — not only against the delta's own header. Any failure is DELTA_FAILED with the
 * cause, and leaves no temp file behind; the caller then downloads the full file.
 *
 * Memory: the base file is read whole (applyDeltaStream copies from it at random offsets), plus
 * the delta, plus its decoded literals and instructions (limited to 2 × the step's result length
 * + 1 MiB, the bound @cairn/delta's README gives for any delta), plus one 1 MiB chunk; the result
 * is never held. So about B + Z for similar files. Bases of 2 GiB or more cannot be read whole
 * (Node's readFile limit) and fail with DELTA_FAILED: the full file serves them.
 *
 * A chain applies its steps in turn; each intermediate file goes to a temp file of its own,
 * checked against the step's signed `result`, and is removed after the next step read it.
 */
import { applyDeltaStream } from '@cairn/delta/apply';
import { nodeApplyOptions } from '@cairn/delta/node';
import { ContentVerifier, verifyLengthAndHashes } from '@cairn/verify/hash';
import type { TargetFile } from '@cairn/verify/metadata';
import type { DeltaStep } from './delta-plan.js';
import { ClientError } from './errors.js';
import { nodeInstallFileSystem, type InstallFileSystem } from './install.js';
import { nodeHashPort } from './node-hash.js';

export interface DownloadedDelta {
  /** The step, as planned (planTarget). */
  readonly step: DeltaStep;
  /** The delta's bytes; checked again here against `step.file`'s length and hashes. */
  readonly bytes: Uint8Array;
}

export interface ApplyDeltasOptions {
  /** The installed file the first step starts from. */
  readonly basePath: string;
  /** The steps in order: one delta, or a chain. */
  readonly deltas: readonly DownloadedDelta[];
  /** The signed target the last step must produce. */
  readonly target: TargetFile;
  /** A fresh temp file name in the target's directory: Installation.tempPathFor(target.path). */
  readonly tempPathFor: () => Promise<string>;
  /** Default: nodeInstallFileSystem. */
  readonly fs?: InstallFileSystem;
}

/** Extra room on top of 2 × the result for the decoded columns of a tiny file. */
const APPLY_MEMORY_SLACK = 2 ** 20;

async function applyStep(
  fs: InstallFileSystem,
  base: Uint8Array,
  delta: DownloadedDelta,
  expected: { length: number; hashes: Readonly<Record<string, string>> },
  out: string,
  what: string,
): Promise<void> {
  await verifyLengthAndHashes(nodeHashPort, delta.bytes, delta.step.file, delta.step.file.path);
  const verifier = new ContentVerifier(nodeHashPort, expected, what);
  const stream = applyDeltaStream(base, delta.bytes, {
    ...nodeApplyOptions,
    limits: { maxMemory: 2 * delta.step.result.length + APPLY_MEMORY_SLACK },
  });
  const writer = await fs.createFile(out);
  try {
    const reader = stream.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      verifier.update(value);
      await writer.write(value);
    }
    await verifier.finish();
    await writer.sync();
  } finally {
    await writer.close();
  }
}

/**
 * Applies `deltas` to the file at `basePath` and returns the temp file holding the result, whose
 * length and hashes are those of the signed `target`. Rejects with DELTA_FAILED (cause: the
 * DeltaError, VerifyError or file-system error) and removes every temp file it made otherwise.
 */
export async function applyDeltas(options: ApplyDeltasOptions): Promise<string> {
  const fs = options.fs ?? nodeInstallFileSystem;
  const { deltas, target } = options;
  const made: string[] = [];
  try {
    if (deltas.length === 0) throw new Error('no deltas to apply');
    let basePath = options.basePath;
    for (const [i, delta] of deltas.entries()) {
      const last = i === deltas.length - 1;
      const base = await fs.readFile(basePath);
      if (base === undefined) throw new Error(`${basePath} is gone`);
      const out = await options.tempPathFor();
      made.push(out);
      const expected = last
        ? { length: target.length, hashes: target.hashes }
        : { length: delta.step.result.length, hashes: { sha256: delta.step.result.sha256 } };
      const what = last ? `target ${target.path} rebuilt from deltas` : `step ${i + 1} of a chain`;
      await applyStep(fs, base, delta, expected, out, what);
      // The intermediate this step read is no longer needed.
      if (i > 0) {
        await fs.remove(basePath);
        made.splice(made.indexOf(basePath), 1);
      }
      basePath = out;
    }
    return basePath;
  } catch (e) {
    for (const path of made) await fs.remove(path).catch(() => {});
    const why = e instanceof Error ? e.message : String(e);
    throw new ClientError('DELTA_FAILED', `applying deltas to ${target.path} failed: ${why}`, {
      cause: e,
    });
  }
}
