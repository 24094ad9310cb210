import { DEFAULT_TENANT, featureV1 } from '@aisle/contracts';
import { bindUnaryService, type grpc, type GrpcInstrumentation, type UnaryHandlers } from '@aisle/runtime';
import type { FeatureService } from './feature.service';
import type { UserFeaturesView } from './features';

type Definition = typeof featureV1.FeatureServiceService;

const date = (ms: number | undefined): Date | undefined => (ms === undefined ? undefined : new Date(ms));

function userFeatures(v: UserFeaturesView): featureV1.UserFeatures {
  return {
    userId: v.userId,
    known: v.known,
    recent: v.recent.map((r) => ({ itemId: r.itemId, type: r.type, occurredAt: new Date(r.occurredAt) })),
    counts: {
      view: v.counts.view,
      click: v.counts.click,
      addToCart: v.counts.add_to_cart,
      removeFromCart: v.counts.remove_from_cart,
      purchase: v.counts.purchase,
      search: v.counts.search,
    },
    firstSeenAt: date(v.firstSeenAt),
    lastSeenAt: date(v.lastSeenAt),
    sessions: v.sessions,
    purchases: v.purchases,
    unitsPurchased: v.unitsPurchased,
    spend: v.spend,
    lastPurchaseAt: date(v.lastPurchaseAt),
    categoryAffinity: v.categoryAffinity,
    priceBand: v.priceBand,
    recentQueries: v.recentQueries,
  };
}

export function featureGrpcService(
  service: FeatureService,
  instr: GrpcInstrumentation,
): { definition: Definition; implementation: grpc.UntypedServiceImplementation } {
  const handlers: UnaryHandlers<Definition> = {
    getUserFeatures: async (req) => {
      const { users: views, asOf } = await service.getUserFeatures(
        req.tenant || DEFAULT_TENANT,
        req.userIds,
        req.recentLimit,
      );
      return { asOf: new Date(asOf), users: views.map(userFeatures) };
    },
    getUserContext: async (req) => {
      const { user, coVisits, asOf } = await service.getUserContext(req.tenant || DEFAULT_TENANT, req.userId, {
        recentLimit: req.recentLimit,
        coVisitItems: req.coVisitItems,
        coVisitLimit: req.coVisitLimit,
      });
      return { user: userFeatures(user), coVisits, asOf: new Date(asOf) };
    },
    listItemStats: async (req) => {
      const page = await service.listItemStats(req.tenant || DEFAULT_TENANT, req.pageSize, req.pageToken);
      return { items: page.items, nextPageToken: page.nextPageToken, asOf: new Date(page.asOf) };
    },
    getItemFeatures: async (req) => {
      const { items: views, asOf } = await service.getItemFeatures(
        req.tenant || DEFAULT_TENANT,
        req.itemIds,
        req.coVisitLimit,
      );
      return { items: views.map((v) => ({ ...v, lastEventAt: date(v.lastEventAt) })), asOf: new Date(asOf) };
    },
    listUsers: async (req) => service.listUsers(req.tenant || DEFAULT_TENANT, req.pageSize, req.pageToken),
    listPopularItems: async (req) => {
      const { items, asOf } = await service.listPopular(req.tenant || DEFAULT_TENANT, req.category, req.limit);
      return { items, asOf: new Date(asOf) };
    },
  };
  return {
    definition: featureV1.FeatureServiceService,
    implementation: bindUnaryService(featureV1.FeatureServiceService, handlers, instr),
  };
}
