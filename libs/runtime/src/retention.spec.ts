import { commonConfig, readConfig } from './config';
import { createServiceBase, scheduleRetention } from './service';

test('retention runs after start and then periodically with cutoff = now - retention, until shutdown', async () => {
  const base = await createServiceBase('test', readConfig(commonConfig, { AISLE_METRICS_PORT: '-1' }), {
    handleSignals: false,
    logSink: () => undefined,
  });
  const cutoffs: number[] = [];
  const retentionMs = 86_400_000;
  scheduleRetention(base, {
    what: 'events',
    retentionMs,
    everyMs: 100,
    prune: async (cutoff) => {
      cutoffs.push(cutoff);
      return { deleted: 2 };
    },
  });
  scheduleRetention(base, { what: 'off', retentionMs: 0, prune: async () => ({ deleted: 1 }) });
  await new Promise((r) => setTimeout(r, 1_350));
  await base.lifecycle.shutdown('test');
  const n = cutoffs.length;
  expect(n).toBeGreaterThanOrEqual(3);
  for (const c of cutoffs) expect(Math.abs(Date.now() - retentionMs - c)).toBeLessThan(5_000);
  await new Promise((r) => setTimeout(r, 250));
  expect(cutoffs).toHaveLength(n);
  const metric = await base.registry.getSingleMetricAsString('aisle_retention_deleted_total');
  expect(metric).toContain(`aisle_retention_deleted_total{what="events",service="test"} ${2 * n}`);
  expect(metric).not.toContain('what="off"');
});

test('a pass that stops at its bound is followed by another within a second, until nothing is left', async () => {
  const base = await createServiceBase('test', readConfig(commonConfig, { AISLE_METRICS_PORT: '-1' }), {
    handleSignals: false,
    logSink: () => undefined,
  });
  let left = 5;
  const passes: number[] = [];
  scheduleRetention(base, {
    what: 'index',
    retentionMs: 1_000,
    everyMs: 3_600_000,
    prune: async () => {
      const deleted = Math.min(2, left);
      left -= deleted;
      passes.push(deleted);
      return { deleted, more: left > 0 };
    },
  });
  await new Promise((r) => setTimeout(r, 3_600));
  await base.lifecycle.shutdown('test');
  expect(passes).toEqual([2, 2, 1]);
});
