// docs/signing-vectors.json, computed by an independent implementation: every request
// signature, the webhook signature and the user token must come out byte for byte.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  canonicalQuery,
  mintUserToken,
  signRequest,
  signature,
  stringToSign,
  verifyWebhook,
  WebhookVerifyError,
} from "../src/server/index.js";

const vectors = JSON.parse(readFileSync(new URL("../../../docs/signing-vectors.json", import.meta.url), "utf8"));

describe("signing vectors", () => {
  for (const v of vectors.requests) {
    it(`${v.method} ${v.path}${v.raw_query ? "?" + v.raw_query : ""}`, () => {
      const body = Buffer.from(v.body_hex, "hex");
      expect(canonicalQuery(v.raw_query)).toBe(v.canonical_query);
      const sts = stringToSign(v.timestamp, v.nonce, v.method, v.path, v.raw_query, body);
      expect(sts).toBe(v.string_to_sign);
      expect(signature(vectors.app_secret, sts)).toBe(v.signature);
      const target = v.raw_query ? `${v.path}?${v.raw_query}` : v.path;
      const headers = signRequest(vectors.app_key, vectors.app_secret, v.method, target, body, {
        timestamp: Number(v.timestamp),
        nonce: v.nonce,
      });
      expect(headers).toEqual({
        "X-Tern-App-Key": vectors.app_key,
        "X-Tern-Timestamp": v.timestamp,
        "X-Tern-Nonce": v.nonce,
        "X-Tern-Signature": v.signature,
      });
    });
  }

  it("a wrong secret gives another signature", () => {
    const v = vectors.requests[0];
    expect(signature("sk_wrong", v.string_to_sign)).not.toBe(v.signature);
  });

  it("the user token", () => {
    const t = vectors.user_token;
    const token = mintUserToken(t.claims.iss, vectors.app_secret, t.claims.sub, { iat: t.claims.iat, exp: t.claims.exp });
    expect(token).toBe(t.token);
  });

  describe("webhook", () => {
    const w = vectors.webhook;
    const now = Number(w.timestamp);
    it("verifies the vector", () => {
      expect(() => verifyWebhook(w.header, w.body, w.webhook_secret, now)).not.toThrow();
      expect(() => verifyWebhook(w.header, Buffer.from(w.body), w.webhook_secret, now + 299)).not.toThrow();
    });
    it("accepts any one of several v1 during a rotation", () => {
      const rotated = w.header.replace("v1=", "v1=" + "0".repeat(64) + ",v1=");
      expect(() => verifyWebhook(rotated, w.body, w.webhook_secret, now)).not.toThrow();
    });
    const failure = (header: string, body: string, secret: string, at: number) => {
      try {
        verifyWebhook(header, body, secret, at);
      } catch (e) {
        expect(e).toBeInstanceOf(WebhookVerifyError);
        return (e as WebhookVerifyError).code;
      }
      return "verified";
    };
    it("refuses a changed body, a wrong secret, an old or malformed header", () => {
      expect(failure(w.header, w.body + " ", w.webhook_secret, now)).toBe("bad_signature");
      expect(failure(w.header, w.body, "whsec_wrong", now)).toBe("bad_signature");
      expect(failure(w.header, w.body, w.webhook_secret, now + 301)).toBe("timestamp_out_of_window");
      expect(failure("v1=abc", w.body, w.webhook_secret, now)).toBe("malformed_signature");
      expect(failure("t=12x,v1=00", w.body, w.webhook_secret, now)).toBe("malformed_signature");
      expect(failure(`t=${w.timestamp}`, w.body, w.webhook_secret, now)).toBe("malformed_signature");
      expect(failure("garbage", w.body, w.webhook_secret, now)).toBe("malformed_signature");
      expect(failure(`t=${w.timestamp},v1=zz`, w.body, w.webhook_secret, now)).toBe("bad_signature");
    });
  });
});
