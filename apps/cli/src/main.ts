#!/usr/bin/env node
// Bin `cairn`. The command table and dispatcher are in cairn.ts.
import { runCairn } from './cairn.js';
import { processIo } from './cli-io.js';

process.exitCode = await runCairn(process.argv.slice(2), processIo);
