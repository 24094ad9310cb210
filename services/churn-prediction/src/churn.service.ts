import { FailedPreconditionError, InvalidArgumentError, UnavailableError } from '@aisle/contracts';
import { CHURN_FEATURES, churnFeatures, type ActivitySummary } from '@aisle/ml';
import { randomUUID } from 'node:crypto';

/** What the service needs to know of a user (from the feature service). */
export interface UserActivity {
  userId: string;
  known: boolean;
  firstSeen: number;
  lastSeen: number;
  sessions: number;
  events: number;
  purchases: number;
  spend: number;
  recent: Array<{ type: string; at: number }>;
}

export interface ScoreRecord {
  userId: string;
  risk: number;
  band: 'low' | 'medium' | 'high';
  factors: Array<{ feature: string; value: number; contribution: number }>;
  scoredAt: number;
  modelVersion: string;
  alerted: boolean;
}

export interface ChurnModel {
  readonly version: string;
  /** Risk and per-feature log-odds contributions for each feature row. */
  predict(rows: readonly Float32Array[]): Promise<Array<{ risk: number; contributions: Float32Array }>>;
}

export interface ActivitySource {
  /**
   * Users' activity and the tenant's watermark ("now" in event time); answers by `deadline` (epoch ms)
   * when one is given. Throws ActivityUnavailableError when the source cannot answer.
   */
  users(userIds: readonly string[], opts?: { deadline?: number }): Promise<{ users: UserActivity[]; asOf: number }>;
  /** Every user with features, a page at a time. */
  listUsers(pageSize: number, pageToken: string): Promise<{ userIds: string[]; nextPageToken: string }>;
}

/** The activity source (the feature service) cannot answer now; retrying later may succeed. */
export class ActivityUnavailableError extends Error {
  override readonly name = 'ActivityUnavailableError';
}

export interface ScoreRepository {
  getMany(userIds: readonly string[]): Promise<Map<string, ScoreRecord>>;
  upsertMany(records: readonly ScoreRecord[]): Promise<void>;
  listAtRisk(minRisk: number, limit: number, after?: { risk: number; userId: string }): Promise<ScoreRecord[]>;
}

export interface AlertSink {
  alert(a: {
    alertId: string;
    userId: string;
    risk: number;
    threshold: number;
    band: ScoreRecord['band'];
    factors: ScoreRecord['factors'];
    modelVersion: string;
    scoredAt: number;
  }): Promise<void>;
}

/**
 * Churn model versions other than the active one, asked for by name (an experiment arm's pin): loaded on
 * first use and kept among a few recently used ones (runtime's PinnedVersions). `get` throws NotFoundError
 * for a version the registry does not have, FailedPreconditionError for one that cannot be served.
 */
export interface ChurnVersions {
  get(version: string): Promise<ChurnModel>;
  versions(): string[];
}

export interface ChurnOptions {
  threshold: number;
  hysteresis: number;
  /** Where requested versions come from (without: a request naming one other than the active is refused). */
  versions?: ChurnVersions;
  /**
   * Told when the active model turns out unusable (`problem`: why) and when a new model replaces it
   * (`undefined`): a service whose model produces garbage cannot do its job.
   */
  onModelProblem?: (problem: string | undefined) => void;
}

/** A model output that can be stored and shown: a probability and finite contributions. */
type Prediction = { risk: number; contributions: Float32Array };
function usable(p: Prediction | undefined): p is Prediction {
  return p !== undefined && p.risk >= 0 && p.risk <= 1 && p.contributions.every(Number.isFinite);
}

export class NoModelError extends Error {
  override readonly name = 'NoModelError';
}

const DAY = 86_400_000;

/** Features the model reads, from what the feature service keeps per user. */
export function summaryOf(u: UserActivity): ActivitySummary {
  const avgSpend = u.purchases > 0 ? u.spend / u.purchases : 0;
  return {
    firstAt: u.firstSeen,
    lastAt: u.lastSeen,
    visits: Math.max(1, u.sessions),
    events: u.events,
    purchases: u.purchases,
    spend: u.spend,
    recentEvents: u.recent.map((r) => r.at),
    recentPurchases: u.recent.filter((r) => r.type === 'purchase').map((r) => ({ at: r.at, amount: avgSpend })),
  };
}

/** Readable factors: log features are reported in their natural unit (log_recency_days -> recency_days). */
function readable(feature: string, value: number): { feature: string; value: number } {
  return feature.startsWith('log_')
    ? { feature: feature.slice(4), value: Math.round(Math.expm1(value) * 100) / 100 }
    : { feature, value: Math.round(value * 1000) / 1000 };
}

export function bandOf(risk: number, threshold: number): ScoreRecord['band'] {
  return risk >= threshold ? 'high' : risk >= threshold / 2 ? 'medium' : 'low';
}

