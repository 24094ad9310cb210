/** One reason a service cannot do its job right now. */
export interface ReadinessProblem {
  readonly condition: string;
  /** The hosted gRPC service it concerns; absent: the whole process. */
  readonly service?: string;
  readonly reason: string;
}

/**
 * What grpc.health.v1 reports, as a set of named conditions that each part of a service sets when
 * it learns something (NATS connection lost, no model yet, a model that produces garbage): the process
 * ("") is SERVING when no process-wide condition fails; a hosted service when, in addition, none of its
 * own does. `liveness` stays SERVING while the process runs: restarting a pod does not bring NATS back.
 */
export class Readiness {
  private readonly problems = new Map<string, ReadinessProblem>();
  private readonly listeners = new Set<() => void>();

  set(condition: string, ok: boolean, opts: { service?: string | undefined; reason?: string } = {}): void {
    const key = `${opts.service ?? ''}\u001f${condition}`;
    const before = this.problems.get(key);
    if (ok) {
      if (!before) return;
      this.problems.delete(key);
    } else {
      const reason = opts.reason ?? condition;
      if (before?.reason === reason) return;
      this.problems.set(key, { condition, reason, ...(opts.service ? { service: opts.service } : {}) });
    }
    for (const l of this.listeners) l();
  }

  /** The process (no argument) or one hosted service can do its job. */
  ready(service?: string): boolean {
    for (const p of this.problems.values()) if (p.service === undefined || p.service === service) return false;
    return true;
  }

  list(): ReadinessProblem[] {
    return [...this.problems.values()];
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
