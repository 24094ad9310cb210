import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Filler,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
  type ChartConfiguration,
} from 'chart.js';
import { h } from './dom';

Chart.register(
  LineController,
  LineElement,
  PointElement,
  LinearScale,
  CategoryScale,
  BarController,
  BarElement,
  Filler,
  Legend,
  Tooltip,
);
Chart.defaults.font.family = 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
Chart.defaults.color = '#1f2933';
// Screenshots and live updates should show the data, not an animation of it.
Chart.defaults.animation = false;

/** Colours with at least 3:1 contrast against the white panels (WCAG 1.4.11 for graphics). */
export const PALETTE = ['#1f5fbf', '#1b7f3b', '#b3261e', '#8a4baf', '#a15c00', '#0b6e79'];

export interface ChartHandle {
  element: HTMLElement;
  chart: Chart;
  /** Updates the accessible description (what a screen reader hears instead of the drawing). */
  describe(text: string): void;
}

/** A chart in a figure: the canvas is an image with a text description, the caption names it. */
export function chartFigure(
  caption: string,
  config: ChartConfiguration,
  opts: { height?: number; testId?: string } = {},
): ChartHandle {
  const canvas = h('canvas', { role: 'img', 'aria-label': caption });
  const box = h('div', { class: 'chart-box', style: undefined }, canvas);
  box.style.height = `${opts.height ?? 240}px`;
  const element = h(
    'figure',
    { class: 'chart', ...(opts.testId ? { 'data-testid': opts.testId } : {}) },
    box,
    h('figcaption', {}, caption),
  );
  config.options = { responsive: true, maintainAspectRatio: false, ...config.options };
  const chart = new Chart(canvas, config);
  return {
    element,
    chart,
    describe: (text) => canvas.setAttribute('aria-label', `${caption}: ${text}`),
  };
}

export function lineDataset(label: string, data: Array<{ x: number; y: number }>, i: number) {
  return {
    label,
    data,
    borderColor: PALETTE[i % PALETTE.length],
    backgroundColor: PALETTE[i % PALETTE.length],
    borderWidth: 2,
    pointRadius: data.length > 40 ? 0 : 2,
    tension: 0.2,
  };
}
