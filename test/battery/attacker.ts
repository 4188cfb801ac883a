// One attacker process (spawned by test/battery/attack-runner.ts with an IPC channel): runs the job
// in argv[2] against the broker, reports `ready` once its connections are up, and on `stop` sends
// its figures and then waits, holding its sockets, until the runner kills it by its PID. Running
// attackers in their own processes keeps their memory out of the broker's and the runner's
// measurements, and leaves the broker's event loop to itself.

import { BinaryReader } from '../../src/protocol/codec/binary-reader.js';
import { COMMANDS } from '../../src/protocol/commands/registry.js';
import { describeError, ErrorCode } from '../../src/protocol/error-codes.js';
import { FrameFlags } from '../../src/protocol/frame-header.js';
import { Opcode } from '../../src/protocol/opcodes.js';
import { encodeRecordBatch } from '../../src/protocol/record-batch.js';
import type { AttackerJob, AttackerReport } from './attacker-jobs.js';
import { headerOnly, pingFrame, rawFrame, requestFrame, requestPayload } from './frames.js';
import { batchCases } from './malformed-batches.js';
import { SeededRandom } from './random.js';
import { openMany, RawConnection } from './raw-connection.js';

const job = JSON.parse(process.argv[2]!) as AttackerJob;
const random = new SeededRandom(job.seed);
let stopping = false;
const started = performance.now();

function send(message: unknown): void {
  process.send?.(message);
}

function codeNames(counts: Map<number, number>): Record<string, number> {
  return Object.fromEntries([...counts].map(([code, n]) => [describeError(code).name, n]));
}

function addAll(into: Map<number, number>, from: Map<number, number>): void {
  for (const [code, n] of from) into.set(code, (into.get(code) ?? 0) + n);
}

/** Figures common to every connection-holding job. */
function connectionFigures(connections: RawConnection[], failures: Map<string, number>): AttackerReport {
  const codes = new Map<number, number>();
  for (const c of connections) addAll(codes, c.errorCodes);
  return {
    opened: connections.length,
    openFailures: Object.fromEntries(failures),
    closedByBroker: connections.filter((c) => c.closed).length,
    errorCodes: codeNames(codes),
  };
}

type Report = () => AttackerReport;

async function pipelinedFetch(j: Extract<AttackerJob, { kind: 'pipelined-fetch' }>): Promise<Report> {
  let written = 0;
  const { opened, failures } = await openMany(j.connections, { port: j.port }, async (c) => {
    if (!(await c.handshake())) return;
    c.stopReading();
    // Written in slices, in the background (the job is ready once every connection is up), so
    // the attacker's own memory stays small; the socket's buffer absorbs what the broker does not
    // read.
    void writeFetches(c);
  });
  async function writeFetches(c: RawConnection): Promise<void> {
    let correlationId = 2;
    while (!stopping && correlationId < j.requestsPerConnection + 2 && !c.closed) {
      const frames: Buffer[] = [];
      for (let i = 0; i < 256 && correlationId < j.requestsPerConnection + 2; i++) {
        frames.push(
          requestFrame(
            'fetch',
            { topic: j.topic, partition: 0, offset: 0n, maxBytes: j.maxBytes, maxWaitMs: 0 },
            correlationId++,
          ),
        );
      }
      written += frames.length;
      if (!c.write(Buffer.concat(frames))) await drainedOrClosed(c, 2000);
    }
  }
  return () => ({ ...connectionFigures(opened, failures), requestsWritten: written });
}

function drainedOrClosed(c: RawConnection, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    c.socket.once('drain', done);
    c.socket.once('close', done);
  });
}

async function hugeCredit(j: Extract<AttackerJob, { kind: 'huge-credit' }>): Promise<Report> {
  let subscriptions = 0;
  const { opened, failures } = await openMany(j.connections, { port: j.port }, async (c) => {
    if (!(await c.handshake())) return;
    let answered = 0;
    const all = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 5000);
      c.onFrame = (frame) => {
        if (frame.header.opcode === Opcode.SUBSCRIBE && frame.header.flags & FrameFlags.RESPONSE) {
          if (!(frame.header.flags & FrameFlags.ERROR)) subscriptions++;
          if (++answered === j.subscriptionsPerConnection) {
            clearTimeout(timer);
            resolve();
          }
        }
      };
    });
    const frames: Buffer[] = [];
    for (let i = 0; i < j.subscriptionsPerConnection; i++) {
      frames.push(
        requestFrame('subscribe', { topic: j.topic, partition: 0, offset: -2n, credit: j.credit }, 2 + i),
      );
    }
    c.write(Buffer.concat(frames));
    // The answers come before the pushes on the same socket; once they are in, stop reading.
    await all;
    c.stopReading();
  });
  return () => ({ ...connectionFigures(opened, failures), subscriptions });
}

