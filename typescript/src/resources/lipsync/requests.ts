/** `client.lipsync.requests`: follow lip sync jobs (`/v1/lipsync/requests`), wait for them and
 * download their output. */
import type { APIClient, RequestOptions } from '../../core.js';
import { sleep } from '../../core.js';
import { downloadFile, type DownloadOptions } from '../../download.js';
import { APIStatusError, ChamelaionError, WaitTimeoutError } from '../../errors.js';
import { PagePromise, RequestsPage } from '../../pagination.js';
import type { SpeakerPoint } from './lipsync.js';

const LIST_PATH = '/v1/lipsync/requests';
const DEFAULT_WAIT_TIMEOUT = 600_000;
const DEFAULT_POLL_INTERVAL = 2_000;
// A signed output URL that has expired answers with one of these; download() then asks the API
// for a fresh one, once.
const EXPIRED_URL_STATUSES = new Set([401, 403, 404, 410]);

/** A request moves `queued` → `processing` → `completed` | `failed`; `cancelled` is where a
 * cancel (or delete) through the API takes a queued or processing one. */
export type RequestStatus = 'queued' | 'processing' | 'completed' | 'failed' | 'cancelled';

/** The output's lip sync, measured by the service after rendering (as `chamelaion eval`). */
export interface OutputSync {
  /** The shift that best aligns the output's sound and picture, in frames; positive when the
   * sound comes after the mouth movement that makes it. Within ±1 is in sync. */
  offset_frames: number;

  /** How clearly that offset stands out: about 0.1 for real speakers with their own speech,
   * under 0.03 for someone else's speech; 0 when nothing could be scored. */
  confidence: number;
}

/** A lip sync request (job) and its state; fields that do not apply yet are absent. */
export interface LipsyncRequest {
  /** Lip sync request ID. */
  id: string;

  /** Request creation time in UTC. */
  created_at: string;

  /** Current request status (see `RequestStatus`). */
  status: string;

  /** Failure message when status is `failed`. */
  error_message?: string;

  /** Request processing completion time in UTC. */
  finished_at?: string;

  /** URL to the generated output media, when available (signed, expiring). */
  output_url?: string;

  /** Client-provided identifier for this request. */
  reference_id?: string;

  /** The speaker point the request was made with, if any. */
  speaker?: SpeakerPoint;

  /** Request processing start time in UTC. */
  started_at?: string;

  /** The output's lip sync, once completed and measured. */
  sync?: OutputSync;

  /** While processing: how much of the work is done, 0 to 1. */
  progress?: number;

  /** While processing: `fetching`, `analysing`, `rendering` or `scoring`. */
  stage?: 'fetching' | 'analysing' | 'rendering' | 'scoring';

  /** True once a completed request's output was deleted at the end of the server's retention
   * time (it then has no `output_url`). */
  output_expired?: boolean;

  /** What to know about a completed output, if anything: e.g. that the transcript did not
   * match the audio and was not used. */
  notes?: Array<string>;
}

/** What `requests.delete()` returns: the request, its inputs and output are gone. */
export interface RequestDeleted {
  /** The deleted request's ID. */
  id: string;

  deleted: true;
}

export interface Pagination {
  /** Applied page size. */
  limit: number;

  /** Applied result offset. */
  offset: number;

  /** Total number of matching records. */
  total: number;
}

export interface RequestListResponse {
  data: Array<LipsyncRequest>;

  pagination: Pagination;
}

export interface RequestListParams {
  /** Maximum number of items to return (1-100; the service's default is 20). */
  limit?: number;

  /** Number of items to skip before returning results. */
  offset?: number;

  /** Filter requests by exact `reference_id`. */
  reference_id?: string;
}

export interface WaitOptions extends Pick<RequestOptions, 'signal'> {
  /** Milliseconds to wait in all (default 600 000); `null`: no limit. */
  timeout?: number | null;
  /** Milliseconds between polls (default 2 000). */
  pollInterval?: number;
  /** Options of each poll's request (its own timeout, retries, headers). */
  requestOptions?: Omit<RequestOptions, 'signal'>;
}

const FINISHED_STATUSES = new Set(['completed', 'failed', 'cancelled']);

function requestPath(id: string): string {
  if (typeof id !== 'string' || !id) {
    throw new ChamelaionError('a request id (or reference_id) must be a non-empty string');
  }
  return `${LIST_PATH}/${encodeURIComponent(id)}`;
}

