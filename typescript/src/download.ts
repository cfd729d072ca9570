/**
 * Saving an output file: streamed into a temporary file next to the destination and renamed into
 * place, so the destination never holds a partial file; a broken transfer is resumed with an HTTP
 * `Range` request (the Python SDK's `_download`). Node only: it writes files.
 */
import { APIConnectionError } from './errors.js';
import { type APIClient, readText, type RequestOptions } from './core.js';
import { randomHex } from './uploads.js';
import { VERSION } from './version.js';

/** `onProgress(bytesWritten, totalBytesOrUndefined)`, called after each chunk is written. */
export type ProgressCallback = (written: number, total: number | undefined) => void;

export interface DownloadOptions extends Omit<RequestOptions, 'headers'> {
  onProgress?: ProgressCallback;
}

/** `"bytes 100-999/1000"` → [100, 1000]; `"bytes 100-999/*"` → [100, undefined]. */
function parseContentRange(value: string | null): [number | undefined, number | undefined] {
  const match = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(value?.trim() ?? '');
  if (!match) return [undefined, undefined];
  return [Number(match[1]), match[2] === '*' ? undefined : Number(match[2])];
}

/** Streams `url` into the file `dest` (an absolute URL, or one relative to the client's base). */
export async function downloadFile(
  client: APIClient,
  url: string,
  dest: string,
  options: DownloadOptions = {},
): Promise<void> {
  const fs = await import('node:fs');
  const path = await import('node:path');
  const target = new URL(url, `${client.baseURL}/`).toString();
  const temp = path.join(
    path.dirname(dest),
    `.${path.basename(dest)}.${randomHex()}.part`,
  );
  const file = await fs.promises.open(temp, 'w');
  let written = 0;
  let total: number | undefined;
  try {
    await client.retrying(options, true, async (attempt) => {
      const headers: Record<string, string> = {
        accept: '*/*',
        'accept-encoding': 'identity',
        'user-agent': `chamelaion-node/${VERSION}`,
      };
      if (written) headers['range'] = `bytes=${written}-`;
      // The output URL is signed: the API key is not sent to it.
      const response = await client.fetch(target, { headers, signal: attempt.signal });
      if (!response.ok) return { status: response.status, text: await readText(response, attempt), response };
      if (response.status === 206 && written) {
        const [start, size] = parseContentRange(response.headers.get('content-range'));
        if (start !== written) {
          const expected = written;
          written = 0; // the next attempt asks for the whole file
          await file.truncate(0);
          throw new APIConnectionError(`range response starts at ${start}, expected ${expected}`);
        }
        total = size;
      } else {
        written = 0;
        await file.truncate(0);
        const length = response.headers.get('content-length');
        total = length && /^\d+$/.test(length) ? Number(length) : undefined;
      }
      if (response.body) {
        const reader = response.body.getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          attempt.touch();
          await file.write(value, 0, value.byteLength, written);
          written += value.byteLength;
          options.onProgress?.(written, total);
        }
      }
      if (total !== undefined && written !== total) {
        throw new APIConnectionError(`download ended after ${written} of ${total} bytes`);
      }
      return { status: response.status, response };
    });
    await file.sync();
    await file.close();
    await fs.promises.rename(temp, dest);
  } catch (err) {
    await file.close().catch(() => undefined);
    await fs.promises.rm(temp, { force: true });
    throw err;
  }
}
