// The appliance's web page (index.html, served at / by server/src/transport/web-page.ts): register
// a passkey, sign in, create keys, set the owner rule, grant and revoke, sign with a passkey
// approval, approve a service's request, read the audit log. State lives in memory only: a reload
// signs out. Server data reaches the DOM only as text (textContent), never as markup.

import { create, fromJsonString, toJsonString } from '@bufbuild/protobuf';
import type { AuditRecord, SignedAuditHead } from '../../proto/gen/openkey/v1/audit_pb.ts';
import { KeyAlgorithm, PasskeyApprovalSchema, type KeyInfo } from '../../proto/gen/openkey/v1/common_pb.ts';
import {
  GrantRequestSchema,
  PolicyService,
  PrincipalKind,
  RevokeRequestSchema,
  SetOwnerRuleRequestSchema,
  SignOperation,
  type KeyPolicy,
  type UsageRule,
} from '../../proto/gen/openkey/v1/policy_pb.ts';
import { PrincipalKeyAlgorithm } from '../../proto/gen/openkey/v1/principals_pb.ts';
import { SignRequestSchema, SignService, type SignPayload, type SignRequest } from '../../proto/gen/openkey/v1/signing_pb.ts';
import { approve, createClients, describeError, newSessionKey, stampFor, type Session } from './appliance.ts';
import { browser, button, byId as $, h, input, type ButtonElem, type Elem, type InputElem } from './dom.ts';
import { createPasskey, creationOptions, getAssertion, PageError, requestOptions } from './webauthn.ts';

// ---- page elements ------------------------------------------------------------------------------

const ui = {
  status: $('status', browser.HTMLElement),
  regName: $('reg-name', browser.HTMLInputElement),
  regPasskeyName: $('reg-passkey-name', browser.HTMLInputElement),
  register: $('register', browser.HTMLButtonElement),
  registerResult: $('register-result', browser.HTMLElement),
  registerError: $('register-error', browser.HTMLElement),
  login: $('login', browser.HTMLButtonElement),
  logout: $('logout', browser.HTMLButtonElement),
  sessionInfo: $('session-info', browser.HTMLElement),
  loginError: $('login-error', browser.HTMLElement),
  keyLabel: $('key-label', browser.HTMLInputElement),
  createKey: $('create-key', browser.HTMLButtonElement),
  listKeys: $('list-keys', browser.HTMLButtonElement),
  keysBody: $('keys', browser.HTMLTableElement).tBodies[0] ?? h('tbody'),
  keyCurrent: $('key-current', browser.HTMLElement),
  keysError: $('keys-error', browser.HTMLElement),
  ownerApproval: $('owner-approval', browser.HTMLInputElement),
  ownerStatus: $('owner-status', browser.HTMLElement),
  ownerError: $('owner-error', browser.HTMLElement),
  grantKind: $('grant-kind', browser.HTMLSelectElement),
  grantPrincipal: $('grant-principal', browser.HTMLInputElement),
  grantId: $('grant-id', browser.HTMLInputElement),
  grantOpPersonal: $('grant-op-personal', browser.HTMLInputElement),
  grantOpEip712: $('grant-op-eip712', browser.HTMLInputElement),
  grantChainIds: $('grant-chain-ids', browser.HTMLInputElement),
  grantContracts: $('grant-contracts', browser.HTMLInputElement),
  grantTypes: $('grant-types', browser.HTMLInputElement),
  grantDailyCap: $('grant-daily-cap', browser.HTMLInputElement),
  grantApproval: $('grant-approval', browser.HTMLInputElement),
  grant: $('grant', browser.HTMLButtonElement),
  refreshPolicy: $('refresh-policy', browser.HTMLButtonElement),
  policy: $('policy', browser.HTMLElement),
  grantError: $('grant-error', browser.HTMLElement),
  signKind: $('sign-kind', browser.HTMLSelectElement),
  signMessage: $('sign-message', browser.HTMLTextAreaElement),
  signApprove: $('sign-approve', browser.HTMLInputElement),
  sign: $('sign', browser.HTMLButtonElement),
  signResult: $('sign-result', browser.HTMLElement),
  signError: $('sign-error', browser.HTMLElement),
  approveInput: $('approve-input', browser.HTMLTextAreaElement),
  approveDecode: $('approve-decode', browser.HTMLButtonElement),
  approve: $('approve', browser.HTMLButtonElement),
  approveSummary: $('approve-summary', browser.HTMLElement),
  approveOutput: $('approve-output', browser.HTMLTextAreaElement),
  approveError: $('approve-error', browser.HTMLElement),
  auditLoad: $('audit-load', browser.HTMLButtonElement),
  auditVerify: $('audit-verify', browser.HTMLButtonElement),
  auditStatus: $('audit-status', browser.HTMLElement),
  auditBody: $('audit', browser.HTMLTableElement).tBodies[0] ?? h('tbody'),
  auditError: $('audit-error', browser.HTMLElement),
};

