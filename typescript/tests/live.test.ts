/**
 * The SDK against the real service: uploads of real media in every form the SDK takes, URL jobs,
 * lookups, pagination across pages, every kind of error the service sends, cancellation.
 */
import assert from 'node:assert/strict';
import { File } from 'node:buffer';
import * as fs from 'node:fs';
import * as http from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';

import Chamelaion, {
  APIStatusError,
  APIUserAbortError,
  AuthenticationError,
  BadRequestError,
  ChamelaionError,
  NotFoundError,
  RateLimitError,
  TokenLimitError,
  toFile,
  type LipsyncGenerate,
  type LipsyncRequest,
  type ModelName,
  type Uploadable,
} from 'chamelaion';

import { AUDIO_URL, VIDEO_URL, client, env, uniqueReference, urlJob } from './env.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function assertAccepted(created: LipsyncGenerate): void {
  assert.equal(created.status, 'success');
  assert.match(created.request_id, UUID);
}

/** Uploads `video` and `audio`, then reads the request back by its reference_id. */
async function uploadAndFind(video: Uploadable, audio: Uploadable): Promise<LipsyncRequest> {
  const reference_id = uniqueReference('upload');
  const created = await client().lipsync.generateWithMedia({ video, audio, reference_id });
  assertAccepted(created);
  const found = await client().lipsync.requests.retrieve(reference_id);
  assert.equal(found.id, created.request_id);
  assert.equal(found.status, 'queued');
  return found;
}

async function rejectsWith<E extends Error>(
  promise: Promise<unknown>,
  ErrorClass: new (...args: never[]) => E,
  check: (error: E) => void = () => undefined,
): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof ErrorClass, `expected ${ErrorClass.name}, got ${String(error)}`);
    check(error);
    return true;
  });
}

