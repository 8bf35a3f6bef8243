// `openkey delegation …`: TinyCloud-compatible delegations from the command line (issue 5). The owner
// creates and revokes grants (capabilities, manifests, delegate rules) and lists grants and issued
// delegations; any admitted caller requests a delegation and gets the TinyCloud wrapper JSON, checked
// against the delegation bytes (CID recomputed) before it is printed. Values are checked here for
// early, readable usage errors; the appliance checks everything again.

import type { MessageInitShape } from '@bufbuild/protobuf';
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { CapabilitySchema, DelegateRuleSchema, DelegationGrant, IssuedDelegation } from '../../../proto/gen/openkey/v1/delegation_pb.ts';
import { createOpenKeyClient, type WireProtocol } from '../client.ts';
import { loadCredentials } from '../credentials.ts';
import { authorizationCid, parseDelegationWrapper } from '../tee-backend.ts';
import { instant, positiveInt, usage } from './args.ts';

export const DELEGATION_USAGE = `usage: openkey delegation <command> [options]

  grant KEY_ID --id GRANT_ID (--capability CAP | --manifest FILE)... RULE...
        [--max-lifetime SECONDS] [--expires ISO] [--chain-id N]
                                  approve a capability set once (owner only)
  revoke KEY_ID GRANT_ID          no further delegations under the grant (owner only)
  grants KEY_ID                   the key's grants (owner only)
  request KEY_ID GRANT_ID --to DID --capability CAP... --lifetime SECONDS
        [--request-id ID] [--not-before ISO] [--out FILE]
                                  a delegation of a subset of the grant; prints the
                                  TinyCloud wrapper JSON (and writes it to FILE)
  list KEY_ID [--grant GRANT_ID]  issued delegations with their status (owner only)

  CAP      RESOURCE|ABILITY[|CAVEATS_JSON], e.g.
           'tinycloud:pkh:eip155:1:0xAB…:applications/kv/app/|tinycloud.kv/get'
           caveats: a JSON list of objects, e.g. '[{"maxBytes":1024}]'; none = unconstrained
  FILE     a TinyCloud app manifest (JSON); one with a "did" admits that DID, scoped to it
  RULE     --delegate-did DID | --delegate-principal SVC_ID | --delegate-attested POLICY
           (repeatable): who may receive delegations under the grant

global options (after the command): --url URL, --protocol P, --credentials FILE (as for openkey)
`;

type CapabilityInit = MessageInitShape<typeof CapabilitySchema>;
type RuleInit = MessageInitShape<typeof DelegateRuleSchema>;

/** "RESOURCE|ABILITY[|CAVEATS_JSON]" → a wire capability; the caveats must be a JSON list. */
export function parseCapabilityArg(s: string): CapabilityInit {
  const first = s.indexOf('|');
  const second = first < 0 ? -1 : s.indexOf('|', first + 1);
  if (first <= 0) usage(`--capability must be RESOURCE|ABILITY[|CAVEATS_JSON], got ${JSON.stringify(s)}`);
  const resource = s.slice(0, first);
  const ability = second < 0 ? s.slice(first + 1) : s.slice(first + 1, second);
  if (ability === '') usage(`--capability ${JSON.stringify(s)} has no ability`);
  if (second < 0) return { resource, ability, caveatsJson: '' };
  let caveats: unknown;
  try {
    caveats = JSON.parse(s.slice(second + 1)) as unknown;
  } catch {
    return usage(`--capability ${JSON.stringify(resource)}: caveats are not JSON`);
  }
  if (!Array.isArray(caveats)) usage(`--capability ${JSON.stringify(resource)}: caveats must be a JSON list of objects`);
  return { resource, ability, caveatsJson: JSON.stringify(caveats) };
}

function readManifest(file: string): string {
  const text = readFileSync(file, 'utf8');
  try {
    JSON.parse(text);
  } catch {
    usage(`--manifest ${file} is not JSON`);
  }
  return text;
}

/** caveats_json as JSON, as the appliance wrote it (its own canonical JSON). */
function caveatsOf(json: string): unknown {
  try {
    return JSON.parse(json) as unknown;
  } catch {
    return json;
  }
}

const iso = (ms: bigint): string => new Date(Number(ms)).toISOString();
const capabilityJson = (c: { resource: string; ability: string; caveatsJson: string }) => ({ resource: c.resource, ability: c.ability, caveats: caveatsOf(c.caveatsJson) });

export function grantJson(g: DelegationGrant): Record<string, unknown> {
  return {
    id: g.id,
    keyId: g.keyId,
    ownerDid: g.ownerDid,
    capabilities: g.capabilities.map(capabilityJson),
    delegates: g.delegates.map((d) => ({
      ...(d.kind.case === 'did' ? { did: d.kind.value } : d.kind.case === 'attestationPolicy' ? { attestationPolicy: d.kind.value } : d.kind.case === 'principalId' ? { principalId: d.kind.value } : {}),
      ...(d.scope.length === 0 ? {} : { scope: d.scope.map(capabilityJson) }),
    })),
    maxLifetimeSeconds: g.maxLifetimeSeconds,
    createdAt: iso(g.createdAtMs),
    expiresAt: iso(g.expiresAtMs),
    revoked: g.revoked,
  };
}

export function issuedJson(d: IssuedDelegation): Record<string, unknown> {
  return {
    cid: d.cid,
    grantId: d.grantId,
    delegateDid: d.delegateDid,
    format: d.format,
    status: d.status,
    issuedAt: iso(d.issuedAtMs),
    expiresAt: iso(d.expiresAtMs),
    capabilities: d.capabilities.map(capabilityJson),
  };
}

