// Reloads the broker's TLS certificate, key and CA from their files on SIGHUP and when one of the
// files changes (certificate rotation by a tool such as certbot or cert-manager): new connections
// get the new certificate, open connections keep theirs and stay up. Files that do not load (a
// key that no longer matches its certificate while a rotation is half-written) are logged and the
// running certificate stays; the next change tries again.

import type { BrokerNode } from '../broker/broker-node.js';
import type { BrokerLogger } from '../metrics/logger.js';
import { readTlsFiles, type TlsFiles } from './broker-options.js';
import { watchFileChanges } from './watch-file.js';

/** A rotation writes the certificate and the key one after the other: one reload for both. */
const DEBOUNCE_MS = 200;

export interface TlsReloader {
  close(): void;
}

export function reloadTlsOnChange(
  broker: BrokerNode,
  files: TlsFiles | null,
  logger: BrokerLogger,
): TlsReloader {
  if (files === null) return { close: () => undefined };
  const reload = (trigger: string) => {
    try {
      broker.reloadTls(readTlsFiles(files));
      logger.info({ trigger, cert: files.cert }, 'TLS certificates reloaded');
    } catch (error) {
      logger.error(
        { trigger, reason: (error as Error).message },
        'TLS certificate reload refused; the running certificates stay',
      );
    }
  };
  const onHangup = () => reload('SIGHUP');
  process.on('SIGHUP', onHangup);
  let debounce: NodeJS.Timeout | null = null;
  const watches = [files.cert, files.key, ...(files.ca !== null ? [files.ca] : [])].map((path) =>
    watchFileChanges(
      path,
      () => {
        if (debounce !== null) clearTimeout(debounce);
        debounce = setTimeout(() => reload('file change'), DEBOUNCE_MS);
      },
      {
        onFallback: (reason) =>
          logger.warn({ file: path, reason }, 'watching the TLS file by polling every second'),
      },
    ),
  );
  return {
    close() {
      process.off('SIGHUP', onHangup);
      if (debounce !== null) clearTimeout(debounce);
      for (const watch of watches) watch.close();
    },
  };
}
