/** Training progress on stderr: one updating line per epoch on a terminal, a line every few seconds otherwise. */
export class Progress {
  private last = 0;
  private readonly tty = Boolean(process.stderr.isTTY);

  step(r: {
    epoch: number;
    step: number;
    steps: number;
    loss: number;
    stepsPerSecond: number;
    etaSeconds: number;
  }): void {
    const now = Date.now();
    const done = r.step === r.steps;
    if (!done && now - this.last < (this.tty ? 250 : 10_000)) return;
    this.last = now;
    const line = `epoch ${r.epoch} step ${r.step}/${r.steps} loss ${r.loss.toFixed(4)} ${r.stepsPerSecond.toFixed(2)} steps/s ETA ${Math.round(r.etaSeconds)}s`;
    if (this.tty) process.stderr.write(`\r${line.padEnd(90)}${done ? '\n' : ''}`);
    else process.stderr.write(line + '\n');
  }

  log(msg: string): void {
    process.stderr.write(msg + '\n');
  }
}

export function table(rows: Array<Record<string, string | number>>): string {
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const fmt = (v: string | number | undefined) => (typeof v === 'number' ? v.toFixed(4) : (v ?? ''));
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => fmt(r[c]).length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i] ?? 0)).join('  ');
  return [
    line(cols),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map((r) => line(cols.map((c) => fmt(r[c])))),
  ].join('\n');
}
