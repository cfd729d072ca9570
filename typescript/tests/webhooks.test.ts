/**
 * `verifyWebhook` against a delivery signed by the service's own signing code (made by the pytest
 * test that runs this suite, tests/typescript/test_typescript.py), and against tampered copies.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { WebhookVerificationError, verifyWebhook } from 'chamelaion';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run these tests through pytest tests/typescript`);
  return value;
}

const secret = required('CHAMELAION_TEST_WEBHOOK_SECRET');
const body = required('CHAMELAION_TEST_WEBHOOK_BODY');
const header = required('CHAMELAION_TEST_WEBHOOK_SIGNATURE');
const signedAt = Number(required('CHAMELAION_TEST_WEBHOOK_TIMESTAMP'));

async function refused(promise: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof WebhookVerificationError, String(error));
    assert.match(error.message, message);
    return true;
  });
}

describe('verifyWebhook', () => {
  test("a delivery signed by the service verifies and yields its request", async () => {
    const request = await verifyWebhook(body, header, secret, { now: signedAt + 10 });
    assert.deepEqual(request, JSON.parse(body));
    const fromBytes = await verifyWebhook(new TextEncoder().encode(body), header, secret, {
      now: signedAt,
    });
    assert.equal(fromBytes.id, request.id);
  });

  test('tampering is refused', async () => {
    const now = signedAt;
    await refused(verifyWebhook(`${body} `, header, secret, { now }), /does not match/);
    await refused(verifyWebhook(body, header, `${secret}x`, { now }), /does not match/);
    await refused(verifyWebhook(body, undefined, secret, { now }), /no Chamelaion-Signature/);
    await refused(verifyWebhook(body, 'v1=abc', secret, { now }), /malformed/);
    await refused(verifyWebhook(body, header.split(',')[0], secret, { now }), /malformed/);
    // The timestamp is signed: it cannot be moved.
    await refused(verifyWebhook(body, header.replace('t=', 't=1'), secret, { now }), /does not match/);
  });

  test('an old delivery is refused unless the age check is off', async () => {
    await refused(verifyWebhook(body, header, secret, { now: signedAt + 301 }), /tolerance/);
    assert.ok(await verifyWebhook(body, header, secret, { now: signedAt + 299 }));
    assert.ok(await verifyWebhook(body, header, secret, { tolerance: null, now: signedAt + 1e6 }));
  });
});
