// Marks every `bin` of package.json executable after tsc (which writes files 0644), so the
// built files run directly: the tuf-conformance suite takes one absolute path to an executable.
import { chmodSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
for (const file of Object.values(pkg.bin ?? {})) chmodSync(join(root, file), 0o755);
