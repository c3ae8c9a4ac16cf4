// Vitest globalSetup: build the python-tuf virtualenv and find (or build, with `go install`)
// MinIO once, before any test starts, so no single test pays for (or times out on) a cold
// pip install or a MinIO build of several minutes.
import { findMinio } from '@cairn/storage/testing/minio';
import { ensurePythonVenv } from './python.js';

export default async function setup(): Promise<void> {
  await ensurePythonVenv();
  await findMinio();
}