function outputURL(request: LipsyncRequest): string {
  if (request.status === 'completed' && request.output_url) return request.output_url;
  if (request.status === 'failed') {
    throw new ChamelaionError(
      `request ${request.id} failed: ${request.error_message ?? 'no error message'}`,
    );
  }
  if (request.status === 'completed') {
    throw new ChamelaionError(`request ${request.id} is completed but has no output_url`);
  }
  throw new ChamelaionError(
    `request ${request.id} has no output yet (status: ${request.status}); use requests.wait() first`,
  );
}

export class Requests {
  readonly #client: APIClient;

  constructor(client: APIClient) {
    this.#client = client;
  }

  /** Returns a single lip sync request by request UUID or `reference_id` (the newest with it). */
  retrieve(id: string, options?: RequestOptions): Promise<LipsyncRequest> {
    return this.#client.request({ method: 'GET', path: requestPath(id) }, options);
  }

  /**
   * Cancels a queued or processing request (by id or `reference_id`) and returns it, now
   * `cancelled`; the worker stops within seconds and frees its files. A request that has already
   * finished is returned unchanged.
   */
  cancel(id: string, options?: RequestOptions): Promise<LipsyncRequest> {
    return this.#client.request({ method: 'POST', path: `${requestPath(id)}/cancel` }, options);
  }

  /**
   * Deletes a request (by id or `reference_id`) with its inputs and output, cancelling it first
   * if it is still running. Retrieving it afterwards is a `NotFoundError`.
   */
  delete(id: string, options?: RequestOptions): Promise<RequestDeleted> {
    return this.#client.request({ method: 'DELETE', path: requestPath(id) }, options);
  }

  /**
   * Returns a page of the account's lip sync requests, oldest first; `for await` over it goes
   * through every page.
   */
  list(query: RequestListParams = {}, options?: RequestOptions): PagePromise {
    const fetchPage = (params: RequestListParams) =>
      this.#client.request<RequestListResponse>(
        { method: 'GET', path: LIST_PATH, query: { ...params } },
        options,
      );
    return new PagePromise(async () => new RequestsPage(await fetchPage(query), query, fetchPage));
  }

  /**
   * Polls until the request is `completed` or `failed` and returns it. A failed request is
   * returned, not thrown: check `status` and `error_message`. Throws `WaitTimeoutError` after
   * `timeout` ms.
   */
  async wait(id: string | LipsyncRequest, options: WaitOptions = {}): Promise<LipsyncRequest> {
    const requestId = typeof id === 'string' ? id : id.id;
    const timeout = options.timeout === undefined ? DEFAULT_WAIT_TIMEOUT : options.timeout;
    const pollInterval = options.pollInterval ?? DEFAULT_POLL_INTERVAL;
    if (timeout !== null && !(timeout >= 0)) {
      throw new ChamelaionError('timeout must be >= 0 ms, or null to wait without limit');
    }
    if (!(pollInterval > 0)) throw new ChamelaionError('pollInterval must be > 0 ms');
    const deadline = timeout === null ? Infinity : Date.now() + timeout;
    const requestOptions: RequestOptions = { ...options.requestOptions };
    if (options.signal) requestOptions.signal = options.signal;
    for (;;) {
      const request = await this.retrieve(requestId, requestOptions);
      if (FINISHED_STATUSES.has(request.status)) return request;
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new WaitTimeoutError(requestId, timeout ?? 0, request);
      await sleep(Math.min(pollInterval, remaining), options.signal);
    }
  }

  /**
   * Saves a completed request's output MP4 to `path` (a file, or a directory to save `<id>.mp4`
   * into) and returns the file's path. Streams into a temporary file next to it and renames it
   * into place, so `path` never holds a partial file; a broken transfer is resumed with HTTP
   * Range. A request object whose signed `output_url` has expired gets a fresh one. Node only.
   */
  async download(
    idOrRequest: string | LipsyncRequest,
    path: string,
    options: DownloadOptions = {},
  ): Promise<string> {
    const given = typeof idOrRequest === 'string' ? undefined : idOrRequest;
    const request = given ?? (await this.retrieve(idOrRequest as string, options));
    const fs = await import('node:fs');
    const nodePath = await import('node:path');
    const isDirectory = await fs.promises.stat(path).then(
      (stat) => stat.isDirectory(),
      () => false,
    );
    const dest = isDirectory ? nodePath.join(path, `${request.id}.mp4`) : path;
    try {
      await downloadFile(this.#client, outputURL(request), dest, options);
    } catch (err) {
      if (!(given && err instanceof APIStatusError && EXPIRED_URL_STATUSES.has(err.status))) throw err;
      // The request object's signed URL may have expired: get a fresh one.
      const fresh = await this.retrieve(request.id, options);
      await downloadFile(this.#client, outputURL(fresh), dest, options);
    }
    return dest;
  }
}
