import { ContentTypes, DEFAULT_TENANT, Headers, modelsV1, Subjects } from '@aisle/contracts';
import { initBackend } from '@aisle/ml';
import {
  ExperimentBucket,
  followCatalog,
  ForgottenUsers,
  openModelRegistry,
  type Bus,
  type ServiceBase,
} from '@aisle/runtime';
import type { StoreOf } from '@aisle/store';
import type { TrainerConfig } from './config';
import { readTrainingEvents } from './events.store';
import { enterExperiment } from './experiment-arm.grpc';
import {
  baselineOnHeldOut,
  heldOutSlice,
  scoreOnHeldOut,
  trainCandidates,
  type ModelName,
  type ShopItem,
} from './pipeline';
import { pruneVersions } from './prune.nats';
import { qualityGate } from './quality-gate';

export interface JobReport {
  trained: boolean;
  decisions: Array<{
    model: ModelName;
    metric: string | undefined;
    candidate: number | undefined;
    cases: number | undefined;
    active: number | undefined;
    baseline: number | undefined;
    published: boolean;
    version: string | undefined;
    reason: string;
    /** The experiment the candidate entered instead of being published. */
    experiment?: string;
  }>;
}

/**
 * One trainer run: read the tenant's recent events (a bounded window: `readTrainingEvents`) and its
 * catalog (stream ITEMS), train every model on all but the latest time slice, score candidate and active
 * versions on that slice, and publish each candidate that passes the quality gate. A refused candidate
 * (or a model that could not be trained) is logged with the reason and announced on
 * `aisle.models.v1.rejected`; the active version stays.
 */
