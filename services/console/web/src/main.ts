import type { SessionInfo } from '../../src/api';
import { ApiError, errorMessage, getJson } from './api';
import { field, h, notice, replace } from './dom';
import { deadLettersPage } from './pages/dead-letters';
import { experimentsPage } from './pages/experiments';
import { loginPage } from './pages/login';
import { modelsPage } from './pages/models';
import { overviewPage } from './pages/overview';
import { searchPage } from './pages/search';
import { shopperPage } from './pages/shopper';
import type { Page, PageContext } from './page';

/** The pages, in navigation order. A new capability is one more entry here with its own module under pages/. */
const PAGES: Page[] = [overviewPage, deadLettersPage, shopperPage, searchPage, modelsPage, experimentsPage];

const main = document.getElementById('main') as HTMLElement;
const nav = document.getElementById('nav') as HTMLElement;
const tools = document.getElementById('tools') as HTMLElement;
let session: SessionInfo | undefined;
let cleanup: (() => void) | undefined;
const TENANT_KEY = 'aisle.console.tenant';

function currentTenant(): string {
  const fromUrl = new URLSearchParams(location.search).get('tenant');
  const stored = localStorage.getItem(TENANT_KEY);
  const tenants = session?.tenants ?? [];
  for (const t of [fromUrl, stored]) if (t && tenants.includes(t)) return t;
  return tenants[0] ?? '';
}

export function navigate(path: string): void {
  history.pushState(null, '', path);
  void render();
}

function renderNav(active: Page | undefined): void {
  replace(
    nav,
    h(
      'ul',
      {},
      PAGES.map((p) =>
        h(
          'li',
          {},
          h(
            'a',
            {
              href: p.path,
              ...(p === active ? { 'aria-current': 'page' } : {}),
              onclick: (ev: Event) => {
                const e = ev as MouseEvent;
                if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
                ev.preventDefault();
                navigate(p.path);
              },
            },
            p.title,
          ),
        ),
      ),
    ),
  );
}

function renderTools(): void {
  if (!session) return replace(tools);
  const select = h(
    'select',
    {
      onchange: (ev: Event) => {
        localStorage.setItem(TENANT_KEY, (ev.target as HTMLSelectElement).value);
        const url = new URL(location.href);
        url.searchParams.delete('tenant');
        history.replaceState(null, '', url);
        void render();
      },
    },
    session.tenants.map((t) => h('option', { value: t, selected: t === currentTenant() }, t)),
  );
  replace(
    tools,
    session.tenants.length > 0 ? field('Tenant', select) : null,
    h(
      'span',
      { class: 'who' },
      session.auth === 'none' ? 'local development' : `${session.user ?? ''} · ${session.role}`,
    ),
    session.auth === 'login'
      ? h(
          'button',
          {
            type: 'button',
            class: 'link',
            onclick: () =>
              void fetch('/api/logout', { method: 'POST', headers: { 'Content-Type': 'application/json' } }).then(
                () => {
                  session = undefined;
                  navigate('/login');
                },
              ),
          },
          'Sign out',
        )
      : null,
  );
}

async function loadSession(): Promise<SessionInfo | undefined> {
  try {
    return await getJson<SessionInfo>('/api/session');
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return undefined;
    throw err;
  }
}

async function render(): Promise<void> {
  cleanup?.();
  cleanup = undefined;
  try {
    session ??= await loadSession();
  } catch (err) {
    replace(main, notice('error', `The console server did not answer: ${errorMessage(err)}`));
    return;
  }
  if (!session || location.pathname === '/login') {
    if (session) return navigate('/');
    renderNav(undefined);
    replace(tools);
    document.title = 'Sign in · Aisle console';
    cleanup = loginPage(main, async () => {
      session = await loadSession();
      navigate('/');
    });
    return;
  }
  const page = PAGES.find((p) => p.path === location.pathname) ?? PAGES[0];
  if (!page) return;
  renderNav(page);
  renderTools();
  document.title = `${page.title} · Aisle console`;
  const ctx: PageContext = {
    tenant: currentTenant(),
    session,
    params: new URLSearchParams(location.search),
    setParams: (params) => {
      const url = new URL(location.href);
      for (const [k, v] of Object.entries(params)) {
        if (v) url.searchParams.set(k, v);
        else url.searchParams.delete(k);
      }
      history.replaceState(null, '', url);
    },
  };
  replace(main);
  if (!ctx.tenant) {
    replace(main, h('h1', {}, page.title), notice('warning', 'You are not allowed any tenant. Ask for a grant.'));
    return;
  }
  cleanup = page.render(main, ctx);
}

window.addEventListener('popstate', () => void render());
void render();
