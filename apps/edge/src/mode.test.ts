import { MemoryBlobStore } from '@cairn/storage/memory-store';
import { webHashPort } from '@cairn/verify/hash';
import { describe, expect, test } from 'vitest';
import { SignedRepository, text } from '../test/support/mirror-memory.js';
import { parseEdgeConfig } from './config.js';
import { createSource } from './mode.js';
import { PullThroughSource } from './pull-through.js';
import { StorageSource } from './source.js';
import { VerifiedSource } from './verified-source.js';

describe('createSource', () => {
  test('picks the source the mode and the trusted root call for', async () => {
    const repo = await SignedRepository.create({ 'a.txt': 'alpha' });
    const root = text(await repo.trustedRoot);
    const store = new MemoryBlobStore();
    const of = (vars: Record<string, string>) =>
      createSource({ config: parseEdgeConfig(vars), store, hash: webHashPort });
    expect(of({})).toBeInstanceOf(StorageSource);
    expect(of({ CAIRN_TRUSTED_ROOT: root })).toBeInstanceOf(VerifiedSource);
    const mirror = { CAIRN_TRUSTED_ROOT: root, CAIRN_UPSTREAM_URL: 'http://upstream.test/' };
    expect(of({ ...mirror, CAIRN_MODE: 'sync' })).toBeInstanceOf(VerifiedSource);
    expect(of({ ...mirror, CAIRN_MODE: 'pull-through' })).toBeInstanceOf(PullThroughSource);
  });
});
