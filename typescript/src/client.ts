/** `Chamelaion`: the entry point of the SDK. */
import { APIClient, type ClientOptions } from './core.js';
import { Lipsync } from './resources/lipsync/lipsync.js';

/**
 * A client of the Chamelaion API.
 *
 * ```ts
 * const client = new Chamelaion(); // CHAMELAION_API_KEY, CHAMELAION_BASE_URL from the environment
 * const job = await client.lipsync.generateWithMedia({ video: fs.createReadStream('in.mp4'), audio: fs.createReadStream('dub.wav') });
 * const done = await client.lipsync.requests.wait(job.request_id);
 * await client.lipsync.requests.download(done, 'out.mp4');
 * ```
 */
export class Chamelaion extends APIClient {
  readonly lipsync: Lipsync;
  readonly #options: ClientOptions;

  constructor(options: ClientOptions = {}) {
    super(options);
    this.#options = options;
    this.lipsync = new Lipsync(this);
  }

  /** A copy of this client with some options changed. */
  withOptions(options: ClientOptions): Chamelaion {
    return new Chamelaion({
      ...this.#options,
      apiKey: this.apiKey,
      baseURL: this.baseURL,
      timeout: this.timeout,
      maxRetries: this.maxRetries,
      ...options,
      defaultHeaders: { ...this.defaultHeaders, ...options.defaultHeaders },
    });
  }
}
