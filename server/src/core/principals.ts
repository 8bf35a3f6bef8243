// Principal registration and lookup. Registration is either "open" (anyone may register a key
// they prove they hold: the development default) or "admin" (only administrators may register
// principals: the production default). Administrators are declared in configuration, which under
// dstack is part of the measured app compose file, so clients can see who they are.

import type { Authenticated, Authenticator, AuthRequest } from './auth.ts';
import { OpenKeyError } from './errors.ts';
import { principalIdFor } from './ids.ts';
import type { Clock, PrincipalAlgorithm, PrincipalRecord, Store } from './ports.ts';

export type RegistrationMode = 'open' | 'admin';

export const MAX_NAME_LENGTH = 128;

/** Returns the normalized public key, or throws INVALID_PUBLIC_KEY. */
export type PublicKeyValidator = (algorithm: PrincipalAlgorithm, publicKey: Uint8Array) => Uint8Array;

export interface PrincipalServiceOptions {
  readonly store: Store;
  readonly clock: Clock;
  readonly auth: Authenticator;
  readonly registration: RegistrationMode;
  readonly validatePublicKey: PublicKeyValidator;
}

export interface NewPrincipal {
  readonly algorithm: PrincipalAlgorithm;
  readonly publicKey: Uint8Array;
  readonly name: string;
}

export class PrincipalService {
  constructor(private readonly o: PrincipalServiceOptions) {}

  async create(req: AuthRequest, input: NewPrincipal): Promise<PrincipalRecord> {
    const candidate = this.candidate(input, 'service');
    let auth: Authenticated;
    if (this.o.registration === 'open') {
      auth = this.o.auth.authenticateCandidate(req, candidate);
    } else {
      auth = await this.o.auth.authenticate(req);
      if (auth.principal.role !== 'admin') throw new OpenKeyError('PERMISSION_DENIED', 'registration requires an administrator');
    }
    await this.o.store.commit([...auth.nonceChanges, { kind: 'createPrincipal', principal: candidate }]);
    return candidate;
  }

  async whoAmI(req: AuthRequest): Promise<PrincipalRecord> {
    const auth = await this.o.auth.authenticate(req);
    await this.o.store.commit(auth.nonceChanges);
    return auth.principal;
  }

  /** Registers configured administrators that are not registered yet. Idempotent. */
  async ensureAdmins(admins: readonly NewPrincipal[]): Promise<PrincipalRecord[]> {
    const out: PrincipalRecord[] = [];
    for (const a of admins) {
      const candidate = this.candidate(a, 'admin');
      const existing = await this.o.store.getPrincipal(candidate.id);
      if (existing === undefined) {
        await this.o.store.commit([{ kind: 'createPrincipal', principal: candidate }]);
        out.push(candidate);
      } else if (existing.role !== 'admin') {
        throw new OpenKeyError('PRINCIPAL_EXISTS', 'configured admin key is registered as a service');
      } else {
        out.push(existing);
      }
    }
    return out;
  }

  private candidate(input: NewPrincipal, role: PrincipalRecord['role']): PrincipalRecord {
    if (input.name.length > MAX_NAME_LENGTH) throw new OpenKeyError('PAYLOAD_TOO_LARGE', 'name');
    if (input.publicKey.length === 0) throw new OpenKeyError('MISSING_FIELD', 'public_key');
    const publicKey = this.o.validatePublicKey(input.algorithm, input.publicKey);
    return {
      id: principalIdFor(input.algorithm, publicKey),
      role,
      algorithm: input.algorithm,
      publicKey,
      name: input.name,
      createdAt: this.o.clock.now(),
    };
  }
}
