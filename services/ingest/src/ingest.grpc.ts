import {
  encodeItem,
  clickstreamV1,
  ContentTypes,
  DEFAULT_TENANT,
  Headers,
  ingestV1,
  InvalidArgumentError,
  privacyV1,
  Subjects,
  UnavailableError,
} from '@aisle/contracts';
import {
  admitTenant,
  authorizeTenant,
  bindUnaryService,
  type Bus,
  type CallContext,
  type GrpcInstrumentation,
  type UnaryHandlers,
} from '@aisle/runtime';
import type { grpc } from '@aisle/runtime';
import { randomUUID } from 'node:crypto';
import { eventToProto } from './ingest.nats';
import type { IngestService } from './ingest.service';
import type { ProtoFields, Validated } from './validation';

type Definition = typeof ingestV1.IngestServiceService;

function rejections<T>(results: ReadonlyArray<Validated<T>>, idOf: (i: number) => string): ingestV1.Rejection[] {
  const out: ingestV1.Rejection[] = [];
  results.forEach((r, index) => {
    if (!r.ok) out.push({ index, eventId: idOf(index), reason: r.reason });
  });
  return out;
}

/** Time kept back from the caller's deadline to send UNAVAILABLE before the caller gives up. */
const DEADLINE_MARGIN_MS = 50;

/**
 * gRPC ingestion: validates synchronously (per-element rejections in the answer) and publishes valid
 * input into the same JetStream streams NATS producers use; `accepted` counts JetStream-acknowledged
 * publishes, so an accepted event is durable. With NATS down it answers UNAVAILABLE at once, and it
 * never waits for acknowledgements past the caller's deadline: retrying is safe (Nats-Msg-Id).
 */
export function ingestGrpcService(
  service: IngestService,
  bus: Pick<Bus, 'publisher' | 'connected'>,
  instr: GrpcInstrumentation,
  limits: { maxEvents: number },
): { definition: Definition; implementation: grpc.UntypedServiceImplementation } {
  const { publisher } = bus;
  const checkConnected = (): void => {
    if (!bus.connected()) throw new UnavailableError('event stream unavailable (NATS connection lost); retry the call');
  };
  const publishAll = async (publishes: Array<Promise<unknown>>, ctx: CallContext): Promise<void> => {
    let timer: NodeJS.Timeout | undefined;
    const deadline = ctx.deadline;
    const late =
      deadline === undefined
        ? undefined
        : new Promise<never>((_, reject) => {
            timer = setTimeout(
              () => reject(new Error('no acknowledgement before the deadline')),
              Math.max(0, deadline - Date.now() - DEADLINE_MARGIN_MS),
            );
          });
    try {
      await (late ? Promise.race([Promise.all(publishes), late]) : Promise.all(publishes));
    } catch (err) {
      throw new UnavailableError('event stream unavailable; retry the call', { cause: err });
    } finally {
      clearTimeout(timer);
    }
  };
  // A call may carry several tenants' input: each tenant's share counts against its own rate limit.
  // The caller (when the service knows its callers) must be allowed every tenant the call names.
  const admitTenants = (results: ReadonlyArray<Validated<{ tenant: string }>>, ctx: CallContext): void => {
    const counts = new Map<string, number>();
    for (const r of results) if (r.ok) counts.set(r.value.tenant, (counts.get(r.value.tenant) ?? 0) + 1);
    for (const [tenant, n] of counts) {
      if (ctx.caller) authorizeTenant(ctx.caller, tenant);
      admitTenant(instr, tenant, n);
    }
  };
  const handlers: UnaryHandlers<Definition> = {
    track: async (req, ctx) => {
      if (req.events.length > limits.maxEvents)
        throw new InvalidArgumentError('events', `more than ${limits.maxEvents} in one call`);
      checkConnected();
      const results = service.validateEventMessages(req.events as unknown as ProtoFields[]);
      admitTenants(results, ctx);
      const publishes: Array<Promise<unknown>> = [];
      for (const r of results) {
        if (!r.ok) continue;
        const e = r.value;
        publishes.push(
          publisher.publish(
            Subjects.clickstream(e.type, e.tenant),
            clickstreamV1.Event.encode(eventToProto(e)).finish(),
            {
              msgId: `${e.tenant}:${e.eventId}`,
              headers: { [Headers.contentType]: ContentTypes.protobuf },
            },
          ),
        );
      }
      await publishAll(publishes, ctx);
      return { accepted: publishes.length, rejected: rejections(results, (i) => req.events[i]?.eventId ?? '') };
    },
    upsertItems: async (req, ctx) => {
      if (req.items.length > limits.maxEvents)
        throw new InvalidArgumentError('items', `more than ${limits.maxEvents} in one call`);
      checkConnected();
      const results = service.validateItemMessages(req.items as unknown as ProtoFields[]);
      admitTenants(results, ctx);
      const publishes: Array<Promise<unknown>> = [];
      for (const r of results) {
        if (!r.ok) continue;
        publishes.push(
          publisher.publish(Subjects.catalog(r.value.tenant), encodeItem(r.value), {
            msgId: `item:${r.value.tenant}:${r.value.itemId}:${r.value.updatedAt}`,
            headers: { [Headers.contentType]: ContentTypes.protobuf },
          }),
        );
      }
      await publishAll(publishes, ctx);
      return { accepted: publishes.length, rejected: rejections(results, (i) => req.items[i]?.itemId ?? '') };
    },
    forgetUser: async (req, ctx) => {
      if (!req.userId) throw new InvalidArgumentError('user_id', 'required');
      if (req.userId.length > 256) throw new InvalidArgumentError('user_id', 'longer than 256 characters');
      checkConnected();
      // bindUnaryService has checked the tenant (declared, and the caller's).
      const tenant = req.tenant || DEFAULT_TENANT;
      const requestId = randomUUID();
      const request = privacyV1.ForgetUser.encode({
        tenant,
        userId: req.userId,
        requestId,
        requestedAt: new Date(),
      }).finish();
      await publishAll(
        [
          publisher.publish(Subjects.privacyForget(tenant), request, {
            msgId: `forget:${requestId}`,
            headers: { [Headers.contentType]: ContentTypes.protobuf },
            noTrace: true,
          }),
        ],
        ctx,
      );
      return { requestId };
    },
  };
  return {
    definition: ingestV1.IngestServiceService,
    implementation: bindUnaryService(ingestV1.IngestServiceService, handlers, instr),
  };
}
