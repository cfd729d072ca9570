/**
 * The HTTP machinery of the client: URLs, headers, timeouts, cancellation, retries, errors.
 *
 * Retry policy (the Python SDK's): connection errors, timeouts, 408, 429 and 5xx are retried
 * up to `maxRetries` times (default 2) with exponential backoff (0.5 s, 1 s, 2 s ... capped at
 * 8 s, minus up to 25 % jitter), or after exactly the server's `Retry-After` (seconds or an HTTP
 * date; `retry-after-ms` too) when it sends one, up to 60 s: a longer wait is not retried, the
 * error is thrown. Other 4xx are never retried (409 included: the service answers it only to an
 * `Idempotency-Key` reused with another body, which no retry resolves), nor is a request whose
 * upload cannot be read again (a foreign stream), nor one the caller aborted.
 *
 * `timeout` measures idleness: an attempt is abandoned when no byte has gone out or come in for
 * that long, so a large upload or download is not cut off for being large.
 */
import {
  APIConnectionError,
  APIResponseValidationError,
  APITimeoutError,
  APIUserAbortError,
  ChamelaionError,
  makeStatusError,
} from './errors.js';
import type { MultipartBody } from './uploads.js';
import { VERSION } from './version.js';

export const DEFAULT_BASE_URL = 'https://api.chamelaion.com/api';
export const DEFAULT_TIMEOUT = 120_000;
export const DEFAULT_MAX_RETRIES = 2;
const INITIAL_RETRY_DELAY = 500;
const MAX_RETRY_DELAY = 8_000;
const MAX_RETRY_AFTER = 60_000;

/** Per-call options: every method takes them as its last argument. */
export interface RequestOptions {
  /** Milliseconds without a byte sent or received before an attempt is abandoned. */
  timeout?: number;
  /** Retries of this call (connection errors, timeouts, 408, 429, 5xx). */
  maxRetries?: number;
  /** Extra headers for this call; `null` removes a header the client would send. */
  headers?: Record<string, string | null | undefined>;
  /** Aborts the call (and its retries) with an `APIUserAbortError`. */
  signal?: AbortSignal;
}

/** The options of `new Chamelaion(...)`. */
export interface ClientOptions {
  /** Defaults to `process.env['CHAMELAION_API_KEY']`; required. */
  apiKey?: string | undefined;
  /** Defaults to `process.env['CHAMELAION_BASE_URL']`, else `https://api.chamelaion.com/api`.
   * For a self-hosted service: `http://127.0.0.1:8000/api`. */
  baseURL?: string | undefined;
  /** Milliseconds of idleness before an attempt is abandoned (default 120 000). */
  timeout?: number | undefined;
  /** Retries of connection errors, timeouts, 408, 429 and 5xx (default 2). */
  maxRetries?: number | undefined;
  /** Headers sent with every request. */
  defaultHeaders?: Record<string, string> | undefined;
  /** How the key is sent: `x-api-key: <key>` (default) or `Authorization: Bearer <key>`; the
   * service accepts both. */
  authHeader?: 'x-api-key' | 'bearer' | undefined;
  /** A `fetch` of your own (proxies, instrumentation); defaults to the global one. */
  fetch?: typeof fetch | undefined;
}

/** One API call, as the resources describe it. */
export interface APICall {
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  query?: Record<string, string | number | boolean | undefined> | undefined;
  json?: unknown;
  multipart?: MultipartBody;
}

export function readEnv(name: string): string | undefined {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process
    ?.env;
  return env?.[name]?.trim() || undefined;
}

/** Milliseconds from `retry-after-ms` or `Retry-After` (seconds or an HTTP date). */
export function parseRetryAfter(headers: Headers): number | undefined {
  const ms = Number.parseFloat(headers.get('retry-after-ms') ?? '');
  if (Number.isFinite(ms)) return Math.max(ms, 0);
  const value = headers.get('retry-after');
  if (value === null) return undefined;
  const seconds = Number(value);
  if (value.trim() !== '' && Number.isFinite(seconds)) return Math.max(seconds * 1000, 0);
  const when = Date.parse(value);
  return Number.isNaN(when) ? undefined : Math.max(when - Date.now(), 0);
}