describe('uploads of real media', () => {
  test('fs.createReadStream', async () => {
    await uploadAndFind(fs.createReadStream(env.video), fs.createReadStream(env.audio));
  });

  test('Blob and File', async () => {
    const video = new Blob([fs.readFileSync(env.video)], { type: 'video/mp4' });
    const audio = new File([fs.readFileSync(env.audio)], 'speech.wav', { type: 'audio/wav' });
    await uploadAndFind(video, audio as unknown as Uploadable);
  });

  test('Buffer and Uint8Array', async () => {
    await uploadAndFind(fs.readFileSync(env.video), new Uint8Array(fs.readFileSync(env.audio)));
  });

  test('toFile over a Node stream and a web stream (sent chunked: their length is unknown)', async () => {
    const video = await toFile(Readable.from(fs.createReadStream(env.video)), 'clip.mp4', {
      type: 'video/mp4',
    });
    const audio = Readable.toWeb(fs.createReadStream(env.audio)) as ReadableStream<Uint8Array>;
    assert.equal(video.name, 'clip.mp4');
    await uploadAndFind(video, audio);
  });

  test('a generator is streamed: the server has the first bytes before the rest exist', async () => {
    // A loopback server that counts the bytes it receives, and a source that produces its second
    // half only once the server has seen the first: a client that buffered the file first would
    // never send anything, and time out.
    const bytes = fs.readFileSync(env.video);
    const half = Math.floor(bytes.length / 2);
    let received = 0;
    const server = http.createServer((req, res) => {
      req.on('data', (chunk: Buffer) => (received += chunk.length));
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ status: 'success', request_id: 'streamed' }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    async function* video(): AsyncGenerator<Uint8Array> {
      yield bytes.subarray(0, half);
      while (received < half) await new Promise((resolve) => setTimeout(resolve, 5));
      yield bytes.subarray(half);
    }
    try {
      const streaming = new Chamelaion({
        apiKey: 'k',
        baseURL: `http://127.0.0.1:${port}/api`,
        timeout: 5_000,
      });
      const created = await streaming.lipsync.generateWithMedia({
        video: video(),
        audio: fs.readFileSync(env.audio),
      });
      assert.equal(created.request_id, 'streamed');
      assert.ok(received > bytes.length, `the server received ${received} bytes`);
    } finally {
      server.close();
    }
  });

  test('options are sent as form fields', async () => {
    const reference_id = uniqueReference('fields');
    await client().lipsync.generateWithMedia({
      video: fs.createReadStream(env.video),
      audio: fs.createReadStream(env.audio),
      model: 'lipsync-2',
      sync_mode: 'loop',
      disable_active_speaker_detection: true,
      speaker: { frame: 3, x: 0.5, y: 0.25 },
      reference_id,
    });
    const found = await client().lipsync.requests.retrieve(reference_id);
    assert.equal(found.reference_id, reference_id);
    assert.deepEqual(found.speaker, { frame: 3, x: 0.5, y: 0.25 }); // sent as JSON text
  });

  test('a string is refused before anything is sent (it is not a path)', async () => {
    await rejectsWith(
      client().lipsync.generateWithMedia({
        video: env.video as unknown as Uploadable,
        audio: fs.createReadStream(env.audio),
      }),
      TypeError,
      (error) => assert.match(error.message, /createReadStream/),
    );
  });
});

describe('URL jobs and lookups', () => {
  test('generate, then retrieve by id and by reference_id', async () => {
    const reference_id = uniqueReference('urls');
    const created = await client().lipsync.generate(urlJob({ reference_id, sync_mode: 'bounce' }));
    assertAccepted(created);
    const byId = await client().lipsync.requests.retrieve(created.request_id);
    const byReference = await client().lipsync.requests.retrieve(reference_id);
    assert.deepEqual(byReference, byId);
    assert.equal(byId.status, 'queued');
    assert.match(byId.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.equal(byId.output_url, undefined);
  });

  test('both header forms authenticate', async () => {
    const bearer = client({ authHeader: 'bearer' });
    const page = await bearer.lipsync.requests.list({ limit: 1 });
    assert.equal(page.pagination.limit, 1);
    await rejectsWith(
      client({ authHeader: 'bearer', apiKey: 'chm_doesnotexist' }).lipsync.requests.list(),
      AuthenticationError,
      (error) => assert.equal(error.message, 'invalid token'),
    );
  });

  test('withOptions copies the client with some options changed', async () => {
    const original = client({ authHeader: 'bearer' });
    const copy = original.withOptions({ maxRetries: 0, timeout: 5_000 });
    assert.deepEqual([copy.maxRetries, copy.timeout, copy.apiKey], [0, 5_000, env.apiKey]);
    assert.equal(original.maxRetries, 2);
    const page = await copy.lipsync.requests.list({ limit: 1 });
    assert.equal(page.pagination.limit, 1);
  });

  test('the CommonJS build works the same', async () => {
    const required = createRequire(import.meta.url)('chamelaion') as typeof import('chamelaion');
    const cjs = new required.Chamelaion({ apiKey: env.apiKey, baseURL: env.baseURL });
    await rejectsWith(cjs.lipsync.requests.retrieve('no-such-request'), required.NotFoundError);
    assert.equal(required.default, required.Chamelaion);
  });
});

describe('pagination', () => {
  test('list walks every page, oldest first', async () => {
    const reference_id = uniqueReference('pages');
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const created = await client().lipsync.generate(urlJob({ reference_id }));
      ids.push(created.request_id);
    }
    const first = await client().lipsync.requests.list({ reference_id, limit: 2 });
    assert.deepEqual(first.pagination, { limit: 2, offset: 0, total: 5 });
    assert.deepEqual(
      first.data.map((r) => r.id),
      ids.slice(0, 2),
    );
    assert.deepEqual(JSON.parse(JSON.stringify(first)), {
      data: first.data,
      pagination: first.pagination,
    });

    const seen: string[] = [];
    for await (const request of client().lipsync.requests.list({ reference_id, limit: 2 })) {
      seen.push(request.id);
    }
    assert.deepEqual(seen, ids);

    const sizes: number[] = [];
    for await (const page of first.iterPages()) sizes.push(page.data.length);
    assert.deepEqual(sizes, [2, 2, 1]);

    const last = await (await first.getNextPage()).getNextPage();
    assert.deepEqual(last.pagination, { limit: 2, offset: 4, total: 5 });
    assert.equal(last.hasNextPage(), false);
    await rejectsWith(last.getNextPage(), ChamelaionError);

    const fromOffset: string[] = [];
    for await (const request of client().lipsync.requests.list({ reference_id, offset: 3 })) {
      fromOffset.push(request.id);
    }
    assert.deepEqual(fromOffset, ids.slice(3));
  });

  test('a list with no match is one empty page', async () => {
    const page = await client().lipsync.requests.list({ reference_id: uniqueReference('none') });
    assert.deepEqual(page.data, []);
    assert.equal(page.pagination.total, 0);
    assert.equal(page.hasNextPage(), false);
  });
});

describe('errors carry the service status and message', () => {
  const cases: Array<[string, () => Promise<unknown>, new (...args: never[]) => APIStatusError, number, string]> = [
    [
      'unknown key',
      () => client({ apiKey: 'chm_doesnotexist' }).lipsync.requests.list(),
      AuthenticationError,
      401,
      'invalid token',
    ],
    [
      'no key header',
      () => client().lipsync.requests.list({}, { headers: { 'x-api-key': null } }),
      AuthenticationError,
      401,
      'missing authorization header',
    ],
    [
      'no such request',
      () => client().lipsync.requests.retrieve('no-such-request'),
      NotFoundError,
      404,
      'not found',
    ],
    [
      'two videos',
      () =>
        client().lipsync.generate({
          inputs: [
            { type: 'video', url: VIDEO_URL },
            { type: 'video', url: VIDEO_URL },
          ],
        }),
      BadRequestError,
      400,
      'expected exactly one video input',
    ],
    [
      'a bad input type',
      () =>
        client().lipsync.generate({
          inputs: [
            { type: 'subtitles' as 'video', url: VIDEO_URL },
            { type: 'audio', url: AUDIO_URL },
          ],
        }),
      BadRequestError,
      400,
      'input type must be "video" or "audio"',
    ],
    [
      'an unknown model',
      () =>
        client().lipsync.generate(urlJob({ model: 'lipsync-9' as 'lipsync-2' })),
      BadRequestError,
      400,
      'unsupported model',
    ],
    [
      'a transcript language that is not a language tag',
      () =>
        client().lipsync.generate(
          urlJob({ transcript: 'hello mama', transcript_language: 'English, please' }),
        ),
      BadRequestError,
      400,
      'invalid transcript_language: give a BCP-47 language tag (e.g. "en", "fr-FR", "pt-BR")',
    ],
    [
      'a speaker point outside the picture',
      () => client().lipsync.generate(urlJob({ speaker: { frame: 0, x: 1.5, y: 0.5 } })),
      BadRequestError,
      400,
      'invalid speaker: give {"frame": a source frame index from 0, "x": 0 to 1, "y": 0 to 1}',
    ],
    [
      'a speaker frame past the uploaded video',
      () =>
        client().lipsync.generateWithMedia({
          video: fs.createReadStream(env.video),
          audio: fs.createReadStream(env.audio),
          speaker: { frame: 100_000, x: 0.5, y: 0.5 },
        }),
      BadRequestError,
      400,
      "speaker frame is beyond the video's last frame",
    ],
    [
      'a transcript over the cap',
      () =>
        client().lipsync.generateWithMedia({
          video: fs.createReadStream(env.video),
          audio: fs.createReadStream(env.audio),
          transcript: 'é'.repeat(20_001),
        }),
      BadRequestError,
      400,
      'transcript too long: at most 20000 characters',
    ],
    [
      'a file that is not a video',
      () =>
        client().lipsync.generateWithMedia({
          video: Buffer.from('not a video at all'),
          audio: fs.createReadStream(env.audio),
        }),
      BadRequestError,
      400,
      'invalid video file',
    ],
    [
      'a file over the upload cap',
      () =>
        client().lipsync.generateWithMedia({
          video: new Blob([new Uint8Array(env.uploadCap + 1024 * 1024)]),
          audio: fs.createReadStream(env.audio),
        }),
      APIStatusError,
      413,
      'file too large',
    ],
    [
      'a used-up quota',
      () =>
        client({ apiKey: env.spentKey }).lipsync.generate(urlJob()),
      TokenLimitError,
      402,
      'token limit reached',
    ],
  ];
  for (const [name, call, ErrorClass, status, message] of cases) {
    test(name, async () => {
      await rejectsWith(call(), ErrorClass, (error) => {
        assert.equal(error.status, status);
        assert.equal(error.message, message);
        assert.deepEqual(error.body, { error: message });
      });
    });
  }

  test('a rate limit, with its Retry-After', async () => {
    const slow = client({ apiKey: env.slowKey, maxRetries: 0 });
    const body = urlJob();
    assertAccepted(await slow.lipsync.generate(body));
    await rejectsWith(slow.lipsync.generate(body), RateLimitError, (error) => {
      assert.equal(error.message, 'rate limit exceeded');
      assert.ok(Number(error.headers.get('retry-after')) > 0);
    });
  });

  test('no API key at all', () => {
    const saved = process.env['CHAMELAION_API_KEY'];
    delete process.env['CHAMELAION_API_KEY'];
    try {
      assert.throws(() => new Chamelaion({ baseURL: env.baseURL }), /CHAMELAION_API_KEY/);
    } finally {
      process.env['CHAMELAION_API_KEY'] = saved;
    }
  });

  test('the key and base URL come from the environment', async () => {
    const fromEnv = new Chamelaion();
    assert.equal(fromEnv.baseURL, env.baseURL.replace(/\/+$/, ''));
    await rejectsWith(fromEnv.lipsync.requests.retrieve('no-such-request'), NotFoundError);
  });
});

describe('cancellation', () => {
  test('aborting an upload mid-stream: rejected at once, nothing created', async () => {
    const reference_id = uniqueReference('aborted');
    const controller = new AbortController();
    const bytes = fs.readFileSync(env.video);
    async function* stalled(): AsyncGenerator<Uint8Array> {
      yield bytes.subarray(0, 4096);
      await new Promise((resolve) => setTimeout(resolve, 60_000).unref());
    }
    setTimeout(() => controller.abort(), 300);
    const started = Date.now();
    await rejectsWith(
      client().lipsync.generateWithMedia(
        { video: stalled(), audio: fs.createReadStream(env.audio), reference_id },
        { signal: controller.signal },
      ),
      APIUserAbortError,
    );
    assert.ok(Date.now() - started < 5_000);
    const page = await client().lipsync.requests.list({ reference_id });
    assert.equal(page.pagination.total, 0);
  });

  test('an already aborted signal sends nothing', async () => {
    const reference_id = uniqueReference('pre-aborted');
    await rejectsWith(
      client().lipsync.generate(urlJob({ reference_id }), { signal: AbortSignal.abort() }),
      APIUserAbortError,
    );
    const page = await client().lipsync.requests.list({ reference_id });
    assert.equal(page.pagination.total, 0);
  });
});

describe('cancel, delete and estimate', () => {
  test('cancel a queued request, then delete it by reference_id', async () => {
    const reference_id = uniqueReference('cancel');
    const created = await client().lipsync.generate(urlJob({ reference_id }));
    const cancelled = await client().lipsync.requests.cancel(created.request_id);
    assert.equal(cancelled.id, created.request_id);
    assert.equal(cancelled.status, 'cancelled');
    assert.ok(cancelled.finished_at);
    assert.equal((await client().lipsync.requests.wait(created.request_id)).status, 'cancelled');
    const deleted = await client().lipsync.requests.delete(reference_id);
    assert.deepEqual(deleted, { id: created.request_id, deleted: true });
    await rejectsWith(client().lipsync.requests.retrieve(created.request_id), NotFoundError);
    await rejectsWith(client().lipsync.requests.cancel(created.request_id), NotFoundError);
    await rejectsWith(client().lipsync.requests.delete(created.request_id), NotFoundError);
  });

  test('estimateWithMedia measures the upload and creates nothing', async () => {
    const reference_id = uniqueReference('estimate');
    const estimate = await client().lipsync.estimateWithMedia({
      video: fs.createReadStream(env.video),
      audio: fs.createReadStream(env.audio),
      reference_id,
    });
    // The 2 s, 25 fps video, cut off at the end of the (as long) speech.
    const { frames, fps, duration, tokens } = estimate;
    assert.deepEqual({ frames, fps, duration, tokens }, { frames: 50, fps: 25, duration: 2, tokens: 1 });
    assert.ok(estimate.processing_seconds > 0);
    const page = await client().lipsync.requests.list({ reference_id });
    assert.equal(page.pagination.total, 0);
  });

  test('estimate validates as generate does, and needs no quota', async () => {
    const wrongModel = urlJob({ model: 'lipsync-9' as ModelName });
    await rejectsWith(client().lipsync.estimate(wrongModel), BadRequestError, (error) =>
      assert.equal(error.message, 'unsupported model'),
    );
    await rejectsWith(client().lipsync.generate(wrongModel), BadRequestError, (error) =>
      assert.equal(error.message, 'unsupported model'),
    );
    const spent = client({ apiKey: env.spentKey });
    await rejectsWith(spent.lipsync.generate(urlJob()), TokenLimitError);
    // Validated, not refused for the quota: an audio file is no video.
    const audioOnly = { video: fs.createReadStream(env.audio), audio: fs.createReadStream(env.audio) };
    await rejectsWith(spent.lipsync.estimateWithMedia(audioOnly), BadRequestError, (error) =>
      assert.equal(error.message, 'invalid video file'),
    );
  });
});
