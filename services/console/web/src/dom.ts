/** A few DOM helpers: enough to build pages without a framework. */

export type Child = Node | string | number | null | undefined | false | Child[];
type AttrValue = string | number | boolean | null | undefined | ((ev: Event) => void);
export type Attrs = Record<string, AttrValue>;

function append(parent: Node, child: Child): void {
  if (child === null || child === undefined || child === false) return;
  if (Array.isArray(child)) child.forEach((c) => append(parent, c));
  else if (child instanceof Node) parent.appendChild(child);
  else parent.appendChild(document.createTextNode(String(child)));
}

/** `h('button', { class: 'primary', onclick: go }, 'Go')` */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (typeof v === 'function') el.addEventListener(k.replace(/^on/, ''), v);
    else if (k === 'class') el.className = String(v);
    else if (k === 'value' && 'value' in el) (el as HTMLInputElement).value = String(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

export function replace(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, children);
}

let ids = 0;
export function uid(prefix: string): string {
  return `${prefix}-${++ids}`;
}

/** A labelled form field (label above, input below). */
export function field(label: string, input: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement): HTMLElement {
  input.id ||= uid('f');
  return h('div', { class: 'field' }, h('label', { for: input.id }, label), input);
}

/** Says `message` to screen readers (and nothing visible). */
export function announce(message: string): void {
  const el = document.getElementById('announcer');
  if (el) {
    el.textContent = '';
    window.setTimeout(() => (el.textContent = message), 50);
  }
}

export const fmt = {
  int: (n: number) => Math.round(n).toLocaleString('en-US'),
  num: (n: number, digits = 3) => (Number.isFinite(n) ? n.toFixed(digits) : '–'),
  rate: (n: number) => (n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(1)),
  pct: (n: number) => `${(n * 100).toFixed(1)} %`,
  time: (ms: number | null) => (ms ? new Date(ms).toISOString().replace('T', ' ').slice(0, 19) : '–'),
  ago: (ms: number, now = Date.now()) => {
    const s = Math.max(0, Math.round((now - ms) / 1000));
    if (s < 60) return `${s} s ago`;
    if (s < 3600) return `${Math.round(s / 60)} min ago`;
    if (s < 86400) return `${Math.round(s / 3600)} h ago`;
    return `${Math.round(s / 86400)} d ago`;
  },
  bytes: (n: number) => (n < 1024 ? `${n} B` : `${(n / 1024).toFixed(1)} KiB`),
};

/** A status line: `kind` picks its colour, the text says the rest. */
export function notice(kind: 'info' | 'error' | 'success' | 'warning', text: string): HTMLElement {
  return h('p', { class: `notice notice-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text);
}

export function card(label: string, value: Child, opts: { id?: string; hint?: string } = {}): HTMLElement {
  return h(
    'div',
    { class: 'card', ...(opts.id ? { 'data-testid': opts.id } : {}) },
    h('div', { class: 'card-label' }, label),
    h('div', { class: 'card-value' }, value),
    opts.hint ? h('div', { class: 'card-hint' }, opts.hint) : null,
  );
}

export function section(title: string, ...children: Child[]): HTMLElement {
  const id = uid('s');
  return h('section', { class: 'panel', 'aria-labelledby': id }, h('h2', { id }, title), ...children);
}

/** A text box for a page parameter (filled from the URL, so a view can be linked). */
export function paramInput(
  name: string,
  value: string,
  opts: { type?: string; required?: boolean } = {},
): HTMLInputElement {
  return h('input', { type: opts.type ?? 'text', name, autocomplete: 'off', required: opts.required ?? false, value });
}

/** A search form (labelled fields and a submit button in a row) that calls `onSubmit` instead of reloading. */
export function searchForm(
  fields: Array<[label: string, input: HTMLInputElement]>,
  button: string,
  onSubmit: () => void,
): HTMLFormElement {
  return h(
    'form',
    {
      class: 'inline-form',
      role: 'search',
      onsubmit: (ev: Event) => {
        ev.preventDefault();
        onSubmit();
      },
    },
    fields.map(([label, input]) => field(label, input)),
    h('button', { type: 'submit', class: 'primary' }, button),
  );
}

export interface Confirmer {
  /** The `<dialog>`: place it in the page once. */
  element: HTMLDialogElement;
  /** Opens the dialog; true when the user confirms, false on Cancel or Escape. */
  ask(title: string, text: string): Promise<boolean>;
}

/** A modal confirmation before an action that changes what serves (promote, roll back, stop). */
export function confirmer(): Confirmer {
  const titleId = uid('confirm');
  const element = h('dialog', { 'aria-labelledby': titleId });
  return {
    element,
    ask: (title, text) =>
      new Promise((resolve) => {
        const done = (ok: boolean) => {
          element.close();
          resolve(ok);
        };
        replace(
          element,
          h('h2', { id: titleId }, title),
          h('p', {}, text),
          h(
            'div',
            { class: 'actions' },
            h('button', { type: 'button', class: 'primary', onclick: () => done(true) }, 'Confirm'),
            h('button', { type: 'button', class: 'secondary', onclick: () => done(false) }, 'Cancel'),
          ),
        );
        element.onclose = () => resolve(false);
        element.showModal();
      }),
  };
}
