// The battery's network: every broker and etcd in a network namespace of its own, joined by veth
// links to one bridge in the runner's namespace (where the clients run), so that links between
// two members can be cut and restored without touching anyone else. A cut is a pair of blackhole
// routes (one in each namespace): packets between the two are dropped at the sender, in both
// directions, while both keep talking to everyone else and to the clients. Needs root and `ip`
// (iproute2); without them the battery runs every process on 127.0.0.1 and skips partitions.
//
// Names carry the runner's PID, so two runs on one machine do not share interfaces or a subnet.

import { spawnSync } from 'node:child_process';

export interface Member {
  /** `etcd` or `b<id>`. */
  readonly name: string;
  /** Its address on the bridge (it listens there). */
  readonly ip: string;
  /** The network namespace it runs in. */
  readonly namespace: string;
}

function ip(args: string[]): { ok: boolean; output: string } {
  const result = spawnSync('ip', args, { encoding: 'utf8' });
  return { ok: result.status === 0, output: `${result.stdout ?? ''}${result.stderr ?? ''}`.trim() };
}

function must(args: string[]): void {
  const result = ip(args);
  if (!result.ok) throw new Error(`ip ${args.join(' ')}: ${result.output}`);
}

/** Why namespaces cannot be used here, or null when they can. */
export function namespacesUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'network partitions need root (ip netns); skipped';
  if (spawnSync('ip', ['-V'], { stdio: 'ignore' }).status !== 0)
    return 'network partitions need `ip` (Debian: iproute2); skipped';
  return null;
}

export class Network {
  readonly members = new Map<string, Member>();
  private readonly cuts = new Set<string>();
  private readonly tag: string;
  private readonly subnet: string;
  private readonly bridge: string;

  private constructor(tag: string, subnet: string) {
    this.tag = tag;
    this.subnet = subnet;
    this.bridge = `${tag}br`;
  }

  /** The bridge, and a namespace with a veth link to it for each member name. */
  static create(names: readonly string[]): Network {
    const tag = `ms${process.pid % 100_000}`;
    const subnet = `10.${200 + (process.pid % 50)}.${Math.floor(process.pid / 50) % 250}`;
    const network = new Network(tag, subnet);
    try {
      must(['link', 'add', network.bridge, 'type', 'bridge']);
      must(['addr', 'add', `${subnet}.254/24`, 'dev', network.bridge]);
      must(['link', 'set', network.bridge, 'up']);
      for (const [index, name] of names.entries()) network.addMember(name, index + 1);
    } catch (error) {
      network.destroy();
      throw error;
    }
    return network;
  }

  private addMember(name: string, index: number): void {
    const namespace = `${this.tag}-${name}`;
    const outside = `${this.tag}v${index}`;
    const address = `${this.subnet}.${index}`;
    must(['netns', 'add', namespace]);
    this.members.set(name, { name, ip: address, namespace });
    must(['link', 'add', outside, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', namespace]);
    must(['link', 'set', outside, 'master', this.bridge]);
    must(['link', 'set', outside, 'up']);
    must(['-n', namespace, 'link', 'set', 'lo', 'up']);
    must(['-n', namespace, 'addr', 'add', `${address}/24`, 'dev', 'eth0']);
    must(['-n', namespace, 'link', 'set', 'eth0', 'up']);
  }

  member(name: string): Member {
    const member = this.members.get(name);
    if (member === undefined) throw new Error(`no network member ${name}`);
    return member;
  }

  /** The command prefix that runs a process inside `name`'s namespace. */
  wrapper(name: string): string[] {
    return ['ip', 'netns', 'exec', this.member(name).namespace];
  }

  /** Drops every packet between `a` and `b` (both directions) until `restore`. */
  cut(a: string, b: string): void {
    const key = [a, b].sort().join('|');
    if (this.cuts.has(key)) return;
    must(['-n', this.member(a).namespace, 'route', 'add', 'blackhole', `${this.member(b).ip}/32`]);
    must(['-n', this.member(b).namespace, 'route', 'add', 'blackhole', `${this.member(a).ip}/32`]);
    this.cuts.add(key);
  }

  /** Every cut link works again. */
  restoreAll(): void {
    for (const key of this.cuts) {
      const [a, b] = key.split('|') as [string, string];
      ip(['-n', this.member(a).namespace, 'route', 'del', 'blackhole', `${this.member(b).ip}/32`]);
      ip(['-n', this.member(b).namespace, 'route', 'del', 'blackhole', `${this.member(a).ip}/32`]);
    }
    this.cuts.clear();
  }

  get cutCount(): number {
    return this.cuts.size;
  }

  /** Removes the namespaces (their veth ends go with them) and the bridge. */
  destroy(): void {
    for (const member of this.members.values()) ip(['netns', 'del', member.namespace]);
    this.members.clear();
    ip(['link', 'del', this.bridge]);
  }
}
