/**
 * What the tests get from the pytest test that runs them (tests/typescript/test_typescript.py):
 * a real `chamelaion serve` on loopback with keys made for them, and real media files.
 */
import Chamelaion, { type ClientOptions, type LipsyncGenerateParams } from 'chamelaion';

function required(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(
      `${name} is not set: these tests run against a real service started by ` +
        '`pytest tests/typescript` (make test), which sets it',
    );
  }
  return value;
}

export const env = {
  /** An API-only service (no engine workers: jobs stay queued), 8 MiB upload cap. */
  apiKey: required('CHAMELAION_API_KEY'),
  baseURL: required('CHAMELAION_BASE_URL'),
  /** A key of the same service with a request quota of 0. */
  spentKey: required('CHAMELAION_TEST_SPENT_KEY'),
  /** A key of the same service allowed one generate a minute. */
  slowKey: required('CHAMELAION_TEST_SLOW_KEY'),
  /** A service with an engine worker, so jobs complete. */
  workerBaseURL: required('CHAMELAION_TEST_WORKER_BASE_URL'),
  workerApiKey: required('CHAMELAION_TEST_WORKER_API_KEY'),
  /** A 2 s talking-head MP4 (no sound) and 2.5 s of speech (WAV). */
  video: required('CHAMELAION_TEST_VIDEO'),
  audio: required('CHAMELAION_TEST_AUDIO'),
  /** The service's upload cap, in bytes. */
  uploadCap: Number(required('CHAMELAION_TEST_UPLOAD_CAP')),
};

/** A client of the API-only service. */
export function client(options: ClientOptions = {}): Chamelaion {
  return new Chamelaion({ apiKey: env.apiKey, baseURL: env.baseURL, ...options });
}

/** A reference_id no other test uses. */
export function uniqueReference(label: string): string {
  return `${label}-${process.pid}-${Date.now()}-${Math.random().toString(16).slice(2, 8)}`;
}

export const VIDEO_URL = 'https://cdn.example.com/episodes/42.mp4';
export const AUDIO_URL = 'https://cdn.example.com/dubs/42-japanese.wav';

/** The body of a URL job (the seed's URLs: on the API-only service it stays queued). */
export function urlJob(extra: Omit<LipsyncGenerateParams, 'inputs'> = {}): LipsyncGenerateParams {
  return {
    inputs: [
      { type: 'video', url: VIDEO_URL },
      { type: 'audio', url: AUDIO_URL },
    ],
    ...extra,
  };
}