export class ChurnService {
  private model: ChurnModel | undefined;
  private modelProblem: string | undefined;

  constructor(
    private readonly activity: ActivitySource,
    private readonly scores: ScoreRepository,
    private readonly alerts: AlertSink,
    readonly opts: ChurnOptions,
  ) {}

  setModel(m: ChurnModel): void {
    this.model = m;
    if (this.modelProblem !== undefined) {
      this.modelProblem = undefined;
      this.opts.onModelProblem?.(undefined);
    }
  }

  /** Why the active model cannot be used, if it cannot. */
  get problem(): string | undefined {
    return this.modelProblem;
  }

  get modelVersion(): string | undefined {
    return this.model?.version;
  }

  /**
   * Scores users from their current features, stores the scores, and alerts once per upward crossing of
   * the threshold (re-armed only after falling below threshold - hysteresis). A prediction that is not
   * a probability (NaN from a broken model) is never stored: it is counted in `invalid`, and the model
   * is reported unusable until another one replaces it.
   */
  async scoreUsers(
    userIds: readonly string[],
    opts: { deadline?: number } = {},
  ): Promise<{ scored: number; alerts: number; invalid: number }> {
    const model = this.model;
    if (!model) throw new NoModelError('no churn model is active yet');
    if (userIds.length === 0) return { scored: 0, alerts: 0, invalid: 0 };
    const [{ scored, invalid }, previous] = await Promise.all([
      this.scoreWith(model, userIds, opts),
      this.scores.getMany(userIds),
    ]);
    const records: ScoreRecord[] = [];
    let alerts = 0;
    for (const r of scored) {
      const above = r.risk >= this.opts.threshold;
      let alerted = previous.get(r.userId)?.alerted ?? false;
      if (above && !alerted) {
        alerted = true;
        alerts++;
        await this.alerts.alert({
          alertId: randomUUID(),
          userId: r.userId,
          risk: r.risk,
          threshold: this.opts.threshold,
          band: 'high',
          factors: r.factors,
          modelVersion: model.version,
          scoredAt: r.scoredAt,
        });
      } else if (r.risk < this.opts.threshold - this.opts.hysteresis) alerted = false;
      records.push({ ...r, alerted });
    }
    await this.scores.upsertMany(records);
    if (invalid > 0 && this.model === model && this.modelProblem === undefined) {
      this.modelProblem = `churn model ${model.version} produced ${invalid} risk(s) that are not probabilities (NaN or out of [0, 1])`;
      this.opts.onModelProblem?.(this.modelProblem);
    }
    return { scored: records.length, alerts, invalid };
  }

  /**
   * Scores of the known users among `userIds` by `model`, from their current features (nothing stored);
   * predictions that are not probabilities are left out and counted in `invalid`.
   */
  private async scoreWith(
    model: ChurnModel,
    userIds: readonly string[],
    opts: { deadline?: number },
  ): Promise<{ scored: Array<Omit<ScoreRecord, 'alerted'>>; invalid: number }> {
    const { users, asOf } = await this.activity.users(userIds, opts);
    const known = users.filter((u) => u.known && u.lastSeen > 0);
    const cutoff = Math.max(asOf, ...known.map((u) => u.lastSeen));
    const rows = known.map((u) => churnFeatures(summaryOf(u), cutoff));
    const preds = await model.predict(rows);
    const scored: Array<Omit<ScoreRecord, 'alerted'>> = [];
    let invalid = 0;
    for (const [k, u] of known.entries()) {
      const p = preds[k];
      if (!usable(p)) {
        invalid++;
        continue;
      }
      const row = rows[k] as Float32Array;
      const factors = CHURN_FEATURES.map((f, j) => ({
        ...readable(f, row[j] as number),
        contribution: p.contributions[j] as number,
      }))
        .sort((a, b) => b.contribution - a.contribution)
        .slice(0, 3);
      scored.push({
        userId: u.userId,
        risk: p.risk,
        band: bandOf(p.risk, this.opts.threshold),
        factors,
        scoredAt: cutoff,
        modelVersion: model.version,
      });
    }
    return { scored, invalid };
  }

  /**
   * Scores by a requested version other than the active one (an experiment arm's pin): every user afresh
   * from their current features, nothing stored and no alert sent (the stored scores are the active
   * model's); users the feature service does not know are answered unknown.
   */
  private async predictWithVersion(
    version: string,
    userIds: readonly string[],
    opts: { deadline?: number },
  ): Promise<Array<ScoreRecord & { known: boolean }>> {
    if (version.length > 128 || !/^[A-Za-z0-9._:+-]+$/.test(version))
      throw new InvalidArgumentError('model_version', '1..128 characters of [A-Za-z0-9._:+-]');
    if (!this.opts.versions)
      throw new FailedPreconditionError('this service scores with the active churn version only');
    const model = await this.opts.versions.get(version);
    let got: Awaited<ReturnType<ChurnService['scoreWith']>>;
    try {
      got = await this.scoreWith(model, userIds, opts);
    } catch (err) {
      if (err instanceof ActivityUnavailableError)
        throw new UnavailableError(`the feature service is unavailable to score with churn ${version} now; retry`, {
          cause: err,
        });
      throw err;
    }
    if (got.invalid > 0)
      throw new FailedPreconditionError(
        `churn model ${version} produced ${got.invalid} risk(s) that are not probabilities`,
      );
    const byUser = new Map(got.scored.map((r) => [r.userId, r]));
    return userIds.map((id) => {
      const r = byUser.get(id);
      return r ? { ...r, alerted: false, known: true } : { ...unknownUser(id, model.version), known: false };
    });
  }

