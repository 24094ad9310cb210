import type { Logger } from './logger';

type Hook = { name: string; run: () => Promise<void> | void };

/**
 * Ordered shutdown: hooks run in reverse registration order (last opened, first closed) under one
 * deadline. Register each resource's close right after opening it. A second signal exits at once.
 */
export class Lifecycle {
  private readonly hooks: Hook[] = [];
  private shuttingDown: Promise<void> | undefined;

  constructor(
    private readonly logger: Logger,
    private readonly deadlineMs: number,
  ) {}

  onShutdown(name: string, run: () => Promise<void> | void): void {
    this.hooks.push({ name, run });
  }

  get isShuttingDown(): boolean {
    return this.shuttingDown !== undefined;
  }

  /** Milliseconds left of the shutdown deadline once a shutdown started. */
  remainingMs(): number {
    return this.deadlineAt === undefined ? this.deadlineMs : Math.max(0, this.deadlineAt - Date.now());
  }

  private deadlineAt: number | undefined;

  shutdown(reason: string): Promise<void> {
    this.shuttingDown ??= this.runHooks(reason);
    return this.shuttingDown;
  }

  private async runHooks(reason: string): Promise<void> {
    this.deadlineAt = Date.now() + this.deadlineMs;
    this.logger.info('shutting down', { reason, deadline_ms: this.deadlineMs });
    for (const hook of [...this.hooks].reverse()) {
      const left = this.remainingMs();
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          Promise.resolve().then(hook.run),
          new Promise<void>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`timed out after ${left} ms`)), left);
          }),
        ]);
      } catch (err) {
        this.logger.warn('shutdown step failed', { step: hook.name, err });
      } finally {
        clearTimeout(timer);
      }
    }
    this.logger.info('shutdown complete');
  }

  /** SIGTERM/SIGINT start a graceful shutdown and then exit; a second signal exits immediately. */
  installSignalHandlers(exit: (code: number) => void = (code) => process.exit(code)): void {
    const onSignal = (signal: NodeJS.Signals): void => {
      if (this.shuttingDown) {
        this.logger.warn('second signal; exiting now', { signal });
        exit(130);
        return;
      }
      void this.shutdown(signal).then(() => exit(0));
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  }
}