/** Milliseconds to wait before retry number `retriesTaken + 1`, or undefined when the server
 * asks for a longer wait than the SDK will block for. */
export function retryDelay(retriesTaken: number, headers: Headers | undefined): number | undefined {
  const retryAfter = headers && parseRetryAfter(headers);
  if (retryAfter !== undefined) return retryAfter <= MAX_RETRY_AFTER ? retryAfter : undefined;
  const delay = Math.min(INITIAL_RETRY_DELAY * 2 ** retriesTaken, MAX_RETRY_DELAY);
  return delay * (1 - 0.25 * Math.random());
}

function shouldRetryStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** Resolves after `ms`, or rejects with `APIUserAbortError` as soon as `signal` fires. */
export function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new APIUserAbortError());
    const onAbort = () => {
      clearTimeout(timer);
      reject(new APIUserAbortError());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * One attempt's abort controller: fires when the caller's signal fires or when nothing moved
 * for `timeout` ms. `touch()` records progress.
 */
export class Attempt {
  readonly controller = new AbortController();
  timedOut = false;
  readonly #timeout: number;
  readonly #signal: AbortSignal | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  readonly #onAbort = () => this.controller.abort();

  constructor(timeout: number, signal: AbortSignal | undefined) {
    this.#timeout = timeout;
    this.#signal = signal;
    signal?.addEventListener('abort', this.#onAbort, { once: true });
    this.touch();
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  touch(): void {
    clearTimeout(this.#timer);
    if (this.controller.signal.aborted) return;
    this.#timer = setTimeout(() => {
      this.timedOut = true;
      this.controller.abort();
    }, this.#timeout);
  }

  /** The SDK's error for a failed `fetch` or body read in this attempt. */
  error(err: unknown): APIConnectionError | APIUserAbortError {
    if (this.#signal?.aborted) return new APIUserAbortError();
    if (this.timedOut) return new APITimeoutError();
    const cause = (err as { cause?: { message?: unknown } } | null)?.cause;
    const detail = typeof cause?.message === 'string' ? `: ${cause.message}` : '';
    return new APIConnectionError(`connection error${detail}`, { cause: err });
  }

  finish(): void {
    clearTimeout(this.#timer);
    this.#signal?.removeEventListener('abort', this.#onAbort);
  }
}

/** Reads a response body to the end, showing progress to the attempt's idle timer. */
export async function readText(response: Response, attempt: Attempt): Promise<string> {
  if (!response.body) return '';
  const decoder = new TextDecoder();
  let text = '';
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return text + decoder.decode();
    attempt.touch();
    text += decoder.decode(value, { stream: true });
  }
}

export class APIClient {
  readonly apiKey: string;
  readonly baseURL: string;
  readonly timeout: number;
  readonly maxRetries: number;
  readonly authHeader: 'x-api-key' | 'bearer';
  protected readonly defaultHeaders: Record<string, string>;
  /** @internal */
  readonly fetch: typeof fetch;

  constructor(options: ClientOptions) {
    const apiKey = options.apiKey ?? readEnv('CHAMELAION_API_KEY');
    if (!apiKey) {
      throw new ChamelaionError(
        'no API key: pass apiKey to the client or set the CHAMELAION_API_KEY environment variable',
      );
    }
    const baseURL = options.baseURL ?? readEnv('CHAMELAION_BASE_URL') ?? DEFAULT_BASE_URL;
    let url: URL;
    try {
      url = new URL(baseURL);
    } catch {
      throw new ChamelaionError(`baseURL must be an absolute http(s) URL, got ${JSON.stringify(baseURL)}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new ChamelaionError(`baseURL must be an absolute http(s) URL, got ${JSON.stringify(baseURL)}`);
    }
    const maxRetries = options.maxRetries ?? DEFAULT_MAX_RETRIES;
    if (!Number.isInteger(maxRetries) || maxRetries < 0) {
      throw new ChamelaionError('maxRetries must be a non-negative integer');
    }
    const timeout = options.timeout ?? DEFAULT_TIMEOUT;
    if (!(timeout > 0)) throw new ChamelaionError('timeout must be a positive number of ms');
    const fetchImpl = options.fetch ?? globalThis.fetch;
    if (typeof fetchImpl !== 'function') {
      throw new ChamelaionError('no fetch: use Node 18 or later, or pass fetch to the client');
    }
    this.apiKey = apiKey;
    this.baseURL = baseURL.replace(/\/+$/, '');
    this.timeout = timeout;
    this.maxRetries = maxRetries;
    this.authHeader = options.authHeader ?? 'x-api-key';
    this.defaultHeaders = { ...options.defaultHeaders };
    this.fetch = fetchImpl;
  }

  protected url(path: string, query?: APICall['query']): string {
    const url = new URL(this.baseURL + path);
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    return url.toString();
  }

  protected headers(options: RequestOptions, retriesTaken: number): Headers {
    const headers = new Headers({
      accept: 'application/json',
      'user-agent': `chamelaion-node/${VERSION}`,
      ...this.defaultHeaders,
    });
    if (this.authHeader === 'bearer') headers.set('authorization', `Bearer ${this.apiKey}`);
    else headers.set('x-api-key', this.apiKey);
    for (const [name, value] of Object.entries(options.headers ?? {})) {
      if (value === null) headers.delete(name);
      else if (value !== undefined) headers.set(name, value);
    }
    if (retriesTaken) headers.set('x-chamelaion-retry-count', String(retriesTaken));
    return headers;
  }

  /** Sends `call` (retrying as the policy says) and returns its decoded JSON body. */
  async request<T>(call: APICall, options: RequestOptions = {}): Promise<T> {
    const { status, text } = await this.retrying(
      options,
      call.multipart?.rewindable ?? true,
      async (attempt, retriesTaken) => {
        const headers = this.headers(options, retriesTaken);
        const init: RequestInit & { duplex?: 'half' } = {
          method: call.method,
          headers,
          signal: attempt.signal,
        };
        if (call.json !== undefined) {
          headers.set('content-type', 'application/json');
          init.body = JSON.stringify(call.json);
        } else if (call.multipart) {
          headers.set('content-type', call.multipart.contentType);
          const length = call.multipart.length;
          if (length !== undefined) headers.set('content-length', String(length));
          init.body = call.multipart.stream(() => attempt.touch());
          init.duplex = 'half'; // fetch requires it for a streamed request body
        }
        const response = await this.fetch(this.url(call.path, call.query), init);
        return { status: response.status, text: await readText(response, attempt), response };
      },
    );
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new APIResponseValidationError(status, text, 'the API returned a body that is not JSON');
    }
  }

  /**
   * Runs `send` once per attempt until it returns a 2xx outcome, as the retry policy says.
   * `send` throws for a connection failure (or a broken body); an error outcome carries the
   * response's status, headers and body text. The one retry loop of the SDK.
   */
  async retrying<T extends Outcome>(
    options: RequestOptions,
    canResend: boolean,
    send: (attempt: Attempt, retriesTaken: number) => Promise<T>,
  ): Promise<T> {
    const maxRetries = options.maxRetries ?? this.maxRetries;
    for (let retriesTaken = 0; ; retriesTaken++) {
      const retriesLeft = canResend ? maxRetries - retriesTaken : 0;
      if (options.signal?.aborted) throw new APIUserAbortError();
      const attempt = new Attempt(options.timeout ?? this.timeout, options.signal);
      let outcome: T;
      try {
        outcome = await send(attempt, retriesTaken);
      } catch (err) {
        const error = err instanceof ChamelaionError ? err : attempt.error(err);
        if (!(error instanceof APIConnectionError) || retriesLeft <= 0) throw error;
        await sleep(retryDelay(retriesTaken, undefined) ?? 0, options.signal);
        continue;
      } finally {
        attempt.finish();
      }
      if (outcome.status >= 200 && outcome.status < 300) return outcome;
      const { headers } = outcome.response;
      const delay =
        retriesLeft > 0 && shouldRetryStatus(outcome.status)
          ? retryDelay(retriesTaken, headers)
          : undefined;
      if (delay === undefined) throw makeStatusError(outcome.status, outcome.text ?? '', headers);
      await sleep(delay, options.signal);
    }
  }
}

/** What one attempt ended with: a response, and for an error status its body text. */
export interface Outcome {
  status: number;
  text?: string;
  response: Response;
}
