/**
 * Retries, timeouts and cancellation, through a loopback proxy in front of the real service that
 * fails the first requests the way a test asks (an error status with Retry-After, a dropped
 * connection, no answer at all) and then forwards to the service.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';

import Chamelaion, {
  APIConnectionError,
  APIStatusError,
  APITimeoutError,
  APIUserAbortError,
  BadRequestError,
  InternalServerError,
  RateLimitError,
  type ClientOptions,
} from 'chamelaion';

import { VIDEO_URL, env, uniqueReference, urlJob } from './env.js';

/** How the proxy treats one request: fail it so, or forward it to the service. */
type Failure =
  | { status: number; headers?: Record<string, string> }
  | 'drop' // close the connection without an answer
  | 'lose-answer' // forward it, then close the connection instead of passing the answer on
  | 'hang'; // never answer

interface Seen {
  at: number;
  method: string;
  retryCount: string | undefined;
  idempotencyKey: string | undefined;
}

class FlakyProxy {
  failures: Failure[] = [];
  seen: Seen[] = [];
  readonly #server: http.Server;
  readonly #target = new URL(env.baseURL);

  constructor() {
    this.#server = http.createServer((req, res) => this.#handle(req, res));
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
  }

  stop(): void {
    this.#server.closeAllConnections();
    this.#server.close();
  }

  get baseURL(): string {
    const { port } = this.#server.address() as AddressInfo;
    return `http://127.0.0.1:${port}${this.#target.pathname}`;
  }

  client(options: ClientOptions = {}): Chamelaion {
    return new Chamelaion({ apiKey: env.apiKey, baseURL: this.baseURL, ...options });
  }