/**
 * Runs `fn` when `el` fires `event`: the control is disabled meanwhile, and any failure is shown in
 * `errorBox` with its stable code (and logged to the console), never swallowed.
 */
function on(el: ButtonElem | InputElem, event: 'click' | 'change', errorBox: Elem, fn: () => Promise<void>): void {
  el.addEventListener(event, () => {
    errorBox.textContent = '';
    el.disabled = true;
    fn()
      .catch((e: unknown) => {
        errorBox.textContent = describeError(e);
        console.error(e);
      })
      .finally(() => {
        el.disabled = false;
      });
  });
}

const hex = (b: Uint8Array): string => `0x${Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('')}`;
const time = (ms: bigint | number): string => (ms === 0n || ms === 0 ? '—' : new Date(Number(ms)).toISOString().replace('T', ' ').slice(0, 19));
const csv = (s: string): string[] =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '');

// ---- state --------------------------------------------------------------------------------------

let session: Session | undefined;
/** The relying party the appliance names in its ceremonies; until one is seen, this page's host. */
let rpId = browser.location.hostname;
let keys: KeyInfo[] = [];
let selectedKeyId = '';
/** The selected key's policy as last read. */
let policy: KeyPolicy | undefined;
let expiryTimer: ReturnType<typeof setTimeout> | undefined;

const anon = createClients(browser.location.origin);
/** Every call through `authed` is stamped by the session key. */
const authed = createClients(browser.location.origin, (method, body) => stampFor(requireSession(), method, body));

const methodPath = (m: { readonly name: string; readonly parent: { readonly typeName: string } }): string => `/${m.parent.typeName}/${m.name}`;
const SIGN_METHOD = methodPath(SignService.method.sign);

function requireSession(): Session {
  if (session === undefined) throw new PageError('NOT_SIGNED_IN', 'sign in first (section 2)');
  return session;
}

function requireKey(): string {
  requireSession();
  if (selectedKeyId === '') throw new PageError('NO_KEY', 'create or select a key first (section 3)');
  return selectedKeyId;
}

// ---- 1. register --------------------------------------------------------------------------------

on(ui.register, 'click', ui.registerError, async () => {
  ui.registerResult.textContent = '';
  const name = ui.regName.value.trim();
  // Signed in: the call is stamped and adds a passkey to the signed-in person.
  const clients = session === undefined ? anon : authed;
  if (session === undefined && name === '') throw new PageError('MISSING_FIELD', 'enter your name');
  const begin = await clients.passkeys.beginRegistration({ displayName: name });
  const options = creationOptions(begin.optionsJson);
  if (options.rp.id !== undefined) rpId = options.rp.id;
  const responseJson = await createPasskey(options);
  const done = await anon.passkeys.finishRegistration({ responseJson, passkeyName: ui.regPasskeyName.value.trim() });
  ui.registerResult.replaceChildren('Passkey registered for ', h('code', { 'data-testid': 'person-id' }, done.personId), '. You can sign in with it now.');
});

// ---- 2. sign in / out ---------------------------------------------------------------------------

function renderSession(): void {
  if (expiryTimer !== undefined) clearTimeout(expiryTimer);
  if (session === undefined) {
    ui.status.textContent = 'Not signed in.';
    ui.sessionInfo.textContent = '';
    return;
  }
  const s = session;
  ui.status.textContent = `Signed in as ${s.personId}.`;
  ui.sessionInfo.replaceChildren(
    'Person ',
    h('code', { 'data-testid': 'session-person' }, s.personId),
    ', session ',
    h('code', {}, s.id),
    `, until ${new Date(s.expiresAtMs).toLocaleTimeString()}.`,
  );
  expiryTimer = setTimeout(
    () => {
      if (session === s) ui.status.textContent = 'Your session has ended: sign in again.';
    },
    Math.max(0, s.expiresAtMs - Date.now()),
  );
}

