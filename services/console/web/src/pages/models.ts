import type { ModelKindView, ModelsView, ModelVersionView } from '../../../src/api';
import { errorMessage, getJson, postJson } from '../api';
import { chartFigure, lineDataset, type ChartHandle } from '../charts';
import { announce, confirmer, fmt, h, notice, replace, section } from '../dom';
import type { Page } from '../page';
import { createTable } from '../table';

/** Titles of the kinds known today; any other kind the registry holds shows under its own name. */
const KIND_TITLES: Record<string, string> = {
  sasrec: 'Sequence recommender (SASRec)',
  text_encoder: 'Text encoder',
  ranker: 'Ranker',
  search_ranker: 'Search model (search_ranker)',
  session: 'Session model',
  churn: 'Churn classifier',
};

function heldOut(v: ModelVersionView): string {
  const e = Object.entries(v.metrics).find(([k]) => k.startsWith('heldout_') && k !== 'heldout_cases');
  return e ? `${e[0].replace('heldout_', '')} ${fmt.num(e[1], 4)}` : '–';
}

export const modelsPage: Page = {
  path: '/models',
  title: 'Models',
  render(main, ctx) {
    const operator = ctx.session.role === 'operator';
    const charts: ChartHandle[] = [];
    const status = h('div', {});
    const body = h('div', {});
    const dialog = confirmer();
    replace(main, h('div', { class: 'page-head' }, h('h1', {}, 'Models')), status, body, dialog.element);

    const activate = async (kind: ModelKindView, v: ModelVersionView, verb: string) => {
      const ok = await dialog.ask(
        `${verb} ${kind.name} ${v.version}?`,
        `The registry will point ${kind.name} at ${v.version} (now ${kind.activeVersion ?? 'none'}); services hot-load it within seconds.`,
      );
      if (!ok) return;
      try {
        await postJson('/api/models/activate', { tenant: ctx.tenant, name: kind.name, version: v.version });
        const text = `${kind.name} ${v.version} is now the active version; waiting for services to load it.`;
        replace(status, notice('success', text));
        announce(text);
        await load();
        window.setTimeout(() => void load(), 3000);
      } catch (err) {
        replace(status, notice('error', errorMessage(err)));
      }
    };

    const curveChart = (kind: ModelKindView, v: ModelVersionView): ChartHandle | undefined => {
      if (v.curves.length === 0) return undefined;
      const c = chartFigure(
        `Training curves of ${kind.name} ${v.version}`,
        {
          type: 'line',
          data: {
            datasets: v.curves.map((curve, i) => ({
              ...lineDataset(
                curve.name.replace(/_/g, ' '),
                curve.values.map((y, x) => ({ x: x + 1, y })),
                i,
              ),
              yAxisID: i === 0 ? 'y' : 'y1',
            })),
          },
          options: {
            parsing: false,
            scales: {
              x: {
                type: 'linear',
                title: { display: true, text: 'epoch (or training step)' },
                ticks: { precision: 0 },
              },
              y: { title: { display: true, text: v.curves[0]?.name.replace(/_/g, ' ') ?? '' } },
              ...(v.curves.length > 1
                ? {
                    y1: {
                      position: 'right',
                      grid: { drawOnChartArea: false },
                      title: { display: true, text: v.curves[1]?.name.replace(/_/g, ' ') ?? '' },
                    },
                  }
                : {}),
            },
            plugins: { legend: { position: 'bottom' } },
          },
        },
        { height: 220, testId: `curves-${kind.name}` },
      );
      c.describe(
        v.curves
          .map(
            (cv) =>
              `${cv.name} from ${fmt.num(cv.values[0] ?? 0)} to ${fmt.num(cv.values[cv.values.length - 1] ?? 0)} over ${cv.values.length} steps`,
          )
          .join('; '),
      );
      charts.push(c);
      return c;
    };

    const kindSection = (kind: ModelKindView): HTMLElement => {
      const active = kind.versions.find((v) => v.active);
      const older = kind.versions.filter((v) => !v.active && active && (v.createdAt ?? 0) < (active.createdAt ?? 0));
      const curves = h('div', {});
      const showCurves = (v: ModelVersionView) => {
        const c = curveChart(kind, v);
        replace(curves, c ? c.element : h('p', { class: 'muted' }, `No training curves recorded for ${v.version}.`));
      };
      const table = createTable<ModelVersionView>({
        caption: `${kind.name} versions`,
        rowKey: (v) => v.version,
        initialSort: { key: 'created', descending: true },
        rows: kind.versions,
        columns: [
          {
            key: 'version',
            label: 'Version',
            value: (v) => v.version,
            render: (v) =>
              h(
                'span',
                {},
                h('code', {}, v.version),
                v.active ? h('span', { class: 'badge badge-ok' }, 'active') : null,
              ),
          },
          { key: 'created', label: 'Created', value: (v) => v.createdAt ?? 0, render: (v) => fmt.time(v.createdAt) },
          { key: 'metric', label: 'Held-out', value: (v) => heldOut(v) },
          {
            key: 'events',
            label: 'Trained on',
            value: (v) => v.dataRange?.events ?? 0,
            render: (v) => (v.dataRange ? `${fmt.int(v.dataRange.events)} events` : '–'),
            numeric: true,
          },
          {
            key: 'action',
            label: 'Action',
            value: (v) => (v.active ? 0 : 1),
            render: (v) =>
              h(
                'span',
                { class: 'actions' },
                h(
                  'button',
                  {
                    type: 'button',
                    class: 'secondary',
                    'aria-label': `Show training curves of ${kind.name} ${v.version}`,
                    onclick: () => showCurves(v),
                  },
                  'Curves',
                ),
                v.active || !operator
                  ? null
                  : h(
                      'button',
                      {
                        type: 'button',
                        class: 'primary',
                        'aria-label': `${older.includes(v) ? 'Roll back' : 'Promote'} ${kind.name} to ${v.version}`,
                        onclick: () => void activate(kind, v, older.includes(v) ? 'Roll back to' : 'Promote'),
                      },
                      older.includes(v) ? 'Roll back' : 'Promote',
                    ),
              ),
          },
        ],
        empty: 'No versions published yet.',
        testId: `versions-${kind.name}`,
      });
      const liveList = kind.live.map((l) =>
        h(
          'li',
          { 'data-testid': `live-${kind.name}-${l.service}` },
          `${l.service}: `,
          h('code', {}, l.version || 'none loaded'),
          l.version && l.version === kind.activeVersion
            ? h('span', { class: 'badge badge-ok' }, 'live')
            : h('span', { class: 'badge badge-warn' }, l.version ? 'not the active version' : 'waiting'),
        ),
      );
      const el = section(
        KIND_TITLES[kind.name] ?? kind.name,
        h(
          'div',
          { class: 'model-head' },
          h(
            'p',
            {},
            'Active in the registry: ',
            h('code', { 'data-testid': `active-${kind.name}` }, kind.activeVersion ?? 'none'),
          ),
          h('ul', { class: 'plain' }, liveList),
        ),
        table.element,
        curves,
      );
      if (active) showCurves(active);
      return el;
    };

    async function load(): Promise<void> {
      try {
        const v = await getJson<ModelsView>('/api/models', { tenant: ctx.tenant });
        charts.splice(0).forEach((c) => c.chart.destroy());
        replace(
          body,
          v.kinds.length > 0
            ? v.kinds.map(kindSection)
            : notice('info', `No model is stored for ${ctx.tenant} yet: the trainer publishes the first versions.`),
        );
      } catch (err) {
        replace(status, notice('error', errorMessage(err)));
      }
    }
    void load();
    return () => charts.forEach((c) => c.chart.destroy());
  },
};
