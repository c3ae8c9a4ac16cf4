// Malformed metadata: bytes that are not JSON, JSON of the wrong shape, or the right shape of
// the wrong role or spec version. Where a signature could matter, the forgery is signed with
// the real key, so the malformation is the only thing wrong with it.
import { describe, it } from 'vitest';
import type { VerifyErrorCode } from '@cairn/verify/errors';
import { MAX_JSON_DEPTH } from '@cairn/verify/limits';
import {
  currentSnapshotMeta,
  forgeTimestamp,
  parseDocument,
  publishedRole,
  serve,
  signDocument,
  stopAttack,
} from './support/attacker.js';
import { expectRefused, expectUpToDate, upToDateClient } from './support/client-under-test.js';
import type { RepositorySimulator } from './support/repository-simulator.js';

/** The next timestamp, honestly signed, as a JSON object to spoil. */
async function nextTimestampSigned(sim: RepositorySimulator): Promise<Record<string, unknown>> {
  return parseDocument(await forgeTimestamp(sim, currentSnapshotMeta(sim))).signed;
}

function text(value: string): Uint8Array {
  return new TextEncoder().encode(value);
}

type Malformation = [
  what: string,
  code: VerifyErrorCode,
  make: (sim: RepositorySimulator) => Promise<Uint8Array>,
];

const TIMESTAMP_CASES: Malformation[] = [
  [
    'truncated JSON',
    'MALFORMED',
    async (sim) => {
      const bytes = await forgeTimestamp(sim, currentSnapshotMeta(sim));
      return bytes.subarray(0, Math.floor(bytes.length / 2));
    },
  ],
  ['an empty body', 'MALFORMED', () => Promise.resolve(new Uint8Array())],
  ['a JSON array', 'MALFORMED', () => Promise.resolve(text('[]'))],
  [
    'a version given as a string',
    'MALFORMED',
    async (sim) => {
      const signed = await nextTimestampSigned(sim);
      return signDocument(
        { ...signed, version: String(signed.version) },
        sim.signersOf('timestamp'),
      );
    },
  ],
  [
    'a version written as a float (N.0)',
    'MALFORMED',
    async (sim) => {
      const signed = await nextTimestampSigned(sim);
      const marker = '"version-as-float"';
      const doc = new TextDecoder().decode(
        await signDocument({ ...signed, version: 'version-as-float' }, sim.signersOf('timestamp')),
      );
      return text(doc.replace(marker, `${String(signed.version)}.0`));
    },
  ],
  [
    'a version beyond 2^53',
    'MALFORMED',
    async (sim) => {
      const doc = new TextDecoder().decode(await forgeTimestamp(sim, currentSnapshotMeta(sim)));
      return text(
        doc.replace(/"version": \d+,\n {2}"expires"/, '"version": 9007199254740993,\n  "expires"'),
      );
    },
  ],
  [
    'nesting deeper than the JSON depth limit',
    'MALFORMED',
    async (sim) => {
      let deep: unknown = 1;
      for (let i = 0; i < MAX_JSON_DEPTH; i++) deep = [deep];
      const signed = { ...(await nextTimestampSigned(sim)), deep };
      return signDocument(signed, sim.signersOf('timestamp'));
    },
  ],
  [
    'invalid UTF-8 inside a string',
    'MALFORMED',
    async (sim) => {
      const bytes = (await forgeTimestamp(sim, currentSnapshotMeta(sim))).slice();
      // "_type": "timestamp" -> "_type": "\xFFimestamp"
      const at = new TextDecoder().decode(bytes).indexOf('"timestamp"') + 1;
      bytes[at] = 0xff;
      return bytes;
    },
  ],
  [
    'the snapshot metadata served as timestamp',
    'WRONG_TYPE',
    (sim) => Promise.resolve(publishedRole(sim, 'snapshot')),
  ],
  [
    'spec_version "2.0", validly signed',
    'UNSUPPORTED_SPEC_VERSION',
    async (sim) =>
      signDocument(
        { ...(await nextTimestampSigned(sim)), spec_version: '2.0' },
        sim.signersOf('timestamp'),
      ),
  ],
];

describe('malformed metadata', () => {
  it.each(TIMESTAMP_CASES)('refuses a timestamp.json with %s (%s)', async (_what, code, make) => {
    const { sim, client } = await upToDateClient();

    serve(sim, 'metadata/timestamp.json', await make(sim));
    await expectRefused(client, () => client.refresh(), code);

    stopAttack(sim);
    await sim.bumpTimestamp();
    await expectUpToDate(client, sim);
  });

  it.each<Malformation>([
    [
      'truncated JSON',
      'MALFORMED',
      async (sim) => (await sim.publishRoot()).toBytes().subarray(0, 100),
    ],
    [
      'the targets metadata served as root',
      'WRONG_TYPE',
      (sim) => Promise.resolve(publishedRole(sim, 'targets')),
    ],
  ])(
    'refuses a next root (2.root.json) with %s (%s), rather than treating it as absent',
    async (_what, code, make) => {
      const { sim, client } = await upToDateClient();

      serve(sim, 'metadata/2.root.json', await make(sim));
      await expectRefused(client, () => client.refresh(), code);

      stopAttack(sim);
      if (sim.rootVersion < 2) await sim.publishRoot();
      await expectUpToDate(client, sim);
    },
  );
});
