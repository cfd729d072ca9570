/**
 * The SDK's errors, the same tree as the Python SDK's:
 *
 * ```
 * ChamelaionError
 * ├── APIError
 * │   ├── APIStatusError                  (any error status: .status, .message, .body, .headers)
 * │   │   ├── BadRequestError             400
 * │   │   ├── AuthenticationError         401
 * │   │   ├── TokenLimitError             402
 * │   │   ├── PermissionDeniedError       403
 * │   │   ├── NotFoundError               404
 * │   │   ├── UnsupportedMediaTypeError   415
 * │   │   ├── RateLimitError              429
 * │   │   └── InternalServerError         >= 500
 * │   ├── APIConnectionError              (no response arrived)
 * │   │   └── APITimeoutError             (the request timed out)
 * │   ├── APIUserAbortError               (the caller's AbortSignal fired)
 * │   └── APIResponseValidationError      (a 2xx response that is not what the API documents)
 * ├── WaitTimeoutError                    (requests.wait() gave up)
 * └── WebhookVerificationError            (verifyWebhook() refused a delivery)
 * ```
 */
import type { LipsyncRequest } from './resources/lipsync/requests.js';

/** Base class of every error the SDK throws on purpose. */
export class ChamelaionError extends Error {
  override name = 'ChamelaionError';
}

/** An error talking to the API. */
export class APIError extends ChamelaionError {
  override name = 'APIError';
}

/**
 * The API answered with a 4xx or 5xx status. `message` is the service's `error` string
 * (e.g. `"invalid token"`), `body` the decoded JSON body (or its text when it was not JSON).
 */
export class APIStatusError extends APIError {
  override name = 'APIStatusError';
  readonly status: number;
  readonly headers: Headers;
  readonly body: unknown;

  constructor(status: number, message: string, body: unknown, headers: Headers) {
    super(message);
    this.status = status;
    this.body = body;
    this.headers = headers;
  }

  override toString(): string {
    return `${this.name}: Error code ${this.status}: ${this.message}`;
  }
}

/** 400: the request was malformed (`invalid request body`, `unsupported model`, ...). */
export class BadRequestError extends APIStatusError {
  override name = 'BadRequestError';
}

/** 401: the API key is missing, malformed, unknown or revoked. */
export class AuthenticationError extends APIStatusError {
  override name = 'AuthenticationError';
}

/** 402: the API key's request quota is used up (`token limit reached`). */
export class TokenLimitError extends APIStatusError {
  override name = 'TokenLimitError';
}

/** 403: not allowed (output URLs: `invalid signature`, `link expired`). */
export class PermissionDeniedError extends APIStatusError {
  override name = 'PermissionDeniedError';
}

/** 404: no such request (or it belongs to another account). */
export class NotFoundError extends APIStatusError {
  override name = 'NotFoundError';
}

/** 415: the body was not of the content type the endpoint requires. */
export class UnsupportedMediaTypeError extends APIStatusError {
  override name = 'UnsupportedMediaTypeError';
}

/** 429: too many requests (`rate limit exceeded`); retried automatically first. */
export class RateLimitError extends APIStatusError {
  override name = 'RateLimitError';
}

/** 5xx: the service failed; retried automatically first. */
export class InternalServerError extends APIStatusError {
  override name = 'InternalServerError';
}

/** The API could not be reached, or the connection broke before a response arrived. */
export class APIConnectionError extends APIError {
  override name = 'APIConnectionError';

  constructor(message = 'connection error', options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The request timed out (after all retries). */
export class APITimeoutError extends APIConnectionError {
  override name = 'APITimeoutError';

  constructor() {
    super('request timed out');
  }
}

/** The caller aborted the request through its `signal`; never retried. */
export class APIUserAbortError extends APIError {
  override name = 'APIUserAbortError';

  constructor() {
    super('request was aborted');
  }
}

/** A successful response whose body does not have the documented shape. */
export class APIResponseValidationError extends APIError {
  override name = 'APIResponseValidationError';
  readonly status: number;
  readonly body: unknown;

  constructor(status: number, body: unknown, message: string) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

/** `verifyWebhook()` refused a delivery: no or a malformed signature header, a signature that
 * does not match, or a timestamp outside the tolerance. */
export class WebhookVerificationError extends ChamelaionError {
  override name = 'WebhookVerificationError';
}

/** `requests.wait()` ran out of time; `last` is the request as last seen (still unfinished). */
export class WaitTimeoutError extends ChamelaionError {
  override name = 'WaitTimeoutError';
  readonly requestId: string;
  readonly timeout: number;
  readonly last: LipsyncRequest;

  constructor(requestId: string, timeout: number, last: LipsyncRequest) {
    super(`request ${requestId} did not finish within ${timeout} ms (status: ${last.status})`);
    this.requestId = requestId;
    this.timeout = timeout;
    this.last = last;
  }
}

const STATUS_ERRORS: Record<number, typeof APIStatusError> = {
  400: BadRequestError,
  401: AuthenticationError,
  402: TokenLimitError,
  403: PermissionDeniedError,
  404: NotFoundError,
  415: UnsupportedMediaTypeError,
  429: RateLimitError,
};

/** The error for an error response whose body text has been read. */
export function makeStatusError(status: number, text: string, headers: Headers): APIStatusError {
  let body: unknown = text.trim() ? text : undefined;
  let message: string | undefined;
  try {
    body = JSON.parse(text);
    const error = (body as { error?: unknown } | null)?.error;
    if (typeof error === 'string') message = error;
  } catch {
    // not JSON: the text itself (trimmed) is the best message there is
  }
  message ??= text.trim().slice(0, 500) || `HTTP ${status}`;
  const ErrorClass = status >= 500 ? InternalServerError : (STATUS_ERRORS[status] ?? APIStatusError);
  return new ErrorClass(status, message, body, headers);
}
