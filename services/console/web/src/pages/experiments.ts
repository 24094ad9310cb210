import type {
  ArmResultView,
  ComparisonView,
  EstimateView,
  ExperimentActionResult,
  ExperimentArmView,
  ExperimentResultView,
  ExperimentSummaryView,
  ExperimentsView,
  ExperimentView,
  InterleavingView,
} from '../../../src/api';
import { errorMessage, getJson, postJson } from '../api';
import { chartFigure, PALETTE, type ChartHandle } from '../charts';
import { announce, card, confirmer, fmt, h, notice, replace, section } from '../dom';
import type { Page } from '../page';
import { createTable } from '../table';

const METRIC_TITLES: Record<string, string> = {
  ctr: 'CTR',
  add_to_cart_rate: 'Add-to-cart rate',
  conversion_rate: 'Conversion rate',
  revenue_per_mille: 'Revenue per 1,000 impressions',
  interleaving_preference: 'Interleaving preference (clicks)',
};
const metricTitle = (m: string) => METRIC_TITLES[m] ?? m.replace(/_/g, ' ');

/** `0.0412 [0.0380, 0.0444]`: a value with its 95 % interval (digits: 4, or 2 for revenue). */
const withInterval = (e: EstimateView | null, digits = 4) =>
  e ? `${fmt.num(e.value, digits)} [${fmt.num(e.lower, digits)}, ${fmt.num(e.upper, digits)}]` : '–';
const intervalCell = (e: EstimateView | null, digits = 4) => h('span', { class: 'interval' }, withInterval(e, digits));

/** The primary metric's estimate of an arm (A/B) at one point. */
function armMetric(a: ArmResultView, metric: string): EstimateView | null {
  switch (metric) {
    case 'add_to_cart_rate':
      return a.addToCartRate;
    case 'conversion_rate':
      return a.conversionRate;
    case 'revenue_per_mille':
      return a.revenuePerMille;
    default:
      return a.ctr;
  }
}

function stateBadge(state: ExperimentSummaryView['state']): HTMLElement {
  const cls = state === 'running' ? 'ok' : state === 'stopped' ? 'info' : 'warn';
  return h('span', { class: `badge badge-${cls}` }, state);
}

const pins = (a: ExperimentArmView) =>
  Object.entries(a.models)
    .map(([m, v]) => `${m} ${v}`)
    .join(', ');

function armSetup(a: ExperimentArmView, design: ExperimentSummaryView['design']): string {
  const parts = [
    design === 'ab' ? `${fmt.pct(a.trafficShare)} of units` : '',
    a.rankerDisabled
      ? 'the weighted heuristic instead of the ranker'
      : pins(a)
        ? `pins ${pins(a)}`
        : 'the active models',
    a.retentionBoost ? `retention boost ${a.retentionBoost}` : '',
    a.maxPerCategory ? `at most ${a.maxPerCategory} per category` : '',
  ];
  return parts.filter(Boolean).join('; ');
}

/**
 * The figures over time: A/B, the primary metric of each arm with its 95 % interval as a band;
 * interleaving, the click preference for the first arm with its interval (0 = no preference).
 */
