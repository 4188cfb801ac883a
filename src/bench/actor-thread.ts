// One actor in its own worker thread, seen from the orchestrator: its readiness, its result, its
// latest progress, and a way to talk to it and to end it.
//
// From compiled JavaScript (dist/) the thread runs worker-entry.js directly. From TypeScript sources
// (vitest, tsx) it runs worker-ts-bootstrap.mjs, which registers tsx and imports worker-entry.ts.

import { Worker } from 'node:worker_threads';
import { deserializeError } from './errors.js';
import type { ActorPlan, ActorResult, ActorWorkerData, FromActor, ToActor } from './protocol.js';

const fromSources = import.meta.url.endsWith('.ts');

function startWorker(plan: ActorPlan): Worker {
  const data: ActorWorkerData = {
    plan,
    entry: fromSources ? new URL('./worker-entry.ts', import.meta.url).href : null,
  };
  const main = fromSources
    ? new URL('./worker-ts-bootstrap.mjs', import.meta.url)
    : new URL('./worker-entry.js', import.meta.url);
  // No inherited execArgv: the parent's flags (a test runner's, `--import tsx`) are not the worker's.
  return new Worker(main, { workerData: data, execArgv: [] });
}

export class ActorThread {
  readonly name: string;
  readonly ready: Promise<void>;
  readonly result: Promise<ActorResult>;
  /** Latest counts reported by the actor. */
  progress = { sent: 0, done: 0 };
  private readonly worker: Worker;

  constructor(plan: ActorPlan) {
    this.name = `${plan.kind} ${plan.index}`;
    this.worker = startWorker(plan);
    let markReady!: () => void;
    let refuseReady!: (error: Error) => void;
    let resolveResult!: (result: ActorResult) => void;
    let rejectResult!: (error: Error) => void;
    this.ready = new Promise<void>((resolve, reject) => {
      markReady = resolve;
      refuseReady = reject;
    });
    this.result = new Promise<ActorResult>((resolve, reject) => {
      resolveResult = resolve;
      rejectResult = reject;
    });
    // Callers await these later (or not at all after another actor failed): never unhandled.
    this.ready.catch(() => undefined);
    this.result.catch(() => undefined);
    const fail = (error: Error) => {
      refuseReady(error);
      rejectResult(error);
    };
    this.worker.on('message', (message: FromActor) => {
      switch (message.type) {
        case 'ready':
          markReady();
          break;
        case 'progress':
          this.progress = { sent: message.sent, done: message.done };
          break;
        case 'done':
          this.progress = { sent: this.progress.sent, done: message.result.total };
          resolveResult(message.result);
          break;
        case 'failed':
          fail(deserializeError(message.error, this.name));
          break;
      }
    });
    this.worker.on('error', (error) => fail(new Error(`${this.name}: ${error.message}`)));
    // Settled promises ignore this; it only matters when the thread dies without a word.
    this.worker.on('exit', (code) => fail(new Error(`${this.name} exited (code ${code}) before finishing`)));
  }

  send(message: ToActor): void {
    this.worker.postMessage(message);
  }

  /** Ends the thread (a no-op once it has ended by itself). */
  async terminate(): Promise<void> {
    await this.worker.terminate();
  }
}