async function partialFrames(j: Extract<AttackerJob, { kind: 'partial-frames' }>): Promise<Report> {
  // One produce frame of `frameBytes` payload, built once; every connection sends its first
  // `sendBytes` and then nothing more.
  const batch = encodeRecordBatch([{ value: random.bytes(j.frameBytes - 200) }]);
  const frame = requestFrame('produce', { topic: j.topic, partition: 0, acks: 1, batch }, 2);
  const prefix = frame.subarray(0, Math.min(frame.length - 1, j.sendBytes));
  const { opened, failures } = await openMany(
    j.connections,
    { port: j.port },
    async (c) => {
      // Written without waiting for it to drain: the broker decides how much of it it reads.
      if (await c.handshake()) c.write(prefix);
    },
    16,
  );
  return () => ({
    ...connectionFigures(opened, failures),
    frameBytes: frame.length,
    bytesSentEach: prefix.length,
    fullySent: opened.filter((c) => !c.closed && c.socket.writableLength === 0).length,
    stillOpen: opened.filter((c) => !c.closed).length,
  });
}

async function flood(j: Extract<AttackerJob, { kind: 'flood' }>): Promise<Report> {
  let handshaked = 0;
  const silent: RawConnection[] = [];
  const dribblers: RawConnection[] = [];
  const dribble = setInterval(() => {
    // One byte of a handshake frame per second: never a whole header before the timeout.
    for (const c of dribblers) c.write(Buffer.from('M'));
  }, 1000);
  dribble.unref();
  await new Promise((resolve) => setTimeout(resolve, j.startDelayMs));
  const { opened, failures } = await openMany(
    j.connections,
    { port: j.port, localAddress: j.localAddress, timeoutMs: 3000 },
    async (c, index) => {
      const role = index % 10;
      if (role < j.handshakeTenths) {
        if (await c.handshake(5000)) handshaked++;
      } else if (role === 9) {
        dribblers.push(c);
      } else {
        silent.push(c);
      }
    },
    64,
  );
  const keepalive = setInterval(() => {
    for (const c of opened)
      if (!c.closed && !silent.includes(c) && !dribblers.includes(c)) c.write(pingFrame(7));
  }, 5000);
  keepalive.unref();
  return () => ({
    ...connectionFigures(opened, failures),
    localAddress: j.localAddress,
    attempted: j.connections,
    handshaked,
    // Counted once per connection, whether the refusal came before or after its handshake.
    refusedTooMany: opened.filter((c) => c.errorCodes.has(ErrorCode.TOO_MANY_CONNECTIONS)).length,
    silentOpen: silent.filter((c) => !c.closed).length,
    silentTotal: silent.length,
    dribblersOpen: dribblers.filter((c) => !c.closed).length,
    dribblersTotal: dribblers.length,
    heldOpen: opened.filter((c) => !c.closed).length,
  });
}

async function slowReaders(j: Extract<AttackerJob, { kind: 'slow-readers' }>): Promise<Report> {
  let bytesRead = 0;
  const { opened, failures } = await openMany(j.connections, { port: j.port }, async (c) => {
    if (!(await c.handshake())) return;
    const frames = [
      requestFrame('subscribe', { topic: j.topic, partition: 0, offset: -2n, credit: j.credit }, 2),
    ];
    for (let i = 0; i < j.fetches; i++) {
      frames.push(
        requestFrame(
          'fetch',
          { topic: j.topic, partition: 0, offset: 0n, maxBytes: j.fetchMaxBytes, maxWaitMs: 0 },
          3 + i,
        ),
      );
    }
    c.write(Buffer.concat(frames));
    // Switch to pulling a few bytes at a time: the 'data' listener goes, read() takes slices.
    c.socket.removeAllListeners('data');
    c.socket.pause();
  });
  const tick = setInterval(() => {
    for (const c of opened) {
      if (c.closed) continue;
      const chunk = c.socket.read(j.bytesPerTick) as Buffer | null;
      if (chunk !== null) bytesRead += chunk.length;
    }
  }, j.tickMs);
  tick.unref();
  return () => ({ ...connectionFigures(opened, failures), bytesRead });
}

