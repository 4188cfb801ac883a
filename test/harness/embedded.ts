// An embedded broker (Broker.start, in this process) for a test body: a temporary data directory
// unless one is given, and both stopped and removed when the test has finished (after its
// afterEach hooks and `finally` blocks), whether it passed or not. A test that needs the broker for
// a whole file starts it in beforeAll/beforeEach with a useTempDir directory and stops it in the
// matching after-hook instead.

import { onTestFinished } from 'vitest';
import { Broker, type BrokerOptions } from '../../src/embedded/broker.js';
import { makeTempDir, removeTempDir } from './temp-dir.js';

export interface StartEmbeddedBrokerOptions extends Omit<BrokerOptions, 'dataDir'> {
  /** The data directory; without it a temporary one is made and removed after the test. */
  dataDir?: string;
  /** How long the stop at the end of the test lets in-flight requests finish (Broker.stop). */
  stopDeadlineMs?: number;
}

/** Starts an embedded broker that is stopped (if the test did not stop it) when the test ends. */
export async function startEmbeddedBroker(options: StartEmbeddedBrokerOptions = {}): Promise<Broker> {
  const { stopDeadlineMs, dataDir: given, ...brokerOptions } = options;
  let made: string | null = null;
  let broker: Broker | null = null;
  // Registered first: it throws outside a test body, before anything is started.
  onTestFinished(async () => {
    // Stopping a stopped broker is a no-op, so a test may stop it itself (e.g. to restart it).
    await broker?.stop(stopDeadlineMs !== undefined ? { deadlineMs: stopDeadlineMs } : {});
    if (made !== null) await removeTempDir(made);
  });
  if (given === undefined) made = await makeTempDir('ms-embedded-');
  broker = await Broker.start({ ...brokerOptions, dataDir: given ?? made! });
  return broker;
}
