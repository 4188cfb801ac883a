// The fault battery's deliberately broken rules (src/cluster/test-switches.ts): off unless
// MS_FAULT_SWITCH names one, an unknown name is refused, and each switch changes exactly the rule
// it names. Each case runs in a child process, since the variable is read once at load.

import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const src = (path: string) =>
  pathToFileURL(fileURLToPath(new URL(`../../src/${path}`, import.meta.url))).href;

/** What the three rules do with MS_FAULT_SWITCH set to `value` (undefined: not set). */
const PROBE = `
import { decidePartition } from '${src('cluster/controller/leader-election.ts')}';
import { FollowerState } from '${src('cluster/replication/follower-state.ts')}';
import { LeaderEpochCache } from '${src('cluster/replication/leader-epoch-cache.ts')}';
import { LeaderState } from '${src('cluster/replication/leader-state.ts')}';

// Leader 1 died; 2 is live but outside the ISR, 3 is live and in it.
const elected = decidePartition({
  replicas: [1, 2, 3],
  state: { leader: 1, leaderEpoch: 4, isr: [1, 3] },
  live: new Set([2, 3]),
  uncleanElectionAllowed: false,
}).state.leader;

// An acks=all produce appended by a leader whose follower has not fetched it.
const { leader } = LeaderState.become(
  { brokerId: 1, leaderEpoch: 1, replicas: [1, 2], isr: [1, 2], isrVersion: 1, replicaLagTimeMs: 1000, minInsyncReplicas: 2, isrProposalRetryMs: 100 },
  new LeaderEpochCache(),
  { logStartOffset: 0n, logEndOffset: 0n, localEnd: 0n, highWatermark: 0n, nowMs: 0 },
);
leader.onLocalProgress({ logEndOffset: 5n, localEnd: 5n });
const acked = leader.awaitReplication(7, 4n, 10_000).length > 0;

// A follower at 10 (high watermark 4) of epoch 1; the new leader's epoch 1 ends at 8.
const follower = new FollowerState(
  { brokerId: 2, leaderId: 3, leaderEpoch: 2, reportStableOffset: false, requestTimeoutMs: 100, idleFetchBackoffMs: 10, errorBackoffMs: 10 },
  new LeaderEpochCache([{ epoch: 1, startOffset: 0n }]),
  { logEndOffset: 10n, stableOffset: 10n, highWatermark: 4n, nowMs: 0 },
);
const [query] = follower.poll(0);
const truncatedTo = follower
  .onEpochAnswer(query.requestId, { error: null, epoch: 1, endOffset: 8n }, 0)
  .find((action) => action.type === 'truncate')?.offset.toString();
console.log(JSON.stringify({ elected, acked, truncatedTo }));
`;

function probe(value: string | undefined) {
  const env = { ...process.env };
  delete env.MS_FAULT_SWITCH;
  if (value !== undefined) env.MS_FAULT_SWITCH = value;
  const result = spawnSync(process.execPath, ['--import', tsx, '--input-type=module', '-e', PROBE], {
    env,
    encoding: 'utf8',
  });
  return { status: result.status, stdout: result.stdout.trim(), stderr: result.stderr };
}

describe('fault switches', () => {
  it('are off by default, and each breaks only the rule it names', () => {
    const correct = { elected: 3, acked: false, truncatedTo: '8' };
    expect(JSON.parse(probe(undefined).stdout)).toEqual(correct);
    expect(JSON.parse(probe('elect-outside-isr').stdout)).toEqual({ ...correct, elected: 2 });
    expect(JSON.parse(probe('ack-before-isr').stdout)).toEqual({ ...correct, acked: true });
    expect(JSON.parse(probe('truncate-to-high-watermark').stdout)).toEqual({ ...correct, truncatedTo: '4' });
  }, 60_000);

  it('refuse an unknown name, and say when one is on', () => {
    const unknown = probe('ack-before-everything');
    expect(unknown.status).not.toBe(0);
    expect(unknown.stderr).toMatch(
      /INVALID_CONFIG|MS_FAULT_SWITCH=ack-before-everything: one of ack-before-isr/,
    );
    expect(probe('ack-before-isr').stderr).toMatch(/deliberately broken \(fault battery only\)/);
  }, 30_000);
});
