/**
 * Pages of `requests.list()`.
 *
 * `await client.lipsync.requests.list()` gives one page (`.data`, `.pagination`);
 * `for await (const request of client.lipsync.requests.list())` goes through every request from
 * the page's offset to the end, fetching the pages after it as needed.
 */
import { ChamelaionError } from './errors.js';
import type {
  LipsyncRequest,
  Pagination,
  RequestListParams,
  RequestListResponse,
} from './resources/lipsync/requests.js';

type FetchPage = (query: RequestListParams) => Promise<RequestListResponse>;

/** One page of lip sync requests, able to fetch the pages after it. */
export class RequestsPage implements RequestListResponse, AsyncIterable<LipsyncRequest> {
  data: Array<LipsyncRequest>;
  pagination: Pagination;
  // Private fields: JSON.stringify(page) and console.log(page) show only the response.
  readonly #fetch: FetchPage;
  readonly #query: RequestListParams;

  constructor(body: RequestListResponse, query: RequestListParams, fetch: FetchPage) {
    this.data = body.data;
    this.pagination = body.pagination;
    this.#query = query;
    this.#fetch = fetch;
  }

  /** The query of the next page, or null on the last page. */
  nextPageParams(): RequestListParams | null {
    const nextOffset = this.pagination.offset + this.data.length;
    if (this.data.length === 0 || nextOffset >= this.pagination.total) return null;
    return { ...this.#query, offset: nextOffset };
  }

  hasNextPage(): boolean {
    return this.nextPageParams() !== null;
  }

  async getNextPage(): Promise<RequestsPage> {
    const query = this.nextPageParams();
    if (query === null) throw new ChamelaionError('no more pages; check hasNextPage() first');
    return new RequestsPage(await this.#fetch(query), query, this.#fetch);
  }

  /** This page and every page after it. */
  async *iterPages(): AsyncGenerator<RequestsPage> {
    let page: RequestsPage = this;
    yield page;
    while (page.hasNextPage()) {
      page = await page.getNextPage();
      yield page;
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<LipsyncRequest> {
    for await (const page of this.iterPages()) yield* page.data;
  }
}

/**
 * What `requests.list()` returns: a promise of the first page (sent at once, as any call) that is
 * also an async iterable over every item of every page.
 */
export class PagePromise extends Promise<RequestsPage> implements AsyncIterable<LipsyncRequest> {
  // `then`/`catch` derive plain promises, not PagePromises (whose constructor differs).
  static override get [Symbol.species](): PromiseConstructor {
    return Promise;
  }

  constructor(load: () => Promise<RequestsPage>) {
    super((resolve, reject) => {
      load().then(resolve, reject);
    });
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<LipsyncRequest> {
    yield* await this;
  }
}
