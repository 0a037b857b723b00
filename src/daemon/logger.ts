/** How the daemon reports what it does; the CLI writes it to stderr (the journal under systemd). */
export type LogLevel = 'error' | 'warning' | 'notice' | 'info';

export type Logger = (level: LogLevel, message: string) => void;

/** A logger that writes `contid run: <level>: <message>` lines. */
export function streamLogger(out: { write(text: string): unknown }): Logger {
  return (level, message) => {
    out.write(`contid run: ${level}: ${message}\n`);
  };
}
