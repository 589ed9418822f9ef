// Layout checks on every visible Vega chart of a Streamlit page (Vega's SVG renderer).
// Returns a list of {chart, problem} records; an empty list means the page reads well.
// What a person would notice: a plot area too small to read, a clipped or shortened
// title or legend, axis labels that no longer tell series apart (identical after
// truncation, overprinted, or dropped), a chart running past its column, a chart with
// no marks, points drawn outside the plot; a table wider than its column that does not say it scrolls.
(opts) => {
  const MIN_W = opts.minWidth, MIN_H = opts.minHeight, MIN_BAND = opts.minBand;
  const out = [];
  // the main column's content box (the block container's rect less its padding)
  const block = document.querySelector('[data-testid=stMainBlockContainer]');
  const pad = getComputedStyle(block);
  const outer = block.getBoundingClientRect();
  const column = {left: outer.left + parseFloat(pad.paddingLeft), right: outer.right - parseFloat(pad.paddingRight)};
  const charts = [...document.querySelectorAll('[data-testid=stVegaLiteChart]')]
    .filter(e => e.offsetParent !== null && e.getBoundingClientRect().width > 0);
  const r = (el) => el.getBoundingClientRect();
  const visible = (el) => {
    const b = r(el);
    return b.width > 0.5 || b.height > 0.5;
  };
  const inside = (el, cls) => el.closest(cls) !== null;
  charts.forEach((chart, i) => {
    const svg = chart.querySelector('svg.marks');
    const titles = chart.querySelectorAll('.role-title-text text');
    const titleEl = titles.length ? titles[titles.length - 1] : null;
    const name = (titleEl ? titleEl.textContent : `chart #${i + 1}`).slice(0, 80);
    const add = (problem) => out.push({chart: name, problem});
    if (!svg) {
      const canvas = chart.querySelector('canvas.marks');
      if (!canvas) { add('nothing drawn (no svg or canvas)'); return; }
      const c = r(canvas);
      if (c.height < MIN_H || c.width < MIN_W) add(`canvas only ${c.width.toFixed(0)}×${c.height.toFixed(0)} px`);
      return;
    }
    const s = r(svg);
    if (s.right > column.right + 2 || s.left < column.left - 2) {
      add(`runs past its column (chart ${s.left.toFixed(0)}–${s.right.toFixed(0)} px, column ${column.left.toFixed(0)}–${column.right.toFixed(0)} px)`);
    }
    const box = r(chart);
    if (s.right > box.right + 2 || s.bottom > box.bottom + 2) {
      add(`cut off by its frame (chart ${s.width.toFixed(0)}×${s.height.toFixed(0)} px, frame ${box.width.toFixed(0)}×${box.height.toFixed(0)} px)`);
    }
    // text boxes include the font's ascent and descent: allow 4 px beyond the drawing's edge
    const outOfSvg = (b) => b.left < s.left - 4 || b.right > s.right + 4 || b.top < s.top - 4 || b.bottom > s.bottom + 4;
    // titles and subtitles: never shortened, never outside the drawing
    chart.querySelectorAll('.role-title-text text, .role-title-subtitle text').forEach((t) => {
      if (t.textContent.endsWith('…')) add(`title shortened to "${t.textContent}"`);
      else if (outOfSvg(r(t))) add(`title "${t.textContent.slice(0, 60)}" is clipped`);
    });
    // legends: inside the drawing; labels not shortened into duplicates; no dropped entries
    chart.querySelectorAll('.role-legend').forEach((lg) => {
      const b = r(lg);
      if (b.width > 0 && outOfSvg(b)) add('legend is cut off');
      const labels = [...lg.querySelectorAll('.role-legend-label text')].map((t) => t.textContent);
      const seen = new Set();
      labels.forEach((l) => {
        if (seen.has(l)) add(`legend labels identical after truncation: "${l}"`);
        seen.add(l);
      });
      const more = labels.filter((l) => /^…\d+ entries$/.test(l) || /^… \d+ entries$/.test(l));
      if (more.length) add(`legend drops entries (${more[0]})`);
    });
    // axes: labels distinct, not overprinted, none dropped on a discrete scale
    chart.querySelectorAll('.role-axis').forEach((ax) => {
      const aria = ax.getAttribute('aria-label') || '';
      const texts = [...ax.querySelectorAll('.role-axis-label text')].filter((t) => t.getAttribute('opacity') !== '0');
      const labels = texts.map((t) => t.textContent);
      const counts = {};
      labels.forEach((l) => { counts[l] = (counts[l] || 0) + 1; });
      const dups = Object.keys(counts).filter((l) => counts[l] > 1 && l !== '');
      if (dups.length) add(`axis labels identical: "${dups.slice(0, 3).join('", "')}" (${aria.slice(0, 40)})`);
      const m = aria.match(/discrete scale with (\d+) values/);
      if (m && texts.length < Number(m[1])) add(`only ${texts.length} of ${m[1]} axis labels drawn (${aria.slice(0, 40)})`);
      // overprint: axis-aligned boxes for level labels; for rotated labels (whose boxes
      // overlap by geometry) the spacing of their anchors along the axis
      const rotated = texts.some((t) => /rotate\((?!0\))/.test(t.getAttribute('transform') || ''));
      const boxes = texts.map(r);
      if (rotated) {
        // a rotated label's box depends on its length: compare the anchors (its translate)
        const horizontal = /^X-axis/.test(aria);
        const at = texts.map((t) => {
          const m = (t.getAttribute('transform') || '').match(/translate\(([-\d.e]+),\s*([-\d.e]+)\)/);
          return m ? Number(horizontal ? m[1] : m[2]) : 0;
        }).sort((p, q) => p - q);
        const size = parseFloat(texts.length ? texts[0].getAttribute('font-size') : '12') || 12;
        for (let a = 1; a < at.length; a++) {
          if (at[a] - at[a - 1] < 0.8 * size) { add(`rotated axis labels overprint (${(at[a] - at[a - 1]).toFixed(0)} px apart)`); break; }
        }
      } else {
        for (let a = 0; a < boxes.length; a++) {
          for (let b = a + 1; b < boxes.length; b++) {
            const x = Math.min(boxes[a].right, boxes[b].right) - Math.max(boxes[a].left, boxes[b].left);
            const y = Math.min(boxes[a].bottom, boxes[b].bottom) - Math.max(boxes[a].top, boxes[b].top);
            if (x > 2 && y > 2) { add(`axis labels overprint: "${labels[a]}" / "${labels[b]}"`); a = boxes.length; break; }
          }
        }
      }
      const title = ax.querySelector('.role-axis-title text');
      if (title && outOfSvg(r(title))) add(`axis title "${title.textContent}" is clipped`);
    });
    // plot areas: every cell of a facet/concat, else the root view
    let cells = [...svg.querySelectorAll('g.mark-group.role-scope')].filter((g) => {
      const n = g.getAttribute('class');
      return !/header|title/.test(n) && g.querySelector(':scope > g > g > .role-mark, :scope > g > g > .role-scope') !== null;
    });
    const plots = [];
    if (cells.length) {
      cells.forEach((g) => g.querySelectorAll(':scope > g').forEach((gg) => {
        const bg = gg.querySelector(':scope > path.background');
        if (bg && !inside(gg, '.role-axis') && !inside(gg, '.role-legend')) plots.push({g: gg, b: r(bg)});
      }));
    } else {
      const root = svg.querySelector('g.root > g > path.background');
      if (root) plots.push({g: svg.querySelector('g.root'), b: r(root)});
    }
    plots.forEach(({g, b}) => {
      if (b.width < MIN_W || b.height < MIN_H) add(`plot area only ${b.width.toFixed(0)}×${b.height.toFixed(0)} px`);
      g.querySelectorAll('.role-axis').forEach((ax) => {
        const aria = ax.getAttribute('aria-label') || '';
        const m = aria.match(/^Y-axis.*discrete scale with (\d+) values/);
        if (m && b.height / Number(m[1]) < MIN_BAND) add(`${(b.height / Number(m[1])).toFixed(0)} px per row on the y axis (${m[1]} rows)`);
      });
    });
    // marks: data marks with a visible size
    const marks = [...svg.querySelectorAll('.role-mark > *')].filter(
      (el) => !inside(el, '.role-axis') && !inside(el, '.role-legend') && !inside(el, '.role-title') && visible(el));
    if (!marks.length) add('no marks drawn');
    // points and bars outside the plot area they belong to
    if (plots.length === 1) {
      const p = plots[0].b;
      const stray = [...svg.querySelectorAll('.mark-symbol.role-mark > path')].filter((el) => {
        const b = r(el);
        const cx = (b.left + b.right) / 2, cy = (b.top + b.bottom) / 2;
        return b.width > 0 && (cx < p.left - 3 || cx > p.right + 3 || cy < p.top - 3 || cy > p.bottom + 3);
      });
      if (stray.length) add(`${stray.length} point(s) outside the plot area`);
    }
  });
  // tables: one wider than its column must say so right under it (the scrollbar alone is easy to miss)
  [...document.querySelectorAll('[data-testid=stDataFrame]')].filter((t) => t.offsetParent !== null).forEach((t, i) => {
    const scroller = t.querySelector('.dvn-scroller');
    if (!scroller || scroller.scrollWidth <= scroller.clientWidth + 2) return;
    const box = t.closest('[data-testid=stElementContainer]');
    const next = box && box.nextElementSibling;
    const cue = next && /scroll the table sideways/.test(next.innerText || '');
    if (!cue) out.push({chart: `table #${i + 1}`, problem: `wider than its column (${scroller.scrollWidth} > ${scroller.clientWidth} px) with no cue that it scrolls`});
  });
  return out;
}
