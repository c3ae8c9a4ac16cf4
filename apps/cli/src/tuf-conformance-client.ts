#!/usr/bin/env node
// Bin `cairn-tuf-client`: the TUF conformance client-under-test. Logic: tuf-conformance.ts.
import { processIo } from './cli-io.js';
import { runConformanceClient } from './tuf-conformance.js';

process.exitCode = await runConformanceClient(process.argv.slice(2), processIo);
