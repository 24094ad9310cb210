/**
 * The console in a real browser (Debian's Chromium driven by playwright-core) against the whole stack,
 * every service a separate process, two tenants declared: one stack for every page. Each page is opened,
 * what it shows is compared with the services' own gRPC answers, axe-core checks accessibility, and
 * screenshots at 1280 px and phone width are saved under .aisle/artifacts/console/.
 */
import { churnV1, experimentV1, featureV1, Headers, rankingV1, Streams, Subjects } from '@aisle/contracts';
import { generateShop } from '@aisle/datagen';
import { consoleTour, startLocalStack, type LocalStack } from '@aisle/local-stack';
import { AsyncJetStreamPublisher, createGrpcClient, ModelRegistry } from '@aisle/runtime';
import {
  eventually,
  launchBrowser,
  publishShop,
  repoRoot,
  runJobProcess,
  screenshotPages,
  tempSqliteUrl,
  VIEWPORTS,
  type Browser,
  type BrowserPage as Page,
} from '@aisle/testkit';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { connectTestBus, readStream } from '../support/bus';

jest.setTimeout(900_000);

// What the functions that run inside the page use of the DOM (declared here, not as a global lib, so
// that Node code elsewhere cannot use browser globals by mistake).
interface PageElement {
  tagName: string;
  className: string;
  textContent: string | null;
  getAttribute(name: string): string | null;
  getBoundingClientRect(): { right: number };
  closest(selector: string): PageElement | null;
}
declare const document: {
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): PageElement[] & { length: number };
  activeElement: { textContent: string | null } | null;
  documentElement: { scrollWidth: number };
};
declare const window: {
  axe: { run(context: unknown, options: unknown): Promise<{ violations: unknown[] }> };
};

const ARTIFACTS = join(repoRoot, '.aisle', 'artifacts', 'console');
const shop = generateShop({ seed: 15, users: 150, items: 120, days: 40 });
const shopper = shop.users[3]!.userId;
const bad = { event_id: 'console-bad-1', type: 'view', item_id: shop.items[0]!.itemId, occurred_at: '' };

let stack: LocalStack;
let storeFile: ReturnType<typeof tempSqliteUrl>;
let bus: Awaited<ReturnType<typeof connectTestBus>>;
let browser: Browser;
let page: Page;
let ranking: ReturnType<typeof createGrpcClient<typeof rankingV1.RankingServiceService>>;
let features: ReturnType<typeof createGrpcClient<typeof featureV1.FeatureServiceService>>;
let churn: ReturnType<typeof createGrpcClient<typeof churnV1.ChurnServiceService>>;
let experiments: ReturnType<typeof createGrpcClient<typeof experimentV1.ExperimentServiceService>>;
let query: string;

const url = (path: string) => new URL(path, stack.consoleUrl).toString();
const text = async (selector: string) => ((await page.textContent(selector)) ?? '').trim();

