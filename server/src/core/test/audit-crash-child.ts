// Test fixture for audit.test.ts, run as its own process: commits one audited Sign decision to the
// LevelDB store in argv[2], reports it, and kills itself with SIGKILL before doing anything else —
// the crash between decision and response. Nothing is closed or flushed on the way out.

import { openLevelStore } from '../../adapters/level-store.ts';
import { commitAudited } from '../audit.ts';
import { evaluatePolicy } from '../policy.ts';

const dir = process.argv[2];
if (dir === undefined) throw new Error('usage: audit-crash-child <store dir>');
const store = await openLevelStore(dir);
const requestDigest = new Uint8Array(32).fill(0xc4);
const now = 1_750_000_000_000;
const decision = evaluatePolicy({
  principal: { kind: 'service', id: 'svc_owner' },
  key: { keyId: 'key_crash', owner: 'svc_owner', algorithm: 'secp256k1', rawDigestSigning: false },
  policy: undefined,
  operation: 'personal_sign',
  messageBytes: 12,
  requestDigest,
  now,
});
await commitAudited(store, {
  time: now,
  items: [{ decision, principal: 'svc_owner', operation: 'personal_sign', keyId: 'key_crash', requestDigest }],
  always: [{ kind: 'consumeNonce', principalId: 'svc_owner', nonce: 'crash-nonce', expiresAt: now + 60_000 }],
});
// The decision is durable; the process dies before unsealing, signing or answering.
process.stdout.write('committed\n', () => process.kill(process.pid, 'SIGKILL'));
