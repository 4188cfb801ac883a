// The recorded history of a battery run, one JSON object a line: the run's header (seed, options
// and fault schedule, what `--replay` starts from), then every acknowledgement, every message a
// consumer saw, every committed group offset observed, every fault and heal, and at the end the
// result of the checks. Written as the run goes, so a run that dies still leaves its history.

import { createWriteStream, readFileSync, type WriteStream } from 'node:fs';
import type { FaultStep } from './schedule.js';

export interface RunHeader {
  readonly type: 'run';
  readonly seed: number;
  readonly minutes: number;
  readonly brokers: number;
  readonly faultSwitch: string | null;
  readonly schedule: readonly FaultStep[];
  readonly skipped: readonly string[];
}

/** An `acks: 'all'` produce the broker acknowledged: this value is at this offset. */
export interface AckEvent {
  readonly type: 'ack';
  readonly partition: number;
  readonly offset: string;
  readonly value: string;
}

/** An expected-version append acknowledged on a stream. */
export interface StreamAckEvent {
  readonly type: 'stream-ack';
  readonly key: string;
  readonly partition: number;
  readonly offset: string;
  readonly version: number;
  readonly value: string;
}

/** A message the group consumer was handed. */
export interface ConsumeEvent {
  readonly type: 'consume';
  readonly partition: number;
  readonly offset: string;
  readonly value: string;
}

/** The group's committed offsets as a broker reported them (partition → next offset). */
export interface CommittedEvent {
  readonly type: 'committed';
  /** When the offsets were asked for (ms into the run): commits acknowledged before it must show. */
  readonly askedAt: number;
  readonly offsets: Readonly<Record<string, string>>;
}

/** A commit the group consumer made and the broker acknowledged. */
export interface CommitEvent {
  readonly type: 'commit';
  readonly offsets: Readonly<Record<string, string>>;
}

export interface FaultEvent {
  readonly type: 'fault' | 'heal';
  readonly kind: string;
  readonly detail: string;
}

export interface NoteEvent {
  readonly type: 'note';
  readonly detail: string;
}

export interface ResultEvent {
  readonly type: 'result';
  readonly passed: boolean;
  readonly violations: readonly string[];
}

export type HistoryEvent =
  | AckEvent
  | StreamAckEvent
  | ConsumeEvent
  | CommittedEvent
  | CommitEvent
  | FaultEvent
  | NoteEvent
  | ResultEvent;

export type TimedEvent = HistoryEvent & { readonly t: number };

export class History {
  readonly events: TimedEvent[] = [];
  private readonly stream: WriteStream;
  private readonly startedAt = Date.now();

  constructor(
    readonly file: string,
    header: RunHeader,
  ) {
    this.stream = createWriteStream(file);
    this.stream.write(`${JSON.stringify(header)}\n`);
  }

  get elapsedMs(): number {
    return Date.now() - this.startedAt;
  }

  record(event: HistoryEvent): void {
    const timed = { t: this.elapsedMs, ...event } as TimedEvent;
    this.events.push(timed);
    this.stream.write(`${JSON.stringify(timed)}\n`);
  }

  ofType<K extends HistoryEvent['type']>(type: K): Array<TimedEvent & { type: K }> {
    return this.events.filter((event): event is TimedEvent & { type: K } => event.type === type);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.stream.end(resolve));
  }
}

/** The header of a history file (its first line): what `--replay` runs again. */
export function readHeader(file: string): RunHeader {
  const first = readFileSync(file, 'utf8').split('\n', 1)[0] ?? '';
  const header = JSON.parse(first) as RunHeader;
  if (header.type !== 'run' || !Array.isArray(header.schedule))
    throw new Error(`${file} does not start with a battery run header`);
  return header;
}
