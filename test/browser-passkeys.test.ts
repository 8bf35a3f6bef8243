// The appliance's own page (clients/web) driven by a person's browser: headless Chromium (Debian's
// /usr/bin/chromium, through playwright-core) with the DevTools virtual authenticator (CTAP2,
// platform, discoverable credentials, user verification) against a real appliance. Through the
// page's UI: register a passkey, sign in with a WebCrypto P-256 session key, create a key, require
// approval, sign with a passkey approval (viem recovers the key's address), be refused without one,
// grant a service, approve the service's request for it, revoke, read the audit log, sign out. A
// service principal on the Node client checks the same outcomes from outside the browser.

import { create, fromJsonString, toJsonString } from '@bufbuild/protobuf';
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { recoverMessageAddress, type Hex } from 'viem';
import { afterAll, describe, expect, it } from 'vitest';
import { createOpenKeyClient, generateCredentials, openKeyErrorCode, type OpenKeyClient } from '../clients/src/index.ts';
import { PasskeyApprovalSchema } from '../proto/gen/openkey/v1/common_pb.ts';
import { PrincipalKeyAlgorithm } from '../proto/gen/openkey/v1/principals_pb.ts';
import { SignRequestSchema, type SignRequest } from '../proto/gen/openkey/v1/signing_pb.ts';
import { startTestAppliance, type TestAppliance } from './support/appliance.ts';

const CHROMIUM = '/usr/bin/chromium';
const HAVE_CHROMIUM = existsSync(CHROMIUM);
const REQUIRED = process.env['OPENKEY_BROWSER_TESTS'] === 'required';
if (!HAVE_CHROMIUM && !REQUIRED) {
  console.warn(`browser test skipped: ${CHROMIUM} not found. Install it with: apt-get install chromium (OPENKEY_BROWSER_TESTS=required makes this a failure).`);
}

/** Waits until `testId` shows `text`, failing early with the page's message if `errorId` shows one. */
async function shows(page: Page, testId: string, text: RegExp, errorId: string): Promise<string> {
  const ok = page.getByTestId(testId).filter({ hasText: text });
  const failed = page.locator(`[data-testid="${errorId}"]:not(:empty)`);
  await ok.or(failed).first().waitFor({ timeout: 30_000 });
  const error = (await page.getByTestId(errorId).textContent()) ?? '';
  if (error !== '') throw new Error(`the page reported in ${errorId}: ${error}`);
  return (await page.getByTestId(testId).textContent()) ?? '';
}

/** Waits until the form field `testId` has a value, failing early if `errorId` shows an error. */
async function showsValue(page: Page, testId: string, errorId: string): Promise<string> {
  type Doc = { document: { querySelector(s: string): { value?: string; textContent: string | null } | null } };
  await page.waitForFunction(
    ([id, err]) => {
      const d = (globalThis as unknown as Doc).document;
      return (d.querySelector(`[data-testid="${id}"]`)?.value ?? '') !== '' || (d.querySelector(`[data-testid="${err}"]`)?.textContent ?? '') !== '';
    },
    [testId, errorId] as const,
    { timeout: 30_000 },
  );
  const error = (await page.getByTestId(errorId).textContent()) ?? '';
  if (error !== '') throw new Error(`the page reported in ${errorId}: ${error}`);
  return page.getByTestId(testId).inputValue();
}

/** Waits for the page's error message in `errorId`. */
async function showsError(page: Page, errorId: string): Promise<string> {
  await page.locator(`[data-testid="${errorId}"]:not(:empty)`).waitFor({ timeout: 30_000 });
  return (await page.getByTestId(errorId).textContent()) ?? '';
}

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return 'OK';
  } catch (e) {
    return openKeyErrorCode(e);
  }
}

const personal = (keyId: string, text: string): SignRequest =>
  create(SignRequestSchema, { keyId, payload: { kind: { case: 'personalMessage', value: { message: new TextEncoder().encode(text) } } } });

