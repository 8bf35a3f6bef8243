// Timeouts reach queued work: a Sign whose call times out while its decision is still waiting to be
// committed is dropped — no audit record, no cap spent, no signature — and the caller hears
// DEADLINE_EXCEEDED. The appliance's store is wrapped so that Sign decisions wait past the call
// timeout before reaching the group-commit queue, as they would behind a slow disk.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyAlgorithm } from '../proto/gen/openkey/v1/common_pb.ts';
import { PrincipalKeyAlgorithm } from '../proto/gen/openkey/v1/principals_pb.ts';
import { createOpenKeyClient, generateCredentials, type OpenKeyClient } from '../clients/src/index.ts';
import type { Change, CommitOptions, Store } from '../server/src/core/ports.ts';
import { startTestAppliance, type TestAppliance } from './support/appliance.ts';
import { codeOf } from './support/codes.ts';
import { auditMark, auditSince } from './support/people.ts';

const isSignDecision = (changes: readonly Change[]): boolean => changes.some((c) => c.kind === 'appendAudit' && c.entry.operation === 'personal_sign');

/** Holds Sign decisions for `delayMs` before passing them (with their signal) to the real store. */
function slowSignCommits(delayMs: () => number): (store: Store) => Store {
  return (store) =>
    new Proxy(store, {
      get(target, prop, receiver) {
        if (prop === 'commit') {
          return async (changes: readonly Change[], options?: CommitOptions) => {
            if (isSignDecision(changes)) await new Promise((r) => setTimeout(r, delayMs()));
            return target.commit(changes, options);
          };
        }
        const v: unknown = Reflect.get(target, prop, receiver);
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
}

describe('call timeouts reach queued commits', () => {
  let app: TestAppliance;
  let client: OpenKeyClient;
  let keyId = '';
  let principalId = '';
  let delay = 0;

  beforeAll(async () => {
    app = await startTestAppliance({ env: { OPENKEY_CALL_TIMEOUT_MS: '300' }, storeDecorator: slowSignCommits(() => delay) });
    const creds = generateCredentials('ed25519');
    principalId = creds.principalId;
    client = createOpenKeyClient({ baseUrl: app.connectUrl, credentials: creds });
    await client.principals.createPrincipal({ algorithm: PrincipalKeyAlgorithm.ED25519, publicKey: creds.publicKey, name: 'slow' });
    keyId = (await client.keys.sealKey({ algorithm: KeyAlgorithm.SECP256K1, label: 'slow' })).key?.keyId ?? '';
  });
  afterAll(async () => app.dispose());

  const sign = (text: string) => client.signing.sign({ keyId, payload: { kind: { case: 'personalMessage', value: { message: new TextEncoder().encode(text) } } } });

  it('drops a decision whose call timed out before it was committed, and records nothing', async () => {
    const mark = await auditMark(app, client);
    delay = 600;
    expect(await codeOf(sign('too late'))).toBe('DEADLINE_EXCEEDED');
    await new Promise((r) => setTimeout(r, 700)); // the held commit reaches the store, aborted
    delay = 0;
    expect(await auditSince(app, client, principalId, mark)).toEqual([]);
    // The appliance is fine afterwards, and the next decision is recorded.
    const mark2 = await auditMark(app, client);
    expect((await sign('in time')).signature).toHaveLength(65);
    expect((await auditSince(app, client, principalId, mark2)).map((r) => [r.operation, r.decision])).toEqual([['personal_sign', 'allow']]);
  });
});
