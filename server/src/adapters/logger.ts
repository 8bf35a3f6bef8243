// Structured logging (pino) with redaction. Log lines carry request ids, methods, key ids and
// error codes; request bodies, stamps, signatures and anything secret are never logged, and the
// redaction list is a second line of defence should one slip into a log object.

import { pino, type Logger } from 'pino';

export type { Logger };

export const REDACT_PATHS = [
  'secret',
  'privateKey',
  'sealingKey',
  'plaintext',
  'stamp',
  'key',
  'seed',
  '*.secret',
  '*.privateKey',
  '*.sealingKey',
  '*.plaintext',
  '*.stamp',
  '*.seed',
  'req.headers["openkey-stamp"]',
  'headers["openkey-stamp"]',
];

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  const options = { level, base: { service: 'openkey-appliance' }, redact: { paths: REDACT_PATHS, censor: '[redacted]' } };
  return destination === undefined ? pino(options) : pino(options, destination);
}