on(ui.login, 'click', ui.loginError, async () => {
  const fresh = await newSessionKey();
  const begin = await anon.passkeys.beginLogin({ sessionAlgorithm: PrincipalKeyAlgorithm.P256, sessionPublicKey: fresh.publicKey });
  const options = requestOptions(begin.optionsJson);
  if (options.rpId !== undefined) rpId = options.rpId;
  const done = await anon.passkeys.finishLogin({ responseJson: await getAssertion(options) });
  const s = done.session;
  if (s === undefined) throw new PageError('NO_SESSION', 'the appliance answered without a session');
  session = { id: s.id, personId: s.personId, expiresAtMs: Number(s.expiresAtMs), keys: fresh.keys };
  renderSession();
  await refreshKeys();
});

on(ui.logout, 'click', ui.loginError, async () => {
  requireSession();
  try {
    await authed.passkeys.logout({});
  } finally {
    // Forget the session key whatever the answer: an ended or failed session is of no further use.
    session = undefined;
    keys = [];
    selectedKeyId = '';
    policy = undefined;
    renderSession();
    renderKeys();
    renderPolicy();
  }
});

// ---- 3. keys ------------------------------------------------------------------------------------

function renderKeys(): void {
  ui.keysBody.replaceChildren(
    ...keys.map((k) => {
      const radio = input({ type: 'radio', name: 'key', value: k.keyId, 'aria-label': `use ${k.keyId}` });
      radio.checked = k.keyId === selectedKeyId;
      radio.addEventListener('change', () => {
        ui.keysError.textContent = '';
        selectKey(k.keyId).catch((e: unknown) => {
          ui.keysError.textContent = describeError(e);
        });
      });
      return h(
        'tr',
        { 'data-key-id': k.keyId, 'data-address': k.address },
        h('td', {}, radio),
        h('td', {}, h('code', {}, k.keyId)),
        h('td', {}, h('code', {}, k.address || '—')),
        h('td', {}, k.label),
        h('td', {}, time(k.createdAtMs)),
      );
    }),
  );
  const k = keys.find((x) => x.keyId === selectedKeyId);
  ui.keyCurrent.textContent = k === undefined ? 'none' : `${k.keyId} (${k.address})`;
}

async function refreshKeys(select?: string): Promise<void> {
  requireSession();
  const all: KeyInfo[] = [];
  let pageToken = '';
  for (let page = 0; page < 20; page++) {
    const res = await authed.keys.listKeys({ pageToken });
    all.push(...res.keys);
    pageToken = res.nextPageToken;
    if (pageToken === '') break;
  }
  keys = all.filter((k) => k.algorithm === KeyAlgorithm.SECP256K1);
  const wanted = select ?? selectedKeyId;
  await selectKey(keys.some((k) => k.keyId === wanted) ? wanted : (keys[0]?.keyId ?? ''));
}

async function selectKey(keyId: string): Promise<void> {
  selectedKeyId = keyId;
  renderKeys();
  policy = keyId === '' ? undefined : (await authed.policy.getPolicy({ keyId })).policy;
  renderPolicy();
}

on(ui.createKey, 'click', ui.keysError, async () => {
  requireSession();
  const res = await authed.keys.sealKey({ algorithm: KeyAlgorithm.SECP256K1, label: ui.keyLabel.value.trim() });
  await refreshKeys(res.key?.keyId);
});

on(ui.listKeys, 'click', ui.keysError, () => refreshKeys());

// ---- 4–5. policy: owner rule, grants ------------------------------------------------------------

const OPERATION_NAMES: Readonly<Record<number, string>> = {
  [SignOperation.PERSONAL_SIGN]: 'personal_sign',
  [SignOperation.EIP712]: 'eip712',
  [SignOperation.RAW_DIGEST]: 'raw_digest',
  [SignOperation.ED25519]: 'ed25519',
};
const KIND_NAMES: Readonly<Record<number, string>> = { [PrincipalKind.PERSON]: 'person', [PrincipalKind.SERVICE]: 'service', [PrincipalKind.SESSION]: 'session' };

