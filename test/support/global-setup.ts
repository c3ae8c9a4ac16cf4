// Vitest globalSetup: build the python-tuf virtualenv once, before any interop test starts,
// so no single test pays for (or times out on) a cold pip install.
import { ensurePythonVenv } from './python.js';

export default async function setup(): Promise<void> {
  await ensurePythonVenv();
}
