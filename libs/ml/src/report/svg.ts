/** A dependency-free line chart (SVG) for training curves: one or two series per panel. */
export interface Series {
  name: string;
  points: Array<[number, number]>;
  color: string;
}

function panel(title: string, series: Series[], x0: number, y0: number, w: number, h: number): string {
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) return '';
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]);
  const [xmin, xmax] = [Math.min(...xs), Math.max(...xs, Math.min(...xs) + 1)];
  let [ymin, ymax] = [Math.min(...ys), Math.max(...ys)];
  if (ymax === ymin) ymax = ymin + 1;
  const pad = (ymax - ymin) * 0.08;
  ymin -= pad;
  ymax += pad;
  const px = (x: number) => x0 + 50 + ((x - xmin) / (xmax - xmin)) * (w - 70);
  const py = (y: number) => y0 + h - 30 - ((y - ymin) / (ymax - ymin)) * (h - 60);
  const ticks = Array.from({ length: 5 }, (_, i) => ymin + ((ymax - ymin) * i) / 4);
  const out: string[] = [
    `<text x="${x0 + w / 2}" y="${y0 + 18}" text-anchor="middle" font-size="14" font-weight="bold">${title}</text>`,
    `<line x1="${px(xmin)}" y1="${py(ymin)}" x2="${px(xmax)}" y2="${py(ymin)}" stroke="#444"/>`,
    `<line x1="${px(xmin)}" y1="${py(ymin)}" x2="${px(xmin)}" y2="${py(ymax)}" stroke="#444"/>`,
    ...ticks.map(
      (t) => `<text x="${px(xmin) - 6}" y="${py(t) + 4}" text-anchor="end" font-size="10">${t.toPrecision(3)}</text>`,
    ),
    ...[...new Set(xs)].map(
      (x) => `<text x="${px(x)}" y="${py(ymin) + 14}" text-anchor="middle" font-size="10">${x}</text>`,
    ),
    `<text x="${x0 + w / 2}" y="${y0 + h - 2}" text-anchor="middle" font-size="11">epoch</text>`,
  ];
  series.forEach((s, k) => {
    const d = s.points.map((p, i) => `${i === 0 ? 'M' : 'L'}${px(p[0]).toFixed(1)},${py(p[1]).toFixed(1)}`).join(' ');
    out.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"/>`);
    out.push(
      ...s.points.map(
        (p) => `<circle cx="${px(p[0]).toFixed(1)}" cy="${py(p[1]).toFixed(1)}" r="3" fill="${s.color}"/>`,
      ),
    );
    out.push(`<text x="${x0 + 60}" y="${y0 + 36 + 14 * k}" font-size="11" fill="${s.color}">${s.name}</text>`);
  });
  return out.join('\n');
}

export function trainingCurveSvg(title: string, loss: Series[], metric: Series[]): string {
  const w = 900;
  const h = 340;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h + 30}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${w / 2}" y="20" text-anchor="middle" font-size="15">${title}</text>`,
    panel('training loss', loss, 0, 30, w / 2, h),
    panel('validation', metric, w / 2, 30, w / 2, h),
    '</svg>',
  ].join('\n');
}