function timelineChart(e: ExperimentSummaryView, r: ExperimentResultView): ChartHandle | undefined {
  const points = r.timeline.filter((p) => p.at !== null);
  if (points.length === 0) return undefined;
  const series: Array<{ label: string; values: Array<{ x: number; e: EstimateView | null }> }> = [];
  if (e.design === 'interleaving') {
    const first = r.interleaving?.armA ?? e.arms[0]?.name ?? 'a';
    series.push({
      label: `preference for ${first}`,
      values: points.map((p) => ({ x: p.at as number, e: p.interleaving?.clicks?.preference ?? null })),
    });
  } else {
    for (const arm of e.arms)
      series.push({
        label: arm.name,
        values: points.map((p) => {
          const a = p.arms.find((x) => x.arm === arm.name);
          return { x: p.at as number, e: a ? armMetric(a, r.primaryMetric) : null };
        }),
      });
  }
  const datasets = series.flatMap((s, i) => {
    const colour = PALETTE[i % PALETTE.length] as string;
    const at = (pick: (e: EstimateView) => number) =>
      s.values.filter((v) => v.e !== null).map((v) => ({ x: v.x, y: pick(v.e as EstimateView) }));
    const band = { borderWidth: 0, pointRadius: 0, borderColor: colour, backgroundColor: `${colour}26` };
    return [
      { label: s.label, data: at((v) => v.value), borderColor: colour, backgroundColor: colour, borderWidth: 2 },
      { label: `${s.label} lower`, data: at((v) => v.lower), ...band, fill: false },
      // Filled down to the dataset before it: the 95 % interval as a band.
      { label: `${s.label} upper`, data: at((v) => v.upper), ...band, fill: '-1' },
    ];
  });
  const metric = e.design === 'interleaving' ? 'interleaving_preference' : r.primaryMetric;
  // Event time: a short experiment (or a single point) gets a few minutes of axis around its points.
  const first = points[0]?.at as number;
  const last = points[points.length - 1]?.at as number;
  const pad = last - first < 10 * 60_000 ? 5 * 60_000 : 0;
  const label =
    last - first < 86_400_000 ? (v: number) => fmt.time(v).slice(11, 19) : (v: number) => fmt.time(v).slice(5, 16);
  const chart = chartFigure(
    `${metricTitle(metric)} over time, with 95 % intervals`,
    {
      type: 'line',
      data: { datasets },
      options: {
        parsing: false,
        scales: {
          x: {
            type: 'linear',
            min: first - pad,
            max: last + pad,
            title: { display: true, text: 'event time (UTC)' },
            ticks: { callback: (v) => label(Number(v)), maxTicksLimit: 6 },
          },
          y: { title: { display: true, text: metricTitle(metric) } },
        },
        plugins: {
          legend: {
            position: 'bottom',
            labels: { filter: (item) => !/ (lower|upper)$/.test(item.text) },
          },
        },
      },
    },
    { height: 260, testId: 'timeline-chart' },
  );
  chart.describe(
    series
      .map((s) => {
        const last = [...s.values].reverse().find((v) => v.e !== null)?.e;
        return `${s.label} ${last ? withInterval(last) : 'no data'} at the last of ${s.values.length} points`;
      })
      .join('; '),
  );
  return chart;
}

/**
 * The primary metric in one card: interleaving, the click preference for the first arm; A/B, the
 * relative lift of the arm that differs most surely from the control (the smallest p).
 */
function primaryCard(e: ExperimentSummaryView, r: ExperimentResultView): HTMLElement {
  if (e.design === 'interleaving') {
    const p = r.interleaving?.clicks;
    return card(
      `Preference for ${r.interleaving?.armA ?? e.arms[0]?.name ?? ''}`,
      fmt.num(p?.preference?.value ?? 0, 4),
      {
        id: 'primary-metric',
        hint: p
          ? `95 % CI ${withInterval(p.preference).replace(/^\S+ /, '')}, p = ${fmt.num(p.pValue, 4)}`
          : 'no decided request yet',
      },
    );
  }
  const best = r.comparisons.filter((c) => c.metric === r.primaryMetric).sort((a, b) => a.pValue - b.pValue)[0];
  const lift = best?.relativeLift;
  return card(
    best ? `${metricTitle(r.primaryMetric)} lift of ${best.arm}` : metricTitle(r.primaryMetric),
    lift ? fmt.pct(lift.value) : '–',
    {
      id: 'primary-metric',
      hint: lift
        ? `95 % CI [${fmt.pct(lift.lower)}, ${fmt.pct(lift.upper)}], p = ${fmt.num(best?.pValue ?? 1, 4)}`
        : 'no comparison yet',
    },
  );
}

