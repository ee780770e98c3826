// Frames on the wire, in either subprotocol: `tern.v1.proto` (binary protobuf, one frame
// per binary message) and `tern.v1.json` (the proto3 JSON mapping with proto field names,
// one frame per text message). Both go through the same generated schema, so a frame
// decodes to the same value whichever way it came.

import { fromBinary, fromJsonString, toBinary, toJsonString } from "@bufbuild/protobuf";
import {
  ClientFrameSchema,
  ServerFrameSchema,
  type ClientFrame,
  type ServerFrame,
} from "../gen/tern/v1/client_pb.js";

export type Subprotocol = "tern.v1.proto" | "tern.v1.json";
export const SUBPROTOCOLS: readonly Subprotocol[] = ["tern.v1.proto", "tern.v1.json"];

/** The largest frame the server accepts (and sends). */
export const MAX_FRAME_BYTES = 64 * 1024;

export function encodeClientFrame(frame: ClientFrame, protocol: Subprotocol): string | Uint8Array {
  return protocol === "tern.v1.proto"
    ? toBinary(ClientFrameSchema, frame)
    : toJsonString(ClientFrameSchema, frame, { useProtoFieldName: true });
}

export class BadFrame extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BadFrame";
  }
}

/** Decodes one WebSocket message from the server; throws `BadFrame` if it is not a frame. */
export function decodeServerFrame(data: unknown, protocol: Subprotocol): ServerFrame {
  if (protocol === "tern.v1.proto") {
    let bytes: Uint8Array;
    if (data instanceof Uint8Array) bytes = data;
    else if (data instanceof ArrayBuffer) bytes = new Uint8Array(data);
    else throw new BadFrame("a text message on tern.v1.proto");
    if (bytes.length > MAX_FRAME_BYTES) throw new BadFrame(`a frame of ${bytes.length} bytes`);
    try {
      return fromBinary(ServerFrameSchema, bytes);
    } catch (e) {
      throw new BadFrame(`undecodable protobuf: ${(e as Error).message}`);
    }
  }
  if (typeof data !== "string") throw new BadFrame("a binary message on tern.v1.json");
  if (data.length > MAX_FRAME_BYTES) throw new BadFrame(`a frame of ${data.length} characters`);
  try {
    return fromJsonString(ServerFrameSchema, data, { ignoreUnknownFields: true });
  } catch (e) {
    throw new BadFrame(`undecodable JSON frame: ${(e as Error).message}`);
  }
}

/** For tests and tools: a server frame in the given encoding. */
export function encodeServerFrame(frame: ServerFrame, protocol: Subprotocol): string | Uint8Array {
  return protocol === "tern.v1.proto"
    ? toBinary(ServerFrameSchema, frame)
    : toJsonString(ServerFrameSchema, frame, { useProtoFieldName: true });
}

export function decodeClientFrame(data: string | Uint8Array, protocol: Subprotocol): ClientFrame {
  return protocol === "tern.v1.proto"
    ? fromBinary(ClientFrameSchema, data as Uint8Array)
    : fromJsonString(ClientFrameSchema, data as string);
}
