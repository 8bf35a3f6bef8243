// Principal registration and lookup. Registration is either "open" (anyone may register a key
// they prove they hold: the development default) or "admin" (only administrators may register
// principals: the production default). Administrators are declared in configuration, which under
// dstack is part of the measured app compose file, so clients can see who they are.
//
// Every registration is audited (`create_principal`, the new principal's id in the record's id
// field) in the same commit that creates it; an authenticated registration that is refused (not an
// administrator, a bad key, a principal that exists) is audited as a denial with the stamp's nonce.

import { appendAudit, denialAudit, type AuditInput, type RegistrationReason } from './audit.ts';
import type { Authenticated, Authenticator, AuthRequest } from './auth.ts';
import { OpenKeyError, isOpenKeyError } from './errors.ts';
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
    if (this.o.registration === 'open') {
      // The key being registered signs its own registration: it cannot authenticate before its
      // request is known to be well-formed, so a malformed one is refused unaudited, like any
      // unauthenticated call.
      const candidate = this.candidate(input, 'service');
      const auth = this.o.auth.authenticateCandidate(req, candidate);
      return this.commitCreate(auth, candidate, 'SELF_REGISTERED');
    }
    const auth = await this.o.auth.authenticate(req);
    let candidate: PrincipalRecord;
    try {
      if (auth.principal.role !== 'admin') throw new OpenKeyError('PERMISSION_DENIED', 'registration requires an administrator');
      candidate = this.candidate(input, 'service');
    } catch (e) {
      await this.refuse(auth, '', e);
      throw e;
    }
    return this.commitCreate(auth, candidate, 'ADMIN');
  }

  /** Creates `candidate` with its audit record and the stamp's nonce, or audits why it could not. */
  private async commitCreate(auth: Authenticated, candidate: PrincipalRecord, reason: RegistrationReason): Promise<PrincipalRecord> {
    const entry = this.entry(auth, candidate.id);
    try {
      await this.o.store.commit([...auth.nonceChanges, { kind: 'createPrincipal', principal: candidate }, appendAudit({ ...entry, decision: 'allow', reason })]);
    } catch (e) {
      // Nothing was written (e.g. PRINCIPAL_EXISTS): the refusal is recorded with the nonce instead.
      await this.refuse(auth, candidate.id, e);
      throw e;
    }
    return candidate;
  }

  private async refuse(auth: Authenticated, subject: string, e: unknown): Promise<void> {
    if (isOpenKeyError(e) && e.code !== 'INTERNAL') await this.o.store.commit([...auth.nonceChanges, denialAudit(this.entry(auth, subject), e.code)]);
  }

  private entry(auth: Authenticated, subject: string): Omit<AuditInput, 'decision' | 'reason'> {
    return { time: this.o.clock.now(), principal: auth.principal.id, operation: 'create_principal', keyId: subject, requestDigest: auth.requestDigest };
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
        // Recorded as registered by no principal (''): by the configuration, at start-up.
        const record = appendAudit({ time: candidate.createdAt, principal: '', operation: 'create_principal', keyId: candidate.id, requestDigest: new Uint8Array(0), decision: 'allow', reason: 'CONFIGURED' });
        await this.o.store.commit([{ kind: 'createPrincipal', principal: candidate }, record]);
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
