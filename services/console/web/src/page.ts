import type { SessionInfo } from '../../src/api';

export interface PageContext {
  tenant: string;
  session: SessionInfo;
  /** The page's URL parameters (so a view can be linked and reloaded). */
  params: URLSearchParams;
  setParams(params: Record<string, string | undefined>): void;
}

export interface Page {
  path: string;
  title: string;
  /** Fills `main`; returns what to stop when the user leaves the page (timers, live streams, charts). */
  render(main: HTMLElement, ctx: PageContext): () => void;
}
