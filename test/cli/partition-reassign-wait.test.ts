// `partition reassign --wait` reports a partition as finished only with the replicas asked for.
// Its polls may see "no reassignment under way" before the controller's view holds the request,
// and the broker describing the topics follows the control plane a moment behind: the command
// once printed the replicas of before as the result (seen in CI: finished [3,1] for a move to
// [2,1]). Here a fake client plays those views back in order, so the sequence is deterministic.

import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { reassignWaitStep, registerPartition } from '../../src/cli/commands/partition.js';
import type { CliContext } from '../../src/cli/context.js';
import { toJson } from '../../src/cli/output.js';
import type { Client } from '../../src/client/client.js';
import { MemoryStreamerError } from '../../src/common/errors.js';
import type { MetadataResponse } from '../../src/protocol/commands/data-types.js';
import type {
  ReassignmentProgress,
  ReassignmentStarted,
} from '../../src/protocol/commands/reassign-commands.js';

const started: ReassignmentStarted[] = [{ topic: 'cli', partition: 1, from: [3, 1], to: [2, 1] }];

function metadataOf(replicas: number[], leader: number, isr: number[]): MetadataResponse {
  return {
    clusterId: 'c',
    controllerId: 1,
    brokers: [],
    topics: [
      {
        name: 'cli',
        error: null,
        id: 'id',
        internal: false,
        partitions: [
          {
            partition: 0,
            error: null,
            leader: 1,
            leaderEpoch: 0,
            replicas: [1, 2],
            isr: [1, 2],
            offlineReplicas: [],
          },
          { partition: 1, error: null, leader, leaderEpoch: 0, replicas, isr, offlineReplicas: [] },
        ],
      },
    ],
  };
}

const before = metadataOf([3, 1], 3, [3, 1]);
const after = metadataOf([2, 1], 2, [2, 1]);
const moving: ReassignmentProgress = {
  topic: 'cli',
  partition: 1,
  replicas: [3, 1, 2],
  target: [2, 1],
  isr: [3, 1],
  leader: 3,
};

describe('reassignWaitStep', () => {
  it('does not take "none under way" for finished while the metadata shows other replicas', () => {
    expect(reassignWaitStep(started, [], before)).toEqual({
      state: 'waiting',
      pending: [{ ...started[0], replicas: [3, 1] }],
    });
    expect(reassignWaitStep(started, [], null)).toMatchObject({ state: 'waiting' });
  });

  it('waits while the partition moves, finishes once it has the replicas asked for', () => {
    expect(reassignWaitStep(started, [moving], after)).toMatchObject({
      state: 'waiting',
      pending: [{ replicas: [3, 1, 2] }],
    });
    expect(reassignWaitStep(started, [], after)).toEqual({
      state: 'finished',
      finished: [{ ...started[0], replicas: [2, 1], leader: 2, isr: [2, 1] }],
    });
    // The same brokers in another order are not the target: the first is the preferred leader.
    expect(reassignWaitStep(started, [], metadataOf([1, 2], 1, [1, 2]))).toMatchObject({ state: 'waiting' });
  });

  it('a partition moving to other replicas was replaced by another reassignment', () => {
    expect(reassignWaitStep(started, [{ ...moving, target: [2, 3] }], null)).toEqual({
      state: 'replaced',
      progress: { ...moving, target: [2, 3] },
      asked: [2, 1],
    });
  });
});

/** Runs `partition reassign` against a client whose answers are played back in order. */
async function reassign(
  argv: string[],
  views: { reassignments: ReassignmentProgress[][]; metadata: MetadataResponse[] },
): Promise<{ out: string[]; err: string[]; error: unknown }> {
  const out: string[] = [];
  const err: string[] = [];
  const next = <T>(list: T[]): T => (list.length > 1 ? list.shift()! : list[0]!);
  const client = {
    admin: {
      reassignPartitions: async () => started,
      reassignments: async () => next(views.reassignments),
      metadata: async () => next(views.metadata),
    },
    close: async () => undefined,
  } as unknown as Client;
  const context: CliContext = {
    json: true,
    env: {},
    out: (t) => out.push(t),
    err: (t) => err.push(t),
    terminal: null,
    print: (value) => out.push(toJson(value, 0)),
    connect: async () => client,
    connectOptions: async () => ({ brokers: '127.0.0.1:1' }),
  };
  const program = new Command('memorystreamer').exitOverride();
  registerPartition(program, context);
  let error: unknown = null;
  try {
    await program.parseAsync(['partition', 'reassign', ...argv], { from: 'user' });
  } catch (caught) {
    error = caught;
  }
  return { out, err, error };
}

describe('partition reassign --wait', () => {
  const args = ['--topic', 'cli', '--partition', '1', '--replicas', '2,1', '--wait'];

  it('reports the replicas asked for, not a view from before the request or a lagging broker', async () => {
    // First poll: the controller's view does not hold the request yet (none under way) and the
    // broker describes the partition as before; then it moves; then it finished, but the broker
    // asked still shows the replicas of before for one more poll.
    const result = await reassign(args, {
      reassignments: [[], [moving], [], []],
      metadata: [before, before, after],
    });
    expect(result.error).toBeNull();
    expect(JSON.parse(result.out.join('\n'))).toEqual({
      finished: [
        { topic: 'cli', partition: 1, from: [3, 1], to: [2, 1], replicas: [2, 1], leader: 2, isr: [2, 1] },
      ],
    });
    expect(result.err).toEqual([JSON.stringify({ progress: moving })]);
  });

  it('fails, and says why, when another reassignment took the partition elsewhere', async () => {
    const result = await reassign(args, {
      reassignments: [[{ ...moving, target: [2, 3] }]],
      metadata: [before],
    });
    expect(result.error).toBeInstanceOf(MemoryStreamerError);
    expect((result.error as MemoryStreamerError).codeName).toBe('REASSIGNMENT_IN_PROGRESS');
    expect((result.error as Error).message).toMatch(/cli\/1 is moving to 2,3 now, not 2,1/);
  });

  it('times out naming the partitions not there yet', async () => {
    const result = await reassign([...args, '--timeout-ms', '1'], {
      reassignments: [[]],
      metadata: [before],
    });
    expect((result.error as MemoryStreamerError).codeName).toBe('REQUEST_TIMEOUT');
    expect((result.error as Error).message).toMatch(/cli\/1: replicas 3,1, asked 2,1/);
  });
});
