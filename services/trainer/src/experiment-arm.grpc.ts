import { experimentV1, rankingV1 } from '@aisle/contracts';
import { createGrpcClient, outgoingCredentials } from '@aisle/runtime';
import type { TrainerConfig } from './config';

/**
 * Starts an interleaving experiment on Recommend between the active ranker and a stored candidate version:
 * the candidate goes online in an arm instead of replacing the active version. ExperimentService.Promote
 * makes it active after a win.
 */
export async function enterExperiment(
  config: TrainerConfig,
  tenant: string,
  id: string,
  version: string,
): Promise<experimentV1.Experiment | undefined> {
  const client = createGrpcClient(experimentV1.ExperimentServiceService, config.experimentAddr, {
    deadlineMs: 15_000,
    credentials: outgoingCredentials(config),
  });
  try {
    const { experiment } = await client.create({
      experiment: experimentV1.Experiment.fromPartial({
        tenant,
        id,
        description: `ranker candidate ${version} against the active ranker`,
        surface: rankingV1.Surface.SURFACE_RECOMMEND,
        design: experimentV1.Design.DESIGN_INTERLEAVING,
        arms: [{ name: 'active' }, { name: 'candidate', models: { ranker: version } }],
      }),
    });
    return experiment;
  } finally {
    client.close();
  }
}