describe('the passkey page', () => {
  const apps: TestAppliance[] = [];
  let browser: Browser | undefined;
  afterAll(async () => {
    await browser?.close();
    for (const app of apps) await app.dispose();
  });

  it('is served at / with a strict content security policy, and not at all when switched off', async () => {
    const app = await startTestAppliance();
    apps.push(app);
    const html = await fetch(`${app.connectUrl}/`);
    expect(html.status).toBe(200);
    expect(html.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(html.headers.get('content-security-policy')).toBe(
      "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'",
    );
    expect(html.headers.get('x-content-type-options')).toBe('nosniff');
    expect(html.headers.get('referrer-policy')).toBe('no-referrer');
    expect(html.headers.get('cache-control')).toBe('no-store');
    expect(await html.text()).toContain('<script type="module" src="/app.js"></script>');
    const js = await fetch(`${app.connectUrl}/app.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect((await js.text()).length).toBeGreaterThan(10_000);
    expect((await fetch(`${app.connectUrl}/elsewhere`)).status).toBe(404);
    expect((await fetch(`${app.connectUrl}/`, { method: 'POST' })).status).toBe(405);

    const off = await startTestAppliance({ env: { OPENKEY_WEB_PAGE: 'off' } });
    apps.push(off);
    expect((await fetch(`${off.connectUrl}/`)).status).toBe(404);
    expect((await fetch(`${off.connectUrl}/app.js`)).status).toBe(404);
  });

  it.skipIf(!HAVE_CHROMIUM && !REQUIRED)(
    'registers a passkey, signs in, and approves signatures in headless Chromium with a virtual authenticator',
    async () => {
      if (!HAVE_CHROMIUM) throw new Error(`OPENKEY_BROWSER_TESTS=required, but ${CHROMIUM} is missing: install it with apt-get install chromium`);
      const app = await startTestAppliance();
      apps.push(app);
      browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
      const context = await browser.newContext();
      const page = await context.newPage();
      const pageErrors: string[] = [];
      page.on('pageerror', (e) => pageErrors.push(e.message));

      // The appliance's default WebAuthn origin is http://localhost:<Connect port> (rpId localhost).
      const res = await page.goto(`http://localhost:${app.connectPort}/`);
      expect(res?.status()).toBe(200);
      const cdp = await context.newCDPSession(page);
      await cdp.send('WebAuthn.enable', {});
      await cdp.send('WebAuthn.addVirtualAuthenticator', {
        options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
      });
      const ui = (id: string) => page.getByTestId(id);

      // 1–2. Register a passkey, sign in with it.
      await ui('reg-name').fill('Alice');
      await ui('register').click();
      const personId = /usr_[0-9a-f]{32}/.exec(await shows(page, 'register-result', /usr_[0-9a-f]{32}/, 'register-error'))?.[0] ?? '';
      await ui('login').click();
      expect(await shows(page, 'session-info', /usr_/, 'login-error')).toContain(personId);
      expect(await ui('status').textContent()).toContain(personId);

      // 3. A secp256k1 key.
      await ui('key-label').fill('browser key');
      await ui('create-key').click();
      await shows(page, 'key-current', /key_[0-9a-f]{32}/, 'keys-error');
      const row = page.locator('#keys tbody tr').first();
      const keyId = (await row.getAttribute('data-key-id')) ?? '';
      const address = (await row.getAttribute('data-address')) ?? '';
      expect(keyId).toMatch(/^key_[0-9a-f]{32}$/);
      expect(address).toMatch(/^0x[0-9a-fA-F]{40}$/);
      await shows(page, 'owner-status', /^Off:/, 'owner-error');

      // 4. Owner rule: every signature needs the passkey.
      await ui('owner-approval').check();
      await shows(page, 'owner-status', /^On:/, 'owner-error');
      expect(await ui('sign-approve').isChecked()).toBe(true);

      // 6. Sign with a passkey approval; viem recovers the key's address from the signature.
      const message = 'hello from a browser';
      await ui('sign-message').fill(message);
      await ui('sign').click();
      await shows(page, 'sign-result', /Signature: 0x/, 'sign-error');
      const signature = ((await ui('sign-signature').textContent()) ?? '') as Hex;
      expect(await recoverMessageAddress({ message, signature })).toBe(address);

      // …and without one the appliance refuses, and the page says why.
      await ui('sign-approve').uncheck();
      await ui('sign').click();
      expect(await showsError(page, 'sign-error')).toContain('APPROVAL_REQUIRED');

      // 5. Grant a service (a Node client) whose every use needs the person's approval. The policy
      // change itself needs a passkey approval now; the page asks for one.
      const svc = generateCredentials('ed25519');
      const service: OpenKeyClient = createOpenKeyClient({ baseUrl: app.connectUrl, credentials: svc });
      await service.principals.createPrincipal({ algorithm: PrincipalKeyAlgorithm.ED25519, publicKey: svc.publicKey, name: 'billing' });
      await ui('grant-principal').fill(svc.principalId);
      await ui('grant-daily-cap').fill('10');
      await ui('grant-approval').check();
      await ui('grant').click();
      await shows(page, 'policy', /1 grant/, 'grant-error');
      expect(await page.locator(`[data-grant-id="${svc.principalId}"]`).textContent()).toContain('10 per day');

      // 7. The service's request needs approval; the person approves it on the page and hands the
      // approval back; the service's approved request signs.
      const request = personal(keyId, 'pay invoice 42');
      expect(await codeOf(service.signing.sign(request))).toBe('APPROVAL_REQUIRED');
      await ui('approve-input').fill(toJsonString(SignRequestSchema, request));
      await ui('approve').click();
      expect(await shows(page, 'approve-summary', /pay invoice 42/, 'approve-error')).toContain(keyId);
      const approval = fromJsonString(PasskeyApprovalSchema, await showsValue(page, 'approve-output', 'approve-error'));
      const approved = create(SignRequestSchema, { ...request, approval });
      const signed = await service.signing.sign(approved);
      expect(await recoverMessageAddress({ message: 'pay invoice 42', signature: `0x${Buffer.from(signed.signature).toString('hex')}` })).toBe(address);
      expect(await codeOf(service.signing.sign(approved))).toBe('APPROVAL_INVALID'); // single use

      // Revoke (approved with the passkey again); the service is refused.
      await ui(`revoke-${svc.principalId}`).click();
      await shows(page, 'policy', /no grants/, 'grant-error');
      expect(await codeOf(service.signing.sign(request))).toBe('KEY_NOT_FOUND');

      // 8. The audit log on the page: the sign-in, the approved signature, the refusal; links intact.
      await ui('audit-load').click();
      await shows(page, 'audit-status', /records shown/, 'audit-error');
      expect(await page.locator('#audit tbody tr[data-operation="login"][data-decision="allow"]').count()).toBe(1);
      const signRows = await page.locator('#audit tbody tr[data-operation="personal_sign"]').allTextContents();
      expect(signRows.some((t) => t.includes(personId) && t.includes(keyId) && t.includes('allow'))).toBe(true);
      expect(signRows.some((t) => t.includes(personId) && t.includes('deny') && t.includes('APPROVAL_REQUIRED'))).toBe(true);
      await ui('audit-verify').click();
      await shows(page, 'audit-status', /Chain links OK/, 'audit-error');

      // Sign out: the session ends on the appliance too.
      await ui('logout').click();
      await shows(page, 'status', /Not signed in/, 'login-error');

      // The same story from outside the browser, in the appliance's audit export.
      const records = (await service.audit.exportAudit({ from: 1n })).records.map((r) => ({
        principal: r.principal,
        operation: r.operation,
        keyId: r.keyId,
        decision: r.decision,
        reason: r.reason,
      }));
      expect(records).toContainEqual({ principal: personId, operation: 'register_passkey', keyId: '', decision: 'allow', reason: 'OWNER' });
      expect(records).toContainEqual({ principal: personId, operation: 'login', keyId: '', decision: 'allow', reason: 'OWNER' });
      expect(records).toContainEqual(expect.objectContaining({ principal: personId, operation: 'personal_sign', keyId, decision: 'allow' }));
      expect(records).toContainEqual(expect.objectContaining({ principal: personId, operation: 'personal_sign', keyId, decision: 'deny', reason: 'APPROVAL_REQUIRED' }));
      expect(records).toContainEqual(expect.objectContaining({ principal: svc.principalId, operation: 'personal_sign', keyId, decision: 'allow' }));
      expect(records.filter((r) => r.operation === 'logout' && r.decision === 'allow')).toHaveLength(1);
      expect(pageErrors).toEqual([]);
    },
    120_000,
  );
});
