// What users send and receive: messages with bytes for key and value, and helpers to read them as
// text or JSON. Conversion from strings happens once, at the edge, in the producer.

export type Bytes = Buffer | Uint8Array;
export type HeaderValue = Bytes | string | null;

export interface MessageHeader {
  key: string;
  value: Buffer | null;
}

/** A message as the consumer sees it. `key`/`value` are Buffers; use the helpers for text and JSON. */
export interface Message {
  topic: string;
  partition: number;
  offset: bigint;
  /** Position of this message in its key's stream (0, 1, 2, …), or -1 for a message without key. */
  sequence: number;
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: MessageHeader[];
}

export function keyString(message: Pick<Message, 'key'>): string | null {
  return message.key === null ? null : message.key.toString('utf8');
}

export function valueString(message: Pick<Message, 'value'>): string | null {
  return message.value === null ? null : message.value.toString('utf8');
}

/** Parses the value as JSON; throws SyntaxError with the offset when it is not JSON. */
export function valueJson<T = unknown>(message: Pick<Message, 'value' | 'offset'>): T | null {
  if (message.value === null) return null;
  try {
    return JSON.parse(message.value.toString('utf8')) as T;
  } catch (error) {
    throw new SyntaxError(`message at offset ${message.offset} is not JSON: ${(error as Error).message}`);
  }
}

export function toBuffer(value: Bytes | string): Buffer {
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}
