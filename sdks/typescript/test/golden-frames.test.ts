// docs/protocol-frames.json: each frame's two encodings decode to the same frame through
// the SDK's own decoding path, and the JSON is exactly proto3 JSON as Tern writes it.

import { readFileSync } from "node:fs";
import { equals, fromBinary, fromJson, toJson, type JsonObject } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { decodeServerFrame, encodeClientFrame, toPlain } from "../src/index.js";
import { ClientFrameSchema, ServerFrameSchema } from "../src/gen/tern/v1/client_pb.js";

interface Golden {
  name: string;
  frame: "ClientFrame" | "ServerFrame";
  json: JsonObject;
  proto_hex: string;
}
const { frames } = JSON.parse(readFileSync(new URL("../../../docs/protocol-frames.json", import.meta.url), "utf8")) as {
  frames: Golden[];
};

describe("golden frames", () => {
  it("cover both directions", () => {
    expect(frames.filter((f) => f.frame === "ClientFrame").length).toBeGreaterThan(10);
    expect(frames.filter((f) => f.frame === "ServerFrame").length).toBeGreaterThan(10);
  });

  for (const g of frames.filter((f) => f.frame === "ServerFrame")) {
    it(`server ${g.name}: tern.v1.json and tern.v1.proto decode alike`, () => {
      const bytes = Buffer.from(g.proto_hex, "hex");
      const fromText = decodeServerFrame(JSON.stringify(g.json), "tern.v1.json");
      const fromBytes = decodeServerFrame(new Uint8Array(bytes), "tern.v1.proto");
      expect(equals(ServerFrameSchema, fromText, fromBytes)).toBe(true);
      expect(toPlain(fromText)).toEqual(toPlain(fromBytes));
      expect(toJson(ServerFrameSchema, fromBytes, { useProtoFieldName: true })).toEqual(g.json);
    });
  }

  for (const g of frames.filter((f) => f.frame === "ClientFrame")) {
    it(`client ${g.name}: the SDK writes this JSON and these bytes`, () => {
      const frame = fromJson(ClientFrameSchema, g.json);
      expect(JSON.parse(encodeClientFrame(frame, "tern.v1.json") as string)).toEqual(g.json);
      const bytes = fromBinary(ClientFrameSchema, Buffer.from(g.proto_hex, "hex"));
      expect(equals(ClientFrameSchema, frame, bytes)).toBe(true);
    });
  }

  it("64-bit integers arrive as numbers, content as plain JSON", () => {
    const g = frames.find((f) => f.name === "message_reply")!;
    const f = toPlain(decodeServerFrame(Buffer.from(g.proto_hex, "hex"), "tern.v1.proto"));
    expect(f.body.case).toBe("message");
    const m = f.body.value as { seq: number; createdAt: number; content: unknown; reactions: { count: number }[] };
    expect(m.seq).toBe(9);
    expect(m.createdAt).toBe(1767225600456);
    expect(m.content).toEqual({ text: "hey 👋", nested: { list: [1.5, "two", true, null] } });
    expect(m.reactions[0]!.count).toBe(2);
  });

  it("malformed frames are refused, not half-read", () => {
    expect(() => decodeServerFrame("{not json", "tern.v1.json")).toThrow(/undecodable/);
    expect(() => decodeServerFrame('{"message": 5}', "tern.v1.json")).toThrow();
    expect(() => decodeServerFrame(new Uint8Array([0xff, 0xff, 0xff]), "tern.v1.proto")).toThrow(/undecodable/);
    expect(() => decodeServerFrame("{}", "tern.v1.proto")).toThrow(/text message/);
    expect(() => decodeServerFrame(new Uint8Array(2), "tern.v1.json")).toThrow(/binary message/);
    expect(() => decodeServerFrame(new Uint8Array(65 * 1024), "tern.v1.proto")).toThrow(/bytes/);
  });
});
