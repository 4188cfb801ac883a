// The TLS settings of a configuration: the [tls] section and its older names server.tls_* give the
// same broker options; a configuration that uses both is refused; problems are named in the form
// the configuration uses; tls.admin = false keeps the admin endpoint on plain HTTP.
// Authorization and tenants: a broker alone keeps its files (no store opener, no tenant registry in
// etcd); a cluster with authz opens both in etcd and allows its brokers' principals everything;
// authz in a cluster without authentication is refused.

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/broker/config/load-config.js';
import {
  auditFrom,
  authzFrom,
  brokerOptionsFrom,
  tenantsFrom,
  tlsFilesFrom,
} from '../../src/cli/broker-options.js';
import { useTempDir } from '../harness/temp-dir.js';

const scratch = useTempDir('ms-tls-options-');

async function configOf(text: string) {
  const path = join(scratch.path, 'broker.toml');
  await writeFile(path, text);
  return loadConfig({ file: path });
}

const resolvePath = (path: string) => (path.startsWith('/') ? path : join(scratch.path, path));

describe('TLS settings', () => {
  it('[tls] and server.tls_* mean the same', async () => {
    // The files are only read here, not parsed: any bytes do.
    for (const [name, text] of [
      ['cert.pem', 'CERT'],
      ['key.pem', 'KEY'],
      ['ca.pem', 'CA'],
    ]) {
      await writeFile(join(scratch.path, name!), text!);
    }
    const newer = await configOf(
      '[tls]\ncert_file = "cert.pem"\nkey_file = "key.pem"\nca_file = "ca.pem"\nclient_auth = "require"\n',
    );
    const older = await configOf(
      '[server]\ntls_cert_file = "cert.pem"\ntls_key_file = "key.pem"\ntls_ca_file = "ca.pem"\ntls_client_auth = "require"\n',
    );
    const expected = {
      cert: Buffer.from('CERT'),
      key: Buffer.from('KEY'),
      ca: Buffer.from('CA'),
      clientAuth: 'require',
    };
    expect(brokerOptionsFrom(newer, resolvePath).tls).toEqual(expected);
    expect(brokerOptionsFrom(older, resolvePath).tls).toEqual(expected);
    expect(tlsFilesFrom(newer, resolvePath)).toEqual(tlsFilesFrom(older, resolvePath));
    expect(brokerOptionsFrom(newer, resolvePath).admin).toEqual({ host: '127.0.0.1', port: 7401 });
    const plainAdmin = await configOf('[tls]\ncert_file = "cert.pem"\nkey_file = "key.pem"\nadmin = false\n');
    expect(brokerOptionsFrom(plainAdmin, resolvePath).admin).toEqual({
      host: '127.0.0.1',
      port: 7401,
      tls: false,
    });
    expect(brokerOptionsFrom(await configOf(''), resolvePath).tls).toBeUndefined();
  });

  it('refuses both forms at once, and names problems in the form used', async () => {
    for (const [text, message] of [
      [
        '[server]\ntls_cert_file = "cert.pem"\n[tls]\nkey_file = "key.pem"\n',
        /both in \[tls\] and with the server.tls_\* keys/,
      ],
      ['[tls]\ncert_file = "cert.pem"\n', /tls.cert_file and tls.key_file go together/],
      ['[server]\ntls_key_file = "key.pem"\n', /server.tls_cert_file and server.tls_key_file go together/],
      ['[tls]\nclient_auth = "request"\n', /tls.ca_file and tls.client_auth need tls.cert_file/],
      ['[tls]\ncert_file = "missing.pem"\nkey_file = "key.pem"\n', /tls.cert_file: cannot read/],
    ] as const) {
      const config = await configOf(text);
      expect(() => brokerOptionsFrom(config, resolvePath)).toThrow(
        expect.objectContaining({ codeName: 'INVALID_CONFIG', message: expect.stringMatching(message) }),
      );
    }
  });
});

describe('authorization and tenants', () => {
  const cluster = {
    'cluster.etcd': 'etcd://127.0.0.1:2379/prod',
    'cluster.broker_id': 1,
    'cluster.advertise': '127.0.0.1:7400',
  };

  it('keeps a broker alone on its files', async () => {
    const config = await loadConfig({
      file: null,
      env: {},
      flags: {
        'authz.enabled': 'true',
        'authz.super_users': 'User:admin',
        'auth.mechanisms': 'SCRAM-SHA-256',
      },
    });
    expect(authzFrom(config)).toEqual({ superUsers: ['User:admin'] });
    expect(tenantsFrom(config)).toBeNull();
    expect(brokerOptionsFrom(config, resolvePath).openTenants).toBeUndefined();
  });

  it('opens the ACLs and tenants of a cluster in etcd, its brokers allowed everything', async () => {
    const config = await loadConfig({
      file: null,
      env: {},
      flags: {
        ...cluster,
        'authz.enabled': 'true',
        'auth.mechanisms': 'SCRAM-SHA-256,mtls',
        'cluster.broker_principals': 'User:broker-1,User:broker-2',
      },
    });
    const authz = authzFrom(config);
    expect(authz?.superUsers).toEqual([]);
    expect(authz?.brokerPrincipals).toEqual(['User:broker-1', 'User:broker-2']);
    expect(authz?.openStore).toBeTypeOf('function');
    expect(tenantsFrom(config)).toBeTypeOf('function');
  });

  it('refuses authz in a cluster without authentication', async () => {
    const config = await loadConfig({ file: null, env: {}, flags: { ...cluster, 'authz.enabled': 'true' } });
    expect(() => authzFrom(config)).toThrow(
      /authz.enabled in a cluster \(cluster.etcd\) needs authentication/,
    );
  });
});

describe('Audit settings', () => {
  it('passes audit.topic on to the broker, and nothing when it is empty', async () => {
    const withTopic = await configOf('[audit]\nenabled = true\ntopic = "__audit"\n');
    expect(auditFrom(withTopic, resolvePath)).toMatchObject({ enabled: true, topic: '__audit' });
    const without = await configOf('[audit]\nenabled = true\n');
    expect(auditFrom(without, resolvePath)).not.toHaveProperty('topic');
  });
});