  /**
   * Stored scores; users known to the feature service but never scored are scored now. Stored scores
   * need nothing but the store; when a user without one cannot be scored (the feature service is
   * down, the model is unusable) the answer is UnavailableError, never a made-up score.
   */
  async predict(
    userIds: readonly string[],
    opts: { deadline?: number; version?: string } = {},
  ): Promise<Array<ScoreRecord & { known: boolean }>> {
    if (userIds.length === 0) throw new InvalidArgumentError('user_ids', 'at least one id required');
    if (userIds.length > 1000) throw new InvalidArgumentError('user_ids', 'more than 1000 ids');
    userIds.forEach((id, i) => {
      if (!id) throw new InvalidArgumentError(`user_ids[${i}]`, 'must not be empty');
    });
    if (opts.version && opts.version !== this.model?.version)
      return this.predictWithVersion(opts.version, userIds, opts);
    let stored = await this.scores.getMany(userIds);
    const missing = userIds.filter((id) => !stored.has(id));
    if (missing.length > 0 && this.model) {
      let invalid = 0;
      try {
        ({ invalid } = await this.scoreUsers(missing, opts));
      } catch (err) {
        if (err instanceof ActivityUnavailableError)
          throw new UnavailableError(
            `${missing.length} of the users have no stored score and the feature service is unavailable to score them now; retry`,
            { cause: err },
          );
        throw err;
      }
      if (invalid > 0) throw new UnavailableError(`${this.modelProblem ?? 'the churn model is unusable'}; retry later`);
      stored = await this.scores.getMany(userIds);
    }
    return userIds.map((id) => {
      const r = stored.get(id);
      return r ? { ...r, known: true } : { ...unknownUser(id, this.model?.version ?? ''), known: false };
    });
  }

  async listAtRisk(
    minRiskIn: number,
    pageSizeIn: number,
    pageToken: string,
  ): Promise<{ scores: ScoreRecord[]; nextPageToken: string }> {
    // Written so that NaN fails too.
    if (!(minRiskIn >= 0 && minRiskIn <= 1)) throw new InvalidArgumentError('min_risk', 'must be between 0 and 1');
    if (!(pageSizeIn >= 0 && pageSizeIn <= 1000))
      throw new InvalidArgumentError('page_size', 'must be between 1 and 1000');
    const minRisk = minRiskIn || this.opts.threshold;
    const pageSize = pageSizeIn || 100;
    let after: { risk: number; userId: string } | undefined;
    if (pageToken) {
      try {
        after = JSON.parse(Buffer.from(pageToken, 'base64url').toString('utf8')) as { risk: number; userId: string };
        if (!Number.isFinite(after.risk) || typeof after.userId !== 'string') throw new Error('shape');
      } catch {
        throw new InvalidArgumentError('page_token', 'not a token returned by ListAtRisk');
      }
    }
    const rows = await this.scores.listAtRisk(minRisk, pageSize + 1, after);
    const page = rows.slice(0, pageSize);
    const last = page[page.length - 1];
    const nextPageToken =
      rows.length > pageSize && last
        ? Buffer.from(JSON.stringify({ risk: last.risk, userId: last.userId })).toString('base64url')
        : '';
    return { scores: page, nextPageToken };
  }

  /** Rescores every user the feature service knows, a page at a time (silence raises risk without any event). */
  async rescoreAll(pageSize: number): Promise<{ scored: number; alerts: number; invalid: number }> {
    const total = { scored: 0, alerts: 0, invalid: 0 };
    let token = '';
    do {
      const page = await this.activity.listUsers(pageSize, token);
      const r = await this.scoreUsers(page.userIds);
      total.scored += r.scored;
      total.alerts += r.alerts;
      total.invalid += r.invalid;
      token = page.nextPageToken;
    } while (token);
    return total;
  }
}

export const DAY_MS = DAY;

/** The answer for a user the feature service does not know (never a made-up risk). */
function unknownUser(userId: string, modelVersion: string): ScoreRecord {
  return { userId, risk: 0, band: 'low', factors: [], scoredAt: 0, modelVersion, alerted: false };
}
