// Starts a real etcd (Debian's `etcd-server`) for tests: its own temporary data directory, free
// loopback ports, the fast timings of a test cluster, and a stop() that kills it by its PID and
// removes the directory. Tests that need etcd skip with a reason when the binary is missing.

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { localEtcdArgs } from '../../src/cli/local-etcd.js';
import { makeTempDir, removeTempDir } from './temp-dir.js';

export interface EtcdProcess {
  /** `http://127.0.0.1:<port>` of the client listener. */
  readonly endpoint: string;
  readonly pid: number;
  readonly dataDir: string;
  /** SIGSTOP / SIGCONT, for tests of an etcd that stops answering without closing connections. */
  pause(): void;
  resume(): void;
  stop(): Promise<void>;
}

export function etcdAvailable(): boolean {
  return spawnSync('etcd', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function waitForHealth(
  endpoint: string,
  child: ChildProcess,
  output: () => string,
  tls?: EtcdTlsFiles,
): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`etcd exited with ${child.exitCode}:\n${output()}`);
    if (tls !== undefined) {
      if (await httpsHealthy(endpoint, tls)) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
      continue;
    }
    try {
      const response = await fetch(`${endpoint}/health`);
      if (response.ok && ((await response.json()) as { health?: string }).health === 'true') return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`etcd did not become healthy in 20 s:\n${output()}`);
}

/**
 * Starts etcd on free ports. A port found free can be taken by another test's process before etcd
 * binds it: then etcd exits with "address already in use", and it starts again on other ports.
 */
export async function startEtcd(): Promise<EtcdProcess> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startEtcdOnce();
    } catch (error) {
      if (attempt >= 5 || !/address already in use/.test((error as Error).message)) throw error;
    }
  }
}

/** The PEM files of an etcd that serves clients over TLS (startTlsEtcd). */
export interface EtcdTlsFiles {
  /** Its certificate (for 127.0.0.1) and key. */
  readonly certFile: string;
  readonly keyFile: string;
  /** The CA that signed it, and (with clientCertAuth) the certificates of its clients. */
  readonly caFile: string;
  /** etcd's --client-cert-auth: clients must present a certificate signed by caFile. */
  readonly clientCertAuth?: boolean;
  /** A client certificate and key signed by caFile, for the harness's own health check. */
  readonly clientCertFile?: string;
  readonly clientKeyFile?: string;
}

/** GET /health over HTTPS with the CA and client certificate of `tls`. */
function httpsHealthy(endpoint: string, tls: EtcdTlsFiles): Promise<boolean> {
  return new Promise((resolve) => {
    const url = new URL(`${endpoint}/health`);
    const req = request(
      {
        host: url.hostname,
        port: Number(url.port),
        path: url.pathname,
        ca: readFileSync(tls.caFile),
        ...(tls.clientCertFile !== undefined ? { cert: readFileSync(tls.clientCertFile) } : {}),
        ...(tls.clientKeyFile !== undefined ? { key: readFileSync(tls.clientKeyFile) } : {}),
      },
      (response) => {
        let body = '';
        response.on('data', (chunk: Buffer) => {
          body += chunk.toString('utf8');
        });
        response.on('end', () => resolve(response.statusCode === 200 && body.includes('"true"')));
      },
    );
    req.on('error', () => resolve(false));
    req.end();
  });
}

/**
 * Starts etcd serving clients over TLS only (`https://`, --cert-file, --key-file,
 * --trusted-ca-file, and --client-cert-auth when asked); `endpoint` is its https:// URL. The peer
 * port stays plain (one member, on loopback).
 */
export async function startTlsEtcd(tls: EtcdTlsFiles): Promise<EtcdProcess> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startEtcdOnce(tls);
    } catch (error) {
      if (attempt >= 5 || !/address already in use/.test((error as Error).message)) throw error;
    }
  }
}

async function startEtcdOnce(tls?: EtcdTlsFiles): Promise<EtcdProcess> {
  const dataDir = await makeTempDir('ms-etcd-');
  const clientPort = await freePort();
  const peerPort = await freePort();
  const endpoint = `${tls === undefined ? 'http' : 'https'}://127.0.0.1:${clientPort}`;
  const args = localEtcdArgs({ name: 'test', dataDir, clientPort, peerPort });
  const tlsArgs =
    tls === undefined
      ? []
      : [
          `--cert-file=${tls.certFile}`,
          `--key-file=${tls.keyFile}`,
          `--trusted-ca-file=${tls.caFile}`,
          ...(tls.clientCertAuth === true ? ['--client-cert-auth'] : []),
        ];
  const clientUrls = (arg: string) =>
    tls !== undefined && /^--(listen|advertise)-client-urls=/.test(arg)
      ? arg.replace('http://', 'https://')
      : arg;
  const child = spawn('etcd', [...args.map(clientUrls), ...tlsArgs, '--log-level=error'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-4000);
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error('etcd did not start');
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await waitForHealth(endpoint, child, () => stderr, tls);
  } catch (error) {
    child.kill('SIGKILL');
    await exited;
    await removeTempDir(dataDir);
    throw error;
  }
  return {
    endpoint,
    pid,
    dataDir,
    pause: () => process.kill(pid, 'SIGSTOP'),
    resume: () => process.kill(pid, 'SIGCONT'),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        process.kill(pid, 'SIGCONT');
        child.kill('SIGKILL');
        await exited;
      }
      await removeTempDir(dataDir);
    },
  };
}
