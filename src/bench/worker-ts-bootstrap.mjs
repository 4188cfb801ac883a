// Starts an actor thread when the bench runs from TypeScript sources (tests, `tsx`): Node 20 does
// not apply a worker's `--import tsx` hooks to the worker's own main module, so this plain module
// registers tsx first and then imports the TypeScript entry. The compiled CLI never loads it.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.entry);
