/**
 * A vitest globalSetup that gives every test in the run one MinIO: it starts a server (or
 * reuses the one CAIRN_MINIO_* names, see `minioFromEnv`) and `provide`s its connection as
 * `minio`, which tests read with `inject('minio')` in Node and in workerd alike. The server is
 * stopped when the run ends, whether the tests passed or not.
 *
 *   globalSetup: ['@cairn/storage/testing/minio-global-setup']
 */
import type { TestProject } from 'vitest/node';
import { minioFromEnv, startMinio, type MinioConnection } from './minio.js';

declare module 'vitest' {
  export interface ProvidedContext {
    minio: MinioConnection;
  }
}

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | void> {
  const shared = minioFromEnv();
  if (shared) {
    project.provide('minio', shared);
    return;
  }
  const server = await startMinio();
  project.provide('minio', server.connection);
  return () => server.stop();
}
