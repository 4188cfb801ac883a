// Message signing and end-to-end encryption, done by the client so the broker never sees a
// plaintext value or holds a key. A producer seals each message: its value is compressed (when
// asked: encrypted bytes do not compress, so batch compression gains nothing on them), encrypted
// with AES-256-GCM under the keyring's current key, then the message is signed with Ed25519
// (encrypt, then sign: a consumer checks the signature before it decrypts anything). A consumer
// opens what it receives: checks the signature, decrypts, decompresses. Keys stay in clear, so
// partitioning and the stream index work as for any message; so do timestamps and other headers.
//
// Headers a sealed message carries (values are UTF-8 text unless said):
//   ms-enc      "1:<keyId>:<codec>"  version 1, the AES key's id, the codec the value was
//                                    compressed with before encryption ("none" when not)
//   ms-sig-key  "<keyId>"            the Ed25519 key's id
//   ms-sig      64 bytes             Ed25519 signature of the signed payload below
// Encrypted value: iv (12 bytes, random) | ciphertext | GCM tag (16 bytes). Additional
// authenticated data: the topic and the key (encoded as in the signed payload), so a ciphertext
// cannot be moved to another topic or key unnoticed.
// Signed payload (big-endian): "MSSIG1" | topic (u16 length + UTF-8) | key (i32 length, −1 for
// null, + bytes) | value as sent (i32 length, −1 for null, + bytes) | header count u32 | for each
// header but ms-sig, in order: name (u16 length + UTF-8), value (i32 length, −1 for null, + bytes).
// Key rotation: new messages use `current`; a consumer keeps the old keys to read older messages.

import {
  createCipheriv,
  createDecipheriv,
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  randomBytes,
  sign,
  verify,
} from 'node:crypto';
import { type CompressionCodecName, compress, decompress, isCodecName } from '../protocol/compression.js';
import { errorOf } from '../protocol/error-codes.js';
import { type Bytes, type MessageHeader, toBuffer } from './message.js';

/** AES-256 keys (32 bytes each) by id; `current` encrypts new messages. */
export interface MessageKeyring {
  readonly current: string;
  readonly keys: Readonly<Record<string, Bytes>>;
}

/** An Ed25519 private key (a KeyObject, or PEM text) and the id consumers know its public key by. */
export interface SigningKey {
  readonly keyId: string;
  readonly privateKey: KeyObject | string;
}

export interface ProducerSecurity {
  /** Sign every message with this key. */
  readonly sign?: SigningKey;
  /** Encrypt every value with the keyring's current key. */
  readonly encrypt?: MessageKeyring;
  /** Compress values before encrypting them (default none). */
  readonly compression?: CompressionCodecName;
}

export interface ConsumerSecurity {
  /**
   * Check signatures with these Ed25519 public keys (KeyObject or PEM) by key id. With `require`,
   * an unsigned message is refused too; without, only a message whose signature fails is.
   */
  readonly verify?: {
    readonly publicKeys: Readonly<Record<string, KeyObject | string>>;
    readonly require?: boolean;
  };
  /** Decrypt with these AES-256 keys by id (a keyring's `keys`, old ones included). */
  readonly decrypt?: Readonly<Record<string, Bytes>>;
  /** Largest value a compressed, encrypted value may inflate to (default 64 MiB). */
  readonly maxDecompressedBytes?: number;
}

/** The parts of a message that sealing changes or covers. */
export interface SealableMessage {
  readonly topic: string;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: readonly MessageHeader[];
}

const ENC = 'ms-enc';
const SIG = 'ms-sig';
const SIG_KEY = 'ms-sig-key';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;

function checkKeyId(keyId: string, what: string): void {
  if (!KEY_ID.test(keyId))
    throw errorOf('INVALID_REQUEST', `${what} key id ${JSON.stringify(keyId)}: 1-64 of [A-Za-z0-9._-]`);
}

function aesKey(keys: Readonly<Record<string, Bytes>>, keyId: string): Buffer {
  const key = Object.hasOwn(keys, keyId) ? keys[keyId] : undefined;
  if (key === undefined) throw errorOf('UNKNOWN_MESSAGE_KEY', `no decryption key ${JSON.stringify(keyId)}`);
  const bytes = toBuffer(key);
  if (bytes.length !== 32)
    throw errorOf(
      'INVALID_REQUEST',
      `encryption key ${JSON.stringify(keyId)} is ${bytes.length} bytes, not 32`,
    );
  return bytes;
}

function lengthPrefixed(parts: Buffer[], bytes: Buffer | null): void {
  const length = Buffer.alloc(4);
  length.writeInt32BE(bytes === null ? -1 : bytes.length);
  parts.push(length);
  if (bytes !== null) parts.push(bytes);
}

function text(parts: Buffer[], value: string): void {
  const bytes = Buffer.from(value, 'utf8');
  const length = Buffer.alloc(2);
  length.writeUInt16BE(bytes.length);
  parts.push(length, bytes);
}

/** Topic and key: the GCM additional data, and the start of the signed payload. */
function topicAndKey(topic: string, key: Buffer | null): Buffer[] {
  const parts: Buffer[] = [];
  text(parts, topic);
  lengthPrefixed(parts, key);
  return parts;
}

function signedPayload(message: SealableMessage): Buffer {
  const parts = [Buffer.from('MSSIG1'), ...topicAndKey(message.topic, message.key)];
  lengthPrefixed(parts, message.value);
  const headers = message.headers.filter((header) => header.key !== SIG);
  const count = Buffer.alloc(4);
  count.writeUInt32BE(headers.length);
  parts.push(count);
  for (const header of headers) {
    text(parts, header.key);
    lengthPrefixed(parts, header.value);
  }
  return Buffer.concat(parts);
}

