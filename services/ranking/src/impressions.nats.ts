import { ContentTypes, Headers, rankingV1, Subjects } from '@aisle/contracts';
import type { ImpressionSink, ServedEvent, Surface } from '@aisle/ranking-core';
import type { AsyncJetStreamPublisher, Logger } from '@aisle/runtime';

const SURFACES: Record<Surface, rankingV1.Surface> = {
  recommend: rankingV1.Surface.SURFACE_RECOMMEND,
  search: rankingV1.Surface.SURFACE_SEARCH,
  rank: rankingV1.Surface.SURFACE_RANK,
  similar_items: rankingV1.Surface.SURFACE_SIMILAR_ITEMS,
};

export function encodeServed(e: ServedEvent): Uint8Array {
  return rankingV1.Served.encode({ ...e, surface: SURFACES[e.surface], servedAt: new Date(e.servedAt) }).finish();
}

/** Publishes each impression on `aisle.ranking.v1.served` (de-duplicated on the request id). */
export function impressionPublisher(publisher: AsyncJetStreamPublisher, logger: Logger): ImpressionSink {
  return {
    served(e) {
      publisher
        .publish(Subjects.rankingServed, encodeServed(e), {
          msgId: e.requestId,
          headers: { [Headers.contentType]: ContentTypes.protobuf },
        })
        .catch((err: unknown) => logger.warn('served event not published', { err }));
    },
  };
}