export async function runTrainingJob(
  base: ServiceBase,
  config: TrainerConfig,
  store: StoreOf<'events' | 'forgotten'>,
  bus: Bus,
): Promise<JobReport> {
  const log = base.logger;
  const tenant = config.tenant || DEFAULT_TENANT;
  const { backend, detail } = await initBackend({ log: (m) => log.info(m) });
  log.info('training backend', { backend, detail });
  const forgottenUsers = ForgottenUsers.open(config, store.forgotten, log);
  const { events, skipped, forgotten } = await readTrainingEvents(
    store,
    tenant,
    { days: config.windowDays, maxEvents: config.maxEvents },
    await forgottenUsers.forgottenIn(tenant),
  );
  if (skipped > 0) log.info('older events left out of training', { skipped, max_events: config.maxEvents });
  if (forgotten > 0) log.info("forgotten users' events left out of training", { events: forgotten });
  // The catalog ingest owns, read once from the stream it publishes (the trainer reads no items table).
  const items: ShopItem[] = [];
  await followCatalog(bus.js, tenant, { logger: log, once: true, onItems: (batch) => void items.push(...batch) });
  log.info('training data', { tenant, events: events.length, items: items.length });
  if (events.length < config.minEvents) {
    log.warn('not enough events to train; nothing published', { events: events.length, min_events: config.minEvents });
    return { trained: false, decisions: [] };
  }
  const heldOut = heldOutSlice(events, items, config);
  log.info('held-out slice', {
    from: new Date(heldOut.sliceStart).toISOString(),
    next_item_cases: heldOut.nextItem.length,
    query_cases: heldOut.queries.length,
    churn_users: heldOut.churn.users.length,
    session_cases: heldOut.sessions.length,
  });
  const { candidates, untrained } = await trainCandidates(events, items, heldOut, {
    models: config.models as ModelName[],
    heldOutShare: config.heldOutShare,
    churnHorizonDays: config.churnHorizonDays,
    sasrec: { epochs: config.sasrecEpochs },
    text: {},
    rankerEpochs: 8,
    sessionBudgetMs: config.sessionBudgetMs,
    seed: config.seed,
    log: (m) => log.info(m),
  });

  const registry = await openModelRegistry(bus, config, log);
  const trainEvents = events.filter((e) => e.occurredAt < heldOut.sliceStart);
  const sasrec = candidates.find((c) => c.name === 'sasrec');
  // The search model is scored with the candidate text encoder's neighbours, for every version alike.
  const text = candidates.find((c) => c.name === 'text_encoder');
  const context = { sasrec, trainEvents, text, seed: config.seed };
  const version = new Date()
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  // A loop, not Math.min(...times): spreading 100k+ arguments overflows the stack.
  const firstEventAt = events.reduce((m, e) => Math.min(m, e.occurredAt), Number.POSITIVE_INFINITY);
  const dataRange = {
    from: new Date(firstEventAt),
    to: new Date(heldOut.sliceStart),
    events: trainEvents.length,
    source: `store:${tenant}`,
  };
  const report: JobReport = { trained: true, decisions: [] };
  // Read before pruning: versions that experiments pin are kept.
  let experiments: ExperimentBucket | undefined;
  const reject = async (model: ModelName, reason: string, metrics: Record<string, number>) => {
    log.warn('candidate rejected; the active version stays', { model, reason, ...metrics });
    await bus.publisher.publish(
      Subjects.modelsRejected,
      modelsV1.ModelRejected.encode({
        name: model,
        version,
        tenant,
        reason,
        metrics,
        dataRange,
        rejectedAt: new Date(),
      }).finish(),
      { msgId: `${tenant}:${model}:${version}:rejected`, headers: { [Headers.contentType]: ContentTypes.protobuf } },
    );
  };
  for (const u of untrained.filter((x) => config.models.includes(x.name))) {
    await reject(u.name, u.reason, {});
    report.decisions.push({
      model: u.name,
      metric: undefined,
      candidate: undefined,
      cases: undefined,
      active: undefined,
      baseline: undefined,
      published: false,
      version: undefined,
      reason: u.reason,
    });
  }
  for (const c of candidates.filter((x) => config.models.includes(x.name))) {
    const score = await scoreOnHeldOut(c.name, c, heldOut, context);
    let activeValue: number | undefined;
    try {
      const active = await registry.active(tenant, c.name);
      if (active) activeValue = (await scoreOnHeldOut(c.name, active, heldOut, context)).value;
    } catch (err) {
      log.warn('active model could not be scored; treating it as absent', { model: c.name, err });
    }
    // The simple baseline on the same slice and metric (co-visitation for the sequence model, the ranker
    // and the session model): a candidate must beat it as well as the active version.
    const baseline = baselineOnHeldOut(c.name, heldOut, trainEvents);
    const metrics: Record<string, number> = {
      [`heldout_${score.metric}`]: score.value,
      heldout_cases: score.cases,
      ...(activeValue !== undefined ? { [`previous_${score.metric}`]: activeValue } : {}),
      ...(baseline ? { [`baseline_${score.metric}`]: baseline.value } : {}),
    };
    const artifact = {
      tenant,
      name: c.name,
      version,
      onnx: c.onnx,
      sidecar: c.sidecar,
      meta: { metrics, dataRange, signature: c.signature, curves: c.curves },
    };
    // An online experiment judges a ranker candidate instead of the offline comparison, once there is an
    // active ranker to compare it with; the gate's other bars (a finite metric, enough cases, the baseline)
    // still apply.
    const experiment = c.name === 'ranker' && activeValue !== undefined ? config.experiment : undefined;
    const decision = qualityGate(
      { metric: score.metric, candidate: score.value, cases: score.cases, active: activeValue, baseline },
      {
        minHeldOutCases: config.minHeldOutCases,
        tolerance: experiment ? Number.POSITIVE_INFINITY : config.tolerance,
        beatBaseline: config.beatBaseline,
      },
    );
    if (experiment && decision.publish) {
      const stored = await registry.storeVersion(artifact);
      await enterExperiment(config, tenant, experiment, stored.version);
      log.info('candidate entered an experiment', {
        model: c.name,
        metric: score.metric,
        candidate: score.value,
        cases: score.cases,
        active: activeValue,
        baseline: baseline?.value,
        experiment,
        version,
      });
      report.decisions.push({
        model: c.name,
        metric: score.metric,
        candidate: score.value,
        cases: score.cases,
        active: activeValue,
        baseline: baseline?.value,
        published: false,
        version,
        reason: `entered experiment '${experiment}'`,
        experiment,
      });
      continue;
    }
    let published: string | undefined;
    if (decision.publish) {
      published = (await registry.publish(bus.publisher, artifact)).version;
      log.info('model published', {
        model: c.name,
        metric: score.metric,
        candidate: score.value,
        cases: score.cases,
        active: activeValue,
        baseline: baseline?.value,
        version: published,
        reason: decision.reason,
      });
      experiments ??= await ExperimentBucket.open(bus.nc, { replicas: config.natsStreamReplicas });
      const pruned = await pruneVersions(registry, experiments, {
        tenant,
        model: c.name,
        keep: config.keepVersions,
        logger: log,
      });
      if (pruned.length > 0) log.info('old model versions deleted', { model: c.name, objects: pruned.length });
    } else {
      await reject(c.name, decision.reason, metrics);
    }
    report.decisions.push({
      model: c.name,
      metric: score.metric,
      candidate: score.value,
      cases: score.cases,
      active: activeValue,
      baseline: baseline?.value,
      published: decision.publish,
      version: published,
      reason: decision.reason,
    });
  }
  return report;
}
