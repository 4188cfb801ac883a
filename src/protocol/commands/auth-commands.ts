// Authentication and user management. A broker with authentication on answers only HANDSHAKE, PING
// and AUTHENTICATE_* until a connection has authenticated; USER_* are for super-users. Layouts
// (little-endian; string = u16 length + UTF-8, bytes = u32 length + bytes):
//
// AUTHENTICATE_START request    mechanism string | message bytes (SCRAM client-first)
// AUTHENTICATE_START response   message bytes (SCRAM server-first)
// AUTHENTICATE_FINISH request   message bytes (SCRAM client-final)
// AUTHENTICATE_FINISH response  message bytes (SCRAM server-final) | principal string ("User:alice")
//   Mechanism "token" (a bearer token) takes one round trip: the request's message is the JWT in
//   its compact form, the response's message the principal ("User:svc"); no AUTHENTICATE_FINISH.
// USER_LIST request             empty
// USER_LIST response            iterations u32 (of new credentials on this broker) | count u32 |
//                               count × (name string | mechanisms u8 | mechanisms × (mechanism string |
//                               iterations u32))
// USER_ALTER request            action u8 (1 add, 2 passwd, 3 remove) | name string | count u8 |
//                               count × (mechanism string | salt bytes | iterations u32 |
//                               storedKey bytes | serverKey bytes)
// USER_ALTER response           empty

import type { BinaryReader } from '../codec/binary-reader.js';
import { errorOf } from '../error-codes.js';
import { Opcode } from '../opcodes.js';
import { defineCommand } from './command.js';

function requiredBytes(reader: BinaryReader, what: string): Buffer {
  const bytes = reader.bytes();
  if (bytes === null) throw errorOf('MALFORMED_PAYLOAD', `${what} is null`);
  return bytes;
}

export interface AuthenticateStartRequest {
  mechanism: string;
  message: Buffer;
}

export const authenticateStartCommand = defineCommand<AuthenticateStartRequest, { message: Buffer }>({
  opcode: Opcode.AUTHENTICATE_START,
  encodeRequest: (w, r) => w.string(r.mechanism).bytes(r.message),
  decodeRequest: (r) => ({ mechanism: r.string(), message: requiredBytes(r, 'message') }),
  encodeResponse: (w, r) => w.bytes(r.message),
  decodeResponse: (r) => ({ message: requiredBytes(r, 'message') }),
});

export interface AuthenticateFinishResponse {
  message: Buffer;
  principal: string;
}

export const authenticateFinishCommand = defineCommand<{ message: Buffer }, AuthenticateFinishResponse>({
  opcode: Opcode.AUTHENTICATE_FINISH,
  encodeRequest: (w, r) => w.bytes(r.message),
  decodeRequest: (r) => ({ message: requiredBytes(r, 'message') }),
  encodeResponse: (w, r) => w.bytes(r.message).string(r.principal),
  decodeResponse: (r) => ({ message: requiredBytes(r, 'message'), principal: r.string() }),
});

export interface UserListEntry {
  name: string;
  mechanisms: Array<{ mechanism: string; iterations: number }>;
}

export interface UserListResponse {
  /** Iterations the broker gives new credentials (`auth.scram_iterations`); at least this many are accepted. */
  iterations: number;
  users: UserListEntry[];
}

export const userListCommand = defineCommand<Record<string, never>, UserListResponse>({
  opcode: Opcode.USER_LIST,
  encodeRequest: () => undefined,
  decodeRequest: () => ({}),
  encodeResponse: (w, r) => {
    w.u32(r.iterations).u32(r.users.length);
    for (const user of r.users) {
      w.string(user.name).u8(user.mechanisms.length);
      for (const m of user.mechanisms) w.string(m.mechanism).u32(m.iterations);
    }
  },
  decodeResponse: (r) => {
    const iterations = r.u32();
    const users: UserListEntry[] = [];
    for (let i = r.count(3); i > 0; i--) {
      const name = r.string();
      const mechanisms: UserListEntry['mechanisms'] = [];
      for (let j = r.u8(); j > 0; j--) mechanisms.push({ mechanism: r.string(), iterations: r.u32() });
      users.push({ name, mechanisms });
    }
    return { iterations, users };
  },
});

export const UserAction = { ADD: 1, PASSWD: 2, REMOVE: 3 } as const;
export type UserActionCode = (typeof UserAction)[keyof typeof UserAction];

export interface WireCredential {
  mechanism: string;
  salt: Buffer;
  iterations: number;
  storedKey: Buffer;
  serverKey: Buffer;
}

export interface UserAlterRequest {
  action: UserActionCode;
  name: string;
  credentials: WireCredential[];
}

export const userAlterCommand = defineCommand<UserAlterRequest, Record<string, never>>({
  opcode: Opcode.USER_ALTER,
  encodeRequest: (w, r) => {
    w.u8(r.action).string(r.name).u8(r.credentials.length);
    for (const c of r.credentials)
      w.string(c.mechanism).bytes(c.salt).u32(c.iterations).bytes(c.storedKey).bytes(c.serverKey);
  },
  decodeRequest: (r) => {
    const action = r.u8();
    if (action !== UserAction.ADD && action !== UserAction.PASSWD && action !== UserAction.REMOVE)
      throw errorOf('MALFORMED_PAYLOAD', `user action ${action}`);
    const name = r.string();
    const credentials: WireCredential[] = [];
    for (let i = r.u8(); i > 0; i--)
      credentials.push({
        mechanism: r.string(),
        salt: requiredBytes(r, 'salt'),
        iterations: r.u32(),
        storedKey: requiredBytes(r, 'storedKey'),
        serverKey: requiredBytes(r, 'serverKey'),
      });
    return { action, name, credentials };
  },
  encodeResponse: () => undefined,
  decodeResponse: () => ({}),
});
