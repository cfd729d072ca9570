/**
 * `requests.wait` and `requests.download` on a service with an engine worker: a real upload is
 * lip-synced by the engine, waited for, and its MP4 downloaded (whole, into a directory, and
 * resumed after a connection cut half way).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { before, describe, test } from 'node:test';

import Chamelaion, {
  APIUserAbortError,
  ChamelaionError,
  WaitTimeoutError,
  type LipsyncRequest,
} from 'chamelaion';

import { client, env, urlJob } from './env.js';

function workerClient(options: { fetch?: typeof fetch } = {}): Chamelaion {
  return new Chamelaion({ apiKey: env.workerApiKey, baseURL: env.workerBaseURL, ...options });
}

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'chamelaion-ts-'));
}

/** An MP4 starts with an `ftyp` box. */
function assertMP4(file: string): Buffer {
  const bytes = fs.readFileSync(file);
  assert.equal(bytes.subarray(4, 8).toString('latin1'), 'ftyp');
  return bytes;
}

describe('a real job, waited for and downloaded', () => {
  let done: LipsyncRequest;
  let whole: Buffer;

  before(async () => {
    const created = await workerClient().lipsync.generateWithMedia({
      video: fs.createReadStream(env.video),
      audio: fs.createReadStream(env.audio),
    });
    done = await workerClient().lipsync.requests.wait(created.request_id, {
      pollInterval: 250,
      timeout: 300_000,
    });
  });

  test('wait returns the finished request', () => {
    assert.equal(done.status, 'completed', done.error_message);
    assert.ok(done.output_url);
    assert.ok(done.started_at && done.finished_at);
  });

  test('download saves the MP4, reporting progress', async () => {
    const file = path.join(tempDir(), 'out.mp4');
    const progress: Array<[number, number | undefined]> = [];
    const saved = await workerClient().lipsync.requests.download(done, file, {
      onProgress: (written, total) => progress.push([written, total]),
    });
    assert.equal(saved, file);
    whole = assertMP4(file);
    assert.deepEqual(progress.at(-1), [whole.length, whole.length]);
    assert.deepEqual(fs.readdirSync(path.dirname(file)), ['out.mp4']); // no temporary file left
  });

  test('download by id into a directory saves <id>.mp4', async () => {
    const dir = tempDir();
    const saved = await workerClient().lipsync.requests.download(done.id, dir);
    assert.equal(saved, path.join(dir, `${done.id}.mp4`));
    assert.deepEqual(assertMP4(saved), whole);
  });

  test('a download cut half way is resumed with Range', async () => {
    const ranges: Array<string | null> = [];
    let cut = false;
    // A fetch that breaks the first output download's body after 1000 bytes, as a dropped
    // connection would; everything else goes to the service untouched.
    const cutting: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      if (!String(input).includes('/files/')) return response;
      ranges.push(new Headers(init?.headers).get('range'));
      if (cut || !response.body) return response;
      cut = true;
      const reader = response.body.getReader();
      let sent = 0;
      const broken = new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (sent === 1000) {
            // After the 1000 bytes were read: an error now drops nothing already delivered.
            await reader.cancel();
            return controller.error(new TypeError('terminated', { cause: new Error('other side closed') }));
          }
          const { done: end, value } = await reader.read();
          if (end) return controller.close();
          const chunk = value.subarray(0, 1000 - sent);
          sent += chunk.byteLength;
          controller.enqueue(chunk);
        },
      });
      return new Response(broken, { status: response.status, headers: response.headers });
    };
    const file = path.join(tempDir(), 'resumed.mp4');
    await workerClient({ fetch: cutting }).lipsync.requests.download(done, file);
    assert.deepEqual(ranges, [null, 'bytes=1000-']);
    assert.deepEqual(fs.readFileSync(file), whole);
  });

  test('download of an unfinished request says why', async () => {
    const pending = await client().lipsync.generate(urlJob());
    await assert.rejects(
      client().lipsync.requests.download(pending.request_id, path.join(tempDir(), 'x.mp4')),
      (error: unknown) => error instanceof ChamelaionError && /no output yet/.test(error.message),
    );
  });
});

describe('wait gives up', () => {
  test('after its timeout, with the request as last seen', async () => {
    const pending = await client().lipsync.generate(urlJob());
    await assert.rejects(
      client().lipsync.requests.wait(pending.request_id, { timeout: 300, pollInterval: 100 }),
      (error: unknown) =>
        error instanceof WaitTimeoutError &&
        error.last.id === pending.request_id &&
        error.last.status === 'queued',
    );
  });

  test('when its signal fires', async () => {
    const pending = await client().lipsync.generate(urlJob());
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    await assert.rejects(
      client().lipsync.requests.wait(pending.request_id, { signal: controller.signal }),
      APIUserAbortError,
    );
  });
});
