// The authorizer: super-users pass, decisions are cached per principal and dropped when the entries
// are replaced (so a change applies to the next request), and a denial names the operation and the
// resource and reaches onDenied first.

import { describe, expect, it } from 'vitest';
import { MemoryStreamerError } from '../../src/common/errors.js';
import type { AclEntry } from '../../src/security/acl.js';
import { type AclDenial, Authorizer } from '../../src/security/authorizer.js';

const allowRead: AclEntry = {
  principal: 'User:alice',
  resourceType: 'topic',
  resourceName: 'orders',
  pattern: 'literal',
  operation: 'read',
  permission: 'allow',
};
const orders = { type: 'topic' as const, name: 'orders' };

describe('Authorizer', () => {
  it('lets super-users do everything', () => {
    const authz = new Authorizer([], { superUsers: ['User:admin'] });
    expect(authz.allowed('User:admin', 'delete', 'cluster', 'cluster')).toBe(true);
    expect(authz.allowed('User:alice', 'read', 'topic', 'orders')).toBe(false);
  });

  it('applies replaced entries to the next decision, cached or not', () => {
    const authz = new Authorizer([allowRead]);
    expect(authz.allowed('User:alice', 'read', 'topic', 'orders')).toBe(true);
    expect(authz.allowed('User:alice', 'read', 'topic', 'orders')).toBe(true);
    authz.replace([{ ...allowRead, permission: 'deny' }]);
    expect(authz.allowed('User:alice', 'read', 'topic', 'orders')).toBe(false);
    authz.replace([allowRead]);
    expect(authz.allowed('User:alice', 'read', 'topic', 'orders')).toBe(true);
  });

  it('refuses with AUTHORIZATION_FAILED naming operation, resource and the denying entry, after onDenied', () => {
    const denials: AclDenial[] = [];
    const authz = new Authorizer([allowRead, { ...allowRead, operation: 'write', permission: 'deny' }], {
      onDenied: (d) => denials.push(d),
    });
    expect(() => authz.check('User:alice', 'read', orders)).not.toThrow();
    const absent = (() => {
      try {
        authz.check('User:alice', 'delete', orders);
      } catch (error) {
        return error as MemoryStreamerError;
      }
      return null;
    })();
    expect(absent).toBeInstanceOf(MemoryStreamerError);
    expect(absent!.codeName).toBe('AUTHORIZATION_FAILED');
    expect(absent!.message).toMatch(/User:alice may not delete topic:orders: no entry allows it/);
    expect(() => authz.check('User:alice', 'write', orders)).toThrow(
      /may not write topic:orders: denied by the entry "deny User:alice write topic:orders"/,
    );
    expect(
      denials.map((d) => [d.principal, d.operation, d.resource.name, d.deniedBy?.permission ?? null]),
    ).toEqual([
      ['User:alice', 'delete', 'orders', null],
      ['User:alice', 'write', 'orders', 'deny'],
    ]);
  });
});
