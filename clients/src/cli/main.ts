#!/usr/bin/env -S npx tsx
// `openkey` — command-line client for an OpenKey appliance. Creates and registers a service
// principal, creates keys, signs typed payloads, manages key policies, exports and verifies the
// audit log, and prints stamp headers for generic tools (curl, grpcurl). Output is JSON on stdout
// (policies and verdicts are readable text; --json where both make sense); errors go to stderr with
// the appliance's error code. Exit codes: 0 ok, 1 failed (or audit BROKEN), 2 bad invocation.

import { fromJson, type DescMessage, type JsonValue } from '@bufbuild/protobuf';
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { KeyAlgorithm } from '../../../proto/gen/openkey/v1/common_pb.ts';
import { KeyService } from '../../../proto/gen/openkey/v1/keys_pb.ts';
import { PolicyService, PrincipalKind, type KeyPolicy } from '../../../proto/gen/openkey/v1/policy_pb.ts';
import { PrincipalKeyAlgorithm, PrincipalService } from '../../../proto/gen/openkey/v1/principals_pb.ts';
import { SignService } from '../../../proto/gen/openkey/v1/signing_pb.ts';
import { AuditService } from '../../../proto/gen/openkey/v1/audit_pb.ts';
import { DelegationService } from '../../../proto/gen/openkey/v1/delegation_pb.ts';
import { PasskeyService } from '../../../proto/gen/openkey/v1/passkeys_pb.ts';
import { parseCollateral } from '@openkey/verifier';
import { attestAppliance } from '../attested.ts';
import { createOpenKeyClient, createTransport, openKeyErrorCode, type WireProtocol } from '../client.ts';
import { parsePolicy } from '../policy.ts';
import { generateCredentials, loadCredentials, saveCredentials, type Credentials } from '../credentials.ts';
import { encryptKeyForImport } from '../key-import.ts';
import { stampFor } from '../stamper.ts';
import { hasRuleArgs, positiveInt, usage, usageRuleFromArgs, UsageError } from './args.ts';
import { describeAuditVerification, encodeAuditExport, exportAuditLog, parseAnchor, verifyAuditFile } from './audit.ts';
import { formatKeyPolicy, formatVerdict, keyInfoJson, keyPolicyJson, principalJson, hex, fromHexArg, signedAuditHeadJson } from './format.ts';

const USAGE = `usage: openkey <command> [options]

  principal init [--algorithm ed25519|p256]     create a stamping key in the credentials file
  principal register [--name NAME]              register it with the appliance
  whoami                                         show the authenticated principal
  key create [--algorithm secp256k1|ed25519] [--label L] [--allow-raw-digest]
  key import --private-key-file FILE [--algorithm secp256k1|ed25519] [--label L]
                                                 import a hex private key, HPKE-encrypted to the appliance
  key get KEY_ID
  key list [--page-size N] [--page-token T]
  sign personal --key KEY_ID (--message TEXT | --message-hex HEX)
  sign typed-data --key KEY_ID --file DOCUMENT.json
  sign digest --key KEY_ID --digest HEX32
  sign ed25519 --key KEY_ID (--message TEXT | --message-hex HEX)
  stamp SERVICE/METHOD 'JSON'                    print an openkey-stamp header for curl/grpcurl
  verify --policy POLICY.json [--collateral FILE]  attest the appliance and print the verdict

  policy show KEY_ID [--json]                    the key's owner rule and grants
  policy grant KEY_ID --id GRANT_ID (--service SVC_ID | --person USR_ID | --session SVC_ID)
               --ops OPS [RULE OPTIONS] [--json]
                                                 add a grant, or replace the grant with that id
  policy revoke KEY_ID GRANT_ID [--json]         remove a grant
  policy owner-rule KEY_ID (--ops OPS [RULE OPTIONS] | --clear) [--json]
                                                 hold the owner to a rule, or clear it
  audit head                                     the audit chain's current signed head
  audit export [--from N] [--to N] [--out FILE]  records from..to (default 1..head) with a signed
                                                 head, as JSON, paged 1000 records a call
  audit verify FILE (--identity-key HEX | --attest --policy POLICY.json [--collateral FILE])
               [--anchor SEQ:HASH]...            check an export; prints VERIFIED or
                                                 BROKEN at seq S: CODE, exit code 0 or 1
  delegation …                                   TinyCloud grants and delegations
                                                 (openkey delegation --help)

rule options:
  --ops OPS              comma-separated: personal_sign, eip712, raw_digest, ed25519
  --chain-id N           EIP-712 domain chainId allowed (repeat for more); default any
  --contract 0xADDR      EIP-712 verifyingContract allowed (repeat); default any
  --primary-type TYPE    EIP-712 primaryType allowed (repeat); default any
  --max-message-bytes N  largest message (bytes) or typed-data document (characters)
  --cap N/PERIOD         at most N signatures per window, aligned to the epoch (repeat, one per
                         period); PERIOD is day, hour, minute, second or <n>ms
  --rate N/PERIOD        token bucket: N per PERIOD on average, bursts of up to N
  --not-before ISO       valid from (e.g. 2026-01-31 or 2026-01-31T12:00:00Z)
  --not-after ISO        valid until (exclusive)
  --require-approval     every use needs the owner's passkey approval

global options:
  --url URL              appliance Connect URL (env OPENKEY_URL, default http://127.0.0.1:8080)
  --protocol P           connect | grpc-web | grpc (grpc: use the gRPC port, default 8081)
  --credentials FILE     (env OPENKEY_CREDENTIALS, default ./openkey-credentials.json)
`;

