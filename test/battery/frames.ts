// Raw frames for the attackers, built with the project's own encoders (frame header, command
// codecs, record batches), so every attack speaks the real protocol and only the part it abuses is
// wrong. Layouts are in docs/protocol.md and src/protocol/frame-header.ts.

import { BinaryWriter } from '../../src/protocol/codec/binary-writer.js';
import { ALL_FEATURES, handshakeCommand } from '../../src/protocol/commands/control.js';
import { COMMANDS, type CommandName, type RequestOf } from '../../src/protocol/commands/registry.js';
import {
  encodeFrame,
  FRAME_HEADER_SIZE,
  FrameFlags,
  MAX_PROTOCOL_VERSION,
  MIN_PROTOCOL_VERSION,
  writeFrameHeader,
} from '../../src/protocol/frame-header.js';
import { Opcode } from '../../src/protocol/opcodes.js';

export function handshakeFrame(correlationId: number, clientId = 'hostile-battery'): Buffer {
  const writer = new BinaryWriter(64);
  handshakeCommand.encodeRequest(writer, {
    minVersion: MIN_PROTOCOL_VERSION,
    maxVersion: MAX_PROTOCOL_VERSION,
    features: ALL_FEATURES,
    clientId,
  });
  return encodeFrame({ opcode: Opcode.HANDSHAKE, correlationId }, writer.finish());
}

/** The payload of a command's request, as the codec writes it. */
export function requestPayload<K extends CommandName>(name: K, request: RequestOf<K>): Buffer {
  const writer = new BinaryWriter(256);
  (COMMANDS[name].encodeRequest as (w: BinaryWriter, r: RequestOf<K>) => void)(writer, request);
  return writer.finish();
}

/** A whole request frame. Produce frames carry a record batch: PAYLOAD_SELF_CRC, as the client sends. */
export function requestFrame<K extends CommandName>(
  name: K,
  request: RequestOf<K>,
  correlationId: number,
): Buffer {
  const opcode = COMMANDS[name].opcode;
  return encodeFrame(
    { opcode, correlationId, ...(name === 'produce' ? { flags: FrameFlags.PAYLOAD_SELF_CRC } : {}) },
    requestPayload(name, request),
  );
}

/** A frame with an arbitrary payload under a valid header (for payloads the codecs would not write). */
export function rawFrame(opcode: number, payload: Buffer, correlationId: number, channelId = 0): Buffer {
  return encodeFrame({ opcode, correlationId, channelId }, payload);
}

/**
 * Only a 40-byte header, valid in every respect (magic, version, flags, header CRC), that declares
 * `payloadLength` bytes which are never all sent.
 */
export function headerOnly(opcode: number, payloadLength: number, correlationId: number): Buffer {
  const header = Buffer.alloc(FRAME_HEADER_SIZE);
  writeFrameHeader(header, 0, { opcode, correlationId }, payloadLength, 0);
  return header;
}

export function pingFrame(correlationId: number): Buffer {
  return encodeFrame({ opcode: Opcode.PING, correlationId });
}

export function creditFrame(channelId: number, bytes: number, correlationId: number): Buffer {
  const payload = Buffer.allocUnsafe(4);
  payload.writeUInt32LE(bytes, 0);
  return encodeFrame({ opcode: Opcode.CREDIT, correlationId, channelId }, payload);
}
