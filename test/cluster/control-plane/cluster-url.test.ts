// The --cluster URL: etcd:// in plain HTTP, etcds:// over TLS with its CA and client certificate
// files as query parameters; anything else is refused with INVALID_CONFIG naming the problem.

import { describe, expect, it } from 'vitest';
import { parseClusterUrl } from '../../../src/cluster/control-plane/cluster-url.js';

describe('parseClusterUrl', () => {
  it('reads plain endpoints and the cluster name', () => {
    expect(parseClusterUrl('etcd://10.0.0.1:2379,10.0.0.2:2379/prod')).toEqual({
      endpoints: ['http://10.0.0.1:2379', 'http://10.0.0.2:2379'],
      name: 'prod',
    });
    expect(parseClusterUrl('etcd://localhost:2379')).toEqual({
      endpoints: ['http://localhost:2379'],
      name: 'default',
    });
  });

  it('etcds:// means TLS, with the system CAs or the files given', () => {
    expect(parseClusterUrl('etcds://e1:2379,e2:2379')).toEqual({
      endpoints: ['https://e1:2379', 'https://e2:2379'],
      name: 'default',
      tls: {},
    });
    expect(
      parseClusterUrl('etcds://e1:2379/prod?ca=/etc/ms/ca.pem&cert=/etc/ms/c.pem&key=/etc/ms/c%20k.key'),
    ).toEqual({
      endpoints: ['https://e1:2379'],
      name: 'prod',
      tls: { caFile: '/etc/ms/ca.pem', certFile: '/etc/ms/c.pem', keyFile: '/etc/ms/c k.key' },
    });
  });

  it('refuses TLS files on etcd://, unknown parameters, and a certificate without its key', () => {
    for (const [url, message] of [
      ['etcd://e1:2379/prod?ca=/ca.pem', /use etcds:\/\//],
      ['etcds://e1:2379/prod?capath=/x', /not one of ca=FILE, cert=FILE, key=FILE/],
      ['etcds://e1:2379/prod?cert=/c.pem', /cert= and key= go together/],
      ['http://e1:2379', /expected etcd:\/\/host:port/],
    ] as const)
      expect(() => parseClusterUrl(url)).toThrow(
        expect.objectContaining({ codeName: 'INVALID_CONFIG', message: expect.stringMatching(message) }),
      );
  });
});
