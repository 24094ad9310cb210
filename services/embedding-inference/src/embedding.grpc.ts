import { DEFAULT_TENANT, embeddingV1, InvalidArgumentError } from '@aisle/contracts';
import { bindUnaryService, type grpc, type GrpcInstrumentation, type UnaryHandlers } from '@aisle/runtime';
import type { EmbeddingService } from './embedding.service';

type Definition = typeof embeddingV1.EmbeddingServiceService;

const vectors = (vs: Float32Array[]) => vs.map((v) => ({ values: Array.from(v) }));

/** EmbeddingService over gRPC: each request served by its tenant's models (undeclared: NOT_FOUND before this). */
export function embeddingGrpcService(
  serviceOf: (tenant: string) => Promise<EmbeddingService>,
  instr: GrpcInstrumentation,
): { definition: Definition; implementation: grpc.UntypedServiceImplementation } {
  const handlers: UnaryHandlers<Definition> = {
    encodeSequences: async (req) => {
      const service = await serviceOf(req.tenant || DEFAULT_TENANT);
      const r = await service.encodeSequences(
        req.sequences.map((s) => s.itemIds),
        req.modelVersion,
      );
      return { embeddings: vectors(r.vectors), modelVersion: r.version };
    },
    encodeTexts: async (req) => {
      const service = await serviceOf(req.tenant || DEFAULT_TENANT);
      const tower = req.tower === embeddingV1.TextTower.TEXT_TOWER_ITEM ? 'item' : 'query';
      const r = await service.encodeTexts(req.texts, tower, req.modelVersion);
      return { embeddings: vectors(r.vectors), modelVersion: r.version };
    },
    retrieve: async (req) => {
      const service = await serviceOf(req.tenant || DEFAULT_TENANT);
      let r;
      if (req.sequence)
        r = await service.retrieveForSequence(req.sequence.itemIds, req.k, req.excludeItemIds, req.modelVersion);
      else if (req.text !== undefined)
        r = await service.retrieveForText(req.text, req.k, req.excludeItemIds, req.modelVersion);
      else if (req.vector) {
        if (req.index === embeddingV1.RetrievalIndex.RETRIEVAL_INDEX_UNSPECIFIED)
          throw new InvalidArgumentError('index', 'required with a vector query (SEQUENCE or TEXT)');
        const index = req.index === embeddingV1.RetrievalIndex.RETRIEVAL_INDEX_TEXT ? 'text_encoder' : 'sasrec';
        r = await service.retrieveForVector(
          Float32Array.from(req.vector.values),
          req.k,
          req.excludeItemIds,
          index,
          req.modelVersion,
        );
      } else throw new InvalidArgumentError('query', 'one of sequence, text or vector is required');
      return { items: r.neighbors, modelVersion: r.version };
    },
  };
  return {
    definition: embeddingV1.EmbeddingServiceService,
    implementation: bindUnaryService(embeddingV1.EmbeddingServiceService, handlers, instr),
  };
}