async function tinyFlood(j: Extract<AttackerJob, { kind: 'tiny-flood' }>): Promise<Report> {
  let written = 0;
  let answers = 0;
  const listTopics = requestPayload('listTopics', {});
  const { opened, failures } = await openMany(j.connections, { port: j.port }, async (c, index) => {
    if (!(await c.handshake())) return;
    const reads = index % 2 === 0;
    if (reads) c.onFrame = () => answers++;
    else c.stopReading();
    void (async () => {
      let correlationId = 2;
      while (!stopping && !c.closed) {
        const frames: Buffer[] = [];
        for (let i = 0; i < 64; i++) {
          frames.push(
            i % 2 === 0
              ? pingFrame(correlationId++)
              : rawFrame(COMMANDS.listTopics.opcode, listTopics, correlationId++),
          );
        }
        written += frames.length;
        if (!c.write(Buffer.concat(frames))) await drainedOrClosed(c, 1000);
        else await new Promise((resolve) => setImmediate(resolve));
      }
    })();
  });
  return () => ({ ...connectionFigures(opened, failures), requestsWritten: written, answersRead: answers });
}

async function malformedRecords(j: Extract<AttackerJob, { kind: 'malformed-records' }>): Promise<Report> {
  const c = await RawConnection.open({ port: j.port });
  if (!(await c.handshake())) throw new Error('handshake refused');
  const cases = batchCases(random, j.randomPerCodec);
  const outcomes: AttackerReport[] = [];
  for (let i = 0; i < cases.length && !stopping; i++) {
    const one = cases[i]!;
    const correlationId = 100 + i;
    const answer = new Promise<{ code: number; offset: string | null }>((resolve) => {
      const timer = setTimeout(() => resolve({ code: -1, offset: null }), 10_000);
      c.onFrame = (frame) => {
        if (frame.header.correlationId !== correlationId) return;
        clearTimeout(timer);
        if (frame.header.flags & FrameFlags.ERROR) resolve({ code: frame.header.errorCode, offset: null });
        else {
          const { baseOffset } = COMMANDS.produce.decodeResponse(new BinaryReader(frame.payload));
          resolve({ code: 0, offset: baseOffset.toString() });
        }
      };
    });
    c.write(
      requestFrame('produce', { topic: j.topic, partition: 0, acks: 1, batch: one.batch }, correlationId),
    );
    const { code, offset } = await answer;
    outcomes.push({
      name: one.name,
      codec: one.codec,
      valid: one.valid,
      accepted: code === 0,
      offset,
      error: code === 0 ? null : code === -1 ? 'no answer in 10 s' : describeError(code).name,
    });
    if (c.closed) break;
  }
  return () => ({ cases: outcomes, connectionClosed: c.closed });
}

async function partitionFlood(j: Extract<AttackerJob, { kind: 'partition-flood' }>): Promise<Report> {
  const c = await RawConnection.open({ port: j.port });
  if (!(await c.handshake())) throw new Error('handshake refused');
  const outcomes: AttackerReport[] = [];
  for (let i = 0; i < j.names.length && !stopping; i++) {
    const name = j.names[i]!;
    const correlationId = 100 + i;
    const t0 = performance.now();
    const code = await new Promise<number>((resolve) => {
      const timer = setTimeout(() => resolve(-1), j.requestTimeoutMs);
      c.onFrame = (frame) => {
        if (frame.header.correlationId !== correlationId) return;
        clearTimeout(timer);
        resolve(frame.header.flags & FrameFlags.ERROR ? frame.header.errorCode : 0);
      };
      c.write(requestFrame('createTopic', { name, partitions: j.partitions }, correlationId));
    });
    outcomes.push({
      name,
      partitions: j.partitions,
      created: code === 0,
      error:
        code === 0 ? null : code === -1 ? `no answer in ${j.requestTimeoutMs} ms` : describeError(code).name,
      ms: Math.round(performance.now() - t0),
    });
    if (c.closed) break;
  }
  return () => ({ requests: outcomes });
}

/** The huge-length probes, one per connection in turn. `pre` ones come before any handshake. */
const HUGE_PROBES = [
  { name: 'data header declaring 2^32-1 bytes', pre: true },
  { name: 'control header declaring 2^32-1 bytes', pre: true },
  { name: 'data header declaring 2^31 bytes', pre: true },
  { name: 'produce header at the payload limit, 1 KiB sent', pre: true },
  { name: 'handshake whose client id declares 65535 bytes', pre: true },
  { name: 'join-group declaring 2^32-1 topics', pre: false },
  { name: 'commit-offsets declaring 2^32-1 offsets', pre: false },
  { name: 'read-stream key declaring 2^32-16 bytes', pre: false },
] as const;

