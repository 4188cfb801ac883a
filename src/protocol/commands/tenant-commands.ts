// Tenants and their quotas over the wire, for super-users. The registry travels as the JSON of
// <dataDir>/tenants.json (tenant-store.ts describes it), a change as the JSON of a TenantChange.
// Layouts (little-endian; bytes = u32 length + bytes):
//
// TENANT_LIST request    empty
// TENANT_LIST response   registry bytes (UTF-8 JSON: {"version":1,"tenants":{...},"principals":{...}})
// TENANT_ALTER request   change bytes (UTF-8 JSON: {"kind":"add","tenant":"acme"}, ...)
// TENANT_ALTER response  empty

import type { BinaryReader } from '../codec/binary-reader.js';
import { errorOf } from '../error-codes.js';
import { Opcode } from '../opcodes.js';
import { defineCommand } from './command.js';

function json(reader: BinaryReader, what: string): unknown {
  const bytes = reader.bytes();
  if (bytes === null) throw errorOf('MALFORMED_PAYLOAD', `${what} is null`);
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    throw errorOf('MALFORMED_PAYLOAD', `${what} is not JSON: ${(error as Error).message}`);
  }
}

export const tenantListCommand = defineCommand<Record<string, never>, { registry: unknown }>({
  opcode: Opcode.TENANT_LIST,
  encodeRequest: () => undefined,
  decodeRequest: () => ({}),
  encodeResponse: (w, r) => w.bytes(Buffer.from(JSON.stringify(r.registry), 'utf8')),
  decodeResponse: (r) => ({ registry: json(r, 'registry') }),
});

export const tenantAlterCommand = defineCommand<{ change: unknown }, Record<string, never>>({
  opcode: Opcode.TENANT_ALTER,
  encodeRequest: (w, r) => w.bytes(Buffer.from(JSON.stringify(r.change), 'utf8')),
  decodeRequest: (r) => ({ change: json(r, 'change') }),
  encodeResponse: () => undefined,
  decodeResponse: () => ({}),
});

/** Opcodes a connection hands to the broker's tenant quotas (tenant-quotas.ts). */
export function isTenantOpcode(opcode: number): boolean {
  return opcode === Opcode.TENANT_LIST || opcode === Opcode.TENANT_ALTER;
}
