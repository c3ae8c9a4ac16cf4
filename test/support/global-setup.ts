// Vitest globalSetup: build the python-tuf virtualenv, find (or build, with `go install`)
// MinIO and install Debian's chromium once, before any test starts, so no single test pays for
// (or times out on) a cold pip install, a MinIO build of several minutes or a browser install.
import { findMinio } from '@cairn/storage/testing/minio';
import { ensureChromium } from './chromium.js';
import { ensurePythonVenv } from './python.js';

export default async function setup(): Promise<void> {
  await ensurePythonVenv();
  await findMinio();
  ensureChromium();
}