function armsTable(e: ExperimentSummaryView, r: ExperimentResultView) {
  const rev = (a: ArmResultView) => a.revenuePerMille;
  return createTable<ArmResultView>({
    caption: 'Arms',
    rowKey: (a) => a.arm,
    rows: r.arms,
    initialSort: { key: 'order' },
    columns: [
      { key: 'order', label: '#', value: (a) => r.arms.indexOf(a) + 1, numeric: true },
      {
        key: 'arm',
        label: 'Arm',
        value: (a) => a.arm,
        render: (a) => {
          const def = e.arms.find((x) => x.name === a.arm);
          return h(
            'span',
            { class: 'arm-cell' },
            h('code', {}, a.arm),
            a.arm === r.control ? h('span', { class: 'badge badge-info' }, 'control') : null,
            a.arm === r.winner ? h('span', { class: 'badge badge-ok' }, 'winner') : null,
            def ? h('div', { class: 'muted' }, armSetup(def, e.design)) : null,
          );
        },
      },
      { key: 'units', label: 'Units', value: (a) => a.units, render: (a) => fmt.int(a.units), numeric: true },
      {
        key: 'requests',
        label: 'Requests',
        value: (a) => a.requests,
        render: (a) => fmt.int(a.requests),
        numeric: true,
      },
      {
        key: 'impressions',
        label: 'Impressions',
        value: (a) => a.impressions,
        render: (a) => fmt.int(a.impressions),
        numeric: true,
      },
      { key: 'clicks', label: 'Clicks', value: (a) => a.clicks, render: (a) => fmt.int(a.clicks), numeric: true },
      { key: 'ctr', label: 'CTR [95 % CI]', value: (a) => a.ctr?.value ?? 0, render: (a) => intervalCell(a.ctr) },
      {
        key: 'cart',
        label: 'Add-to-cart rate [95 % CI]',
        value: (a) => a.addToCartRate?.value ?? 0,
        render: (a) => intervalCell(a.addToCartRate),
      },
      {
        key: 'conversion',
        label: 'Conversion [95 % CI]',
        value: (a) => a.conversionRate?.value ?? 0,
        render: (a) => intervalCell(a.conversionRate),
      },
      {
        key: 'revenue',
        label: 'Revenue per 1,000 [95 % CI]',
        value: (a) => rev(a)?.value ?? 0,
        render: (a) => intervalCell(rev(a), 2),
      },
      {
        key: 'errors',
        label: 'Failed / degraded',
        value: (a) => a.errorRate?.value ?? 0,
        render: (a) => `${fmt.pct(a.errorRate?.value ?? 0)} / ${fmt.pct(a.degradedRate?.value ?? 0)}`,
      },
      {
        key: 'p95',
        label: 'p95 ms',
        value: (a) => a.latencyP95Ms,
        render: (a) => fmt.num(a.latencyP95Ms, 1),
        numeric: true,
      },
    ],
    empty: 'No request has reached this experiment yet.',
    testId: 'arms-table',
  });
}

function comparisonsTable(r: ExperimentResultView) {
  return createTable<ComparisonView>({
    caption: 'Compared with the control',
    rowKey: (c) => `${c.arm}/${c.metric}`,
    rows: r.comparisons,
    filter: r.comparisons.length > 4,
    columns: [
      { key: 'arm', label: 'Arm', value: (c) => `${c.arm} vs ${c.control}` },
      { key: 'metric', label: 'Metric', value: (c) => metricTitle(c.metric) },
      {
        key: 'difference',
        label: 'Difference [95 % CI]',
        value: (c) => c.difference?.value ?? 0,
        render: (c) => intervalCell(c.difference, c.metric === 'revenue_per_mille' ? 2 : 4),
      },
      {
        key: 'lift',
        label: 'Relative lift [95 % CI]',
        value: (c) => c.relativeLift?.value ?? 0,
        render: (c) =>
          c.relativeLift
            ? h(
                'span',
                { class: 'interval' },
                `${fmt.pct(c.relativeLift.value)} [${fmt.pct(c.relativeLift.lower)}, ${fmt.pct(c.relativeLift.upper)}]`,
              )
            : '–',
      },
      { key: 'p', label: 'p', value: (c) => c.pValue, render: (c) => fmt.num(c.pValue, 4), numeric: true },
    ],
    empty: 'No comparison yet.',
    testId: 'comparisons-table',
  });
}

