/**
 * Upload inputs for `generateWithMedia`, and the multipart body that carries them.
 *
 * A file may be given as
 * - `fs.createReadStream(path)`: streamed from disk, by its path (so a retry can read it again);
 * - a `Blob` or `File`: streamed with `blob.stream()`; a retry streams it again;
 * - a `Buffer`, `Uint8Array` or `ArrayBuffer`;
 * - any other stream (`Readable`, web `ReadableStream`, async iterable of bytes): streamed once,
 *   so a request carrying one is not retried (it cannot be sent again);
 * - `await toFile(any of the above, 'name.mp4')`, to give it a file name or content type.
 *
 * Nothing is read whole into memory: the body is produced part by part, chunk by chunk, as
 * `fetch` sends it. When every file's size is known up front (all but foreign streams) the body's
 * `Content-Length` is known too; otherwise it goes out with chunked transfer encoding.
 */

/** A `Blob` or `File` (the web platform's or Node's). */
export interface BlobLike {
  readonly size: number;
  readonly type: string;
  stream(): ReadableStream<Uint8Array>;
  arrayBuffer(): Promise<ArrayBuffer>;
}

/** An `fs.ReadStream`, recognised by the path it reads (and re-read from there on a retry). */
export interface ReadStreamLike extends AsyncIterable<unknown> {
  readonly path: string | { toString(): string };
  readonly bytesRead: number;
  pipe: unknown;
}

/** What `generateWithMedia` takes for `video` and `audio`. */
export type Uploadable =
  | UploadFile
  | BlobLike
  | ReadStreamLike
  | ArrayBuffer
  | ArrayBufferView
  | ReadableStream<Uint8Array>
  | AsyncIterable<Uint8Array | string>;

/** A source of bytes that a request attempt can read from the start. */
interface ByteSource {
  /** Total bytes, when known without reading. */
  readonly size: number | undefined;
  /** Whether `open()` may be called again after the bytes were read once (for a retry). */
  readonly rewindable: boolean;
  open(): AsyncIterable<Uint8Array>;
}

const encoder = new TextEncoder();

/** 13 random hex digits (52 bits). Node 18 has no global `crypto`, and a multipart boundary or
 * a temporary file name needs no secrecy, only to be unlikely to occur by chance. */
export function randomHex(): string {
  return Math.random().toString(16).slice(2, 15).padEnd(13, '0');
}

function toBytes(chunk: unknown): Uint8Array {
  if (chunk instanceof Uint8Array) return chunk;
  if (typeof chunk === 'string') return encoder.encode(chunk);
  if (chunk instanceof ArrayBuffer) return new Uint8Array(chunk);
  if (ArrayBuffer.isView(chunk)) {
    return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  }
  throw new TypeError(`a file stream yielded a ${typeof chunk}, expected bytes`);
}

async function* readableStreamChunks(stream: ReadableStream<Uint8Array>): AsyncIterable<Uint8Array> {
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield toBytes(value);
    }
  } finally {
    reader.releaseLock();
  }
}

async function* iterableChunks(iterable: AsyncIterable<unknown>): AsyncIterable<Uint8Array> {
  for await (const chunk of iterable) yield toBytes(chunk);
}

function isBlobLike(value: unknown): value is BlobLike {
  const v = value as BlobLike;
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof v.size === 'number' &&
    typeof v.type === 'string' &&
    typeof v.stream === 'function' &&
    typeof v.arrayBuffer === 'function'
  );
}

function isReadStream(value: unknown): value is ReadStreamLike {
  const v = value as ReadStreamLike;
  return (
    typeof v === 'object' &&
    v !== null &&
    (typeof v.path === 'string' || v.path instanceof Uint8Array) &&
    typeof v.bytesRead === 'number' &&
    typeof v.pipe === 'function'
  );
}

function isWebStream(value: unknown): value is ReadableStream<Uint8Array> {
  return typeof (value as ReadableStream | null)?.getReader === 'function';
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof (value as AsyncIterable<unknown> | null)?.[Symbol.asyncIterator] === 'function';
}

function baseName(path: string): string {
  return path.split(/[\\/]/).pop() || path;
}

/** A file of an `fs.ReadStream`, read from its path (and byte range) by each attempt, so a retry
 * can send it again. The stream the caller gave is closed unread: it only names the file. */
async function readStreamSource(stream: ReadStreamLike): Promise<ByteSource> {
  const fs = await import('node:fs');
  const path = stream.path.toString();
  const { start, end } = stream as { start?: number; end?: number };
  (stream as { destroy?: () => void }).destroy?.();
  const { size } = await fs.promises.stat(path);
  const from = start ?? 0;
  const to = end === undefined || end === Infinity ? size - 1 : Math.min(end, size - 1);
  return {
    size: Math.max(to - from + 1, 0),
    rewindable: true,
    open: () => iterableChunks(fs.createReadStream(path, { start: from, end: Math.max(to, from) })),
  };
}

function onceSource(iterable: AsyncIterable<unknown>): ByteSource {
  return { size: undefined, rewindable: false, open: () => iterableChunks(iterable) };
}

function bytesSource(bytes: Uint8Array): ByteSource {
  return {
    size: bytes.byteLength,
    rewindable: true,
    async *open() {
      yield bytes;
    },
  };
}