const SERVICES: Record<string, { readonly typeName: string; readonly methods: readonly { readonly name: string; readonly input: DescMessage }[] }> = {
  KeyService,
  SignService,
  PrincipalService,
  PasskeyService,
  PolicyService,
  AuditService,
  DelegationService,
};

async function run(argv: string[]): Promise<unknown> {
  // `openkey delegation …` has its own options and usage (clients/src/cli/delegation.ts).
  if (argv[0] === 'delegation') return (await import('./delegation.ts')).runDelegation(argv.slice(1));
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      url: { type: 'string' },
      protocol: { type: 'string' },
      credentials: { type: 'string' },
      algorithm: { type: 'string' },
      name: { type: 'string' },
      label: { type: 'string' },
      'allow-raw-digest': { type: 'boolean' },
      key: { type: 'string' },
      message: { type: 'string' },
      'message-hex': { type: 'string' },
      file: { type: 'string' },
      digest: { type: 'string' },
      'page-size': { type: 'string' },
      'page-token': { type: 'string' },
      'private-key-file': { type: 'string' },
      policy: { type: 'string' },
      collateral: { type: 'string' },
      json: { type: 'boolean' },
      id: { type: 'string' },
      service: { type: 'string' },
      person: { type: 'string' },
      session: { type: 'string' },
      ops: { type: 'string' },
      'chain-id': { type: 'string', multiple: true },
      contract: { type: 'string', multiple: true },
      'primary-type': { type: 'string', multiple: true },
      'max-message-bytes': { type: 'string' },
      cap: { type: 'string', multiple: true },
      rate: { type: 'string' },
      'not-before': { type: 'string' },
      'not-after': { type: 'string' },
      'require-approval': { type: 'boolean' },
      clear: { type: 'boolean' },
      from: { type: 'string' },
      to: { type: 'string' },
      out: { type: 'string' },
      'identity-key': { type: 'string' },
      attest: { type: 'boolean' },
      anchor: { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [cmd, sub, arg, arg2] = positionals;
  if (values.help || cmd === undefined) {
    process.stdout.write(USAGE);
    return undefined;
  }
  const credPath = values.credentials ?? process.env['OPENKEY_CREDENTIALS'] ?? './openkey-credentials.json';
  const baseUrl = values.url ?? process.env['OPENKEY_URL'] ?? 'http://127.0.0.1:8080';
  const protocol = (values.protocol ?? 'connect') as WireProtocol;
  if (!['connect', 'grpc-web', 'grpc'].includes(protocol)) throw new UsageError('--protocol must be connect, grpc-web or grpc');
  const creds = (): Credentials => loadCredentials(credPath);
  const client = (c?: Credentials) => createOpenKeyClient({ baseUrl, protocol, ...(c ? { credentials: c } : {}) });
  const message = (): Uint8Array => {
    if (values.message !== undefined) return new TextEncoder().encode(values.message);
    if (values['message-hex'] !== undefined) return fromHexArg(values['message-hex'], '--message-hex');
    throw new UsageError('--message or --message-hex is required');
  };
  const keyId = (): string => {
    if (values.key === undefined) throw new UsageError('--key is required');
    return values.key;
  };
  /** A policy, readable or (--json) as JSON. */
  const showPolicy = (p: KeyPolicy | undefined): unknown => {
    if (p === undefined) throw new Error('the appliance returned no policy');
    if (values.json) return keyPolicyJson(p);
    process.stdout.write(formatKeyPolicy(p));
    return undefined;
  };

  const command = cmd === 'stamp' || cmd === 'whoami' || cmd === 'verify' ? cmd : `${cmd} ${sub ?? ''}`.trim();
  switch (command) {
    case 'principal init': {
      const alg = values.algorithm ?? 'ed25519';
      if (alg !== 'ed25519' && alg !== 'p256') throw new UsageError('--algorithm must be ed25519 or p256');
      const c = generateCredentials(alg);
      saveCredentials(credPath, c);
      return { credentials: credPath, principalId: c.principalId, algorithm: alg, publicKey: hex(c.publicKey) };
    }
    case 'principal register': {
      const c = creds();
      const res = await client(c).principals.createPrincipal({
        algorithm: c.algorithm === 'ed25519' ? PrincipalKeyAlgorithm.ED25519 : PrincipalKeyAlgorithm.P256,
        publicKey: c.publicKey,
        name: values.name ?? '',
      });
      return res.principal ? principalJson(res.principal) : {};
    }
    case 'whoami': {
      const res = await client(creds()).principals.whoAmI({});
      return res.principal ? principalJson(res.principal) : {};
    }
    case 'key create': {
      const alg = values.algorithm ?? 'secp256k1';
      if (alg !== 'secp256k1' && alg !== 'ed25519') throw new UsageError('--algorithm must be secp256k1 or ed25519');
      const res = await client(creds()).keys.sealKey({
        algorithm: alg === 'secp256k1' ? KeyAlgorithm.SECP256K1 : KeyAlgorithm.ED25519,
        label: values.label ?? '',
        allowRawDigestSigning: values['allow-raw-digest'] ?? false,
      });
      return res.key ? keyInfoJson(res.key) : {};
    }
    case 'key import': {
      const alg = values.algorithm ?? 'secp256k1';
      if (alg !== 'secp256k1' && alg !== 'ed25519') throw new UsageError('--algorithm must be secp256k1 or ed25519');
      const file = values['private-key-file'] ?? usage('--private-key-file is required');
      const secret = fromHexArg(readFileSync(file, 'utf8').trim(), file);
      const c = creds();
      const cl = client(c);
      const { publicKey: importPublicKey } = await cl.keys.getImportKey({});
      const imp = await encryptKeyForImport({ importPublicKey, secret, algorithm: alg, principalId: c.principalId });
      secret.fill(0);
      const res = await cl.keys.sealKey({
        algorithm: alg === 'secp256k1' ? KeyAlgorithm.SECP256K1 : KeyAlgorithm.ED25519,
        label: values.label ?? '',
        import: imp,
      });
      return res.key ? keyInfoJson(res.key) : {};
    }
    case 'key get': {
      if (arg === undefined) throw new UsageError('key get KEY_ID');
      const res = await client(creds()).keys.getKey({ keyId: arg });
      return res.key ? keyInfoJson(res.key) : {};
    }
    case 'key list': {
      const res = await client(creds()).keys.listKeys({
        pageSize: values['page-size'] === undefined ? 0 : Number(values['page-size']),
        pageToken: values['page-token'] ?? '',
      });
      return { keys: res.keys.map(keyInfoJson), nextPageToken: res.nextPageToken };
    }
    case 'sign personal':
    case 'sign typed-data':
    case 'sign digest':
    case 'sign ed25519': {
      const payload =
        sub === 'personal'
          ? { kind: { case: 'personalMessage' as const, value: { message: message() } } }
          : sub === 'typed-data'
            ? { kind: { case: 'typedData' as const, value: { json: readFileSync(values.file ?? usage('--file is required'), 'utf8') } } }
            : sub === 'digest'
              ? { kind: { case: 'rawDigest' as const, value: fromHexArg(values.digest ?? usage('--digest is required'), '--digest') } }
              : { kind: { case: 'ed25519Message' as const, value: message() } };
      const res = await client(creds()).signing.sign({ keyId: keyId(), payload });
      return { keyId: res.keyId, signature: hex(res.signature), digest: res.digest.length ? hex(res.digest) : undefined };
    }
    case 'verify': {
      const policy = parsePolicy(readFileSync(values.policy ?? usage('--policy is required'), 'utf8'));
      const collateral = values.collateral === undefined ? undefined : parseCollateral(readFileSync(values.collateral, 'utf8'));
      const t = createTransport({ baseUrl, protocol });
      const attested = await attestAppliance(t, policy, collateral === undefined ? {} : { collateral });
      process.stdout.write(formatVerdict(attested));
      return undefined;
    }
    case 'policy show': {
      if (arg === undefined) usage('policy show KEY_ID');
      return showPolicy((await client(creds()).policy.getPolicy({ keyId: arg })).policy);
    }
    case 'policy grant': {
      if (arg === undefined) usage('policy grant KEY_ID --id GRANT_ID (--service SVC_ID | --person USR_ID | --session SVC_ID) --ops OPS');
      const id = values.id ?? usage('--id GRANT_ID is required');
      const holders = (
        [
          [PrincipalKind.SERVICE, values.service],
          [PrincipalKind.PERSON, values.person],
          [PrincipalKind.SESSION, values.session],
        ] as const
      ).filter(([, v]) => v !== undefined);
      const [holder] = holders;
      if (holder === undefined || holders.length > 1) usage('exactly one of --service, --person or --session names who the grant is for');
      const grant = { id, principal: { kind: holder[0], id: holder[1] ?? '' }, rule: usageRuleFromArgs(values) };
      const res = await client(creds()).policy.grant({ keyId: arg, grant });
      return showPolicy(res.policy);
    }
    case 'policy revoke': {
      if (arg === undefined || arg2 === undefined) usage('policy revoke KEY_ID GRANT_ID');
      return showPolicy((await client(creds()).policy.revoke({ keyId: arg, grantId: arg2 })).policy);
    }
    case 'policy owner-rule': {
      if (arg === undefined) usage('policy owner-rule KEY_ID (--ops OPS [rule options] | --clear)');
      if (values.clear && hasRuleArgs(values)) usage('--clear takes no rule options');
      const rule = values.clear ? {} : { rule: usageRuleFromArgs(values) };
      return showPolicy((await client(creds()).policy.setOwnerRule({ keyId: arg, ...rule })).policy);
    }
    case 'audit head': {
      const res = await client(creds()).audit.getAuditHead({});
      if (res.head === undefined) throw new Error('the appliance returned no head');
      return signedAuditHeadJson(res.head);
    }
    case 'audit export': {
      const from = values.from === undefined ? 1 : positiveInt(values.from, '--from');
      const to = values.to === undefined ? undefined : positiveInt(values.to, '--to');
      if (to !== undefined && to < from) usage('--to must not be below --from');
      const { export: exp, warnings } = await exportAuditLog(client(creds()).audit, to === undefined ? { from } : { from, to });
      for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
      const text = `${encodeAuditExport(exp)}\n`;
      if (values.out === undefined) {
        process.stdout.write(text);
        return undefined;
      }
      writeFileSync(values.out, text);
      return { out: values.out, from: exp.from, to: exp.head.seq, records: exp.records.length, logSeq: exp.head.logSeq };
    }
    case 'audit verify': {
      if (arg === undefined) usage('audit verify FILE (--identity-key HEX | --attest --policy POLICY.json)');
      if ((values['identity-key'] === undefined) === (values.attest !== true)) usage('give exactly one of --identity-key HEX or --attest');
      const anchors = (values.anchor ?? []).map(parseAnchor);
      const text = readFileSync(arg, 'utf8'); // read before attesting: a missing file is a plain error
      let identityKey: Uint8Array;
      if (values['identity-key'] !== undefined) {
        identityKey = fromHexArg(values['identity-key'], '--identity-key');
        if (identityKey.length !== 32) usage('--identity-key must be the 32-byte Ed25519 identity public key');
      } else {
        const policy = parsePolicy(readFileSync(values.policy ?? usage('--attest needs --policy POLICY.json'), 'utf8'));
        const collateral = values.collateral === undefined ? undefined : parseCollateral(readFileSync(values.collateral, 'utf8'));
        const attested = await attestAppliance(createTransport({ baseUrl, protocol }), policy, collateral === undefined ? {} : { collateral });
        identityKey = attested.identityPublicKey;
      }
      const verdict = verifyAuditFile(text, identityKey, anchors);
      process.stdout.write(describeAuditVerification(verdict));
      if (!verdict.ok) process.exitCode = 1;
      return undefined;
    }
    case 'stamp': {
      // openkey stamp SignService/Sign '{"keyId": "...", ...}'
      const [svcName, methodName] = (sub ?? '').split('/');
      const svc = SERVICES[svcName ?? ''];
      const method = svc?.methods.find((m) => m.name === methodName);
      if (svc === undefined || method === undefined || arg === undefined) throw new UsageError("stamp SERVICE/METHOD 'JSON'");
      const msg = fromJson(method.input, JSON.parse(arg) as JsonValue);
      process.stdout.write(`${stampFor(creds(), `/${svc.typeName}/${method.name}`, method.input, msg)}\n`);
      return undefined;
    }
    default:
      throw new UsageError(`unknown command: ${positionals.join(' ')}`);
  }
}

run(process.argv.slice(2)).then(
  (out) => {
    if (out !== undefined) process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  },
  (err: unknown) => {
    const code = openKeyErrorCode(err) ?? (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined);
    if (err instanceof UsageError) process.stderr.write(`${err.message}\n\n${USAGE}`);
    else process.stderr.write(`error${code ? ` ${code}` : ''}: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(err instanceof UsageError ? 2 : 1);
  },
);
