import { embeddingV1 } from '@aisle/contracts';
import { createGrpcClient, type grpc, type GrpcClient } from '@aisle/runtime';
import type { SequenceRetrievalPort, TextRetrievalPort } from '@aisle/ranking-core';

export type EmbeddingClient = SequenceRetrievalPort & TextRetrievalPort;
export type EmbeddingGrpcClient = GrpcClient<typeof embeddingV1.EmbeddingServiceService>;

/** One channel to embedding-inference, shared by every tenant's ports. */
export function embeddingGrpcClient(address: string, credentials?: grpc.ChannelCredentials): EmbeddingGrpcClient {
  return createGrpcClient(embeddingV1.EmbeddingServiceService, address, {
    channelOptions: { 'grpc.keepalive_time_ms': 30_000 },
    ...(credentials ? { credentials } : {}),
  });
}

/** One tenant's retrieval ports over embedding-inference's gRPC API. */
export function embeddingClient(tenant: string, client: EmbeddingGrpcClient): EmbeddingClient {
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
        },
        { deadline: budget.deadline, signal: budget.signal },
      );
      return { items: r.items, version: r.modelVersion };
    },
    async byText(text, k, exclude, budget) {
      const r = await client.retrieve(
        { tenant, text, k, excludeItemIds: [...exclude], index: embeddingV1.RetrievalIndex.RETRIEVAL_INDEX_TEXT },
        { deadline: budget.deadline, signal: budget.signal },
      );
      return { items: r.items, version: r.modelVersion };
    },
  };
}
