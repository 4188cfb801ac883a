// The decision from access control entries: deny wins, prefix and literal patterns, the `*`
// principal and the literal `*` name, operations implied by others (read allows describe) but never
// for a deny, and the "some topic" question a producer id needs.

import { describe, expect, it } from 'vitest';
import { type AclEntry, checkAclEntry } from '../../src/security/acl.js';
import { AclMatcher } from '../../src/security/acl-matcher.js';

function entry(fields: Partial<AclEntry>): AclEntry {
  return checkAclEntry({
    principal: 'User:alice',
    resourceType: 'topic',
    resourceName: 'orders',
    pattern: 'literal',
    operation: 'read',
    permission: 'allow',
    ...fields,
  });
}

const topic = (name: string) => ({ type: 'topic' as const, name });

describe('AclMatcher', () => {
  it('refuses what no entry allows, allows what one does', () => {
    const m = new AclMatcher([entry({})]);
    expect(m.decide('User:alice', 'read', topic('orders')).allowed).toBe(true);
    expect(m.decide('User:alice', 'write', topic('orders'))).toEqual({ allowed: false, entry: null });
    expect(m.decide('User:bob', 'read', topic('orders')).allowed).toBe(false);
    expect(m.decide('User:alice', 'read', topic('orders2')).allowed).toBe(false);
    expect(m.decide('User:alice', 'read', { type: 'group', name: 'orders' }).allowed).toBe(false);
  });

  it('lets a deny win over any allow, whatever the order of the entries', () => {
    const deny = entry({ permission: 'deny' });
    for (const entries of [
      [entry({ operation: 'all' }), deny],
      [deny, entry({ principal: '*', resourceName: 'ord', pattern: 'prefix' })],
    ]) {
      const decision = new AclMatcher(entries).decide('User:alice', 'read', topic('orders'));
      expect(decision).toEqual({ allowed: false, entry: deny });
    }
    // A deny of everything for everyone wins over the principal's own allow.
    const all = new AclMatcher([entry({}), entry({ principal: '*', operation: 'all', permission: 'deny' })]);
    expect(all.decide('User:alice', 'read', topic('orders')).allowed).toBe(false);
  });

  it('matches prefixes, the literal name "*" and the "*" principal', () => {
    const m = new AclMatcher([
      entry({ resourceName: 'pub-', pattern: 'prefix' }),
      entry({ principal: '*', resourceName: '*', operation: 'describe' }),
    ]);
    expect(m.decide('User:alice', 'read', topic('pub-news')).allowed).toBe(true);
    expect(m.decide('User:alice', 'read', topic('pub-')).allowed).toBe(true);
    expect(m.decide('User:alice', 'read', topic('pu')).allowed).toBe(false);
    expect(m.decide('User:alice', 'read', topic('news-pub-')).allowed).toBe(false);
    expect(m.decide('User:zoe', 'describe', topic('anything')).allowed).toBe(true);
    expect(m.decide('User:zoe', 'read', topic('anything')).allowed).toBe(false);
  });

  it('implies describe from read, write, delete and alter, but a deny covers only its own operation', () => {
    for (const operation of ['read', 'write', 'delete', 'alter'] as const)
      expect(
        new AclMatcher([entry({ operation })]).decide('User:alice', 'describe', topic('orders')).allowed,
      ).toBe(true);
    expect(
      new AclMatcher([entry({ operation: 'create' })]).decide('User:alice', 'describe', topic('orders'))
        .allowed,
    ).toBe(false);
    const m = new AclMatcher([entry({ operation: 'all' }), entry({ operation: 'read', permission: 'deny' })]);
    expect(m.decide('User:alice', 'read', topic('orders')).allowed).toBe(false);
    expect(m.decide('User:alice', 'describe', topic('orders')).allowed).toBe(true);
  });

  it('answers whether some resource of a type allows an operation', () => {
    const m = new AclMatcher([entry({ operation: 'write', resourceName: 'x-', pattern: 'prefix' })]);
    expect(m.allowsSome('User:alice', 'write', 'topic')).toBe(true);
    expect(m.allowsSome('User:bob', 'write', 'topic')).toBe(false);
    expect(m.allowsSome('User:alice', 'read', 'topic')).toBe(false);
  });

  it('refuses malformed entries with INVALID_ACL', () => {
    expect(() => entry({ principal: 'alice' })).toThrow(/INVALID_ACL|principal/);
    expect(() => entry({ resourceType: 'cluster', resourceName: 'orders' })).toThrow(/cluster resource/);
    expect(() => entry({ resourceName: '*', pattern: 'prefix' })).toThrow(/literal name/);
    expect(() => entry({ operation: 'fly' as never })).toThrow(/operation "fly"/);
  });
});
