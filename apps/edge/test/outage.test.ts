/**
 * Storage outages at the edge: a store that is down (MinIO killed) or that hangs (MinIO
 * stopped with SIGSTOP: connections open, nothing answers) is a 503 with Retry-After within a
 * bounded time, never a hang, on the Worker (S3 through fetch) and on Node (the AWS SDK); and
 * serving resumes by itself when storage comes back. A MinIO of this file's own, since it is
 * taken down.
 */
import { startMinio, type MinioServer } from '@cairn/storage/testing/minio';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startDeployment, type Deployment } from './support/deployments.js';
import { buildRepository, type BuiltRepository } from './support/repository.js';

/** Generous: a hang guard on a loaded 2-core machine, not a speed check. */
const BOUND_MS = 15_000;
const STORAGE_TIMEOUT_MS = 1000;

let minio: MinioServer;
let repo: BuiltRepository;
const deployments: Deployment[] = [];

beforeAll(async () => {
  [minio, repo] = await Promise.all([startMinio({ log: () => undefined }), buildRepository()]);
});
afterAll(async () => {
  minio?.thaw();
  await Promise.all(deployments.map((d) => d.close()));
  await minio?.stop();
});

interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: unknown;
  readonly ms: number;
}

async function timed(url: string, method = 'GET'): Promise<Answer> {
  const started = Date.now();
  const response = await fetch(url, {
    method,
    headers: { 'accept-encoding': 'identity' },
    // Only so that a hang fails this test instead of the whole run's timeout.
    signal: AbortSignal.timeout(60_000),
  });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    body:
      response.headers.get('content-type') === 'application/json' && text !== ''
        ? (JSON.parse(text) as unknown)
        : text,
    ms: Date.now() - started,
  };
}

function expectUnavailable(answer: Answer, what: string): void {
  expect(answer.status, what).toBe(503);
  expect(answer.headers.get('retry-after'), what).toBe('5');
  expect(answer.headers.get('cache-control'), what).toBe('no-store');
  expect(answer.ms, what).toBeLessThan(BOUND_MS);
}

describe.each(['workerd-s3', 'node-s3'] as const)('the edge on %s', (kind) => {
  let d: Deployment;
  const mainKey = () => {
    const key = repo.releases[1].files.get('main.cvd')?.key;
    if (key === undefined) throw new Error('fixture incomplete');
    return key;
  };
  const dailyKey = () => {
    const key = repo.releases[1].files.get('daily/bytecode.cvd')?.key;
    if (key === undefined) throw new Error('fixture incomplete');
    return key;
  };
  /** The storage_error counter, which /metrics answers from memory whatever storage does. */
  const storageErrors = async (): Promise<number> => {
    const text = await (await fetch(`${d.url}/metrics`)).text();
    const match = /cairn_edge_events_total\{event="storage_error"\} (\d+)/.exec(text);
    return Number(match?.[1]);
  };

  beforeAll(async () => {
    d = await startDeployment(kind, {
      minio: minio.connection,
      vars: { CAIRN_STORAGE_TIMEOUT_MS: String(STORAGE_TIMEOUT_MS) },
    });
    deployments.push(d);
    await repo.copyPublic(d.store);
  });

  test('a halted store is 503 with Retry-After 5; serving resumes on restart', async () => {
    expect((await timed(`${d.url}/${mainKey()}`)).status).toBe(200);
    const errorsBefore = await storageErrors();
    await minio.halt();
    try {
      for (const [path, method] of [
        ['/metadata/timestamp.json', 'GET'],
        ['/metadata/2.snapshot.json', 'GET'],
        [`/${dailyKey()}`, 'GET'],
        [`/${dailyKey()}`, 'HEAD'],
      ] as const) {
        const answer = await timed(`${d.url}${path}`, method);
        expectUnavailable(answer, `${method} ${path}`);
        if (method === 'GET') {
          expect(answer.body, path).toMatchObject({ error: 'STORAGE_UNAVAILABLE' });
        }
      }
      const health = await timed(`${d.url}/health`);
      expectUnavailable(health, '/health');
      expect(health.body).toMatchObject({
        status: 'unavailable',
        mode: 'direct',
        error: 'STORAGE_UNAVAILABLE',
      });
      expect(await storageErrors()).toBe(errorsBefore + 4);
      if (kind === 'workerd-s3') {
        // Fetched before the outage, so in the Cache API: still served.
        expect((await timed(`${d.url}/${mainKey()}`)).status).toBe(200);
      }
    } finally {
      await minio.restart();
    }
    expect((await timed(`${d.url}/metadata/timestamp.json`)).status).toBe(200);
    expect((await timed(`${d.url}/${dailyKey()}`)).status).toBe(200);
    expect((await timed(`${d.url}/health`)).status).toBe(200);
  });

  test(`a frozen store is 503 once CAIRN_STORAGE_TIMEOUT_MS (${STORAGE_TIMEOUT_MS} ms) passes, never a hang; serving resumes on thaw`, async () => {
    expect((await timed(`${d.url}/metadata/timestamp.json`)).status).toBe(200);
    minio.freeze();
    try {
      for (const [path, method] of [
        ['/metadata/timestamp.json', 'GET'],
        ['/metadata/1.snapshot.json', 'GET'],
        [`/${repo.releases[0].files.get('main.cvd')?.key ?? 'missing'}`, 'GET'],
        ['/metadata/timestamp.json', 'HEAD'],
      ] as const) {
        const answer = await timed(`${d.url}${path}`, method);
        expectUnavailable(answer, `${method} ${path}`);
        // It waited for the deadline: the store did not fail, it stalled.
        expect(answer.ms, path).toBeGreaterThanOrEqual(STORAGE_TIMEOUT_MS - 100);
        if (method === 'GET') {
          expect(answer.body, path).toMatchObject({ error: 'STORAGE_UNAVAILABLE' });
        }
      }
      const health = await timed(`${d.url}/health`);
      expectUnavailable(health, '/health');
      expect(health.body).toMatchObject({ status: 'unavailable', error: 'STORAGE_UNAVAILABLE' });
    } finally {
      minio.thaw();
    }
    expect((await timed(`${d.url}/metadata/timestamp.json`)).status).toBe(200);
    expect((await timed(`${d.url}/metadata/1.snapshot.json`)).status).toBe(200);
    expect((await timed(`${d.url}/health`)).status).toBe(200);
  });
});
