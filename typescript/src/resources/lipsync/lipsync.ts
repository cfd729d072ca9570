/** `client.lipsync`: start lip sync jobs (`/v1/lipsync/generate[-with-media]`), or estimate
 * them (`/v1/lipsync/estimate[-with-media]`). */
import type { APIClient, RequestOptions } from '../../core.js';
import { ChamelaionError } from '../../errors.js';
import { MultipartBody, UploadFile, type Uploadable } from '../../uploads.js';
import { Requests } from './requests.js';

/** The models the service offers. */
export type ModelName = 'lipsync-2';

/** What to do when the audio and the video differ in length. */
export type SyncMode = 'cut_off' | 'loop' | 'bounce' | 'silence' | 'remap';

export interface LipsyncGenerate {
  /** Identifier of the created lip sync request. */
  request_id: string;

  /** Current state of the newly created request. */
  status: 'success';
}

/** What a job with some inputs would produce and cost; `estimate()` starts no job. */
export interface LipsyncEstimate {
  /** Length of the output in seconds (after `sync_mode`). */
  duration: number;

  /** Frames the output will have. */
  frames: number;

  /** Output frames per second (the source video's rate). */
  fps: number;

  /** Requests of the key's quota the job will use (each job uses one). */
  tokens: number;

  /** Expected processing time in seconds once a worker starts it (time queued not included). */
  processing_seconds: number;
}

/** A point on a face in one frame of the source video: the face to re-animate. */
export interface SpeakerPoint {
  /** The source video's frame (0-based, at its own frame rate). */
  frame: number;

  /** From the left edge, as a fraction (0-1) of the picture's width. */
  x: number;

  /** From the top edge, as a fraction (0-1) of the picture's height. */
  y: number;
}

export interface LipsyncGenerateParams {
  /** Exactly one video input and one audio input (order does not matter). */
  inputs: Array<LipsyncGenerateParams.Input>;

  /** Disable active speaker detection and use max-face lipsync preprocessing. */
  disable_active_speaker_detection?: boolean;

  /** Optional model selector. */
  model?: ModelName;

  /** Optional client-provided identifier for later retrieval. */
  reference_id?: string;

  /** How to reconcile a video and an audio of different lengths (default `cut_off`). */
  sync_mode?: SyncMode;

  /** Called (POST, signed with the account's webhook secret) when the request completes or
   * fails; `verifyWebhook` checks the signature. */
  webhook_url?: string;

  /** What the new audio says, if you have the script (at most 20 000 characters): its phones,
   * aligned to the audio, make the mouth surer. One that does not match the audio is not used,
   * and the finished request's `notes` say so. */
  transcript?: string;

  /** The transcript's language as a BCP-47 tag (default `en`; `fr-FR`, `pt-BR`, ...); in a
   * language the server's espeak-ng does not read, the transcript is not used and the `notes`
   * say so. */
  transcript_language?: string;

  /** The person to re-animate, pointed at: a point on their face in one source frame.
   * Overrides active speaker detection; the person is followed into other shots only where
   * they are recognised (the finished request's `notes` say where not). */
  speaker?: SpeakerPoint;
}

export namespace LipsyncGenerateParams {
  export interface Input {
    /** Type of input media. */
    type: 'video' | 'audio';

    /** URL of the media resource. */
    url: string;
  }
}

export interface LipsyncGenerateWithMediaParams {
  /** Target audio file. */
  audio: Uploadable;

  /** Source video file. */
  video: Uploadable;

  /** Disable active speaker detection and use max-face lipsync preprocessing. */
  disable_active_speaker_detection?: boolean;

  /** Optional model selector. */
  model?: ModelName;

  /** Optional client-provided identifier for later retrieval. */
  reference_id?: string;

  /** How to reconcile a video and an audio of different lengths (default `cut_off`). */
  sync_mode?: SyncMode;

  /** Called (POST, signed with the account's webhook secret) when the request completes or
   * fails; `verifyWebhook` checks the signature. */
  webhook_url?: string;

  /** What the new audio says, if you have the script (at most 20 000 characters): its phones,
   * aligned to the audio, make the mouth surer. One that does not match the audio is not used,
   * and the finished request's `notes` say so. */
  transcript?: string;

  /** The transcript's language as a BCP-47 tag (default `en`; `fr-FR`, `pt-BR`, ...); in a
   * language the server's espeak-ng does not read, the transcript is not used and the `notes`
   * say so. */
  transcript_language?: string;

