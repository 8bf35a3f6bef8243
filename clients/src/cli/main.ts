#!/usr/bin/env -S npx tsx
// `openkey` — command-line client for an OpenKey appliance. Creates and registers a service
// principal, creates keys, signs typed payloads, and prints stamp headers for generic tools
// (curl, grpcurl). Output is JSON on stdout; errors go to stderr with the appliance's error code.

import { fromJson, type DescMessage, type JsonValue } from '@bufbuild/protobuf';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { KeyAlgorithm } from '../../../proto/gen/openkey/v1/common_pb.ts';
import { KeyService } from '../../../proto/gen/openkey/v1/keys_pb.ts';
import { PrincipalKeyAlgorithm, PrincipalService } from '../../../proto/gen/openkey/v1/principals_pb.ts';
import { SignService } from '../../../proto/gen/openkey/v1/signing_pb.ts';
import { parseCollateral } from '@openkey/verifier';
import { attestAppliance } from '../attested.ts';
import { createOpenKeyClient, createTransport, openKeyErrorCode, type WireProtocol } from '../client.ts';
import { parsePolicy } from '../policy.ts';
import { generateCredentials, loadCredentials, saveCredentials, type Credentials } from '../credentials.ts';
import { encryptKeyForImport } from '../key-import.ts';
import { stampFor } from '../stamper.ts';
import { formatVerdict, keyInfoJson, principalJson, hex, fromHexArg } from './format.ts';

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

global options:
  --url URL              appliance Connect URL (env OPENKEY_URL, default http://127.0.0.1:8080)
  --protocol P           connect | grpc-web | grpc (grpc: use the gRPC port, default 8081)
  --credentials FILE     (env OPENKEY_CREDENTIALS, default ./openkey-credentials.json)
`;

const SERVICES: Record<string, { readonly typeName: string; readonly methods: readonly { readonly name: string; readonly input: DescMessage }[] }> = {
  KeyService,
  SignService,
  PrincipalService,
};

class UsageError extends Error {}

async function run(argv: string[]): Promise<unknown> {
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
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [cmd, sub, arg] = positionals;
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

function usage(msg: string): never {
  throw new UsageError(msg);
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
