// Seeded randomness for everything the battery chooses at random (payloads, record bytes, cuts), so
// a failing run is repeated exactly by passing its printed seed back with --seed.

/** mulberry32: a small, fast 32-bit generator; plenty for test inputs. */
export class SeededRandom {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 2^32). */
  u32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform integer in [0, bound). */
  below(bound: number): number {
    return Math.floor((this.u32() / 0x100000000) * bound);
  }

  bytes(length: number): Buffer {
    const out = Buffer.allocUnsafe(length);
    for (let i = 0; i < length; i++) out[i] = this.u32() & 0xff;
    return out;
  }

  /** A seed for a sub-task (an attacker process, an attack), derived from this generator. */
  fork(): number {
    return this.u32();
  }
}

/** The seed of one attack: the run's seed mixed with the attack's name, so --only repeats it. */
export function attackSeed(runSeed: number, attack: string): number {
  let h = runSeed >>> 0;
  for (let i = 0; i < attack.length; i++) h = Math.imul(h ^ attack.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}