  /** Fails the next requests as listed, then forwards. */
  failNext(...failures: Failure[]): void {
    this.failures = failures;
    this.seen = [];
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const retryCount = req.headers['x-chamelaion-retry-count'];
    const idempotencyKey = req.headers['idempotency-key'];
    this.seen.push({
      at: Date.now(),
      method: req.method ?? '',
      retryCount: typeof retryCount === 'string' ? retryCount : undefined,
      idempotencyKey: typeof idempotencyKey === 'string' ? idempotencyKey : undefined,
    });
    const failure = this.failures.shift();
    if (failure === 'hang') return;
    if (failure === 'drop') {
      req.socket.destroy();
      return;
    }
    if (typeof failure === 'object') {
      req.resume(); // read (and drop) the body, as a real server in trouble would
      req.on('end', () => {
        res.writeHead(failure.status, { 'content-type': 'application/json', ...failure.headers });
        res.end(JSON.stringify({ error: failure.status === 429 ? 'rate limit exceeded' : 'internal error' }));
      });
      return;
    }
    const upstream = http.request(
      {
        host: this.#target.hostname,
        port: this.#target.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: this.#target.host },
      },
      (answer) => {
        if (failure === 'lose-answer') {
          answer.resume();
          answer.on('end', () => req.socket.destroy()); // the service did the work; no one hears
          return;
        }
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    req.pipe(upstream);
  }
}

const proxy = new FlakyProxy();
before(() => proxy.start());
after(() => proxy.stop());


function gaps(seen: Seen[]): number[] {
  return seen.slice(1).map((s, i) => s.at - seen[i]!.at);
}

describe('retries', () => {
  test('fails twice, then succeeds; Retry-After is honoured', async () => {
    proxy.failNext(
      { status: 503, headers: { 'retry-after': '1' } },
      { status: 429, headers: { 'retry-after-ms': '200' } },
    );
    const reference_id = uniqueReference('retried');
    const created = await proxy.client().lipsync.generate(urlJob({ reference_id }));
    assert.equal(proxy.seen.length, 3);
    assert.deepEqual(
      proxy.seen.map((s) => s.retryCount),
      [undefined, '1', '2'],
    );
    const [first, second] = gaps(proxy.seen);
    assert.ok(first! >= 990 && first! < 3_000, `waited ${first} ms after Retry-After: 1`);
    assert.ok(second! >= 190 && second! < 1_500, `waited ${second} ms after retry-after-ms: 200`);
    // The request the service finally answered is the one that exists, once.
    const page = await proxy.client().lipsync.requests.list({ reference_id });
    assert.deepEqual(
      page.data.map((r) => r.id),
      [created.request_id],
    );
  });

  test('a create whose answer was lost is retried with its Idempotency-Key: one job', async () => {
    proxy.failNext('lose-answer');
    const reference_id = uniqueReference('lost-answer');
    const created = await proxy.client().lipsync.generate(urlJob({ reference_id }));
    assert.equal(proxy.seen.length, 2);
    const [first, retry] = proxy.seen.map((s) => s.idempotencyKey);
    assert.match(first ?? '', /^[0-9a-f-]{36}$/);
    assert.equal(retry, first);
    const page = await proxy.client().lipsync.requests.list({ reference_id });
    assert.deepEqual(
      page.data.map((r) => r.id),
      [created.request_id],
    );
    // Another call is another create: a key of its own.
    await proxy.client().lipsync.generate(urlJob({ reference_id }));
    assert.notEqual(proxy.seen.at(-1)?.idempotencyKey, first);
    // A key of the caller's is sent as given.
    await proxy.client().lipsync.generate(urlJob(), { headers: { 'Idempotency-Key': 'mine-1' } });
    assert.equal(proxy.seen.at(-1)?.idempotencyKey, 'mine-1');
  });

  test('an upload is sent again, whole, after a failure', async () => {
    proxy.failNext({ status: 502, headers: { 'retry-after': '0' } }, 'drop');
    const reference_id = uniqueReference('upload-retried');
    const created = await proxy.client().lipsync.generateWithMedia({
      video: fs.createReadStream(env.video),
      audio: new Blob([fs.readFileSync(env.audio)]),
      reference_id,
    });
    assert.equal(proxy.seen.length, 3);
    const found = await proxy.client().lipsync.requests.retrieve(reference_id);
    assert.equal(found.id, created.request_id);
  });

  test('without Retry-After: exponential backoff from 0.5 s', async () => {
    proxy.failNext({ status: 500 }, { status: 500 });
    await proxy.client().lipsync.requests.list({ limit: 1 });
    const [first, second] = gaps(proxy.seen);
    assert.ok(first! >= 370 && first! < 2_000, `first backoff ${first} ms`);
    assert.ok(second! >= 740 && second! < 3_000, `second backoff ${second} ms`);
  });

  test('dropped connections are retried, then reported', async () => {
    proxy.failNext('drop', 'drop');
    const page = await proxy.client().lipsync.requests.list({ limit: 1 });
    assert.equal(page.pagination.limit, 1);
    proxy.failNext('drop', 'drop');
    await assert.rejects(
      proxy.client({ maxRetries: 1 }).lipsync.requests.list(),
      (error: unknown) => error instanceof APIConnectionError && !(error instanceof APITimeoutError),
    );
    assert.equal(proxy.seen.length, 2);
  });

  test('gives up after maxRetries, with the last error', async () => {
    proxy.failNext({ status: 503, headers: { 'retry-after': '0' } }, { status: 503, headers: { 'retry-after': '0' } });
    await assert.rejects(
      proxy.client().lipsync.requests.list({}, { maxRetries: 1 }),
      (error: unknown) => error instanceof InternalServerError && error.status === 503,
    );
    assert.equal(proxy.seen.length, 2);
  });

  test('a Retry-After over a minute is not waited for', async () => {
    proxy.failNext({ status: 429, headers: { 'retry-after': '3600' } });
    const started = Date.now();
    await assert.rejects(proxy.client().lipsync.requests.list(), RateLimitError);
    assert.equal(proxy.seen.length, 1);
    assert.ok(Date.now() - started < 1_000);
  });

  test('other 4xx are not retried', async () => {
    proxy.failNext();
    await assert.rejects(
      proxy.client().lipsync.generate({ inputs: [{ type: 'video', url: VIDEO_URL }] }),
      BadRequestError,
    );
    assert.equal(proxy.seen.length, 1);
  });

  test('a reused Idempotency-Key with another body is a 409, asked once', async () => {
    const key = `reused-${uniqueReference('key')}`;
    await proxy.client().lipsync.generate(urlJob(), { headers: { 'Idempotency-Key': key } });
    proxy.failNext(); // start counting afresh; nothing is failed by the proxy
    await assert.rejects(
      proxy
        .client()
        .lipsync.generate(urlJob({ reference_id: uniqueReference('other-body') }), {
          headers: { 'Idempotency-Key': key },
        }),
      (error: unknown) =>
        error instanceof APIStatusError &&
        error.status === 409 &&
        error.message === 'idempotency key already used with a different request',
    );
    assert.equal(proxy.seen.length, 1);
  });

  test('an upload from a one-time stream is not retried (it cannot be sent again)', async () => {
    proxy.failNext({ status: 503, headers: { 'retry-after': '0' } });
    async function* once(): AsyncGenerator<Uint8Array> {
      yield fs.readFileSync(env.video);
    }
    await assert.rejects(
      proxy.client().lipsync.generateWithMedia({ video: once(), audio: fs.createReadStream(env.audio) }),
      InternalServerError,
    );
    assert.equal(proxy.seen.length, 1);
  });
});

describe('timeouts and cancellation', () => {
  test('a timeout per attempt, retried, then APITimeoutError', async () => {
    proxy.failNext('hang', 'hang');
    const started = Date.now();
    await assert.rejects(
      proxy.client({ timeout: 300, maxRetries: 1 }).lipsync.requests.list(),
      APITimeoutError,
    );
    assert.equal(proxy.seen.length, 2);
    assert.ok(Date.now() - started < 5_000);
  });

  test('a per-request timeout overrides the client one', async () => {
    proxy.failNext('hang');
    await assert.rejects(
      proxy.client().lipsync.requests.retrieve('x', { timeout: 200, maxRetries: 0 }),
      APITimeoutError,
    );
  });

  test('aborting while the server is silent', async () => {
    proxy.failNext('hang');
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    await assert.rejects(
      proxy.client().lipsync.requests.list({}, { signal: controller.signal }),
      APIUserAbortError,
    );
    assert.equal(proxy.seen.length, 1);
  });

  test('aborting during the backoff stops the retries', async () => {
    proxy.failNext({ status: 503, headers: { 'retry-after': '30' } });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    const started = Date.now();
    await assert.rejects(
      proxy.client().lipsync.requests.list({}, { signal: controller.signal }),
      APIUserAbortError,
    );
    assert.ok(Date.now() - started < 5_000);
    assert.equal(proxy.seen.length, 1);
  });

  test('per-request headers are sent', async () => {
    proxy.failNext({ status: 500 });
    await assert.rejects(
      proxy.client({ maxRetries: 0 }).lipsync.requests.list({}, { headers: { 'x-chamelaion-retry-count': '7' } }),
      InternalServerError,
    );
    assert.equal(proxy.seen[0]!.retryCount, '7');
  });
});