function hugeProbe(index: number, maxPayloadBytes: number): Buffer {
  switch (index) {
    case 0:
      return headerOnly(Opcode.PRODUCE, 0xffffffff, 1);
    case 1:
      return headerOnly(Opcode.HANDSHAKE, 0xffffffff, 1);
    case 2:
      return headerOnly(Opcode.FETCH, 0x80000000, 1);
    case 3:
      return Buffer.concat([headerOnly(Opcode.PRODUCE, maxPayloadBytes, 1), Buffer.alloc(1024, 7)]);
    case 4: {
      // minVersion, maxVersion, features, then a u16 length of 65535 with 8 bytes after it.
      const payload = Buffer.alloc(1 + 1 + 4 + 2 + 8);
      payload[0] = 1;
      payload[1] = 1;
      payload.writeUInt16LE(0xffff, 6);
      return rawFrame(Opcode.HANDSHAKE, payload, 1);
    }
    case 5: {
      const head = requestPayload('joinGroup', {
        groupId: 'g',
        memberId: '',
        topics: [],
        sessionTimeoutMs: 10_000,
        strategy: 'range',
      });
      // groupId (2+1) memberId (2) then the topic count u32.
      head.writeUInt32LE(0xffffffff, 5);
      return rawFrame(Opcode.JOIN_GROUP, head, 2);
    }
    case 6: {
      const head = requestPayload('commitOffsets', {
        groupId: 'g',
        memberId: 'm',
        generation: 1,
        offsets: [],
      });
      head.writeUInt32LE(0xffffffff, head.length - 4);
      return rawFrame(Opcode.COMMIT_OFFSETS, head, 2);
    }
    default: {
      const payload = Buffer.alloc(2 + 1 + 4 + 12);
      payload.writeUInt16LE(1, 0);
      payload.write('t', 2);
      payload.writeUInt32LE(0xfffffff0, 3);
      return rawFrame(Opcode.READ_STREAM, payload, 2);
    }
  }
}

async function hugeLengths(j: Extract<AttackerJob, { kind: 'huge-lengths' }>): Promise<Report> {
  const perProbe = HUGE_PROBES.map((p) => ({
    name: p.name,
    beforeHandshake: p.pre,
    sent: 0,
    closedWithError: 0,
    answeredWithError: 0,
    noAnswer: 0,
    codes: new Map<number, number>(),
  }));
  const { opened, failures } = await openMany(j.connections, { port: j.port }, async (c, index) => {
    const probe = index % HUGE_PROBES.length;
    const figures = perProbe[probe]!;
    if (!HUGE_PROBES[probe]!.pre && !(await c.handshake())) return;
    c.write(hugeProbe(probe, j.maxPayloadBytes));
    figures.sent++;
    const closed = await c.waitClosed(HUGE_PROBES[probe]!.pre ? j.closeWithinMs : 1000);
    addAll(figures.codes, c.errorCodes);
    if (closed && c.lastErrorCode !== 0) figures.closedWithError++;
    else if (!closed && c.lastErrorCode !== 0) figures.answeredWithError++;
    else figures.noAnswer++;
  });
  return () => ({
    ...connectionFigures(opened, failures),
    probes: perProbe.map((p) => ({ ...p, codes: codeNames(p.codes) })),
  });
}

async function run(): Promise<Report> {
  switch (job.kind) {
    case 'pipelined-fetch':
      return pipelinedFetch(job);
    case 'huge-credit':
      return hugeCredit(job);
    case 'partial-frames':
      return partialFrames(job);
    case 'flood':
      return flood(job);
    case 'slow-readers':
      return slowReaders(job);
    case 'tiny-flood':
      return tinyFlood(job);
    case 'malformed-records':
      return malformedRecords(job);
    case 'partition-flood':
      return partitionFlood(job);
    case 'huge-lengths':
      return hugeLengths(job);
  }
}

let report: Report | null = null;
process.on('message', (message: { type: string }) => {
  if (message.type !== 'stop') return;
  stopping = true;
  send({
    type: 'result',
    report: {
      ...(report?.() ?? { error: 'the job had not finished setting up' }),
      seconds: Math.round((performance.now() - started) / 100) / 10,
    },
  });
});
process.on('disconnect', () => process.exit(0));

run().then(
  (r) => {
    report = r;
    send({ type: 'ready' });
  },
  (error: unknown) => {
    send({ type: 'failed', error: error instanceof Error ? error.message : String(error) });
  },
);
