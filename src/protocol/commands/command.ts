// The shape of a request/response command codec: the opcode and four functions that move a typed
// request or response in and out of a payload. The TCP transport and the server's dispatcher are
// generic over these; the in-process transport skips them and passes the typed objects.

import type { BinaryReader } from '../codec/binary-reader.js';
import type { BinaryWriter } from '../codec/binary-writer.js';

export interface CommandCodec<Request, Response> {
  readonly opcode: number;
  encodeRequest(writer: BinaryWriter, request: Request): void;
  decodeRequest(reader: BinaryReader): Request;
  encodeResponse(writer: BinaryWriter, response: Response): void;
  decodeResponse(reader: BinaryReader): Response;
}

export function defineCommand<Request, Response>(
  codec: CommandCodec<Request, Response>,
): CommandCodec<Request, Response> {
  return codec;
}

/** Optional fields are written as a presence byte followed by the value. */
export function writeOptional<T>(
  writer: BinaryWriter,
  value: T | undefined,
  write: (value: T) => void,
): void {
  if (value === undefined) {
    writer.u8(0);
  } else {
    writer.u8(1);
    write(value);
  }
}

export function readOptional<T>(reader: BinaryReader, read: () => T): T | undefined {
  return reader.bool() ? read() : undefined;
}
