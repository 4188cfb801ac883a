// `memorystreamer serve --cores N`: one broker process per core on this machine, all members of
// one cluster, so the partitions (and the CPU work of serving them) spread over every core. This
// process is their supervisor and runs no broker itself:
//   - without --cluster it starts a one-member etcd (local-etcd-process.ts) on free ports, its
//     data in DATA/etcd, so the cluster's metadata outlives a restart as the brokers' logs do;
//   - member i (broker id i, 1..N) is `serve --cluster … --broker-id i` with its own data directory
//     DATA/broker-i, client port PORT+i-1 (advertised, so clients reach it there) and admin port;
//   - SIGTERM and SIGINT are passed on to every member by its PID (each shuts down cleanly), then
//     etcd is stopped; SIGHUP is passed on (each member reloads its configuration);
//   - a member (or the local etcd) that exits on its own is started again after a backoff (250 ms
//     doubling to 10 s, back to 250 ms once it has run 10 s); a member that cannot start (at the
//     start, or 5 times in a row later) stops them all and makes this process exit non-zero;
//   - the members and etcd run under `setpriv --pdeathsig SIGTERM` where it exists, so they stop
//     even if this process is killed with SIGKILL.

import { spawnSync } from 'node:child_process';
import { availableParallelism, hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { type SpawnedBroker, spawnBrokerProcess } from '../bench/spawned-broker.js';
import type { SettingKey } from '../broker/config/config-schema.js';
import { type ConfigInputs, envName, loadConfig } from '../broker/config/load-config.js';
import { errorOf } from '../protocol/error-codes.js';
import { brokerOptionsFrom } from './broker-options.js';
import type { CliContext } from './context.js';
import { freePort } from './free-port.js';
import { type LocalEtcdProcess, startLocalEtcd } from './local-etcd-process.js';
import { parseIntegerOption } from './options.js';
import { asUsage } from './output.js';

const MAX_CORES = 64;
const FIRST_BACKOFF_MS = 250;
const MAX_BACKOFF_MS = 10_000;
/** A member that ran this long before it exited starts again after the first backoff. */
const STABLE_AFTER_MS = 10_000;
/** Starts in a row that fail before the supervisor gives up. */
const MAX_FAILED_STARTS = 5;

/** `--cores`: a whole number, or `auto` (the cores this process may use). */
export function parseCores(value: string | undefined): number {
  if (value === undefined) return 1;
  if (value.trim() === 'auto') return Math.min(MAX_CORES, availableParallelism());
  return parseIntegerOption('--cores', value, 1, MAX_CORES);
}

export interface MemberPorts {
  /** Client port; 0 until a free one is picked at start. */
  port: number;
  /** Admin HTTP port (0: a free one), null when the admin endpoint is off. */
  adminPort: number | null;
}

/**
 * The ports of N members: clients on PORT, PORT+1, …; admin endpoints on ADMIN, ADMIN+1, …, or
 * right after the client ports when those two ranges would overlap (the defaults 7400 and 7401
 * give clients 7400, 7401 and admin 7402, 7403 for two members). Port 0 picks free ones.
 */
export function planMemberPorts(cores: number, port: number, adminPort: number | null): MemberPorts[] {
  let adminBase = adminPort;
  if (
    adminPort !== null &&
    adminPort !== 0 &&
    port !== 0 &&
    adminPort < port + cores &&
    port < adminPort + cores
  )
    adminBase = port + cores;
  const last = Math.max(
    port === 0 ? 0 : port + cores - 1,
    adminBase === null || adminBase === 0 ? 0 : adminBase + cores - 1,
  );
  if (last > 65535)
    throw errorOf(
      'INVALID_CONFIG',
      `--cores ${cores} needs ports up to ${last} from --port ${port}${adminPort !== null ? ` and --admin-port ${adminPort}` : ''}; ports end at 65535`,
    );
  return Array.from({ length: cores }, (_, i) => ({
    port: port === 0 ? 0 : port + i,
    adminPort: adminBase === null ? null : adminBase === 0 ? 0 : adminBase + i,
  }));
}

export interface CoresOptions {
  cores: number;
  /** Where members listen (server.host). */
  host: string;
  /** First client port (server.port); 0 picks a free port for each member. */
  port: number;
  /** First admin port (admin.port); null when admin.enabled is false. */
  adminPort: number | null;
  /** The data directory (storage.data_dir); each member has DATA/broker-<id>, etcd DATA/etcd. */
  dataDir: string;
  /** An etcd to join (cluster.etcd); null starts a local one. */
  cluster: string | null;
  /** The configuration file every member reads (serve --config). */
  configFile: string | null;
  /** Settings every member gets (from the flags), passed as MEMORYSTREAMER_* variables. */
  settings: Partial<Record<SettingKey, string | number>>;
  logLevel: string;
  /** Reports of members that exit and start again, for the log. */
  onEvent?: (event: MemberEvent) => void;
}

export type MemberEvent =
  | {
      event: 'member-exited';
      brokerId: number;
      code: number | null;
      signal: string | null;
      restartInMs: number;
    }
  | { event: 'member-start-failed'; brokerId: number; reason: string; restartInMs: number }
  | { event: 'member-restarted'; brokerId: number; pid: number; port: number }
  | { event: 'etcd-exited'; restartInMs: number }
  | { event: 'etcd-restarted'; pid: number };

export interface MemberInfo {
  brokerId: number;
  host: string;
  port: number;
  /** host:port it advertises to the cluster and clients. */
  advertise: string;
  adminPort: number | null;
  dataDir: string;
  pid: number;
}

/** The settings the supervisor sets for each member itself. */
const PER_MEMBER: readonly SettingKey[] = [
  'server.host',
  'server.port',
  'admin.port',
  'storage.data_dir',
  'cluster.etcd',
  'cluster.broker_id',
  'cluster.advertise',
];

/** `setpriv --pdeathsig SIGTERM` when the system has it: children stop when this process dies. */
function deathSignalWrapper(): string[] {
  const found = spawnSync('setpriv', ['--version'], { stdio: 'ignore' }).status === 0;
  return found ? ['setpriv', '--pdeathsig', 'SIGTERM'] : [];
}

/** The host a member advertises: its listen address, or the machine's name for a wildcard. */
function advertiseHost(host: string): string {
  return host === '0.0.0.0' || host === '::' || host === '' ? hostname() : host;
}

class Member {
  process: SpawnedBroker | null = null;
  startedAt = 0;
  /** Starts that failed, or exits soon after a start, in a row (for the backoff). */
  failuresInRow = 0;
  restartTimer: NodeJS.Timeout | null = null;
  starting: Promise<void> | null = null;

  constructor(
    readonly brokerId: number,
    readonly host: string,
    public ports: MemberPorts,
    readonly dataDir: string,
  ) {}

  get advertise(): string {
    return `${advertiseHost(this.host)}:${this.ports.port}`;
  }
}

export class CoreSupervisor {
  private stopping = false;
  private failure: ((error: Error) => void) | null = null;
  /** Settles with the error that ended the supervision (a member that cannot start again). */
  readonly failed: Promise<Error>;

  private constructor(
    private readonly options: CoresOptions,
    readonly cluster: string,
    private localEtcd: LocalEtcdProcess | null,
    private readonly members: Member[],
    private readonly wrapper: string[],
  ) {
    this.failed = new Promise((resolve) => {
      this.failure = resolve;
    });
    if (localEtcd !== null) this.watchEtcd(localEtcd, 0);
  }

  /** The local etcd (null with --cluster). */
  get etcd(): LocalEtcdProcess | null {
    return this.localEtcd;
  }

  /** Starts the local etcd again, on the same ports, if it exits while the members run. */
  private watchEtcd(etcd: LocalEtcdProcess, failuresInRow: number): void {
    const startedAt = Date.now();
    void etcd.exited.then(() => {
      if (this.stopping || this.localEtcd !== etcd) return;
      const failures = Date.now() - startedAt >= STABLE_AFTER_MS ? 0 : failuresInRow + 1;
      const delay = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** Math.max(0, failures - 1));
      this.options.onEvent?.({ event: 'etcd-exited', restartInMs: delay });
      const again = (tries: number) => {
        setTimeout(() => {
          if (this.stopping) return;
          startLocalEtcd({
            dir: this.options.dataDir,
            prefix: 'local',
            wrapper: this.wrapper,
            ports: etcd.ports,
          }).then(
            (next) => {
              if (this.stopping) {
                void next.stop();
                return;
              }
              this.localEtcd = next;
              this.options.onEvent?.({ event: 'etcd-restarted', pid: next.pid });
              this.watchEtcd(next, failures);
            },
            (error: unknown) => {
              if (this.stopping) return;
              if (tries + 1 >= MAX_FAILED_STARTS)
                this.failure?.(
                  errorOf(
                    'CONTROL_PLANE_UNAVAILABLE',
                    `the local etcd did not start again: ${(error as Error).message}`,
                  ),
                );
              else again(tries + 1);
            },
          );
        }, delay);
      };
      again(0);
    });
  }

  /** Starts etcd (unless --cluster) and every member; fails, with everything stopped, if any cannot start. */
  static async start(options: CoresOptions): Promise<CoreSupervisor> {
    const wrapper = deathSignalWrapper();
    const etcd =
      options.cluster === null
        ? await startLocalEtcd({ dir: options.dataDir, prefix: 'local', wrapper })
        : null;
    const plan = planMemberPorts(options.cores, options.port, options.adminPort);
    const members: Member[] = [];
    try {
      for (const [i, ports] of plan.entries()) {
        const picked = {
          port: ports.port === 0 ? await freePort(options.host) : ports.port,
          adminPort: ports.adminPort === 0 ? await freePort() : ports.adminPort,
        };
        members.push(new Member(i + 1, options.host, picked, join(options.dataDir, `broker-${i + 1}`)));
      }
    } catch (error) {
      await etcd?.stop();
      throw error;
    }
    const supervisor = new CoreSupervisor(options, etcd?.cluster ?? options.cluster!, etcd, members, wrapper);
    const started = await Promise.allSettled(members.map((member) => supervisor.spawn(member)));
    const refused = started.find((result) => result.status === 'rejected');
    if (refused !== undefined) {
      await supervisor.stop();
      const index = started.indexOf(refused);
      throw errorOf('CORES_MEMBER_FAILED', `broker ${index + 1}: ${(refused.reason as Error).message}`, {
        cause: refused.reason,
      });
    }
    return supervisor;
  }

  /** What each member is and where it listens. */
  info(): MemberInfo[] {
    return this.members.map((member) => ({
      brokerId: member.brokerId,
      host: member.host,
      port: member.ports.port,
      advertise: member.advertise,
      adminPort: member.ports.adminPort,
      dataDir: member.dataDir,
      pid: member.process?.pid ?? 0,
    }));
  }

  /** Passes a signal to every running member (SIGHUP: reload the configuration). */
  signal(signal: NodeJS.Signals): void {
    for (const member of this.members) member.process?.child.kill(signal);
  }

  /**
   * SIGTERM to every member at once (each stops cleanly; one still running after 10 s is killed),
   * then etcd; no restarts from now on. Resolves with each member's exit code (null: killed).
   */
  async stop(): Promise<Array<{ brokerId: number; code: number | null }>> {
    this.stopping = true;
    const codes = await Promise.all(
      this.members.map(async (member) => {
        if (member.restartTimer !== null) clearTimeout(member.restartTimer);
        member.restartTimer = null;
        await member.starting?.catch(() => undefined);
        const code = member.process === null ? null : await member.process.stop();
        return { brokerId: member.brokerId, code };
      }),
    );
    await this.localEtcd?.stop();
    return codes;
  }

  private spawn(member: Member): Promise<void> {
    const starting = this.spawnOnce(member);
    member.starting = starting;
    return starting.finally(() => {
      if (member.starting === starting) member.starting = null;
    });
  }

  private async spawnOnce(member: Member): Promise<void> {
    const settings: Record<string, string> = {};
    for (const [key, value] of Object.entries(this.options.settings) as Array<[SettingKey, string | number]>)
      if (!PER_MEMBER.includes(key)) settings[envName(key)] = String(value);
    const child = await spawnBrokerProcess({
      dataDir: member.dataDir,
      host: member.host,
      port: member.ports.port,
      adminPort: member.ports.adminPort,
      ...(this.options.configFile !== null ? { configFile: this.options.configFile } : {}),
      env: {
        ...settings,
        MEMORYSTREAMER_CLUSTER_ETCD: this.cluster,
        MEMORYSTREAMER_CLUSTER_BROKER_ID: String(member.brokerId),
        MEMORYSTREAMER_CLUSTER_ADVERTISE: member.advertise,
        MEMORYSTREAMER_LOG_LEVEL: this.options.logLevel,
      },
      wrapper: this.wrapper,
      stderr: 'inherit',
      // Its own process group: Ctrl-C in a terminal reaches this process, which stops the members
      // in order, instead of every process at once.
      detached: true,
    });
    member.process = child;
    member.startedAt = Date.now();
    if (this.stopping) return;
    void child.exited.then(({ code, signal }) => {
      if (this.stopping || member.process !== child) return;
      member.process = null;
      const ranMs = Date.now() - member.startedAt;
      member.failuresInRow = ranMs >= STABLE_AFTER_MS ? 0 : member.failuresInRow + 1;
      const delay = this.backoffMs(member);
      this.options.onEvent?.({
        event: 'member-exited',
        brokerId: member.brokerId,
        code,
        signal,
        restartInMs: delay,
      });
      this.scheduleRestart(member, delay);
    });
  }

  private backoffMs(member: Member): number {
    return Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** Math.max(0, member.failuresInRow - 1));
  }

  private scheduleRestart(member: Member, delay: number): void {
    member.restartTimer = setTimeout(() => {
      member.restartTimer = null;
      if (this.stopping) return;
      this.spawn(member).then(
        () => {
          if (this.stopping || member.process === null) return;
          this.options.onEvent?.({
            event: 'member-restarted',
            brokerId: member.brokerId,
            pid: member.process.pid,
            port: member.ports.port,
          });
        },
        (error: unknown) => {
          if (this.stopping) return;
          member.failuresInRow++;
          if (member.failuresInRow >= MAX_FAILED_STARTS) {
            this.failure?.(
              errorOf(
                'CORES_MEMBER_FAILED',
                `broker ${member.brokerId} failed to start ${member.failuresInRow} times in a row: ${(error as Error).message}`,
                { cause: error },
              ),
            );
            return;
          }
          const delay = this.backoffMs(member);
          this.options.onEvent?.({
            event: 'member-start-failed',
            brokerId: member.brokerId,
            reason: (error as Error).message,
            restartInMs: delay,
          });
          this.scheduleRestart(member, delay);
        },
      );
    }, delay);
  }
}

