import { embeddingV1 } from '@aisle/contracts';
import { createGrpcClient, type grpc, type GrpcClient } from '@aisle/runtime';
import type { SequenceRetrievalPort, TextRetrievalPort } from '@aisle/ranking-core';
import { fromPinned } from './arm-ports';

export type EmbeddingClient = SequenceRetrievalPort & TextRetrievalPort;
export type EmbeddingGrpcClient = GrpcClient<typeof embeddingV1.EmbeddingServiceService>;

/** One channel to embedding-inference, shared by every tenant's ports. */
export function embeddingGrpcClient(address: string, credentials?: grpc.ChannelCredentials): EmbeddingGrpcClient {
  return createGrpcClient(embeddingV1.EmbeddingServiceService, address, {
    channelOptions: { 'grpc.keepalive_time_ms': 30_000 },
    ...(credentials ? { credentials } : {}),
  });
}

/**
 * One tenant's retrieval ports over embedding-inference's gRPC API: with `pins` (an experiment arm's
 * versions) every call names that version of its kind; otherwise the active version answers.
 */
export function embeddingClient(
  tenant: string,
  client: EmbeddingGrpcClient,
  pins: { sasrec?: string | undefined; text_encoder?: string | undefined } = {},
): EmbeddingClient {
  return {
    dependency: 'embedding',
    async bySequence(items, k, exclude, budget) {
      const r = await client.retrieve(
        {
          tenant,
          sequence: { itemIds: [...items] },
          k,
          excludeItemIds: [...exclude],
          index: embeddingV1.RetrievalIndex.RETRIEVAL_INDEX_SEQUENCE,
          modelVersion: pins.sasrec ?? '',
        },
        { deadline: budget.deadline, signal: budget.signal },
      );
      return { items: r.items, version: fromPinned('sasrec', pins.sasrec, r.modelVersion) };
    },
    async byText(text, k, exclude, budget) {
      const r = await client.retrieve(
        {
          tenant,
          text,
          k,
          excludeItemIds: [...exclude],
          index: embeddingV1.RetrievalIndex.RETRIEVAL_INDEX_TEXT,
          modelVersion: pins.text_encoder ?? '',
        },
        { deadline: budget.deadline, signal: budget.signal },
      );
      return { items: r.items, version: fromPinned('text_encoder', pins.text_encoder, r.modelVersion) };
    },
  };
}
