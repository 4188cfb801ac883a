// The name mapping of tenant-names.ts on its own: a tenant's names get its prefix whatever they
// hold, lists are filtered and renamed, answers are copies, errors lose the prefix, and a
// principal without a tenant cannot name a tenant's topic or group.

import { describe, expect, it } from 'vitest';
import { errorOf } from '../../src/protocol/error-codes.js';
import { TenantNamespace } from '../../src/security/tenant-names.js';

const TENANTS = ['acme', 'bravo'];

describe('TenantNamespace', () => {
  const acme = new TenantNamespace('acme', TENANTS);
  const global = new TenantNamespace(null, TENANTS);

  it("prefixes every name of a tenant's request, crafted ones included", () => {
    const produce: Record<string, unknown> = { topic: 'bravo.orders', partition: 0 };
    acme.rewriteRequest('produce', produce);
    expect(produce.topic).toBe('acme.bravo.orders');
    const commit: Record<string, unknown> = {
      groupId: 'g',
      offsets: [{ topic: 'orders', partition: 0, offset: 1n }],
    };
    acme.rewriteRequest('commitOffsets', commit);
    expect(commit).toEqual({
      groupId: 'acme.g',
      offsets: [{ topic: 'acme.orders', partition: 0, offset: 1n }],
    });
    const join: Record<string, unknown> = { groupId: 'g', topics: ['a', 'b'] };
    acme.rewriteRequest('joinGroup', join);
    expect(join.topics).toEqual(['acme.a', 'acme.b']);
  });

  it('refuses names that would not fit once prefixed, and requests outside a tenant', () => {
    expect(() => acme.rewriteRequest('createTopic', { name: 'x'.repeat(196) })).toThrow(
      /at most 195 in this tenant/,
    );
    expect(() => acme.rewriteRequest('createTopic', { name: '' })).toThrow(/non-empty/);
    expect(() => acme.rewriteRequest('configSet', {})).toThrow(/not open to principals of a tenant/);
    expect(() => acme.rewriteRequest('verifyPartition', { topic: 'x' })).toThrow(/super-user/);
  });

  it('filters and renames answers without touching the objects it was given', () => {
    const stored = { name: 'acme.orders', partitions: 1 };
    const answer = { topics: [stored, { name: 'bravo.orders' }, { name: 'global' }] };
    const seen = acme.rewriteResponse('listTopics', answer);
    expect(seen).toEqual({ topics: [{ name: 'orders', partitions: 1 }] });
    expect(stored.name).toBe('acme.orders');
    expect(global.rewriteResponse('listTopics', answer)).toEqual({ topics: [{ name: 'global' }] });
  });

  it('takes the prefix out of error messages, only where a stored name starts', () => {
    const error = acme.rewriteError(errorOf('UNKNOWN_TOPIC', '"acme.orders" (and x.acme.y)')) as Error;
    expect(error.message).toBe('topic does not exist: "orders" (and x.acme.y)');
    expect((error as { codeName?: string }).codeName).toBe('UNKNOWN_TOPIC');
  });

  it("refuses a principal without a tenant any name in a tenant's namespace", () => {
    expect(() => global.rewriteRequest('describeTopic', { name: 'acme.orders' })).toThrow(
      /belong to a tenant/,
    );
    expect(() => global.rewriteRequest('fetchOffsets', { groupId: 'bravo.g' })).toThrow(/belong to a tenant/);
    const request = { name: 'other.orders' };
    global.rewriteRequest('describeTopic', request);
    expect(request.name).toBe('other.orders');
  });
});