/** Runs `openkey delegation <argv…>`; returns what to print as JSON (undefined: already printed). */
export async function runDelegation(argv: string[]): Promise<unknown> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      url: { type: 'string' },
      protocol: { type: 'string' },
      credentials: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      id: { type: 'string' },
      capability: { type: 'string', multiple: true },
      manifest: { type: 'string', multiple: true },
      'delegate-did': { type: 'string', multiple: true },
      'delegate-principal': { type: 'string', multiple: true },
      'delegate-attested': { type: 'string', multiple: true },
      'max-lifetime': { type: 'string' },
      expires: { type: 'string' },
      'chain-id': { type: 'string' },
      to: { type: 'string' },
      lifetime: { type: 'string' },
      'request-id': { type: 'string' },
      'not-before': { type: 'string' },
      out: { type: 'string' },
      grant: { type: 'string' },
    },
  });
  const [sub, keyId, grantId] = positionals;
  if (values.help || sub === undefined) {
    process.stdout.write(DELEGATION_USAGE);
    return undefined;
  }
  const protocol = (values.protocol ?? 'connect') as WireProtocol;
  if (!['connect', 'grpc-web', 'grpc'].includes(protocol)) usage('--protocol must be connect, grpc-web or grpc');
  const capabilities = (values.capability ?? []).map(parseCapabilityArg);
  // Connected only once the invocation has been checked: a usage error needs no credentials.
  const connect = () =>
    createOpenKeyClient({
      baseUrl: values.url ?? process.env['OPENKEY_URL'] ?? 'http://127.0.0.1:8080',
      protocol,
      credentials: loadCredentials(values.credentials ?? process.env['OPENKEY_CREDENTIALS'] ?? './openkey-credentials.json'),
    }).delegations;

  switch (sub) {
    case 'grant': {
      if (keyId === undefined || positionals.length > 2) usage('delegation grant KEY_ID --id GRANT_ID (--capability CAP | --manifest FILE)... RULE...');
      const id = values.id ?? usage('--id GRANT_ID is required');
      const manifestsJson = (values.manifest ?? []).map(readManifest);
      if (capabilities.length === 0 && manifestsJson.length === 0) usage('give at least one --capability or --manifest');
      const delegates: RuleInit[] = [
        ...(values['delegate-did'] ?? []).map((v): RuleInit => ({ kind: { case: 'did', value: v } })),
        ...(values['delegate-principal'] ?? []).map((v): RuleInit => ({ kind: { case: 'principalId', value: v } })),
        ...(values['delegate-attested'] ?? []).map((v): RuleInit => ({ kind: { case: 'attestationPolicy', value: v } })),
      ];
      const res = await connect().createGrant({
        keyId,
        grantId: id,
        capabilities,
        manifestsJson,
        delegates,
        maxLifetimeSeconds: values['max-lifetime'] === undefined ? 0 : positiveInt(values['max-lifetime'], '--max-lifetime'),
        expiresAtMs: BigInt(values.expires === undefined ? 0 : instant(values.expires, '--expires')),
        chainId: BigInt(values['chain-id'] === undefined ? 0 : positiveInt(values['chain-id'], '--chain-id')),
      });
      if (res.grant === undefined) throw new Error('the appliance returned no grant');
      return grantJson(res.grant);
    }
    case 'revoke': {
      if (keyId === undefined || grantId === undefined) usage('delegation revoke KEY_ID GRANT_ID');
      const res = await connect().revokeGrant({ keyId, grantId });
      if (res.grant === undefined) throw new Error('the appliance returned no grant');
      return grantJson(res.grant);
    }
    case 'grants': {
      if (keyId === undefined) usage('delegation grants KEY_ID');
      return { grants: (await connect().listGrants({ keyId })).grants.map(grantJson) };
    }
    case 'request': {
      if (keyId === undefined || grantId === undefined) usage('delegation request KEY_ID GRANT_ID --to DID --capability CAP... --lifetime SECONDS');
      const to = values.to ?? usage('--to DID is required');
      if (capabilities.length === 0) usage('give at least one --capability');
      const lifetimeSeconds = positiveInt(values.lifetime ?? usage('--lifetime SECONDS is required'), '--lifetime');
      const res = await connect().delegate({
        keyId,
        grantId,
        delegateDid: to,
        capabilities,
        lifetimeSeconds,
        requestId: values['request-id'] ?? '',
        notBeforeMs: BigInt(values['not-before'] === undefined ? 0 : instant(values['not-before'], '--not-before')),
      });
      const wrapper = parseDelegationWrapper(res.wrapperJson);
      // Print only what the signed bytes back up.
      if (wrapper.delegationHeader.Authorization !== res.authorization || wrapper.delegationCid !== res.cid || authorizationCid(res.authorization) !== res.cid) {
        throw new Error('the appliance returned a wrapper that does not match the delegation bytes');
      }
      const text = `${JSON.stringify(wrapper, null, 2)}\n`;
      if (values.out !== undefined) writeFileSync(values.out, text);
      process.stdout.write(text);
      return undefined;
    }
    case 'list': {
      if (keyId === undefined) usage('delegation list KEY_ID [--grant GRANT_ID]');
      return { delegations: (await connect().listDelegations({ keyId, grantId: values.grant ?? '' })).delegations.map(issuedJson) };
    }
    default:
      return usage(`unknown command: delegation ${positionals.join(' ')}\n\n${DELEGATION_USAGE}`);
  }
}