function interleavingFacts(i: InterleavingView): HTMLElement {
  const row = (label: string, p: InterleavingView['clicks']) =>
    p
      ? [
          h('dt', {}, label),
          h(
            'dd',
            {},
            `${i.armA} won ${fmt.int(p.winsA)}, ${i.armB} won ${fmt.int(p.winsB)}, ${fmt.int(p.ties)} ties; preference for ${i.armA} ${withInterval(p.preference)}, sign test p = ${fmt.num(p.pValue, 4)}${p.winner ? `; ${p.winner} preferred` : ''}`,
          ),
        ]
      : null;
  return h(
    'dl',
    { class: 'facts', 'data-testid': 'interleaving' },
    h('dt', {}, 'Interleaved requests'),
    h('dd', {}, fmt.int(i.requests)),
    row('By clicks', i.clicks),
    row('By purchases', i.purchases),
  );
}

function checks(r: ExperimentResultView): HTMLElement {
  const srm = r.sampleRatio;
  const guardrails = createTable<ExperimentResultView['guardrails'][number]>({
    caption: 'Guardrails',
    rowKey: (g) => `${g.arm}/${g.check}`,
    rows: r.guardrails,
    columns: [
      { key: 'arm', label: 'Arm', value: (g) => g.arm },
      { key: 'check', label: 'Check', value: (g) => g.check.replace(/_/g, ' ') },
      { key: 'value', label: 'Value', value: (g) => g.value, render: (g) => fmt.num(g.value, 4), numeric: true },
      { key: 'limit', label: 'Limit', value: (g) => g.limit, render: (g) => fmt.num(g.limit, 4), numeric: true },
      {
        key: 'state',
        label: 'State',
        value: (g) => (g.tripped ? 1 : 0),
        render: (g) =>
          g.tripped
            ? h('span', {}, h('span', { class: 'badge badge-bad' }, 'tripped'), ` ${g.reason}`)
            : h('span', { class: 'badge badge-ok' }, 'within limit'),
      },
    ],
    empty: 'No guardrail judged yet (an arm needs its minimum number of requests).',
    testId: 'guardrails-table',
  });
  return h(
    'div',
    {},
    h(
      'p',
      { 'data-testid': 'srm-detail' },
      srm
        ? `Sample ratio (${srm.counted.replace(/_/g, ' ')}): ${srm.counts.map((c) => `${c.arm} ${fmt.int(c.observed)} of ${fmt.num(c.expected, 1)} expected`).join(', ')}; chi-square ${fmt.num(srm.chiSquare, 2)} with ${srm.degreesOfFreedom} degree${srm.degreesOfFreedom === 1 ? '' : 's'} of freedom, p = ${fmt.num(srm.pValue, 4)}${srm.mismatch ? ': MISMATCH, the assignment or the logging is broken and the comparisons cannot be trusted' : ': no mismatch'}.`
        : 'Sample ratio: not computed yet.',
    ),
    guardrails.element,
  );
}

