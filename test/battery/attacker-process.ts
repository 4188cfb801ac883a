// An attacker child process as the runner sees it: spawned with an IPC channel and its job in
// argv, `ready` once its connections are up, its figures on `stop`, and killed by its PID after.

import { type ChildProcess, fork } from 'node:child_process';
import { join } from 'node:path';
import type { AttackerJob, AttackerReport } from './attacker-jobs.js';
import { REPO_ROOT, track } from './broker.js';

export interface Attacker {
  child: ChildProcess;
  /** null once the job is running; otherwise why it could not start. */
  ready: Promise<string | null>;
  /** The figures it sent on `stop`. */
  report: AttackerReport | null;
  /** The start of its standard error, for a failure report. */
  stderr: string;
}

export function spawnAttacker(job: AttackerJob): Attacker {
  const child = fork(join(REPO_ROOT, 'test', 'battery', 'attacker.ts'), [JSON.stringify(job)], {
    cwd: REPO_ROOT,
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  track(child);
  const attacker: Attacker = { child, ready: Promise.resolve(null), report: null, stderr: '' };
  child.stderr!.on('data', (chunk: Buffer) => {
    if (attacker.stderr.length < 4000) attacker.stderr += chunk.toString();
  });
  attacker.ready = new Promise((resolve) => {
    child.on('message', (message: { type: string; error?: string; report?: AttackerReport }) => {
      if (message.type === 'ready') resolve(null);
      else if (message.type === 'failed') resolve(message.error ?? 'failed');
      else if (message.type === 'result') attacker.report = message.report ?? null;
    });
    child.once('exit', (code, signal) =>
      resolve(`exited (${signal ?? code}) ${attacker.stderr.slice(0, 500)}`),
    );
  });
  return attacker;
}

/** Asks every attacker for its figures; waits up to 5 s for each. */
export async function collectReports(attackers: Attacker[]): Promise<void> {
  await Promise.all(
    attackers.map(
      (a) =>
        new Promise<void>((resolve) => {
          if (!a.child.connected) return resolve();
          const timer = setTimeout(resolve, 5000);
          a.child.on('message', (m: { type: string }) => {
            if (m.type === 'result') {
              clearTimeout(timer);
              resolve();
            }
          });
          a.child.send({ type: 'stop' });
        }),
    ),
  );
}
