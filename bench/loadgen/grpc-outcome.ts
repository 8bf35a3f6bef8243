// How both gRPC generators judge one answer, so their error breakdowns read the same: success is
// HTTP 200 with `grpc-status: 0` (in the trailers, or in the headers of a trailers-only answer);
// a failure is keyed `stream <why>` (the stream or connection failed), `http <status>`, or
// `grpc-status <n> [openkey-error-code]`, and notes whether it carried `openkey-retry-after-ms`.

export const ERROR_CODE_HEADER = 'openkey-error-code';
export const RETRY_AFTER_HEADER = 'openkey-retry-after-ms';

export interface Outcome {
  readonly ok: boolean;
  readonly errorKey: string | undefined;
  /** The answer carried the server's back-off hint (openkey-retry-after-ms). */
  readonly retryHint: boolean;
}

/** Every success is the same outcome: no allocation per call. */
export const OK: Outcome = { ok: true, errorKey: undefined, retryHint: false };

export function judge(streamError: string | undefined, httpStatus: number, grpcStatus: string | undefined, errorCode: string | undefined, retryHint: boolean): Outcome {
  if (streamError === undefined && httpStatus === 200 && grpcStatus === '0') return OK;
  const errorKey =
    streamError !== undefined
      ? `stream ${streamError}`
      : httpStatus !== 200
        ? `http ${httpStatus}`
        : `grpc-status ${grpcStatus ?? 'missing'}${errorCode === undefined ? '' : ` ${errorCode}`}`;
  return { ok: false, errorKey, retryHint };
}
