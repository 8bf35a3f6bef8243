// The one way verifier tests read an outcome: the VerifierError code a call throws, or 'no error'.
// Anything that is not a VerifierError is a bug and is rethrown.

import { VerifierError, type VerifierErrorCode } from '../../src/errors.ts';

export function codeOf(fn: () => unknown): VerifierErrorCode | 'no error' {
  try {
    fn();
    return 'no error';
  } catch (e: unknown) {
    if (e instanceof VerifierError) return e.code;
    throw e;
  }
}
