// Reading V8 CPU profiles (node --cpu-prof, or the inspector's Profiler) for benchmarks that ask
// "what share of a process's CPU went to this code": samples are attributed to every function on
// their stack (inclusive), not only to the innermost one, so a check that calls into helpers is
// counted whole.

import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface CpuProfileFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

export interface CpuProfile {
  nodes: Array<{ id: number; callFrame: CpuProfileFrame; hitCount?: number; children?: number[] }>;
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** The one .cpuprofile a `--cpu-prof-dir` holds after its process exited. */
export async function readProfileFrom(dir: string): Promise<CpuProfile> {
  const file = (await readdir(dir)).find((name) => name.endsWith('.cpuprofile'));
  if (file === undefined) throw new Error(`no .cpuprofile in ${dir}: did the process exit normally?`);
  return JSON.parse(await readFile(join(dir, file), 'utf8')) as CpuProfile;
}

/** Where a frame's code lives, shortened to `src/…` or `node_modules/…` (line numbers are tsx's). */
export function whereOf(frame: CpuProfileFrame): string {
  return frame.url.replace(/^.*\/(src|node_modules)\//, '$1/').replace(/^file:\/\//, '');
}

export interface StackShare {
  /** Busy (non-idle) samples inside the window, and their time. */
  busySamples: number;
  busyUs: number;
  /**
   * Of those, per named matcher: the samples with a matching frame anywhere on their stack, their
   * share of the busy samples with its 95% interval, and their share of the busy time (samples
   * weighted by the time since the previous one).
   */
  matched: Record<
    string,
    { samples: number; us: number; share: number; shareLow: number; shareHigh: number; timeShare: number }
  >;
}

/**
 * Attributes each busy sample between `from` and `to` (µs on the monotonic clock V8's profiler and
 * process.hrtime share on Linux) to every matcher with a frame on its stack. `share` is the matched
 * samples over the busy samples, `shareLow`..`shareHigh` its 95% interval (Wilson), which says how
 * finely this many samples resolve it; `timeShare` weights each sample by its time delta.
 */
export function stackShare(
  profile: CpuProfile,
  from: number,
  to: number,
  matchers: Record<string, (frame: CpuProfileFrame) => boolean>,
): StackShare {
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const names = Object.keys(matchers);
  // Per node: which matchers its stack (the node and its ancestors) satisfies, computed once.
  const memo = new Map<number, boolean[]>();
  const stackMatches = (id: number): boolean[] => {
    const known = memo.get(id);
    if (known !== undefined) return known;
    const frame = byId.get(id)!.callFrame;
    const up = parent.has(id) ? stackMatches(parent.get(id)!) : names.map(() => false);
    const own = names.map((name, i) => up[i]! || matchers[name]!(frame));
    memo.set(id, own);
    return own;
  };
  let busySamples = 0;
  let busyUs = 0;
  const samples = names.map(() => 0);
  const us = names.map(() => 0);
  let at = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0;
    at += delta;
    if (at < from || at > to) continue;
    const id = profile.samples[i]!;
    if (byId.get(id)!.callFrame.functionName === '(idle)') continue;
    busySamples++;
    busyUs += delta;
    const hits = stackMatches(id);
    for (let m = 0; m < names.length; m++)
      if (hits[m]) {
        samples[m]!++;
        us[m]! += delta;
      }
  }
  const matched: StackShare['matched'] = {};
  names.forEach((name, m) => {
    const [low, high] = wilson(samples[m]!, busySamples);
    matched[name] = {
      samples: samples[m]!,
      us: us[m]!,
      share: busySamples === 0 ? 0 : samples[m]! / busySamples,
      shareLow: low,
      shareHigh: high,
      timeShare: busyUs === 0 ? 0 : us[m]! / busyUs,
    };
  });
  return { busySamples, busyUs, matched };
}

/** 95% Wilson score interval of k successes in n trials. */
function wilson(k: number, n: number): [number, number] {
  if (n === 0) return [0, 1];
  const z = 1.96;
  const p = k / n;
  const denominator = 1 + (z * z) / n;
  const centre = (p + (z * z) / (2 * n)) / denominator;
  const half = (z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n))) / denominator;
  return [Math.max(0, centre - half), Math.min(1, centre + half)];
}