function describeRule(r: UsageRule): string {
  const parts = [r.operations.map((o) => OPERATION_NAMES[o] ?? String(o)).join(', ')];
  const e = r.eip712;
  if (e !== undefined) {
    if (e.chainIds.length > 0) parts.push(`chains ${e.chainIds.join(', ')}`);
    if (e.verifyingContracts.length > 0) parts.push(`contracts ${e.verifyingContracts.join(', ')}`);
    if (e.primaryTypes.length > 0) parts.push(`types ${e.primaryTypes.join(', ')}`);
  }
  for (const c of r.caps) parts.push(c.windowMs === 86_400_000n ? `${c.limit} per day` : `${c.limit} per ${c.windowMs} ms`);
  if (r.rateLimit !== undefined) parts.push(`rate ${r.rateLimit.refillTokens}/${r.rateLimit.refillPeriodMs} ms (burst ${r.rateLimit.capacity})`);
  if (r.maxMessageBytes !== 0n) parts.push(`≤ ${r.maxMessageBytes} bytes`);
  if (r.notBeforeMs !== 0n) parts.push(`from ${time(r.notBeforeMs)}`);
  if (r.notAfterMs !== 0n) parts.push(`until ${time(r.notAfterMs)}`);
  if (r.requireApproval) parts.push('needs my passkey approval');
  return parts.join('; ');
}

function renderPolicy(): void {
  const requires = policy?.ownerRule?.requireApproval === true;
  ui.ownerApproval.checked = requires;
  ui.signApprove.checked = requires;
  if (policy === undefined) {
    ui.ownerStatus.textContent = '';
    ui.policy.replaceChildren();
    return;
  }
  ui.ownerStatus.textContent = requires
    ? 'On: every signature and policy change for this key needs your passkey.'
    : policy.ownerRule === undefined
      ? 'Off: no owner rule; you may use the key without approval.'
      : `Owner rule without approval: ${describeRule(policy.ownerRule)}.`;
  const rows = policy.grants.map((g) => {
    const revoke = button({ type: 'button', 'data-testid': `revoke-${g.id}` }, 'Revoke');
    on(revoke, 'click', ui.grantError, () => revokeGrant(g.id));
    return h(
      'tr',
      { 'data-grant-id': g.id },
      h('td', {}, h('code', {}, g.id)),
      h('td', {}, `${KIND_NAMES[g.principal?.kind ?? 0] ?? '?'} `, h('code', {}, g.principal?.id ?? '')),
      h('td', {}, g.rule === undefined ? '' : describeRule(g.rule)),
      h('td', {}, revoke),
    );
  });
  ui.policy.replaceChildren(
    h('p', {}, `Policy of ${policy.keyId} (version ${policy.version}): `, policy.grants.length === 0 ? 'no grants.' : `${policy.grants.length} grant(s).`),
    ...(rows.length === 0
      ? []
      : [h('table', { 'data-testid': 'grants' }, h('thead', {}, h('tr', {}, h('th', {}, 'grant'), h('th', {}, 'principal'), h('th', {}, 'rule'), h('th', {}, ''))), h('tbody', {}, ...rows))]),
  );
}

/** Whether a change to the key's policy needs a passkey approval: read the policy afresh and see. */
async function approvalNeeded(keyId: string): Promise<boolean> {
  policy = (await authed.policy.getPolicy({ keyId })).policy;
  return policy?.ownerRule?.requireApproval === true;
}

on(ui.ownerApproval, 'change', ui.ownerError, async () => {
  const want = ui.ownerApproval.checked;
  try {
    const keyId = requireKey();
    const req = create(SetOwnerRuleRequestSchema, {
      keyId,
      ...(want ? { rule: { operations: [SignOperation.PERSONAL_SIGN, SignOperation.EIP712], requireApproval: true } } : {}),
    });
    if (await approvalNeeded(keyId)) req.approval = await approve(methodPath(PolicyService.method.setOwnerRule), SetOwnerRuleRequestSchema, req, rpId);
    policy = (await authed.policy.setOwnerRule(req)).policy;
    renderPolicy();
  } catch (e) {
    ui.ownerApproval.checked = !want;
    throw e;
  }
});

const KIND_OF: Readonly<Record<string, PrincipalKind>> = { service: PrincipalKind.SERVICE, person: PrincipalKind.PERSON, session: PrincipalKind.SESSION };

