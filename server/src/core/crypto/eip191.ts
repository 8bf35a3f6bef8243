// EIP-191 version 0x45 ("E"), the personal_sign hash: keccak256("\x19Ethereum Signed Message:\n" ‖
// decimal byte length of the message ‖ message). The message is bytes; text is UTF-8 encoded by the
// caller, exactly as wallets do before hashing.

import { keccak256 } from './keccak.ts';

const PREFIX = '\x19Ethereum Signed Message:\n';

/** The EIP-191 personal_sign digest of `message`. */
export function hashPersonalMessage(message: Uint8Array): Uint8Array {
  const header = Buffer.from(PREFIX + String(message.length), 'latin1');
  const buf = new Uint8Array(header.length + message.length);
  buf.set(header, 0);
  buf.set(message, header.length);
  return keccak256(buf);
}
