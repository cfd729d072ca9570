/**
 * Checking that a webhook really comes from your Chamelaion service (as the Python SDK's
 * `verify_webhook` does).
 *
 * The service signs each delivery with your account's webhook secret (`chamelaion keys
 * webhook-secret`): `Chamelaion-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
 * Verify against the raw body, before parsing it: re-serialised JSON would not match.
 */
import { WebhookVerificationError } from './errors.js';
import type { LipsyncRequest } from './resources/lipsync/requests.js';

export const SIGNATURE_HEADER = 'Chamelaion-Signature';
/** Seconds a delivery's timestamp may lie from now: an older one may be a replay. */
export const DEFAULT_TOLERANCE = 300;

export interface VerifyWebhookOptions {
  /** Seconds the timestamp may lie from `now` (default 300); `null`: do not check the age. */
  tolerance?: number | null;
  /** The current time in Unix seconds (default: the clock's). */
  now?: number;
}

/**
 * Checks a delivery's `Chamelaion-Signature` header and returns the request object it carries.
 * Rejects with `WebhookVerificationError` when the header is missing or malformed, the signature
 * does not match, or the timestamp is more than `tolerance` seconds from now. Node only (it uses
 * `node:crypto`).
 *
 * ```ts
 * const request = await verifyWebhook(rawBody, req.headers['chamelaion-signature'], secret);
 * if (request.status === 'completed') { ... }
 * ```
 */
export async function verifyWebhook(
  payload: string | Uint8Array,
  signature: string | null | undefined,
  secret: string,
  options: VerifyWebhookOptions = {},
): Promise<LipsyncRequest> {
  const { createHmac, timingSafeEqual } = await import('node:crypto');
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : Buffer.from(payload);
  if (!signature) throw new WebhookVerificationError(`no ${SIGNATURE_HEADER} header`);
  let timestamp: number | undefined;
  const candidates: string[] = [];
  for (const part of signature.split(',')) {
    const [name = '', ...rest] = part.trim().split('=');
    const value = rest.join('=');
    if (name === 't' && /^\d+$/.test(value)) timestamp = Number(value);
    else if (name === 'v1') candidates.push(value);
  }
  if (timestamp === undefined || candidates.length === 0) {
    throw new WebhookVerificationError(`malformed ${SIGNATURE_HEADER} header`);
  }
  const expected = Buffer.from(
    createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex'),
  );
  const matches = candidates.some((candidate) => {
    const given = Buffer.from(candidate);
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
  if (!matches) throw new WebhookVerificationError('signature does not match');
  const tolerance = options.tolerance === undefined ? DEFAULT_TOLERANCE : options.tolerance;
  const now = options.now ?? Date.now() / 1000;
  if (tolerance !== null && Math.abs(now - timestamp) > tolerance) {
    throw new WebhookVerificationError('timestamp outside the tolerance (a replay?)');
  }
  return JSON.parse(body.toString('utf8')) as LipsyncRequest;
}
