// The one pino logger, made by main and handed down; modules take child loggers. Secrets never reach a line:
// known carriers are redacted, and connection log lines carry only counts, codes and addresses.
import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { app: 'wsgate' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: ['headers.authorization', 'headers.cookie', 'headers["sec-websocket-protocol"]', 'token', 'apiKey', '*.token', '*.apiKey'],
        censor: '[redacted]',
      },
    },
    destination,
  );
}
