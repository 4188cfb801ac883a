// The main module of every actor thread: builds the producer or consumer its plan describes, says
// `ready` once connected (and, for consumers, subscribed), runs on `start`, reports progress four
// times a second, and ends with `done` (its result) or `failed`.

import { parentPort, workerData } from 'node:worker_threads';
import { ConsumerActor } from './actor-consumer.js';
import { ProducerActor } from './actor-producer.js';
import { serializeError } from './errors.js';
import type { ActorResult, ActorWorkerData, FromActor, ToActor } from './protocol.js';

const PROGRESS_EVERY_MS = 250;

if (parentPort === null) throw new Error('worker-entry runs as a worker thread only');
const port = parentPort;
const { plan } = workerData as ActorWorkerData;
const post = (message: FromActor) => port.postMessage(message);

function settle(outcome: Promise<ActorResult>, progress: NodeJS.Timeout): void {
  outcome
    .then(
      (result) => post({ type: 'done', result }),
      (error: unknown) => post({ type: 'failed', error: serializeError(error) }),
    )
    .finally(() => {
      clearInterval(progress);
      // Nothing else keeps the thread alive: it ends once the port is closed.
      port.close();
    });
}

async function main(): Promise<void> {
  const actor =
    plan.kind === 'producer' ? await ProducerActor.connect(plan) : await ConsumerActor.connect(plan);
  port.on('message', (message: ToActor) => {
    switch (message.type) {
      case 'start': {
        const progress = setInterval(
          () => post({ type: 'progress', ...actor.progress() }),
          PROGRESS_EVERY_MS,
        );
        settle(actor.run(message.schedule), progress);
        break;
      }
      case 'stop':
        if (actor instanceof ProducerActor) actor.stop();
        else void actor.finish();
        break;
      case 'drain':
        if (actor instanceof ConsumerActor) actor.drain(message.expected, message.idleMs);
        break;
    }
  });
  post({ type: 'ready' });
}

main().catch((error: unknown) => {
  post({ type: 'failed', error: serializeError(error) });
  port.close();
});
