// What the runner asks an attacker process to do (serialised into its argv) and the figures it
// reports back. Shared by test/battery/attacker.ts and test/battery/attacks.ts.

interface JobBase {
  port: number;
  seed: number;
}

export type AttackerJob = JobBase &
  (
    | {
        kind: 'pipelined-fetch';
        connections: number;
        requestsPerConnection: number;
        topic: string;
        maxBytes: number;
      }
    | {
        kind: 'huge-credit';
        connections: number;
        subscriptionsPerConnection: number;
        topic: string;
        credit: number;
      }
    | { kind: 'partial-frames'; connections: number; frameBytes: number; sendBytes: number; topic: string }
    | {
        kind: 'flood';
        connections: number;
        localAddress: string;
        handshakeTenths: number;
        startDelayMs: number;
      }
    | {
        kind: 'slow-readers';
        connections: number;
        topic: string;
        credit: number;
        fetches: number;
        fetchMaxBytes: number;
        bytesPerTick: number;
        tickMs: number;
      }
    | { kind: 'tiny-flood'; connections: number }
    | { kind: 'malformed-records'; topic: string; randomPerCodec: number }
    | { kind: 'partition-flood'; names: string[]; partitions: number; requestTimeoutMs: number }
    | { kind: 'huge-lengths'; connections: number; maxPayloadBytes: number; closeWithinMs: number }
  );

/** JSON figures an attacker reports; each attack's checks read the ones they need. */
export type AttackerReport = { [key: string]: unknown };
