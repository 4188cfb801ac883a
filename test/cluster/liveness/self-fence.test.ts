// A broker's self-fence, fed with times: fenced once the controller has not confirmed it for the
// fencing time, counted from when the confirmed heartbeat was *sent* (never later than the
// controller fences it), unfenced by the next confirmation; transitions reported once.
import { describe, expect, it } from 'vitest';
import { BrokerLiveness } from '../../../src/cluster/liveness/broker-liveness.js';
import { SelfFence } from '../../../src/cluster/liveness/self-fence.js';

describe('SelfFence', () => {
  it('fences after the fencing time without a confirmation, and unfences on one', () => {
    const fence = new SelfFence(300, 1000);
    expect(fence.isFenced(1299)).toBe(false);
    expect(fence.isFenced(1300)).toBe(true);
    expect(fence.transition(1300)).toBe('fenced');
    expect(fence.transition(1310)).toBeNull();
    expect(fence.silentForMs(1310)).toBe(310);
    fence.confirm(1305);
    expect(fence.isFenced(1310)).toBe(false);
    expect(fence.transition(1310)).toBe('unfenced');
    // An older confirmation (a late answer) does not move the clock back.
    fence.confirm(1200);
    expect(fence.isFenced(1604)).toBe(false);
    expect(fence.isFenced(1605)).toBe(true);
  });

  it('stops leading no later than the controller may fence it, whatever the delays', () => {
    // Heartbeats sent every 50 ms; each takes `delay` to reach the controller and as long back.
    for (const delay of [0, 10, 120, 290]) {
      const fencing = 300;
      const controller = new BrokerLiveness(fencing, 1);
      controller.sync([{ brokerId: 2, startedAtMs: 7 }], 0);
      const fence = new SelfFence(fencing, 0);
      // Heartbeats until 1000, then the broker falls silent (stopped, or cut off).
      for (let sent = 0; sent <= 1000; sent += 50) {
        controller.heard(2, 7, sent + delay);
        fence.confirm(sent); // answered at sent + 2 * delay; counted from sent
      }
      let selfFencedAt: number | null = null;
      let fencedAt: number | null = null;
      for (let t = 1000; t < 3000; t += 1) {
        if (selfFencedAt === null && fence.isFenced(t)) selfFencedAt = t;
        if (fencedAt === null && controller.check(t).fenced.includes(2)) fencedAt = t;
      }
      expect(selfFencedAt).not.toBeNull();
      expect(fencedAt).not.toBeNull();
      expect(selfFencedAt!).toBeLessThanOrEqual(fencedAt!);
    }
  });
});