/** axe-core in the page: every WCAG 2 A/AA rule it checks must pass. */
async function expectAccessible(p: Page, what: string): Promise<void> {
  // Evaluated over the devtools protocol: the console's CSP rightly refuses inline scripts.
  await p.evaluate(readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8'));
  const result = await p.evaluate(async () => {
    const r = await window.axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
    });
    return (r.violations as Array<{ id: string; impact: string; nodes: Array<{ target: string[] }> }>).map(
      (v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`,
    );
  });
  expect([what, result]).toEqual([what, []]);
}

async function publishBad(payload: string): Promise<void> {
  await bus.js.publish(Subjects.clickstream('view'), new TextEncoder().encode(payload));
}

beforeAll(async () => {
  rmSync(ARTIFACTS, { recursive: true, force: true });
  storeFile = tempSqliteUrl();
  // Generous budgets: the pages are compared with direct calls, and a loaded test machine should not turn
  // either answer into a degraded one.
  stack = await startLocalStack({
    storeUrl: storeFile.url,
    // A second tenant: one deployment serves both, each with its own models.
    serviceEnv: () => ({ AISLE_TENANTS: 'default,shop-b' }),
    ranking: { AISLE_RANKING_DEADLINE: '5s', AISLE_RANKING_DEPENDENCY_TIMEOUT: '4s' },
    console: { AISLE_CONSOLE_SAMPLE_INTERVAL: '500ms', AISLE_CONSOLE_CALL_DEADLINE: '10s' },
  });
  bus = await connectTestBus(stack.nats.url);
  const s = stack.services;
  ranking = createGrpcClient(rankingV1.RankingServiceService, `127.0.0.1:${s.ranking.grpcPort}`, { deadlineMs: 5000 });
  features = createGrpcClient(featureV1.FeatureServiceService, `127.0.0.1:${s.feature.grpcPort}`, {
    deadlineMs: 5000,
  });
  churn = createGrpcClient(churnV1.ChurnServiceService, `127.0.0.1:${s.churn.grpcPort}`, { deadlineMs: 10_000 });
  experiments = createGrpcClient(experimentV1.ExperimentServiceService, `127.0.0.1:${s.experiment.grpcPort}`, {
    deadlineMs: 10_000,
  });
  browser = await launchBrowser();
  page = await browser.newPage(VIEWPORTS.desktop);

  await publishShop(bus.js, shop.items, shop.events);
  // Two producer bugs: an event without a user, and bytes that are not JSON at all.
  await publishBad(JSON.stringify({ ...bad, occurred_at: new Date(shop.end - 3_600_000).toISOString() }));
  await publishBad('not json at all');
  await eventually(
    async () => {
      const c = await bus.jsm.consumers.info(Streams.EVENTS.name, 'feature');
      const dlq = await bus.jsm.streams.info(Streams.DLQ.name);
      const events = await bus.jsm.streams.info(Streams.EVENTS.name);
      return (
        dlq.state.messages >= 2 &&
        events.state.messages >= shop.events.length &&
        (await bus.jsm.streams.info(Streams.ITEMS.name)).state.messages >= shop.items.length &&
        c.num_pending === 0 &&
        c.num_ack_pending === 0
      );
    },
    { what: 'events ingested and applied', timeoutMs: 300_000, intervalMs: 500 },
  );
  const trainer = await runJobProcess(
    'trainer',
    // Every model loaded for the pages to show, whether or not it beats co-visitation on this shop.
    { ...stack.env(), AISLE_TRAINER_SASREC_EPOCHS: '2', AISLE_TRAINER_BEAT_BASELINE: 'false' },
    { timeoutMs: 600_000 },
  );
  if (trainer.code !== 0) throw new Error(`trainer failed: ${trainer.stderr}`);
  await stack.modelsLoaded(120_000);
  // The most common last word of the catalog's titles (a product kind): a query with several lexical matches.
  const words = new Map<string, number>();
  for (const i of shop.items) {
    const w = (i.title.split(' ').pop() ?? '').toLowerCase();
    words.set(w, (words.get(w) ?? 0) + 1);
  }
  query = [...words].sort((a, b) => b[1] - a[1])[0]![0];
});

afterAll(async () => {
  await browser?.close();
  ranking?.close();
  features?.close();
  churn?.close();
  experiments?.close();
  await bus?.nc.close();
  await stack?.stop();
  storeFile?.dispose();
});

test('overview: live rates, every service healthy with its model versions, consumer lag', async () => {
  await page.goto(url('/'));
  await page.waitForSelector('[data-testid="live-state"][data-at]');
  const first = await page.getAttribute('[data-testid="live-state"]', 'data-at');
  // Live: a new snapshot arrives over the event stream, without a reload.
  await page.waitForFunction(
    (before) => document.querySelector('[data-testid="live-state"]')?.getAttribute('data-at') !== before,
    first,
    { timeout: 10_000 },
  );
  await eventually(async () => (await text('[data-testid="services-serving"] .card-value')) === '6 of 6', {
    what: 'all services serving on the overview',
    timeoutMs: 30_000,
  });
  const dlq = (await bus.jsm.streams.info(Streams.DLQ.name)).state.messages;
  expect(await text('[data-testid="dead-letters-total"] .card-value')).toBe(String(dlq));
  const rankerRow = await text('[data-testid="services-table"] tr[data-key="ranking"]');
  const rankerVersion = String(stack.services.ranking.logs.find((l) => l['msg'] === 'model active')?.['version']);
  expect(rankerRow).toContain(rankerVersion);
  const feature = await bus.jsm.consumers.info(Streams.EVENTS.name, 'feature');
  expect(await text('[data-testid="consumers-table"] tr[data-key="EVENTS/feature"] td:nth-child(3)')).toBe(
    String(feature.num_pending),
  );
  await expectAccessible(page, 'overview');
});

test('overview with several tenants: each tenant sees its own model versions', async () => {
  // shop-b gets its own churn model (another version of the same graph); no other model of its own.
  const registry = await ModelRegistry.open(bus.nc);
  const publisher = new AsyncJetStreamPublisher(bus.nc);
  const own = (await registry.active('default', 'churn'))!;
  const shopB = `${own.meta.version}-shop-b`;
  await registry.publish(publisher, {
    tenant: 'shop-b',
    name: 'churn',
    version: shopB,
    onnx: own.onnx,
    sidecar: own.sidecar,
    meta: { metrics: own.meta.metrics, curves: own.meta.curves, createdAt: new Date() },
  });
  publisher.close();
  // churn-prediction sets up a tenant on its first request, and then loads that tenant's model.
  await churn.predict({ tenant: 'shop-b', userIds: ['nobody'] }).catch(() => undefined);
  const churnRow = '[data-testid="services-table"] tr[data-key="churn"]';
  const rankingRow = '[data-testid="services-table"] tr[data-key="ranking"]';
  await page.goto(url('/?tenant=shop-b'));
  await eventually(
    async () => {
      await page.waitForSelector(`${churnRow} code`, { timeout: 5000 }).catch(() => undefined);
      return (await text(churnRow)).includes(shopB);
    },
    { what: "shop-b's churn version on shop-b's overview", timeoutMs: 60_000, intervalMs: 1000 },
  );
  expect(await text('[data-testid="services-table"] th[data-col="models"]')).toContain('Model versions of shop-b');
  // default's ranker and search model are not shop-b's.
  expect(await text(rankingRow)).toContain('none');
  await page.goto(url('/?tenant=default'));
  await page.waitForSelector(`${churnRow} code`);
  expect(await text(churnRow)).toContain(own.meta.version);
  expect(await text(churnRow)).not.toContain(shopB);
  expect(await text(rankingRow)).toContain('search_ranker');
});

test('shopper: features, churn risk and recommendations are what the services answer', async () => {
  await page.goto(url(`/shopper?user=${shopper}`));
  await page.waitForSelector('[data-testid="recommendations-table"] tbody tr[data-key]');
  const { users } = await features.getUserFeatures({ tenant: 'default', userIds: [shopper], recentLimit: 0 });
  const counts = users[0]!.counts!;
  expect(await text('[data-testid="count-view"] .card-value')).toBe(counts.view.toLocaleString('en-US'));
  expect(await text('[data-testid="count-purchase"] .card-value')).toBe(counts.purchase.toLocaleString('en-US'));
  const [score] = (await churn.predict({ tenant: 'default', userIds: [shopper] })).scores;
  expect(await text('[data-testid="churn-risk"] .card-value')).toBe(`${(score!.risk * 100).toFixed(1)} %`);
  // The list is the one ranking answered the console: its impression on aisle.ranking.v1.served, found by
  // the request id the page shows, has the same items in the same order with the same scores.
  const requestId = /request ([0-9a-f-]{36})/.exec(await text('[data-testid="recommendations-meta"]'))?.[1];
  const served = (await readStream(bus.jsm, Streams.RANKING.name))
    .map((m) => rankingV1.Served.decode(m.data))
    .find((x) => x.requestId === requestId);
  expect(served?.userId).toBe(shopper);
  const shown = await Promise.all(
    (await page.$$('[data-testid="recommendations-table"] tbody tr')).map(async (r) => [
      await r.getAttribute('data-key'),
      ((await (await r.$('td:nth-child(4)'))?.textContent()) ?? '').trim(),
    ]),
  );
  expect(shown).toEqual(served!.items.map((i) => [i.itemId, i.score.toFixed(3)]));
  // The explanation chart for the first item, with per-feature contributions from `explain`.
  expect(await page.getAttribute('[data-testid="contribution-chart"] canvas', 'aria-label')).toMatch(/[+-]\d/);
  const second = await text('[data-testid="recommendations-table"] tbody tr:nth-child(2) td:nth-child(2)');
  await page.getByRole('button', { name: `Explain ${second}` }).click();
  expect(await text('[data-testid="explain"] figcaption')).toContain(second);
  await expectAccessible(page, 'shopper');
});

test('search playground: BM25F, semantic, search-model and final scores side by side, as Search explains them', async () => {
  await page.goto(url(`/search?q=${encodeURIComponent(query)}`));
  await page.waitForSelector('[data-testid="search-table"] tbody tr[data-key]');
  const res = await ranking.search({
    tenant: 'default',
    query,
    userId: '',
    limit: 20,
    filters: undefined,
    explain: true,
  });
  const top = res.items[0]!;
  const row = `[data-testid="search-table"] tr[data-key="${top.itemId}"]`;
  expect(await text(`${row} td:nth-child(3)`)).toBe((top.features['lexical_score'] ?? 0).toFixed(3));
  expect(await text(`${row} td:nth-child(4)`)).toBe((top.features['text_score'] ?? 0).toFixed(3));
  // The search model's score is the sum of its parts (Search's explain); anonymous: no personalization.
  const searchScore = Object.entries(top.contributions)
    .filter(([k]) => k.startsWith('search.'))
    .reduce((a, [, v]) => a + v, 0);
  expect(await text(`${row} td:nth-child(5)`)).toBe(searchScore.toFixed(3));
  expect(await text(`${row} td:nth-child(6)`)).toBe((0).toFixed(3));
  expect(await text(`${row} td:nth-child(7)`)).toBe(top.score.toFixed(3));
  // The caption says what orders the results, as ranking's README does; the summary which model scored.
  expect(await text('[data-testid="search-how"]')).toMatch(/search model \(search_ranker.*\) scores/);
  const searchModel = /search:([^,]+)/.exec(res.modelVersion)?.[1];
  expect(await text('[data-testid="search-summary"]')).toContain(`search model ${searchModel}`);
  expect(res.degraded).toBe(false);
  expect(await text('[data-testid="search-summary"]')).not.toContain('degraded');
  // Sorting by a column header reorders the rows (and says so to assistive technology).
  await page.getByRole('button', { name: 'Semantic' }).click();
  expect(await page.getAttribute('th[data-col="semantic"]', 'aria-sort')).toBe('descending');
  await expectAccessible(page, 'search');
});

test('dead letters: browse by reason, inspect the bytes, replay a fixed one into the stream', async () => {
  await page.goto(url('/dead-letters'));
  await page.waitForSelector('[data-testid="letters-table"] tbody tr[data-key]');
  expect(await text('[data-testid="reasons-table"]')).toContain('user_id: required');
  expect(await text('[data-testid="reasons-table"]')).toContain('payload: invalid JSON');
  await page.getByRole('button', { name: 'user_id: required' }).click();
  await page.waitForFunction(
    () => document.querySelectorAll('[data-testid="letters-table"] tbody tr[data-key]').length === 1,
  );
  const seq = Number(await page.getAttribute('[data-testid="letters-table"] tbody tr[data-key]', 'data-key'));
  await page.getByRole('button', { name: `Inspect dead letter ${seq}` }).click();
  // The inspector first shows the newest letter on its own; wait for the one asked for.
  await page.waitForSelector(`#inspected:text("Dead letter #${seq}")`);
  expect(await text('[data-testid="inspected-reason"]')).toBe('user_id: required');
  await expectAccessible(page, 'dead letters');
  // The operator fixes the payload (adds the user) and replays it: ingest accepts it this time.
  const fixed = { ...bad, user_id: shopper, occurred_at: new Date(shop.end - 3_600_000).toISOString() };
  await page.getByLabel('Corrected payload (JSON)').fill(JSON.stringify(fixed));
  await page.getByRole('button', { name: 'Replay corrected' }).click();
  await page.waitForSelector('.notice-success');
  await eventually(
    async () => {
      const m = await bus.jsm.streams.getMessage(Streams.EVENTS.name, { last_by_subj: Subjects.events('view') });
      return m?.header.get(Headers.msgId) === `event:default:${bad.event_id}`;
    },
    { what: 'the replayed event in the EVENTS stream', timeoutMs: 30_000 },
  );
  // ... and the shopper now shows it among their events.
  await eventually(
    async () => {
      const { users } = await features.getUserFeatures({ tenant: 'default', userIds: [shopper], recentLimit: 200 });
      return users[0]!.recent.some(
        (r) => r.itemId === bad.item_id && r.occurredAt?.getTime() === Date.parse(fixed.occurred_at),
      );
    },
    { what: 'the replayed event applied to the shopper', timeoutMs: 30_000 },
  );
  // Replaying the unparseable one unchanged sends it back to the dead-letter stream: it reappears here.
  const before = (await bus.jsm.streams.info(Streams.DLQ.name)).state.last_seq;
  await page.goto(url('/dead-letters?reason=payload%3A%20invalid%20JSON'));
  await page.waitForSelector('[data-testid="letters-table"] tbody tr[data-key]');
  const garbage = await page.getAttribute('[data-testid="letters-table"] tbody tr[data-key]', 'data-key');
  await page.getByLabel(`Select dead letter ${garbage}`).check();
  await page.getByRole('button', { name: 'Replay selected' }).click();
  await page.waitForSelector('.notice-success');
  await eventually(async () => (await bus.jsm.streams.info(Streams.DLQ.name)).state.last_seq > before, {
    what: 'the replayed garbage dead-lettered again',
    timeoutMs: 30_000,
  });
  await eventually(
    async () => {
      await page.reload();
      await page.waitForSelector('[data-testid="letters-table"] tbody tr[data-key]');
      return (await page.$$('[data-testid="letters-table"] tbody tr[data-key]')).length === 2;
    },
    { what: 'the replayed letter listed again', timeoutMs: 30_000 },
  );
});

test('models: versions with held-out metrics and curves; roll back and the service loads the older version', async () => {
  // A newer churn version (the same graph, as a retrained model would be) to roll back from.
  const registry = await ModelRegistry.open(bus.nc);
  const publisher = new AsyncJetStreamPublisher(bus.nc);
  const first = (await registry.active('default', 'churn'))!;
  await registry.publish(publisher, {
    tenant: 'default',
    name: 'churn',
    version: `${first.meta.version}-b`,
    onnx: first.onnx,
    sidecar: first.sidecar,
    meta: { metrics: first.meta.metrics, curves: first.meta.curves, createdAt: new Date() },
  });
  publisher.close();
  const liveChurn = '[data-testid="live-churn-churn"]';
  await page.goto(url('/models'));
  await eventually(
    async () => {
      await page.reload();
      await page.waitForSelector('[data-testid="versions-churn"] tbody tr[data-key]');
      return (await text(liveChurn)).includes(`${first.meta.version}-b`);
    },
    { what: 'churn service on the new version', timeoutMs: 60_000, intervalMs: 1000 },
  );
  expect(await text(`[data-testid="versions-churn"] tr[data-key="${first.meta.version}"]`)).toContain('roc_auc');
  expect(await page.getAttribute('[data-testid="curves-churn"] canvas', 'aria-label')).toMatch(/loss/);
  // Every kind the registry holds is listed, the search model among them, with the version ranking loaded.
  const searchRanker = (await registry.activeMeta('default', 'search_ranker'))!.version;
  expect(await text('[data-testid="active-search_ranker"]')).toBe(searchRanker);
  expect(await text('[data-testid="live-search_ranker-ranking"]')).toContain(searchRanker);
  await expectAccessible(page, 'models');
  await page.getByRole('button', { name: `Roll back churn to ${first.meta.version}` }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Confirm' }).click();
  await page.waitForSelector('.notice-success');
  expect((await registry.activeMeta('default', 'churn'))?.version).toBe(first.meta.version);
  await eventually(
    async () => {
      const [s] = (await churn.predict({ tenant: 'default', userIds: [shopper] })).scores;
      return s?.modelVersion === first.meta.version;
    },
    { what: 'churn service hot-loaded the rolled-back version', timeoutMs: 60_000 },
  );
  await eventually(
    async () => {
      await page.reload();
      await page.waitForSelector(liveChurn);
      return (await text(liveChurn)) === `churn: ${first.meta.version}live`;
    },
    { what: 'the page shows the rolled-back version live', timeoutMs: 30_000, intervalMs: 1000 },
  );
});

test('experiments: arms with 95 % intervals as GetResults answers, plots over time, stop from the page', async () => {
  const id = 'console-ab';
  await experiments.create({
    experiment: experimentV1.Experiment.fromPartial({
      tenant: 'default',
      id,
      description: 'the learned ranker against the weighted heuristic',
      surface: rankingV1.Surface.SURFACE_RECOMMEND,
      design: experimentV1.Design.DESIGN_AB,
      arms: [
        { name: 'learned', trafficShare: 0.5 },
        { name: 'heuristic', trafficShare: 0.5, rankerDisabled: true },
      ],
      primaryMetric: experimentV1.Metric.METRIC_CTR,
    }),
  });
  const recommend = (userId: string) =>
    ranking.recommend(rankingV1.RecommendRequest.fromPartial({ tenant: 'default', userId, limit: 10 }));
  const results = async () => (await experiments.getResults({ tenant: 'default', id })).result!;
  const sum = (r: experimentV1.ExperimentResult, pick: (a: experimentV1.ArmResult) => number) =>
    r.arms.reduce((n, a) => n + pick(a), 0);
  // Ranking follows the definition from the bucket: from then on every Recommend is in the experiment.
  await eventually(
    async () => {
      await recommend(shop.users[0]!.userId);
      return sum(await results(), (a) => a.requests) > 0;
    },
    { what: 'ranking serving the experiment', timeoutMs: 30_000, intervalMs: 500 },
  );
  const before = sum(await results(), (a) => a.requests);
  // Shoppers: one Recommend each; some click an item they were shown, naming the request.
  const users = shop.users.slice(0, 60).map((u) => u.userId);
  let clicks = 0;
  for (const [i, userId] of users.entries()) {
    const r = await recommend(userId);
    const position = i % 3 === 0 ? 0 : i % 5 === 0 ? 2 : -1;
    const item = r.items[position];
    if (!item) continue;
    clicks++;
    const click = {
      event_id: `console-exp-${i}`,
      type: 'click',
      user_id: userId,
      item_id: item.itemId,
      occurred_at: new Date().toISOString(),
      request_id: r.requestId,
      position,
    };
    await bus.js.publish(Subjects.clickstream('click'), new TextEncoder().encode(JSON.stringify(click)));
  }
  const result = await eventually(
    async () => {
      const r = await results();
      return sum(r, (a) => a.requests) >= before + users.length && sum(r, (a) => a.clicks) >= clicks ? r : undefined;
    },
    { what: 'the experiment service joining the requests and clicks', timeoutMs: 60_000, intervalMs: 500 },
  );
  expect(result.arms.map((a) => a.arm)).toEqual(['learned', 'heuristic']);

  await page.goto(url(`/experiments?id=${id}`));
  await page.waitForSelector('[data-testid="arms-table"] tbody tr[data-key]');
  expect(await text(`[data-testid="experiments-table"] tr[data-key="${id}"]`)).toContain('running');
  const interval = (e: experimentV1.Estimate | undefined) =>
    `${e!.value.toFixed(4)} [${e!.lower.toFixed(4)}, ${e!.upper.toFixed(4)}]`;
  const n = (x: number) => x.toLocaleString('en-US');
  for (const a of result.arms) {
    const row = `[data-testid="arms-table"] tr[data-key="${a.arm}"]`;
    expect([a.arm, await text(`${row} td:nth-child(3)`)]).toEqual([a.arm, n(a.units)]);
    expect([a.arm, await text(`${row} td:nth-child(4)`)]).toEqual([a.arm, n(a.requests)]);
    expect([a.arm, await text(`${row} td:nth-child(5)`)]).toEqual([a.arm, n(a.impressions)]);
    expect([a.arm, await text(`${row} td:nth-child(6)`)]).toEqual([a.arm, n(a.clicks)]);
    expect([a.arm, await text(`${row} td:nth-child(7)`)]).toEqual([a.arm, interval(a.ctr)]);
  }
  const comparison = result.comparisons.find((c) => c.metric === experimentV1.Metric.METRIC_CTR)!;
  expect(await text('[data-testid="comparisons-table"] tr[data-key="heuristic/ctr"] td:nth-child(3)')).toBe(
    interval(comparison.difference),
  );
  expect(await text('[data-testid="srm-status"] .card-value')).toBe(result.sampleRatio!.mismatch ? 'MISMATCH' : 'ok');
  expect(await text('[data-testid="srm-detail"]')).toContain(`p = ${result.sampleRatio!.pValue.toFixed(4)}`);
  expect(await text('[data-testid="guardrails-status"] .card-value')).toBe(
    result.guardrails.some((g) => g.tripped)
      ? `${result.guardrails.filter((g) => g.tripped).length} tripped`
      : 'within limits',
  );
  // The figures over time, drawn by the charting library from GetResults' timeline.
  expect(result.timeline.length).toBeGreaterThan(0);
  expect(await page.getAttribute('[data-testid="timeline-chart"] canvas', 'aria-label')).toContain(
    `learned ${interval(result.timeline.at(-1)!.arms.find((a) => a.arm === 'learned')!.ctr)}`,
  );
  await expectAccessible(page, 'experiments');

  await page.getByRole('button', { name: `Stop experiment ${id}` }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Confirm' }).click();
  await page.waitForSelector('.notice-success');
  expect((await experiments.get({ tenant: 'default', id })).experiment?.state).toBe(experimentV1.State.STATE_STOPPED);
  await eventually(async () => (await text('[data-testid="experiment-state"] .card-value')) === 'stopped', {
    what: 'the page showing the experiment stopped',
    timeoutMs: 10_000,
  });
  // The list is loaded apart from the state card: its row follows on its own load.
  await eventually(
    async () =>
      (await text(`[data-testid="experiments-table"] tr[data-key="${id}"]`)).includes('stopped from the console'),
    { what: "the list's row showing the reason", timeoutMs: 10_000 },
  );
  expect(await page.$('[data-testid="experiment-actions"]')).toBeNull();
});

test('keyboard: skip link, then the navigation, reach every page', async () => {
  await page.goto(url('/'));
  // The app renders the navigation and the tenant picker after it has read the session: tabbing before that
  // walked past elements that were then replaced (focus fell back to the start, the picker was reached last).
  await page.waitForSelector('h1:text("Overview")');
  await page.waitForSelector('select');
  const focused = () => page.evaluate(() => document.activeElement?.textContent?.trim());
  await page.keyboard.press('Tab');
  expect(await focused()).toBe('Skip to content');
  // Then the brand, the tenant picker and the navigation, in reading order.
  for (let i = 0; i < 5 && (await focused()) !== 'Overview'; i++) await page.keyboard.press('Tab');
  expect(await focused()).toBe('Overview');
  await page.keyboard.press('Tab');
  await page.keyboard.press('Enter');
  await page.waitForSelector('h1:text("Dead letters")');
  expect(new URL(page.url()).pathname).toBe('/dead-letters');
});

test('every page at 1280 px and phone width: screenshots saved, nothing wider than the screen', async () => {
  const tour = consoleTour({ user: shopper, query });
  const files = await screenshotPages(browser, stack.consoleUrl, tour, ARTIFACTS);
  expect(files).toHaveLength(tour.length * 2);
  const phone = await browser.newPage(VIEWPORTS.phone);
  for (const v of tour) {
    await phone.goto(url(v.path));
    await phone.waitForSelector(v.ready);
    // Anything wider than the screen, outside the boxes that scroll on purpose (tables), is named.
    const tooWide = await phone.evaluate((width) => {
      const out: string[] = [];
      for (const el of document.querySelectorAll('main *'))
        if (el.getBoundingClientRect().right > width + 1 && !el.closest('.table-wrap'))
          out.push(`${el.tagName.toLowerCase()}.${el.className}: ${(el.textContent ?? '').slice(0, 40)}`);
      return out.slice(0, 5);
    }, VIEWPORTS.phone.width);
    expect([v.name, tooWide]).toEqual([v.name, []]);
    expect([v.name, await phone.evaluate(() => document.documentElement.scrollWidth)]).toEqual([
      v.name,
      VIEWPORTS.phone.width,
    ]);
  }
  await expectAccessible(phone, 'phone width');
  await phone.close();
  process.stdout.write(`console screenshots:\n${files.map((f) => `  ${f}`).join('\n')}\n`);
});
