/** `client.lipsync`: start lip sync jobs (`/v1/lipsync/generate[-with-media]`). */
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
   * fails; the Python SDK's `verify_webhook` checks the signature. */
  webhook_url?: string;
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
   * fails; the Python SDK's `verify_webhook` checks the signature. */
  webhook_url?: string;
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
   * response includes a request identifier to poll later.
   */
  async generate(body: LipsyncGenerateParams, options?: RequestOptions): Promise<LipsyncGenerate> {
    if (!Array.isArray(body?.inputs)) {
      throw new ChamelaionError("inputs must be an array of { type, url } objects");
    }
    return this.#client.request({ method: 'POST', path: '/v1/lipsync/generate', json: body }, options);
  }

  /**
   * Starts a lip sync job by uploading one video file and one audio file as multipart
   * form-data. The files are streamed, never read whole into memory.
   */
  async generateWithMedia(
    body: LipsyncGenerateWithMediaParams,
    options?: RequestOptions,
  ): Promise<LipsyncGenerate> {
    const { video, audio, ...fields } = body;
    const text = Object.entries(fields)
      .filter((entry): entry is [string, string | boolean] => entry[1] !== undefined)
      .map(([name, value]) => ({ name, value: String(value) }));
    const file = (name: 'video' | 'audio', value: Uploadable | undefined) => {
      if (value === undefined || value === null) throw new ChamelaionError(`${name} is required`);
      return { name, file: value instanceof UploadFile ? value : new UploadFile(value) };
    };
    const multipart = await MultipartBody.create([...text, file('video', video), file('audio', audio)]);
    return this.#client.request(
      { method: 'POST', path: '/v1/lipsync/generate-with-media', multipart },
      options,
    );
  }
}