function header(headers: readonly MessageHeader[], name: string): Buffer | null | undefined {
  return headers.find((entry) => entry.key === name)?.value;
}

/** Checks a producer's security options once, so a wrong key fails at `producer()`, not per send. */
export function checkProducerSecurity(security: ProducerSecurity): void {
  if (security.encrypt !== undefined) {
    checkKeyId(security.encrypt.current, 'encryption');
    aesKey(security.encrypt.keys, security.encrypt.current);
  }
  if (security.sign !== undefined) {
    checkKeyId(security.sign.keyId, 'signing');
    const key = asPrivateKey(security.sign.privateKey);
    if (key.asymmetricKeyType !== 'ed25519')
      throw errorOf('INVALID_REQUEST', `signing key ${security.sign.keyId} is not an Ed25519 private key`);
  }
  if (security.compression !== undefined && !isCodecName(security.compression))
    throw errorOf('UNSUPPORTED_COMPRESSION', String(security.compression));
}

function asPrivateKey(key: KeyObject | string): KeyObject {
  return typeof key === 'string' ? createPrivateKey(key) : key;
}

function asPublicKey(key: KeyObject | string): KeyObject {
  return typeof key === 'string' ? createPublicKey(key) : key;
}

/** The message as it goes to the broker: value encrypted and/or the message signed. */
export function sealMessage(message: SealableMessage, security: ProducerSecurity): SealableMessage {
  let { value } = message;
  const headers = message.headers.filter(
    (entry) => entry.key !== ENC && entry.key !== SIG && entry.key !== SIG_KEY,
  );
  if (security.encrypt !== undefined && value !== null) {
    const { current, keys } = security.encrypt;
    const codec = security.compression ?? 'none';
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', aesKey(keys, current), iv);
    cipher.setAAD(Buffer.concat(topicAndKey(message.topic, message.key)));
    const body = cipher.update(compress(codec, value));
    value = Buffer.concat([iv, body, cipher.final(), cipher.getAuthTag()]);
    headers.push({ key: ENC, value: Buffer.from(`1:${current}:${codec}`) });
  }
  if (security.sign === undefined) return { ...message, value, headers };
  headers.push({ key: SIG_KEY, value: Buffer.from(security.sign.keyId) });
  const sealed = { ...message, value, headers };
  const signature = sign(null, signedPayload(sealed), asPrivateKey(security.sign.privateKey));
  return { ...sealed, headers: [...headers, { key: SIG, value: signature }] };
}

/**
 * The message as the producer wrote it: signature checked (MESSAGE_SIGNATURE_INVALID,
 * MESSAGE_UNSIGNED, UNKNOWN_MESSAGE_KEY), value decrypted (MESSAGE_DECRYPTION_FAILED when it was
 * changed or the key is wrong) and decompressed; `ms-enc` is gone from its headers.
 */
export function openMessage<M extends SealableMessage>(message: M, security: ConsumerSecurity): M {
  const signature = header(message.headers, SIG);
  if (security.verify !== undefined) {
    if (signature === undefined || signature === null) {
      if (security.verify.require === true)
        throw errorOf('MESSAGE_UNSIGNED', `${message.topic}: the message carries no signature`);
    } else {
      const keyId = header(message.headers, SIG_KEY)?.toString('utf8') ?? '';
      const publicKey = Object.hasOwn(security.verify.publicKeys, keyId)
        ? security.verify.publicKeys[keyId]
        : undefined;
      if (publicKey === undefined)
        throw errorOf('UNKNOWN_MESSAGE_KEY', `no public key ${JSON.stringify(keyId)} to check the signature`);
      if (!verify(null, signedPayload(message), asPublicKey(publicKey), signature))
        throw errorOf('MESSAGE_SIGNATURE_INVALID', `${message.topic}: signed with ${keyId}`);
    }
  }
  const encryption = header(message.headers, ENC);
  if (security.decrypt === undefined || encryption === undefined || encryption === null) return message;
  const [version, keyId, codec] = encryption.toString('utf8').split(':');
  if (version !== '1' || keyId === undefined || codec === undefined || !isCodecName(codec))
    throw errorOf(
      'MESSAGE_DECRYPTION_FAILED',
      `unknown encryption header ${JSON.stringify(encryption.toString())}`,
    );
  const value = message.value;
  if (value === null || value.length < IV_BYTES + TAG_BYTES)
    throw errorOf('MESSAGE_DECRYPTION_FAILED', 'the encrypted value is too short');
  let plain: Buffer;
  try {
    const decipher = createDecipheriv(
      'aes-256-gcm',
      aesKey(security.decrypt, keyId),
      value.subarray(0, IV_BYTES),
    );
    decipher.setAAD(Buffer.concat(topicAndKey(message.topic, message.key)));
    decipher.setAuthTag(value.subarray(value.length - TAG_BYTES));
    plain = Buffer.concat([
      decipher.update(value.subarray(IV_BYTES, value.length - TAG_BYTES)),
      decipher.final(),
    ]);
  } catch (error) {
    if ((error as { codeName?: string }).codeName !== undefined) throw error;
    throw errorOf(
      'MESSAGE_DECRYPTION_FAILED',
      `${message.topic}: key ${keyId}: the value or its key was changed`,
    );
  }
  return {
    ...message,
    value: decompress(codec, plain, security.maxDecompressedBytes ?? 64 * 1024 * 1024),
    headers: message.headers.filter((entry) => entry.key !== ENC),
  };
}
