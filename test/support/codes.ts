// The appliance error code of a call's outcome, for end-to-end assertions.

import { ConnectError } from '@connectrpc/connect';
import { openKeyErrorCode } from '../../clients/src/index.ts';

/** The `openkey-error-code` of a failed call, "status:<n>" without one, or "no-error" if it succeeded. */
export async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (e) {
    return openKeyErrorCode(e) ?? (e instanceof ConnectError ? `status:${e.code}` : 'not-a-connect-error');
  }
  return 'no-error';
}
