// Run as a child process by group-topic-changes.test.ts: a group member waits in a join for a
// topic that is deleted, and the member that never joins again times out, so the coordinator's
// timer completes the rebalance over the deleted topic. An exception escaping that timer ends this
// process (which would end the test runner itself, hence the child). Prints one JSON line.

import { BrokerCore } from '../../src/broker/broker-core.js';

const dataDir = process.argv[2];
if (dataDir === undefined) throw new Error('usage: group-topic-deleted.child.ts <dataDir>');
// The broker's timers do not hold a process open; this one does while the scenario runs.
const alive = setInterval(() => undefined, 1000);
const core = await BrokerCore.start({ dataDir });
await core.execute('createTopic', { name: 't', partitions: 2 });
await core.execute('createTopic', { name: 'u', partitions: 2 });
const join = (topics: string[], memberId = '') =>
  core.execute('joinGroup', { groupId: 'g', memberId, topics, sessionTimeoutMs: 1000, strategy: 'range' });
await join(['u']);
const waiting = join(['t']);
await core.execute('deleteTopic', { name: 't' });
// The silent member's session (1 s) and the rebalance deadline pass; the timer runs every 250 ms.
const waited = await waiting;
const joined = await Promise.all([join(['u']), join(['u'], waited.memberId)]);
console.log(
  JSON.stringify({
    waited: { generation: waited.generation, assignment: waited.assignment },
    joined: joined.map((j) => ({ generation: j.generation, assignment: j.assignment })),
  }),
);
await core.close();
clearInterval(alive);
