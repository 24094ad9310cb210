import { h, replace, uid, type Child } from './dom';

export interface Column<T> {
  key: string;
  label: string;
  /** What sorting and filtering use. */
  value: (row: T) => string | number;
  /** What the cell shows (defaults to the value). */
  render?: (row: T) => Child;
  numeric?: boolean;
}

export interface TableOptions<T> {
  caption: string;
  columns: Array<Column<T>>;
  rows?: T[];
  rowKey: (row: T) => string;
  initialSort?: { key: string; descending?: boolean };
  /** Shows a filter box above the table. */
  filter?: boolean;
  /** A checkbox per row; `selected()` returns the checked rows. */
  selectable?: { label: (row: T) => string };
  empty?: string;
  testId?: string;
  /** Long tables scroll inside a box of bounded height (sticky header). */
  tall?: boolean;
}

export interface Table<T> {
  element: HTMLElement;
  update(rows: T[]): void;
  selected(): T[];
}

/**
 * A table that sorts (header buttons, aria-sort) and filters (a labelled text box matching any column).
 * Wide tables scroll sideways inside their own box, so pages keep working on a phone.
 */
export function createTable<T>(opts: TableOptions<T>): Table<T> {
  let rows = opts.rows ?? [];
  let sort = opts.initialSort ?? { key: opts.columns[0]?.key ?? '', descending: false };
  let filterText = '';
  const checked = new Set<string>();
  const tbody = h('tbody');
  const headRow = h('tr');
  const count = h('span', { class: 'table-count', 'aria-live': 'polite' });
  const table = h(
    'table',
    { ...(opts.testId ? { 'data-testid': opts.testId } : {}) },
    h('caption', { class: 'visually-hidden' }, opts.caption),
    h('thead', {}, headRow),
    tbody,
  );

  const renderHead = () => {
    const cells: HTMLElement[] = [];
    if (opts.selectable) cells.push(h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Select')));
    for (const c of opts.columns) {
      const active = sort.key === c.key;
      cells.push(
        h(
          'th',
          {
            scope: 'col',
            class: c.numeric ? 'num' : '',
            'data-col': c.key,
            'aria-sort': active ? (sort.descending ? 'descending' : 'ascending') : 'none',
          },
          h(
            'button',
            {
              type: 'button',
              class: 'sort',
              onclick: () => {
                sort = { key: c.key, descending: active ? !sort.descending : Boolean(c.numeric) };
                renderHead();
                render();
                headRow.querySelector<HTMLButtonElement>(`th[data-col="${c.key}"] button`)?.focus();
              },
            },
            c.label,
            h('span', { class: 'sort-mark', 'aria-hidden': 'true' }, active ? (sort.descending ? ' ▼' : ' ▲') : ''),
          ),
        ),
      );
    }
    replace(headRow, cells);
  };

  const render = () => {
    const col = opts.columns.find((c) => c.key === sort.key);
    const needle = filterText.trim().toLowerCase();
    const shown = rows.filter(
      (r) => !needle || opts.columns.some((c) => String(c.value(r)).toLowerCase().includes(needle)),
    );
    if (col)
      shown.sort((a, b) => {
        const x = col.value(a);
        const y = col.value(b);
        const d = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y));
        return sort.descending ? -d : d;
      });
    const span = opts.columns.length + (opts.selectable ? 1 : 0);
    replace(
      tbody,
      shown.length === 0
        ? h(
            'tr',
            {},
            h(
              'td',
              { colspan: span, class: 'empty' },
              needle ? 'Nothing matches the filter.' : (opts.empty ?? 'Nothing yet.'),
            ),
          )
        : shown.map((r) => {
            const key = opts.rowKey(r);
            return h(
              'tr',
              { 'data-key': key },
              opts.selectable
                ? h(
                    'td',
                    {},
                    h('input', {
                      type: 'checkbox',
                      'aria-label': opts.selectable.label(r),
                      checked: checked.has(key),
                      onchange: (ev: Event) => {
                        if ((ev.target as HTMLInputElement).checked) checked.add(key);
                        else checked.delete(key);
                      },
                    }),
                  )
                : null,
              opts.columns.map((c) => h('td', { class: c.numeric ? 'num' : '' }, c.render ? c.render(r) : c.value(r))),
            );
          }),
    );
    count.textContent = needle
      ? `${shown.length} of ${rows.length} rows`
      : `${rows.length} ${rows.length === 1 ? 'row' : 'rows'}`;
  };

  const filterId = uid('filter');
  const controls = opts.filter
    ? h(
        'div',
        { class: 'table-tools' },
        h('label', { for: filterId }, `Filter ${opts.caption.toLowerCase()}`),
        h('input', {
          id: filterId,
          type: 'search',
          autocomplete: 'off',
          oninput: (ev: Event) => {
            filterText = (ev.target as HTMLInputElement).value;
            render();
          },
        }),
        count,
      )
    : null;
  renderHead();
  const element = h(
    'div',
    { class: 'table-block' },
    controls,
    h(
      'div',
      { class: opts.tall ? 'table-wrap tall' : 'table-wrap', tabindex: 0, role: 'region', 'aria-label': opts.caption },
      table,
    ),
  );
  render();
  return {
    element,
    update(next) {
      rows = next;
      render();
    },
    selected: () => rows.filter((r) => checked.has(opts.rowKey(r))),
  };
}
