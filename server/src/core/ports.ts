// The ports the domain core needs from the world. Adapters (server/src/adapters) implement them;
// the composition root (server/src/main.ts) wires them. Nothing here imports a transport, storage,
// logging or TEE library.

/** Milliseconds since the Unix epoch. Injected so tests control time. */
export interface Clock {
  now(): number;
}

/** Cryptographically secure randomness. Injected so tests can be deterministic where that is safe. */
export interface Random {
  bytes(n: number): Uint8Array;
}

export type TeeKeyAlgorithm = 'secp256k1' | 'ed25519';

/** A key derived by the TEE's key provider (dstack `GetKey`) and the chain that vouches for it. */
export interface TeeDerivedKey {
  /** 32 bytes of secret key material. The caller zeroizes it when done. */
  readonly key: Uint8Array;
  /** dstack signature chain: [app-key signature over purpose:pubkey, KMS signature over app key]. */
  readonly signatureChain: readonly Uint8Array[];
}

export interface TeeAppInfo {
  readonly appId: string;
  readonly instanceId: string;
  readonly composeHash: string;
  readonly osImageHash: string;
  readonly keyProviderInfo: string;
  readonly appName: string;
  readonly deviceId: string;
  readonly mrAggregated: string;
  /** Raw tcb_info JSON from the guest agent (measurements and event log), unparsed. */
  readonly tcbInfo: string;
}

export interface TeeQuote {
  readonly quote: Uint8Array;
  /** The guest agent's event log, a JSON array as text. */
  readonly eventLog: string;
  readonly vmConfig: string;
}

/** Access to the trusted execution environment (dstack guest agent, or the project's simulator). */
export interface Tee {
  getKey(path: string, purpose: string, algorithm: TeeKeyAlgorithm): Promise<TeeDerivedKey>;
  info(): Promise<TeeAppInfo>;
  /** report_data of at most 64 bytes; the TEE right-pads it with zeros. */
  quote(reportData: Uint8Array): Promise<TeeQuote>;
}

// ---- Persistent state -------------------------------------------------------------------------

export type KeyAlgorithm = 'secp256k1' | 'ed25519';
export type PrincipalAlgorithm = 'ed25519' | 'p256';
export type PrincipalRole = 'admin' | 'service';

export interface PrincipalRecord {
  readonly id: string;
  readonly role: PrincipalRole;
  readonly algorithm: PrincipalAlgorithm;
  /** Ed25519: 32 raw bytes. P-256: 33-byte compressed or 65-byte uncompressed SEC1 point. */
  readonly publicKey: Uint8Array;
  readonly name: string;
  readonly createdAt: number;
}

export interface KeyRecord {
  readonly keyId: string;
  readonly owner: string;
  readonly algorithm: KeyAlgorithm;
  readonly publicKey: Uint8Array;
  readonly label: string;
  readonly rawDigestSigning: boolean;
  readonly createdAt: number;
  /** The sealed envelope (see core/sealing.ts). Opaque to the store. */
  readonly sealed: Uint8Array;
}

/**
 * One change in an atomic write. Conditional changes (`create*`, `consumeNonce`) are checked inside
 * the same atomic section as the write: if any condition fails, nothing is written and the store
 * throws the matching OpenKeyError (PRINCIPAL_EXISTS, INTERNAL for a key-id collision,
 * STAMP_REPLAYED).
 */
export type Change =
  | { readonly kind: 'createPrincipal'; readonly principal: PrincipalRecord }
  | { readonly kind: 'createKey'; readonly key: KeyRecord }
  | { readonly kind: 'replaceKey'; readonly key: KeyRecord }
  | { readonly kind: 'consumeNonce'; readonly principalId: string; readonly nonce: string; readonly expiresAt: number };

export interface ListPage {
  readonly limit: number;
  /** Return keys whose id sorts after this one (exclusive). */
  readonly after?: string;
}

export interface Store {
  getPrincipal(id: string): Promise<PrincipalRecord | undefined>;
  getKey(keyId: string): Promise<KeyRecord | undefined>;
  /** The owner's keys in key-id order. */
  listKeys(owner: string, page: ListPage): Promise<KeyRecord[]>;
  /** All changes, or none. */
  commit(changes: readonly Change[]): Promise<void>;
  /** Drops consumed nonces whose expiry is before `now`. Returns how many were removed. */
  pruneNonces(now: number): Promise<number>;
  close(): Promise<void>;
}
