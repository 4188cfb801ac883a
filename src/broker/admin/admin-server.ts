// The admin HTTP endpoint: the web status page, Prometheus metrics, health and readiness, and a
// small read-only JSON API for status, topics and groups. GET, and HEAD for every GET route (the
// same status and headers, no body: uptime checkers and curl -I use it); errors are JSON bodies with
// the error code. Binds to the configured address (127.0.0.1 by default). With `tls`, it serves
// HTTPS only, with the broker's certificate (replaced in place by `reloadTls`, as the listener's).

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { isMemoryStreamerError } from '../../common/errors.js';
import type { BrokerMetrics } from '../../metrics/broker-metrics.js';
import type { BrokerCore } from '../broker-core.js';
import { ADMIN_RESERVE } from '../fd-budget.js';
import { checkSecureContext, type ServerTlsOptions, secureContextOptions } from '../server/tls.js';
import { STATUS_PAGE_CSP, STATUS_PAGE_HTML, STATUS_PAGE_SCRIPT } from './status-page.js';
import { statusSnapshot } from './status-snapshot.js';

export interface AdminServerOptions {
  core: BrokerCore;
  metrics: BrokerMetrics;
  host: string;
  port: number;
  /** Whether the broker is ready to serve (storage recovered, listening, not stopping). */
  ready: () => boolean;
  /** Serve HTTPS with this certificate (client certificates are not asked for). */
  tls?: ServerTlsOptions;
}

function json(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, (_key, value: unknown) =>
    typeof value === 'bigint' ? value.toString() : value,
  );
  response.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
  });
  response.end(text);
}

function page(response: ServerResponse, contentType: string, body: string): void {
  response.writeHead(200, {
    'content-type': `${contentType}; charset=utf-8`,
    'content-security-policy': STATUS_PAGE_CSP,
    'x-content-type-options': 'nosniff',
    'cache-control': 'no-cache',
  });
  response.end(body);
}

function statusFor(codeName: string): number {
  if (codeName.startsWith('UNKNOWN_')) return 404;
  if (codeName === 'SHUTTING_DOWN') return 503;
  return 400;
}

export class AdminServer {
  private readonly server: Server | HttpsServer;
  private readonly startedAt = Date.now();

  private constructor(private readonly options: AdminServerOptions) {
    const tls = options.tls === undefined ? null : secureContextOptions(options.tls);
    if (tls !== null) checkSecureContext(tls);
    const listener = (request: IncomingMessage, response: ServerResponse) => {
      // Nothing a request does may become an unhandled rejection: that would end the process.
      this.handle(request, response).catch(() => {
        if (!response.headersSent)
          json(response, 500, { error: { name: 'INTERNAL_ERROR', message: 'admin request failed' } });
        else response.destroy();
      });
    };
    this.server = tls === null ? createServer(listener) : createHttpsServer(tls, listener);
    // The admin port has its own share of file descriptors (fd-budget.ts): a flood of admin
    // connections is refused past it instead of taking descriptors storage or clients need.
    this.server.maxConnections = ADMIN_RESERVE;
  }

  static async start(options: AdminServerOptions): Promise<AdminServer> {
    const admin = new AdminServer(options);
    await new Promise<void>((resolve, reject) => {
      admin.server.once('error', reject);
      admin.server.listen(options.port, options.host, () => {
        admin.server.off('error', reject);
        resolve();
      });
    });
    return admin;
  }

  /** True when the endpoint serves HTTPS. */
  get secure(): boolean {
    return this.options.tls !== undefined;
  }

  /** A new certificate for new connections (INVALID_CONFIG when it does not load; the old one stays). */
  reloadTls(options: ServerTlsOptions): void {
    if (!('setSecureContext' in this.server)) return;
    const context = secureContextOptions(options);
    checkSecureContext(context);
    this.server.setSecureContext(context);
  }

  get address(): { host: string; port: number } {
    const address = this.server.address();
    if (address === null || typeof address === 'string') throw new Error('admin server is not listening');
    return { host: address.address, port: address.port };
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    let path: string;
    let segments: string[];
    try {
      path = new URL(request.url ?? '/', 'http://admin').pathname.replace(/\/+$/, '') || '/';
      segments = path.split('/').slice(1).map(decodeURIComponent);
    } catch {
      json(response, 400, {
        error: {
          name: 'BAD_REQUEST',
          message: `cannot parse the request path ${JSON.stringify(request.url)}`,
        },
      });
      return;
    }
    // A HEAD request runs the GET route: Node's response drops the body of an answer to HEAD.
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.setHeader('allow', 'GET, HEAD');
      json(response, 405, {
        error: {
          name: 'METHOD_NOT_ALLOWED',
          message: `${request.method} is not allowed; the admin API is read-only (GET, HEAD)`,
        },
      });
      return;
    }
    try {
      const core = this.options.core;
      if (path === '/status' && (request.url ?? '').split('?')[0]!.endsWith('/')) {
        // The page loads status.js and api/status relative to itself: /status/ would miss them.
        response.writeHead(301, { location: '/status' });
        response.end();
      } else if (path === '/' || path === '/status') {
        page(response, 'text/html', STATUS_PAGE_HTML);
      } else if (path === '/status.js') {
        page(response, 'text/javascript', STATUS_PAGE_SCRIPT);
      } else if (path === '/api/status') {
        json(response, 200, await statusSnapshot(core, this.startedAt));
      } else if (path === '/metrics') {
        // Rendered before the head is written, so a failing collector still gets a JSON 500.
        const text = await this.options.metrics.text();
        response.writeHead(200, { 'content-type': this.options.metrics.registry.contentType });
        response.end(text);
      } else if (path === '/healthz') {
        json(response, 200, { status: 'ok' });
      } else if (path === '/readyz') {
        const ready = this.options.ready();
        json(response, ready ? 200 : 503, { status: ready ? 'ready' : 'not ready' });
      } else if (path === '/api/topics') {
        json(response, 200, await core.execute('listTopics', {}));
      } else if (segments[0] === 'api' && segments[1] === 'topics' && segments.length === 3) {
        json(response, 200, await core.execute('describeTopic', { name: segments[2]! }));
      } else if (path === '/api/groups') {
        json(response, 200, await core.execute('listGroups', {}));
      } else if (segments[0] === 'api' && segments[1] === 'groups' && segments.length === 3) {
        json(response, 200, await core.execute('describeGroup', { groupId: segments[2]! }));
      } else {
        json(response, 404, {
          error: {
            name: 'NOT_FOUND',
            message: `no such endpoint ${path}; try / (status page), /metrics, /healthz, /readyz, /api/status, /api/topics, /api/groups`,
          },
        });
      }
    } catch (error) {
      if (isMemoryStreamerError(error)) {
        json(response, statusFor(error.codeName), {
          error: {
            code: error.code,
            name: error.codeName,
            retriable: error.retriable,
            message: error.message,
          },
        });
      } else {
        json(response, 500, { error: { name: 'INTERNAL_ERROR', message: (error as Error).message } });
      }
    }
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