on(ui.grant, 'click', ui.grantError, async () => {
  const keyId = requireKey();
  const principalId = ui.grantPrincipal.value.trim();
  const kind = KIND_OF[ui.grantKind.value] ?? PrincipalKind.UNSPECIFIED;
  if (principalId === '') throw new PageError('MISSING_FIELD', 'enter the principal id to grant');
  const operations = [...(ui.grantOpPersonal.checked ? [SignOperation.PERSONAL_SIGN] : []), ...(ui.grantOpEip712.checked ? [SignOperation.EIP712] : [])];
  if (operations.length === 0) throw new PageError('MISSING_FIELD', 'choose at least one operation');
  const chainIds = csv(ui.grantChainIds.value);
  const verifyingContracts = csv(ui.grantContracts.value);
  const primaryTypes = csv(ui.grantTypes.value);
  const capText = ui.grantDailyCap.value.trim();
  if (capText !== '' && !/^[1-9][0-9]{0,15}$/.test(capText)) throw new PageError('MALFORMED_REQUEST', 'the daily cap is a whole number ≥ 1');
  // Granting the same principal again replaces its grant (same default id).
  const id = ui.grantId.value.trim() || principalId;
  const req = create(GrantRequestSchema, {
    keyId,
    grant: {
      id,
      principal: { kind, id: principalId },
      rule: {
        operations,
        ...(chainIds.length + verifyingContracts.length + primaryTypes.length === 0 ? {} : { eip712: { chainIds, verifyingContracts, primaryTypes } }),
        caps: capText === '' ? [] : [{ limit: BigInt(capText), windowMs: 86_400_000n }],
        requireApproval: ui.grantApproval.checked,
      },
    },
  });
  if (await approvalNeeded(keyId)) req.approval = await approve(methodPath(PolicyService.method.grant), GrantRequestSchema, req, rpId);
  policy = (await authed.policy.grant(req)).policy;
  renderPolicy();
});

async function revokeGrant(grantId: string): Promise<void> {
  const keyId = requireKey();
  const req = create(RevokeRequestSchema, { keyId, grantId });
  if (await approvalNeeded(keyId)) req.approval = await approve(methodPath(PolicyService.method.revoke), RevokeRequestSchema, req, rpId);
  policy = (await authed.policy.revoke(req)).policy;
  renderPolicy();
}

on(ui.refreshPolicy, 'click', ui.grantError, () => selectKey(requireKey()));

// ---- 6. sign ------------------------------------------------------------------------------------

on(ui.sign, 'click', ui.signError, async () => {
  ui.signResult.textContent = '';
  const keyId = requireKey();
  const text = ui.signMessage.value;
  const req = create(SignRequestSchema, {
    keyId,
    payload: {
      kind: ui.signKind.value === 'typed' ? { case: 'typedData', value: { json: text } } : { case: 'personalMessage', value: { message: new TextEncoder().encode(text) } },
    },
  });
  if (ui.signApprove.checked) req.approval = await approve(SIGN_METHOD, SignRequestSchema, req, rpId);
  const res = await authed.signing.sign(req);
  const key = keys.find((k) => k.keyId === res.keyId);
  ui.signResult.replaceChildren(
    h('div', {}, 'Signature: ', h('code', { 'data-testid': 'sign-signature' }, hex(res.signature))),
    h('div', {}, 'Signed digest: ', h('code', {}, hex(res.digest))),
    h('div', {}, `By ${res.keyId}`, key === undefined ? '' : `, address ${key.address}`, req.approval === undefined ? ' (no approval)' : ' (approved with your passkey)'),
  );
});

// ---- 7. approve a service's request -------------------------------------------------------------

