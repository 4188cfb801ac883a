// Users of a broker with authentication on, managed over the wire by a super-user
// (`authz.super_users`): list them, add one, change a password, remove one. Credentials are derived
// here, on the client (salt, PBKDF2 with the broker's iteration count): the password never leaves
// this process, the broker receives only the salted, hashed keys it stores.

import {
  UserAction,
  type UserListResponse,
  userAlterCommand,
  userListCommand,
} from '../protocol/commands/auth-commands.js';
import { deriveCredential } from '../security/credentials.js';
import type { ScramMechanism } from '../security/scram.js';
import type { TcpTransport } from './tcp-transport.js';

export const ALL_SCRAM_MECHANISMS: readonly ScramMechanism[] = ['SCRAM-SHA-256', 'SCRAM-SHA-512'];
const TIMEOUT = { timeoutMs: 30_000 };

export function listUsers(transport: TcpTransport): Promise<UserListResponse> {
  return transport.call(userListCommand, {}, TIMEOUT);
}

/** Adds a user (`add`) or sets a new password (`passwd`), for each mechanism given. */
export async function setUserPassword(
  transport: TcpTransport,
  action: 'add' | 'passwd',
  name: string,
  password: string,
  mechanisms: readonly ScramMechanism[] = ALL_SCRAM_MECHANISMS,
): Promise<void> {
  const { iterations } = await listUsers(transport);
  await transport.call(
    userAlterCommand,
    {
      action: action === 'add' ? UserAction.ADD : UserAction.PASSWD,
      name,
      credentials: mechanisms.map((mechanism) => ({
        mechanism,
        ...deriveCredential(mechanism, password, iterations),
      })),
    },
    TIMEOUT,
  );
}

export async function removeUser(transport: TcpTransport, name: string): Promise<void> {
  await transport.call(userAlterCommand, { action: UserAction.REMOVE, name, credentials: [] }, TIMEOUT);
}
