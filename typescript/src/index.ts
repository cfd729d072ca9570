/**
 * The TypeScript SDK of the Chamelaion lip-sync API: `import Chamelaion from 'chamelaion'`.
 */
import { Chamelaion } from './client.js';

export default Chamelaion;
export { Chamelaion };
export type { ClientOptions, RequestOptions } from './core.js';
export type { DownloadOptions, ProgressCallback } from './download.js';
export {
  APIConnectionError,
  APIError,
  APIResponseValidationError,
  APIStatusError,
  APITimeoutError,
  APIUserAbortError,
  AuthenticationError,
  BadRequestError,
  ChamelaionError,
  InternalServerError,
  NotFoundError,
  PermissionDeniedError,
  RateLimitError,
  TokenLimitError,
  UnsupportedMediaTypeError,
  WaitTimeoutError,
  WebhookVerificationError,
} from './errors.js';
export { PagePromise, RequestsPage } from './pagination.js';
export * from './resources/index.js';
export { toFile, UploadFile, type BlobLike, type ReadStreamLike, type Uploadable } from './uploads.js';
export { VERSION } from './version.js';
export {
  DEFAULT_TOLERANCE,
  SIGNATURE_HEADER,
  verifyWebhook,
  type VerifyWebhookOptions,
} from './webhooks.js';
