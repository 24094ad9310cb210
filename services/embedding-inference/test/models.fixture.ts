/** Small sequence models for tests that need embedding-inference serving a real (tiny) SASRec version. */
import { exportSasrec, Sasrec, type SequenceDataset } from '@aisle/ml';
import type { AsyncJetStreamPublisher, ModelRegistry } from '@aisle/runtime';

/** Trains a one-epoch, 16-dimensional SASRec on `sequences` and publishes it as `version` (it becomes active). */
export async function publishTinySasrec(
  registry: ModelRegistry,
  publisher: AsyncJetStreamPublisher,
  sequences: SequenceDataset,
  version: string,
  seed: number,
): Promise<void> {
  const sasrec = new Sasrec(sequences.itemIds.length - 1, {
    dim: 16,
    layers: 1,
    heads: 1,
    ffn: 16,
    maxLen: 20,
    epochs: 1,
    seed,
  });
  try {
    await sasrec.fit(sequences);
    await registry.publish(publisher, {
      tenant: 'default',
      name: 'sasrec',
      version,
      onnx: exportSasrec(sasrec),
      sidecar: { itemIds: sequences.itemIds, maxLen: 20, dim: 16 },
      meta: {},
    });
  } finally {
    sasrec.dispose();
  }
}