  /** The person to re-animate, pointed at: a point on their face in one source frame.
   * Overrides active speaker detection; the person is followed into other shots only where
   * they are recognised (the finished request's `notes` say where not). */
  speaker?: SpeakerPoint;
}

/** A fresh UUID: the global Web Crypto where there is one (browsers, Node 19+), else Node's. */
async function randomUUID(): Promise<string> {
  const webCrypto = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  if (webCrypto?.randomUUID) return webCrypto.randomUUID();
  return (await import('node:crypto')).randomUUID();
}

/**
 * A create's options with an `Idempotency-Key` (the caller's, if the headers carry one): the same
 * key goes with every retry of the call, so a retried create that did reach the service gets the
 * first response back rather than making a second job.
 */
async function idempotent(options: RequestOptions | undefined): Promise<RequestOptions> {
  const given = Object.entries(options?.headers ?? {}).some(
    ([name, value]) => name.toLowerCase() === 'idempotency-key' && value !== undefined,
  );
  if (given) return { ...options };
  return { ...options, headers: { 'Idempotency-Key': await randomUUID(), ...options?.headers } };
}

function checkInputs(body: LipsyncGenerateParams): void {
  if (!Array.isArray(body?.inputs)) {
    throw new ChamelaionError('inputs must be an array of { type, url } objects');
  }
}

/** The upload's multipart body (streamed): the options as text fields (an object, `speaker`,
 * as JSON text), then the two files. */
async function mediaBody(body: LipsyncGenerateWithMediaParams): Promise<MultipartBody> {
  const { video, audio, ...fields } = body;
  const text = Object.entries(fields)
    .filter((entry): entry is [string, string | boolean | SpeakerPoint] => entry[1] !== undefined)
    .map(([name, value]) => ({
      name,
      value: typeof value === 'object' ? JSON.stringify(value) : String(value),
    }));
  const file = (name: 'video' | 'audio', value: Uploadable | undefined) => {
    if (value === undefined || value === null) throw new ChamelaionError(`${name} is required`);
    return { name, file: value instanceof UploadFile ? value : new UploadFile(value) };
  };
  return MultipartBody.create([...text, file('video', video), file('audio', audio)]);
}

export class Lipsync {
  readonly requests: Requests;
  readonly #client: APIClient;

  constructor(client: APIClient) {
    this.#client = client;
    this.requests = new Requests(client);
  }

  /**
   * Starts a lip sync job from exactly one remote video URL and one remote audio URL. The
   * response includes a request identifier to poll later. Sent with an `Idempotency-Key` (a
   * fresh UUID unless `options.headers` has one), so retrying it never makes a second job.
   */
  async generate(body: LipsyncGenerateParams, options?: RequestOptions): Promise<LipsyncGenerate> {
    checkInputs(body);
    return this.#client.request(
      { method: 'POST', path: '/v1/lipsync/generate', json: body },
      await idempotent(options),
    );
  }

  /**
   * Starts a lip sync job by uploading one video file and one audio file as multipart
   * form-data. The files are streamed, never read whole into memory. Idempotent as `generate`.
   */
  async generateWithMedia(
    body: LipsyncGenerateWithMediaParams,
    options?: RequestOptions,
  ): Promise<LipsyncGenerate> {
    return this.#client.request(
      { method: 'POST', path: '/v1/lipsync/generate-with-media', multipart: await mediaBody(body) },
      await idempotent(options),
    );
  }

  /**
   * What `generate(body)` would produce and cost (output duration and frames, tokens, expected
   * processing time), without starting a job or using quota. The service fetches the URLs to
   * measure them and validates everything as `generate` does, so a mistake gets the same error.
   */
  async estimate(body: LipsyncGenerateParams, options?: RequestOptions): Promise<LipsyncEstimate> {
    checkInputs(body);
    return this.#client.request({ method: 'POST', path: '/v1/lipsync/estimate', json: body }, options);
  }

  /** What `generateWithMedia(body)` would produce and cost, without starting a job or using
   * quota (the files are uploaded, measured and dropped). */
  async estimateWithMedia(
    body: LipsyncGenerateWithMediaParams,
    options?: RequestOptions,
  ): Promise<LipsyncEstimate> {
    return this.#client.request(
      { method: 'POST', path: '/v1/lipsync/estimate-with-media', multipart: await mediaBody(body) },
      options,
    );
  }
}
