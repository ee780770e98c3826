// What the app sees of a protocol message: the generated type without protobuf-es's
// bookkeeping, 64-bit integers as numbers (seqs, versions and Unix-ms times all fit in
// 2^53) and `google.protobuf.Struct` content as a plain JSON object.

import { toJson, type JsonObject } from "@bufbuild/protobuf";
import { StructSchema, type Struct } from "@bufbuild/protobuf/wkt";

export type Plain<T> = T extends bigint
  ? number
  : T extends Struct
    ? JsonObject
    : T extends Uint8Array
      ? T
      : T extends readonly (infer U)[]
        ? Plain<U>[]
        : T extends object
          ? { [K in keyof T as K extends "$typeName" | "$unknown" ? never : K]: Plain<T[K]> }
          : T;

export function toPlain<T>(value: T): Plain<T> {
  return convert(value) as Plain<T>;
}

function convert(v: unknown): unknown {
  if (typeof v === "bigint") return Number(v);
  if (v === null || typeof v !== "object") return v;
  if (v instanceof Uint8Array) return v;
  if (Array.isArray(v)) return v.map(convert);
  const typeName = (v as { $typeName?: string }).$typeName;
  if (typeName === "google.protobuf.Struct") return toJson(StructSchema, v as Struct);
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    if (k === "$typeName" || k === "$unknown") continue;
    out[k] = convert(x);
  }
  return out;
}
