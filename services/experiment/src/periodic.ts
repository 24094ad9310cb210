/**
 * Runs `task` every `intervalMs`, never two at once (a slow round delays the next instead of piling up).
 * Failures go to `onError`; the loop keeps going. Returns a stop function that waits for a running round.
 */
export function runPeriodically(
  intervalMs: number,
  task: () => Promise<void>,
  onError: (err: unknown) => void,
): () => Promise<void> {
  let running: Promise<void> | undefined;
  let stopped = false;
  const timer = setInterval(() => {
    if (running || stopped) return;
    running = task()
      .catch(onError)
      .finally(() => {
        running = undefined;
      });
  }, intervalMs);
  timer.unref();
  return async () => {
    stopped = true;
    clearInterval(timer);
    await running;
  };
}
