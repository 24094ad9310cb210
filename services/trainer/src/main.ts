import { Streams } from '@aisle/contracts';
import { checkCommonConfig, connectBus, createServiceBase, usesModel } from '@aisle/runtime';
import { existsSync } from 'node:fs';
import { openStore } from '@aisle/store';
import { loadTrainerConfig } from './config';
import { runTrainingJob } from './train.job';

/** The trainer job (a Kubernetes CronJob): train, compare with the active models, publish, exit. */
async function main(): Promise<number> {
  let config;
  try {
    config = loadTrainerConfig();
    checkCommonConfig(config, existsSync);
  } catch (err) {
    process.stderr.write(`trainer: ${err instanceof Error ? err.message : String(err)}\n`);
    return 2;
  }
  const base = await createServiceBase('trainer', config);
  try {
    const store = await openStore(config.storeUrl, ['events', 'forgotten']);
    base.lifecycle.onShutdown('store', () => store.close());
    // The bus first: it reads the tenant bucket, so a tenant declared there (not in AISLE_TENANTS) is known.
    const bus = await connectBus(base, config, [Streams.MODELS, Streams.ITEMS]);
    // Each tenant's models are trained on that tenant's events and catalog only, one tenant after another.
    const tenants = config.tenant ? [base.tenants.require(config.tenant)] : base.tenants.list();
    for (const tenant of tenants) {
      // Only the model kinds the tenant uses (its settings in the bucket; default all of AISLE_TRAINER_MODELS).
      const models = config.models.filter((kind) => usesModel(base.tenants.settings(tenant), kind));
      const report = await runTrainingJob(base, { ...config, tenant, models }, store, bus);
      base.logger.info('training job done', {
        tenant,
        trained: report.trained,
        published: report.decisions.filter((d) => d.published).map((d) => d.model),
      });
    }
    await base.lifecycle.shutdown('done');
    return 0;
  } catch (err) {
    base.logger.error('training job failed', { err });
    await base.lifecycle.shutdown('failed');
    return 1;
  }
}

void main().then((code) => process.exit(code));