/** The pasted SignRequest, without any approval it carries (an approval covers the request without it). */
function pastedRequest(): SignRequest {
  const text = ui.approveInput.value.trim();
  if (text === '') throw new PageError('MISSING_FIELD', 'paste the SignRequest (protobuf JSON) to approve');
  let req: SignRequest;
  try {
    req = fromJsonString(SignRequestSchema, text);
  } catch (e) {
    throw new PageError('MALFORMED_REQUEST', `not a SignRequest in protobuf JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  req.approval = undefined;
  if (req.keyId === '') throw new PageError('MISSING_FIELD', 'the request names no key (keyId)');
  return req;
}

function describePayload(p: SignPayload | undefined): (Elem | string)[] {
  const k = p?.kind;
  switch (k?.case) {
    case 'personalMessage': {
      let shown: string;
      try {
        shown = `text: ${new TextDecoder('utf-8', { fatal: true }).decode(k.value.message)}`;
      } catch {
        shown = `bytes (not UTF-8): ${hex(k.value.message)}`; // a binary message is shown as hex instead
      }
      return ['personal_sign message, ', shown];
    }
    case 'typedData': {
      let pretty = k.value.json;
      try {
        pretty = JSON.stringify(JSON.parse(k.value.json), null, 2);
      } catch {
        // shown as sent; the appliance rejects malformed typed data anyway
      }
      return ['EIP-712 typed data:', h('pre', {}, pretty)];
    }
    case 'rawDigest':
      return ['a raw 32-byte digest (you cannot tell what it means): ', hex(k.value)];
    case 'ed25519Message':
      return ['an Ed25519 message: ', hex(k.value)];
    default:
      return ['no payload'];
  }
}

function showPasted(req: SignRequest): void {
  ui.approveSummary.replaceChildren(h('div', {}, 'Key: ', h('code', { 'data-testid': 'approve-key' }, req.keyId)), h('div', { 'data-testid': 'approve-payload' }, 'Asks to sign ', ...describePayload(req.payload)));
}

on(ui.approveDecode, 'click', ui.approveError, async () => {
  ui.approveOutput.value = '';
  showPasted(pastedRequest());
});

on(ui.approve, 'click', ui.approveError, async () => {
  ui.approveOutput.value = '';
  const req = pastedRequest();
  showPasted(req);
  const approval = await approve(SIGN_METHOD, SignRequestSchema, req, rpId);
  ui.approveOutput.value = toJsonString(PasskeyApprovalSchema, approval);
});

// ---- 8. audit -----------------------------------------------------------------------------------

let audit: { records: AuditRecord[]; head: SignedAuditHead | undefined } = { records: [], head: undefined };

on(ui.auditLoad, 'click', ui.auditError, async () => {
  requireSession();
  const records: AuditRecord[] = [];
  let head: SignedAuditHead | undefined;
  let from = 1n;
  for (let page = 0; page < 10; page++) {
    const res = await authed.audit.exportAudit({ from });
    records.push(...res.records);
    head = res.head;
    const last = res.records.at(-1);
    if (last === undefined || head === undefined || last.seq >= head.logSeq) break;
    from = last.seq + 1n;
  }
  audit = { records, head };
  ui.auditBody.replaceChildren(
    ...records.map((r) =>
      h(
        'tr',
        { 'data-seq': String(r.seq), 'data-operation': r.operation, 'data-decision': r.decision },
        h('td', {}, String(r.seq)),
        h('td', {}, time(r.timeMs)),
        h('td', {}, h('code', {}, r.principal)),
        // A record of several identical decisions (a batch) says how many.
        h('td', {}, r.count > 1 ? `${r.operation} ×${r.count}` : r.operation),
        h('td', {}, h('code', {}, r.keyId)),
        h('td', { class: r.decision === 'allow' ? 'ok' : 'deny' }, r.decision),
        h('td', {}, r.reason),
      ),
    ),
  );
  ui.auditStatus.textContent =
    head === undefined ? `${records.length} records.` : `${records.length} records shown; the log holds ${head.logSeq}; head signed at ${time(head.timeMs)}.`;
});

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

on(ui.auditVerify, 'click', ui.auditError, async () => {
  const { records, head } = audit;
  if (records.length === 0) throw new PageError('NO_RECORDS', 'load the audit log first');
  let prev: AuditRecord | undefined;
  for (const r of records) {
    const expectedPrev = prev?.hash ?? (r.seq === 1n ? new Uint8Array(32) : undefined);
    if (prev !== undefined && r.seq !== prev.seq + 1n) throw new PageError('AUDIT_CHAIN_BROKEN', `record ${r.seq} follows ${prev.seq}: a gap`);
    if (r.hash.length !== 32) throw new PageError('AUDIT_CHAIN_BROKEN', `record ${r.seq} has no 32-byte hash`);
    if (expectedPrev !== undefined && !sameBytes(r.prevHash, expectedPrev)) throw new PageError('AUDIT_CHAIN_BROKEN', `record ${r.seq} does not link to record ${r.seq - 1n}`);
    prev = r;
  }
  const last = records.at(-1);
  let headNote = '';
  if (head !== undefined && last !== undefined && head.seq === last.seq) {
    if (!sameBytes(head.hash, last.hash)) throw new PageError('AUDIT_CHAIN_BROKEN', 'the last record is not the head the appliance signed');
    headNote = '; the last record is the signed head';
  }
  ui.auditStatus.textContent = `Chain links OK: records ${records[0]?.seq ?? 0}–${last?.seq ?? 0}${headNote}. (Record hashes and the head signature are not checked here.)`;
});

// ---- start --------------------------------------------------------------------------------------

renderSession();
if (!browser.isSecureContext) {
  ui.status.textContent = `Passkeys need a secure context: open this page over https or at http://localhost (this is ${browser.location.origin}).`;
}
