#!/usr/bin/env node
/**
 * The `lading` executable as plain ESM, loaded file by file by Node's module loader. bin/lading
 * runs this when the start-up snapshot (./snapshot-entry.ts) is missing, stale or switched off
 * with LADING_SNAPSHOT=0; both run the same ./run.ts.
 */
import { createRequire } from 'node:module'
import type * as Commander from 'commander'
import { runCli } from './run.js'

// commander is CommonJS: required directly, it skips the ESM wrapper's scan of its source for
// export names (a few ms of every command's start-up).
runCli(createRequire(import.meta.url)('commander') as typeof Commander)
