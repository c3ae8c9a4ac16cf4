#!/usr/bin/env node
// Bin `cairn`. The command table and dispatcher are in cairn.ts.
import { runCairn } from './cairn.js';
import { processIo } from './cli-io.js';
import { useNodeSha256 } from '@cairn/tlog/node-hash';

// The log's hashing on Node: node:crypto rather than WebCrypto's costly per-call digest.
useNodeSha256();

process.exitCode = await runCairn(process.argv.slice(2), processIo);