async function byteSource(field: string, value: Uploadable): Promise<ByteSource> {
  if (value instanceof UploadFile) return value.source();
  if (isBlobLike(value)) {
    return { size: value.size, rewindable: true, open: () => readableStreamChunks(value.stream()) };
  }
  if (value instanceof ArrayBuffer || ArrayBuffer.isView(value)) return bytesSource(toBytes(value));
  if (isReadStream(value)) return readStreamSource(value);
  if (isWebStream(value)) return onceSource(readableStreamChunks(value));
  if (isAsyncIterable(value)) return onceSource(value);
  throw new TypeError(
    `${field}: expected fs.createReadStream(path), a Blob or File, a Buffer, a stream or ` +
      `toFile(...), got ${value === null ? 'null' : typeof value}` +
      (typeof value === 'string' ? ' (a path? pass fs.createReadStream(path))' : ''),
  );
}

function defaultName(value: unknown): string | undefined {
  const name = (value as { name?: unknown } | null)?.name;
  if (typeof name === 'string' && name) return baseName(name);
  if (isReadStream(value)) return baseName(value.path.toString());
  return undefined;
}

function defaultType(value: unknown): string | undefined {
  const type = (value as { type?: unknown } | null)?.type;
  return typeof type === 'string' && type ? type : undefined;
}

/** An upload with its file name and content type: what `toFile` returns. */
export class UploadFile {
  readonly name: string | undefined;
  readonly type: string | undefined;
  readonly #content: Uploadable;
  #source: Promise<ByteSource> | undefined;

  constructor(content: Uploadable, name?: string, type?: string) {
    this.#content = content;
    this.name = name ?? defaultName(content);
    this.type = type ?? defaultType(content);
  }

  /** Where its bytes come from; worked out once (an `fs.ReadStream` needs a `stat`). */
  source(): Promise<ByteSource> {
    this.#source ??= byteSource(this.name ?? 'file', this.#content);
    return this.#source;
  }
}

/**
 * Names an upload (and optionally gives its content type), without reading it:
 * `await toFile(fs.createReadStream('take-3.bin'), 'take-3.mp4', { type: 'video/mp4' })`.
 */
export async function toFile(
  content: Uploadable,
  name?: string,
  options: { type?: string } = {},
): Promise<UploadFile> {
  const file = new UploadFile(content, name, options.type);
  await file.source(); // a bad value fails here, not in the middle of a request
  return file;
}

/** One part of a multipart body: a text field or a file. */
type Part = { name: string; value: string } | { name: string; file: UploadFile };

/**
 * A `multipart/form-data` body that can be produced once per request attempt.
 */
export class MultipartBody {
  readonly boundary: string;
  readonly #parts: Array<{ head: Uint8Array; source: ByteSource | undefined; value: Uint8Array }>;
  readonly #tail: Uint8Array;
  #sent = false;

  private constructor(
    parts: Array<{ head: Uint8Array; source: ByteSource | undefined; value: Uint8Array }>,
    boundary: string,
  ) {
    this.boundary = boundary;
    this.#parts = parts;
    this.#tail = encoder.encode(`--${boundary}--\r\n`);
  }

  /** Builds the body from text fields and files, checking every file before any request. */
  static async create(parts: Part[]): Promise<MultipartBody> {
    const boundary = `----chamelaion-${randomHex()}${randomHex()}`;
    const built = await Promise.all(
      parts.map(async (part) => {
        const head = [`--${boundary}`];
        if ('value' in part) {
          head.push(`Content-Disposition: form-data; name="${quote(part.name)}"`, '', '');
          return {
            head: encoder.encode(head.join('\r\n')),
            source: undefined,
            value: encoder.encode(`${part.value}\r\n`),
          };
        }
        const filename = part.file.name ?? part.name;
        head.push(
          `Content-Disposition: form-data; name="${quote(part.name)}"; filename="${quote(filename)}"`,
          `Content-Type: ${part.file.type ?? 'application/octet-stream'}`,
          '',
          '',
        );
        return {
          head: encoder.encode(head.join('\r\n')),
          source: await part.file.source(),
          value: encoder.encode('\r\n'),
        };
      }),
    );
    return new MultipartBody(built, boundary);
  }

  get contentType(): string {
    return `multipart/form-data; boundary=${this.boundary}`;
  }

  /** The body's length in bytes, or undefined when a file's size is unknown (a foreign stream). */
  get length(): number | undefined {
    let total = this.#tail.byteLength;
    for (const part of this.#parts) {
      if (part.source && part.source.size === undefined) return undefined;
      total += part.head.byteLength + (part.source?.size ?? 0) + part.value.byteLength;
    }
    return total;
  }

  /** Whether the body can be sent again (every file can be read again from its start). */
  get rewindable(): boolean {
    return this.#parts.every((part) => !part.source || part.source.rewindable);
  }

  /** The body's bytes for one attempt; `onChunk` is called as each chunk is taken (to show
   * progress to a timeout that measures idleness). */
  stream(onChunk: () => void): ReadableStream<Uint8Array> {
    if (this.#sent && !this.rewindable) throw new TypeError('this upload cannot be sent twice');
    this.#sent = true;
    const parts = this.#parts;
    const tail = this.#tail;
    async function* chunks(): AsyncGenerator<Uint8Array> {
      for (const part of parts) {
        yield part.head;
        if (part.source) yield* part.source.open();
        yield part.value;
      }
      yield tail;
    }
    const iterator = chunks();
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        const { done, value } = await iterator.next();
        if (done) {
          controller.close();
        } else {
          onChunk();
          if (value.byteLength) controller.enqueue(value);
        }
      },
      async cancel() {
        await iterator.return(undefined);
      },
    });
  }
}

/** Quotes a name or file name for a Content-Disposition header, as browsers do. */
function quote(text: string): string {
  return text.replace(/\r/g, '%0D').replace(/\n/g, '%0A').replace(/"/g, '%22');
}