export const experimentsPage: Page = {
  path: '/experiments',
  title: 'Experiments',
  render(main, ctx) {
    const operator = ctx.session.role === 'operator';
    let chart: ChartHandle | undefined;
    let selected = ctx.params.get('id') ?? '';
    let listed: ExperimentSummaryView[] = [];
    const status = h('div', {});
    const detail = h('div', { 'aria-live': 'polite' });
    const dialog = confirmer();

    const show = (id: string) => {
      selected = id;
      ctx.setParams({ id });
      list.update(listed);
      void loadDetail();
    };
    const list = createTable<ExperimentSummaryView>({
      caption: 'Experiments',
      filter: true,
      rowKey: (e) => e.id,
      initialSort: { key: 'created', descending: true },
      columns: [
        {
          key: 'id',
          label: 'Experiment',
          value: (e) => `${e.id} ${e.description}`,
          render: (e) =>
            h(
              'span',
              {},
              h(
                'a',
                {
                  href: `/experiments?id=${encodeURIComponent(e.id)}`,
                  ...(e.id === selected ? { 'aria-current': 'true' } : {}),
                  onclick: (ev: Event) => {
                    ev.preventDefault();
                    show(e.id);
                  },
                },
                e.id,
              ),
              e.description ? h('div', { class: 'muted' }, e.description) : null,
            ),
        },
        { key: 'state', label: 'State', value: (e) => e.state, render: (e) => stateBadge(e.state) },
        { key: 'surface', label: 'Surface', value: (e) => e.surface.replace(/_/g, ' ') },
        { key: 'design', label: 'Design', value: (e) => (e.design === 'ab' ? 'A/B' : e.design) },
        { key: 'metric', label: 'Primary metric', value: (e) => metricTitle(e.primaryMetric) },
        { key: 'arms', label: 'Arms', value: (e) => e.arms.map((a) => a.name).join(', ') },
        { key: 'created', label: 'Created', value: (e) => e.createTime ?? 0, render: (e) => fmt.time(e.createTime) },
        {
          key: 'stopped',
          label: 'Stopped',
          value: (e) => e.stopTime ?? 0,
          render: (e) => (e.stopTime ? `${fmt.time(e.stopTime)} (${e.stopReason})` : '–'),
        },
      ],
      empty: 'No experiment for this tenant yet.',
      testId: 'experiments-table',
    });

    const act = async (
      path: 'stop' | 'promote',
      body: Record<string, unknown>,
      title: string,
      text: string,
      done: (r: ExperimentActionResult) => string,
    ) => {
      if (!(await dialog.ask(title, text))) return;
      try {
        const r = await postJson<ExperimentActionResult>(`/api/experiments/${path}`, {
          tenant: ctx.tenant,
          id: selected,
          ...body,
        });
        const message = done(r);
        replace(status, notice('success', message));
        announce(message);
        await Promise.all([loadList(), loadDetail()]);
      } catch (err) {
        replace(status, notice('error', errorMessage(err)));
      }
    };

    const actions = (e: ExperimentSummaryView, r: ExperimentResultView): HTMLElement | null => {
      if (!operator) return null;
      const buttons: HTMLElement[] = [];
      if (e.state !== 'stopped')
        buttons.push(
          h(
            'button',
            {
              type: 'button',
              class: 'secondary',
              'aria-label': `Stop experiment ${e.id}`,
              onclick: () =>
                void act(
                  'stop',
                  {},
                  `Stop ${e.id}?`,
                  'Ranking stops assigning units at once and serves production to everyone; the results stay readable.',
                  (x) => `Experiment ${x.experiment.id} is ${x.experiment.state}.`,
                ),
            },
            'Stop',
          ),
        );
      for (const arm of e.arms.filter((a) => pins(a) !== '')) {
        const won = r.winner === arm.name;
        buttons.push(
          h(
            'button',
            {
              type: 'button',
              class: won ? 'primary' : 'secondary',
              'aria-label': `Promote arm ${arm.name} of ${e.id}`,
              onclick: () =>
                void act(
                  'promote',
                  { arm: arm.name, force: !won },
                  `Promote ${arm.name}?`,
                  `${pins(arm)} becomes the active version for ${ctx.tenant} (every service hot-loads it) and the experiment stops.${won ? '' : ` ${arm.name} has not won on ${metricTitle(r.primaryMetric)} at alpha ${r.alpha}: this promotes it anyway.`}`,
                  (x) =>
                    `Promoted ${arm.name}: ${Object.entries(x.activated)
                      .map(([m, v]) => `${m} ${v}`)
                      .join(', ')} active; the experiment is ${x.experiment.state}.`,
                ),
            },
            `Promote ${arm.name}`,
          ),
        );
      }
      return buttons.length > 0 ? h('div', { class: 'actions', 'data-testid': 'experiment-actions' }, buttons) : null;
    };

    const renderDetail = (v: ExperimentView) => {
      const { experiment: e, result: r } = v;
      chart?.chart.destroy();
      chart = timelineChart(e, r);
      const srm = r.sampleRatio;
      const tripped = r.guardrails.filter((g) => g.tripped);
      const primary = primaryCard(e, r);
      replace(
        detail,
        section(
          `Experiment ${e.id}`,
          e.description ? h('p', {}, e.description) : null,
          h(
            'dl',
            { class: 'facts' },
            h('dt', {}, 'Design'),
            h('dd', {}, `${e.design === 'ab' ? 'A/B' : e.design} on ${e.surface.replace(/_/g, ' ')}`),
            h('dt', {}, 'Control'),
            h('dd', {}, e.control),
            e.holdout ? [h('dt', {}, 'Holdout'), h('dd', {}, fmt.pct(e.holdout))] : null,
            h('dt', {}, 'Started'),
            h('dd', {}, fmt.time(e.startTime)),
            h('dt', {}, 'Figures as of'),
            h('dd', {}, fmt.time(r.asOf)),
            e.stopTime ? [h('dt', {}, 'Stopped'), h('dd', {}, `${fmt.time(e.stopTime)}: ${e.stopReason}`)] : null,
          ),
          h(
            'div',
            { class: 'cards' },
            card('State', stateBadge(r.state), { id: 'experiment-state' }),
            primary,
            card('Winner', r.winner || 'none yet', { id: 'experiment-winner', hint: `alpha ${r.alpha}` }),
            card('Sample ratio', srm ? (srm.mismatch ? 'MISMATCH' : 'ok') : '–', {
              id: 'srm-status',
              hint: srm ? `p = ${fmt.num(srm.pValue, 4)}` : 'not computed yet',
            }),
            card('Guardrails', tripped.length === 0 ? 'within limits' : `${tripped.length} tripped`, {
              id: 'guardrails-status',
            }),
          ),
          actions(e, r),
        ),
        section('Arms', armsTable(e, r).element),
        e.design === 'interleaving' && r.interleaving
          ? section('Interleaving', interleavingFacts(r.interleaving))
          : section('Compared with the control', comparisonsTable(r).element),
        section(
          'Over time',
          chart ? chart.element : h('p', { class: 'muted' }, 'No figures over time yet: nothing has been joined.'),
        ),
        section('Sample ratio and guardrails', checks(r)),
        r.unattributedOutcomes > 0
          ? h(
              'p',
              { class: 'muted' },
              `${fmt.int(r.unattributedOutcomes)} outcomes of requests in this experiment fell outside the attribution window or named an item the request did not show.`,
            )
          : null,
      );
    };

    async function loadList(): Promise<void> {
      const v = await getJson<ExperimentsView>('/api/experiments', { tenant: ctx.tenant });
      listed = v.experiments;
      list.update(listed);
    }

    async function loadDetail(): Promise<void> {
      if (!selected) {
        replace(detail);
        return;
      }
      try {
        renderDetail(
          await getJson<ExperimentView>(`/api/experiments/${encodeURIComponent(selected)}`, { tenant: ctx.tenant }),
        );
      } catch (err) {
        replace(detail, notice('error', errorMessage(err)));
      }
    }

    replace(
      main,
      h('div', { class: 'page-head' }, h('h1', {}, 'Experiments')),
      h(
        'p',
        { class: 'muted' },
        'Online experiments on ranking surfaces (A/B tests and team-draft interleaving), with the experiment service’s figures: per arm with 95 % intervals, over time, the sample-ratio check and the guardrails.',
      ),
      status,
      section('All experiments', list.element),
      detail,
      dialog.element,
    );
    void loadList()
      .then(() => {
        // Without a choice in the URL: the newest running experiment, else the newest.
        if (!selected) selected = (listed.find((e) => e.state === 'running') ?? listed[0])?.id ?? '';
        list.update(listed);
        return loadDetail();
      })
      .catch((err: unknown) => replace(status, notice('error', errorMessage(err))));
    return () => chart?.chart.destroy();
  },
};
