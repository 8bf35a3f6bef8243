// Attestation evidence for clients: a TDX quote whose report_data binds the appliance identity key
// to the client's nonce (SHA-512("openkey-attest-v1" ‖ identity key ‖ nonce), the verifier's own
// definition), the event log and app info to check it against, the identity key's dstack chain,
// the import key vouched for by the identity key, and DCAP collateral when a source is configured.

import { appReportData, APPLIANCE_NONCE_LENGTH } from '@openkey/verifier';
import { OpenKeyError } from './errors.ts';
import type { Tee, TeeAppInfo } from './ports.ts';

/** DCAP collateral for a quote, as QuoteCollateralV3 JSON text; undefined when unavailable. */
export interface CollateralProvider {
  forQuote(quote: Uint8Array): Promise<string | undefined>;
}

export interface ApplianceIdentity {
  readonly publicKey: Uint8Array;
  readonly signatureChain: readonly Uint8Array[];
  readonly purpose: string;
  readonly importPublicKey: Uint8Array;
  readonly importKeySignature: Uint8Array;
}

export interface AttestationEvidence {
  readonly quote: Uint8Array;
  readonly eventLog: string;
  readonly vmConfig: string;
  readonly appInfo: TeeAppInfo;
  readonly identity: ApplianceIdentity;
  readonly collateralJson: string;
}

export interface AttestationServiceOptions {
  readonly tee: Tee;
  readonly identity: ApplianceIdentity;
  readonly collateral?: CollateralProvider;
  /** Quotes being produced at once; beyond it Attest answers RESOURCE_EXHAUSTED. Default 8. */
  readonly maxConcurrentQuotes?: number;
}

export class AttestationService {
  private appInfo: Promise<TeeAppInfo> | undefined;
  private active = 0;

  constructor(private readonly o: AttestationServiceOptions) {}

  async attest(nonce: Uint8Array): Promise<AttestationEvidence> {
    if (nonce.length === 0) throw new OpenKeyError('MISSING_FIELD', 'nonce');
    if (nonce.length !== APPLIANCE_NONCE_LENGTH) throw new OpenKeyError('MALFORMED_REQUEST', `nonce must be ${APPLIANCE_NONCE_LENGTH} bytes`);
    // Unauthenticated and costly (a quote is a TDX module call): bounded, refused early when busy.
    if (this.active >= (this.o.maxConcurrentQuotes ?? 8)) throw new OpenKeyError('RESOURCE_EXHAUSTED', 'too many attestations in progress');
    this.active++;
    try {
      return await this.collect(nonce);
    } finally {
      this.active--;
    }
  }

  private async collect(nonce: Uint8Array): Promise<AttestationEvidence> {
    const quote = await this.o.tee.quote(appReportData(this.o.identity.publicKey, nonce));
    // App info does not change while the process lives; ask the guest agent once.
    this.appInfo ??= this.o.tee.info().catch((e: unknown) => {
      this.appInfo = undefined;
      throw e;
    });
    const [appInfo, collateralJson] = await Promise.all([
      this.appInfo,
      this.o.collateral?.forQuote(quote.quote).catch(() => undefined) ?? Promise.resolve(undefined),
    ]);
    return {
      quote: quote.quote,
      eventLog: quote.eventLog,
      vmConfig: quote.vmConfig,
      appInfo,
      identity: this.o.identity,
      collateralJson: collateralJson ?? '',
    };
  }
}
