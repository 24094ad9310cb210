import {
  AisleError,
  DEFAULT_TENANT,
  experimentV1,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
} from '@aisle/contracts';
import {
  analyzeExperiment,
  experimentEnd,
  normalizeExperiment,
  promotedReason,
  revalidateExperiment,
  trippedGuardrail,
  type Experiment,
  type JoinedRequest,
} from '@aisle/experiments';

/** Where definitions live (the KV bucket); writes are compare-and-set on `revision`. */
export interface DefinitionStore {
  get(tenant: string, id: string): Promise<{ experiment: Experiment; revision: number } | undefined>;
  list(tenant?: string): Promise<Array<{ experiment: Experiment; revision: number }>>;
  /** Throws DefinitionConflictError when the id is taken. */
  create(e: Experiment): Promise<number>;
  /** Throws DefinitionConflictError when the definition changed since `revision`. */
  update(e: Experiment, revision: number): Promise<number>;
}

/** The joined requests of one experiment. */
export interface JoinedRequests {
  requests(tenant: string, experimentId: string): AsyncIterable<JoinedRequest>;
}

export interface ResultSink {
  publish(result: experimentV1.ExperimentResult): Promise<void>;
}

/** Makes stored model versions the active ones (the model registry). */
export interface ModelActivation {
  /**
   * Makes every `model -> version` of `pins` active, or none: each version is checked (stored, signature,
   * sizes, digests) before any pointer moves. NotFoundError when one is not stored.
   */
  activate(tenant: string, pins: Readonly<Record<string, string>>): Promise<void>;
}

export class DefinitionConflictError extends AisleError {
  override readonly name = 'DefinitionConflictError';
}

export interface AnalysisReport {
  analyzed: number;
  published: number;
  stopped: Array<{ tenant: string; id: string; reason: string }>;
}

const CAS_ATTEMPTS = 5;
const tenantOf = (t: string) => t || DEFAULT_TENANT;

/**
 * Experiment definitions (create, read, stop) and their results. Results are computed from the joined
 * requests on demand and by `analyzeAll`, which also stops experiments whose guardrails tripped and
 * publishes results that changed.
 */
export class ExperimentService {
  /** Last published result per experiment (its encoding), so unchanged results are not re-sent. */
  private readonly lastPublished = new Map<string, string>();

  constructor(
    private readonly definitions: DefinitionStore,
    private readonly joined: JoinedRequests,
    private readonly results: ResultSink,
    private readonly clock: () => number = () => Date.now(),
    private readonly models?: ModelActivation,
  ) {}

  private checked(e: Experiment): Experiment {
    return revalidateExperiment(e, this.clock());
  }

  async create(input: Experiment | undefined): Promise<Experiment> {
    if (!input) throw new InvalidArgumentError('experiment', 'required');
    const now = this.clock();
    const e = normalizeExperiment(input, now);
    // One experiment per surface at a time: a request is then in at most one, and arms never interact.
    const start = e.startTime?.getTime() ?? now;
    const end = experimentEnd(e) ?? Number.POSITIVE_INFINITY;
    for (const { experiment: other } of await this.definitions.list(e.tenant)) {
      if (other.id === e.id) throw new FailedPreconditionError(`experiment '${e.id}' already exists`);
      if (other.surface !== e.surface) continue;
      const otherEnd = experimentEnd(other) ?? Number.POSITIVE_INFINITY;
      if ((other.startTime?.getTime() ?? 0) < end && start < otherEnd)
        throw new FailedPreconditionError(
          `experiment '${other.id}' runs on the same surface in that time; stop it first or start later`,
        );
    }
    try {
      await this.definitions.create(e);
    } catch (err) {
      if (err instanceof DefinitionConflictError)
        throw new FailedPreconditionError(`experiment '${e.id}' already exists`);
      throw err;
    }
    return e;
  }

  private async load(tenant: string, id: string): Promise<{ experiment: Experiment; revision: number }> {
    if (!id) throw new InvalidArgumentError('id', 'required');
    const got = await this.definitions.get(tenantOf(tenant), id);
    if (!got) throw new NotFoundError(`experiment '${id}' not found in tenant '${tenantOf(tenant)}'`);
    return { experiment: this.checked(got.experiment), revision: got.revision };
  }

  async get(tenant: string, id: string): Promise<Experiment> {
    return (await this.load(tenant, id)).experiment;
  }

  /** Newest first; definitions that no longer validate are left out. */
  async list(tenant: string): Promise<Experiment[]> {
    const out: Experiment[] = [];
    for (const { experiment } of await this.definitions.list(tenantOf(tenant))) {
      try {
        out.push(this.checked(experiment));
      } catch {
        continue;
      }
    }
    return out.sort(
      (a, b) => (b.createTime?.getTime() ?? 0) - (a.createTime?.getTime() ?? 0) || (a.id < b.id ? -1 : 1),
    );
  }

