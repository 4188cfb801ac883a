// The controller's fencing tracker, fed with times: a broker silent for the fencing time is
// fenced, heard again it is live again; a new registration under the same id starts afresh; the
// controller never fences itself; a controller that was stalled gives everyone time to be read.
import { describe, expect, it } from 'vitest';
import { BrokerLiveness } from '../../../src/cluster/liveness/broker-liveness.js';

const brokers = (...ids: number[]) => ids.map((brokerId) => ({ brokerId, startedAtMs: 1000 + brokerId }));

describe('BrokerLiveness', () => {
  it('fences a broker silent for the fencing time, and only it', () => {
    const liveness = new BrokerLiveness(300, 1);
    liveness.sync(brokers(1, 2, 3), 0);
    for (let t = 0; t <= 280; t += 40) {
      liveness.heard(2, 1002, t);
      expect(liveness.check(t)).toEqual({ fenced: [], unfenced: [] });
    }
    liveness.heard(2, 1002, 299);
    // Broker 3 was last "heard" at the grace start (0): fenced at 300, not before.
    expect(liveness.check(299).fenced).toEqual([]);
    expect(liveness.check(300).fenced).toEqual([3]);
    expect([...liveness.fenced()]).toEqual([3]);
    // Reported once.
    expect(liveness.check(320).fenced).toEqual([]);
    // The controller itself (1) is never fenced, however long.
    expect(liveness.check(330).fenced).toEqual([]);
    expect(liveness.fenced().has(1)).toBe(false);
  });

  it('makes a fenced broker live again when it heartbeats', () => {
    // Checked every 10 ms, as the controller does (a tenth of the fencing time).
    const liveness = new BrokerLiveness(100, 1);
    liveness.sync(brokers(1, 2), 0);
    for (let t = 0; t < 100; t += 10) expect(liveness.check(t).fenced).toEqual([]);
    expect(liveness.check(100).fenced).toEqual([2]);
    for (let t = 110; t < 150; t += 10) liveness.check(t);
    expect(liveness.heard(2, 1002, 150)).toBe(true);
    expect(liveness.fenced().size).toBe(0);
    expect(liveness.check(150)).toEqual({ fenced: [], unfenced: [2] });
    for (let t = 160; t < 250; t += 10) expect(liveness.check(t).fenced).toEqual([]);
    expect(liveness.check(250).fenced).toEqual([2]);
  });

  it('refuses a heartbeat of a registration it does not know, and starts afresh for a new one', () => {
    const liveness = new BrokerLiveness(100, 1);
    liveness.sync(brokers(1, 2), 0);
    expect(liveness.heard(2, 999, 10)).toBe(false); // a stale process under broker id 2
    expect(liveness.heard(4, 1004, 10)).toBe(false); // not registered
    expect(liveness.check(100).fenced).toEqual([2]);
    // Broker 2 restarted: a new registration gets a new grace and is not fenced.
    liveness.sync(
      [
        { brokerId: 1, startedAtMs: 1001 },
        { brokerId: 2, startedAtMs: 5000 },
      ],
      120,
    );
    expect(liveness.fenced().size).toBe(0);
    expect(liveness.check(219).fenced).toEqual([]);
    // A registration gone is forgotten.
    liveness.sync(brokers(1), 230);
    expect(liveness.check(1000).fenced).toEqual([]);
  });

  it('gives every broker half a fencing time more after a check that came late (a stalled controller)', () => {
    const liveness = new BrokerLiveness(300, 1);
    liveness.sync(brokers(1, 2), 0);
    liveness.heard(2, 1002, 100);
    expect(liveness.check(110).fenced).toEqual([]);
    // The controller's loop stood still from 110 to 900: the heartbeats of meanwhile are unread.
    expect(liveness.check(900).fenced).toEqual([]);
    expect(liveness.nextDeadlineMs()).toBe(900 + 150);
    liveness.heard(2, 1002, 905);
    expect(liveness.check(920).fenced).toEqual([]);
    // Silent from then on: fenced a fencing time after it was last heard.
    for (let t = 940; t < 1205; t += 20) expect(liveness.check(t).fenced).toEqual([]);
    expect(liveness.check(1205).fenced).toEqual([2]);
  });

  it('remembers a controlled shutdown until the broker says otherwise or registers again', () => {
    const liveness = new BrokerLiveness(300, 1);
    liveness.sync(brokers(1, 2, 3), 0);
    liveness.heard(2, 1002, 10, true);
    expect([...liveness.shuttingDown()]).toEqual([2]);
    liveness.setShuttingDown(1, true);
    expect([...liveness.shuttingDown()].sort()).toEqual([1, 2]);
    liveness.sync([...brokers(1, 3), { brokerId: 2, startedAtMs: 9000 }], 20);
    expect([...liveness.shuttingDown()]).toEqual([1]);
  });

  it('refuses a fencing time that is not positive', () => {
    expect(() => new BrokerLiveness(0, 1)).toThrow(/fencing time/);
  });
});