/**
 * `serve --cores N` with N above 1: loads the configuration as `serve` does, starts the members,
 * prints where each listens, and supervises them until SIGTERM or SIGINT (or a member that cannot
 * start again, which ends it with that error).
 */
export async function serveCores(cores: number, inputs: ConfigInputs, context: CliContext): Promise<void> {
  // Wrong settings are usage errors (exit 2), found before any member starts.
  const { config, options } = await asUsage(async () => {
    const config = await loadConfig(inputs);
    const values = config.values;
    if (values['cluster.broker_id'] !== -1 || values['cluster.advertise'] !== '')
      throw errorOf(
        'CORES_OPTION_CONFLICT',
        `leave out --broker-id and --advertise (cluster.broker_id, cluster.advertise) with --cores ${cores}`,
      );
    return { config, options: brokerOptionsFrom(config, (path) => resolve(path)) };
  });
  const values = config.values;
  const etcd = values['cluster.etcd'] as string;
  const print = (value: MemberEvent) => context.print(value, describeEvent(value));
  const supervisor = await CoreSupervisor.start({
    cores,
    host: options.host ?? '127.0.0.1',
    port: options.port ?? 7400,
    adminPort: options.admin?.port ?? null,
    dataDir: options.dataDir,
    cluster: etcd === '' ? null : etcd,
    configFile: config.file,
    settings: inputs.flags ?? {},
    logLevel: options.logLevel,
    onEvent: print,
  });
  const members = supervisor.info();
  const addresses = members.map((member) => member.advertise).join(',');
  const outcome = await new Promise<{ signal: string } | { error: Error }>((done) => {
    const onHangup = () => supervisor.signal('SIGHUP');
    const finish = (result: { signal: string } | { error: Error }) => {
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
      process.off('SIGHUP', onHangup);
      done(result);
    };
    const onTerm = () => finish({ signal: 'SIGTERM' });
    const onInt = () => finish({ signal: 'SIGINT' });
    process.on('SIGTERM', onTerm);
    process.on('SIGINT', onInt);
    process.on('SIGHUP', onHangup);
    void supervisor.failed.then((error) => finish({ error }));
    // Announce only now: whoever waits for this line may signal at once.
    context.print(
      {
        event: 'listening',
        cores,
        cluster: supervisor.cluster,
        etcd:
          supervisor.etcd === null
            ? null
            : {
                port: supervisor.etcd.clientPort,
                pid: supervisor.etcd.pid,
                dataDir: supervisor.etcd.dataDir,
              },
        members,
        brokers: addresses,
        dataDir: options.dataDir,
        pid: process.pid,
      },
      [
        `memorystreamer: ${cores} brokers, one cluster (${supervisor.etcd === null ? `etcd ${supervisor.cluster}` : `local etcd 127.0.0.1:${supervisor.etcd.clientPort}, log ${supervisor.etcd.logFile}`})`,
        ...members.map(
          (member) =>
            `  broker ${member.brokerId}  ${member.advertise}${member.adminPort !== null ? `  status page http://${options.admin?.host ?? '127.0.0.1'}:${member.adminPort}/` : ''}  data ${member.dataDir}  pid ${member.pid}`,
        ),
        `clients connect to any of them: memorystreamer --broker ${addresses} …`,
        `supervisor pid ${process.pid}; SIGTERM or Ctrl-C stops them all`,
      ].join('\n'),
    );
  });
  if ('signal' in outcome)
    context.print(
      { event: 'stopping', signal: outcome.signal },
      `received ${outcome.signal}, stopping ${cores} brokers`,
    );
  const exits = await supervisor.stop();
  if ('error' in outcome) throw outcome.error;
  const unclean = exits.filter((exit) => exit.code !== 0);
  context.print(
    { event: 'stopped', members: exits },
    unclean.length === 0
      ? 'brokers stopped'
      : `brokers stopped; ${unclean.map((exit) => `broker ${exit.brokerId} ${exit.code === null ? 'was killed after 10 s' : `exited with code ${exit.code}`}`).join(', ')}`,
  );
}

function describeEvent(event: MemberEvent): string {
  switch (event.event) {
    case 'member-exited':
      return `broker ${event.brokerId} exited (${event.signal ?? `code ${event.code}`}); starting it again in ${event.restartInMs} ms`;
    case 'member-start-failed':
      return `broker ${event.brokerId} did not start (${event.reason}); trying again in ${event.restartInMs} ms`;
    case 'member-restarted':
      return `broker ${event.brokerId} started again (pid ${event.pid}, port ${event.port})`;
    case 'etcd-exited':
      return `the local etcd exited; starting it again in ${event.restartInMs} ms`;
    case 'etcd-restarted':
      return `the local etcd started again (pid ${event.pid})`;
  }
}