  /** Stops an experiment now (compare-and-set, retried on a concurrent change); stopping twice keeps the first reason. */
  async stop(tenant: string, id: string, reason: string): Promise<Experiment> {
    if (reason.length > 1000) throw new InvalidArgumentError('reason', 'longer than 1000 characters');
    for (let attempt = 0; ; attempt++) {
      const { experiment, revision } = await this.load(tenant, id);
      if (experiment.stopTime) return experiment;
      const now = this.clock();
      const stopped: Experiment = { ...experiment, stopTime: new Date(now), stopReason: reason || 'stopped by hand' };
      try {
        await this.definitions.update(stopped, revision);
        return this.checked(stopped);
      } catch (err) {
        if (!(err instanceof DefinitionConflictError) || attempt >= CAS_ATTEMPTS) throw err;
      }
    }
  }

  async resultsOf(e: Experiment): Promise<experimentV1.ExperimentResult> {
    const requests: JoinedRequest[] = [];
    for await (const r of this.joined.requests(e.tenant, e.id)) requests.push(r);
    return analyzeExperiment(e, requests, this.clock());
  }

  async getResults(tenant: string, id: string): Promise<experimentV1.ExperimentResult> {
    return this.resultsOf(await this.get(tenant, id));
  }

  /**
   * Promotion after a win, in one call: the arm's pinned model versions become the active ones and the
   * experiment stops. Without `force` the arm must be the winner on the primary metric. A kind the arm pins
   * no version of is left as it is (the arm served the active one); an arm that pins nothing changes no
   * model and only stops the experiment. An arm that differs from production in what no model version
   * carries (the ranker disabled, rule settings) is refused: promoting its pins alone would put a
   * configuration into production that the experiment never measured; those are the ranking service's
   * configuration.
   */
  async promote(
    tenant: string,
    id: string,
    armName: string,
    force: boolean,
  ): Promise<{ experiment: Experiment; activated: Record<string, string> }> {
    const e = await this.get(tenant, id);
    const result = await this.resultsOf(e);
    const name = armName || result.winner;
    if (!name) throw new FailedPreconditionError(`experiment '${id}' has no winner yet; name an arm and set force`);
    const arm = e.arms.find((a) => a.name === name);
    if (!arm) throw new InvalidArgumentError('arm', `'${name}' is not an arm of '${id}'`);
    if (!force && result.winner !== name)
      throw new FailedPreconditionError(
        `arm '${name}' has not won on the primary metric (winner: ${result.winner || 'none yet'}); set force to promote anyway`,
      );
    const configured = [
      ...(arm.rankerDisabled ? ['serves the heuristic (ranker_disabled), which no model version can make active'] : []),
      ...(arm.rules && (arm.rules.retentionBoost > 0 || arm.rules.maxPerCategory > 0)
        ? ['has rule settings, which are the ranking configuration (AISLE_RANKING_*), not a model version']
        : []),
    ];
    if (configured.length > 0)
      throw new FailedPreconditionError(
        `arm '${name}' ${configured.join(' and ')}; change production's configuration and Stop the experiment instead`,
      );
    const activated = { ...arm.models };
    if (Object.keys(activated).length > 0) {
      if (!this.models) throw new FailedPreconditionError('this experiment service has no model registry');
      await this.models.activate(e.tenant, activated);
    }
    const experiment = await this.stop(e.tenant, id, promotedReason(name));
    return { experiment, activated };
  }

  /**
   * One analysis round over every experiment that runs, or stopped recently enough that late outcomes
   * may still arrive: stops those whose guardrails tripped (saying why) and publishes results that changed.
   */
  async analyzeAll(): Promise<AnalysisReport> {
    const report: AnalysisReport = { analyzed: 0, published: 0, stopped: [] };
    const now = this.clock();
    for (const stored of await this.definitions.list()) {
      let e: Experiment;
      try {
        e = this.checked(stored.experiment);
      } catch {
        continue;
      }
      const end = experimentEnd(e);
      if (e.startTime && e.startTime.getTime() > now) continue;
      if (end !== undefined && now > end + e.attributionWindowSeconds * 1000 + 60_000) continue;
      let result = await this.resultsOf(e);
      report.analyzed++;
      const reason = e.state === experimentV1.State.STATE_RUNNING ? trippedGuardrail(result) : undefined;
      if (reason) {
        const stopped = await this.stop(e.tenant, e.id, `guardrail: ${reason}`);
        report.stopped.push({ tenant: e.tenant, id: e.id, reason: stopped.stopReason });
        result = await this.resultsOf(stopped);
      }
      const key = `${e.tenant}/${e.id}`;
      const encoded = JSON.stringify(experimentV1.ExperimentResult.toJSON(result));
      if (this.lastPublished.get(key) === encoded) continue;
      await this.results.publish(result);
      this.lastPublished.set(key, encoded);
      report.published++;
    }
    return report;
  }
}
