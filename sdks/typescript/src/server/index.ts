// `@tern/sdk/server`: what a tenant's Node backend needs — the signed REST client, local
// user-token minting, request signing and webhook verification. Node only.

export { ServerApiError, TernError } from "../errors.js";
export {
  ServerClient,
  encodeSegment,
  type AnswerOf,
  type HttpMethod,
  type PathsFor,
  type RequestParts,
  type Schemas,
  type ServerClientOptions,
} from "./server-client.js";
export { UPLOAD_CHUNK_BYTES, fetchBytes, sendBytes, sha256Hex, type SendBytesOptions } from "./files.js";
export {
  HEADER_APP_KEY,
  HEADER_NONCE,
  HEADER_SIGNATURE,
  HEADER_TIMESTAMP,
  WEBHOOK_TOLERANCE_SECONDS,
  WebhookVerifyError,
  canonicalQuery,
  mintServerToken,
  mintUserToken,
  newNonce,
  signRequest,
  signature,
  stringToSign,
  verifyWebhook,
  type SignOptions,
  type UserTokenOptions,
  type WebhookVerifyFailure,
} from "./signing.js";
export type { components as OpenApiComponents, paths as OpenApiPaths } from "../gen/openapi.js";
