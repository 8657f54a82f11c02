// resolvd dashboard: reads /diagnostics/summary, /diagnostics/recent, /indexes and each index's
// /indexes/{name}/blocked, and draws them. Plain DOM and SVG, no libraries (see common.js).
// Query parameters: ?window=24h|7d|30d picks the window (the selector keeps it current), and
// ?refresh=N reloads the figures every N seconds (default 15).
"use strict";

(() => {
  const {
    $, NeedsToken, fetchJSON, element, svg, formatDuration, formatTime, formatDay,
    describeStatus, walkable, setUpToken, tokenRefused, tokenAccepted, showError,
  } = window.resolvd;

  const RECENT_LIMIT = 50;
  const WINDOWS = { "24h": 24, "7d": 7 * 24, "30d": 30 * 24 };
  // Bar colours in the order codes are ranked (most failures first); dashboard tests read them
  // back from the drawn bars, so change them freely.
  const PALETTE = [
    "#d62728", "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
  ];
  // Margins in CSS pixels: the chart is drawn at its box's width, one unit to a pixel, so its
  // 12px labels stay 12px (a scaled viewBox shrank them below legibility).
  const CHART = { height: 240, left: 52, right: 12, top: 12, bottom: 44 };
  const SPARK = { width: 150, height: 28 };

  const params = new URLSearchParams(window.location.search);
  const refreshSeconds = Math.min(Math.max(Number(params.get("refresh")) || 15, 1), 3600);

  let timer = null;
  let lastSeries = null;
  let drawnWidth = 0;

  function fillTable(id, rows) {
    const body = $(id).tBodies[0];
    body.replaceChildren(...rows);
    $(`${id}-empty`).hidden = rows.length > 0;
  }

  function renderTotals(summary) {
    const tiles = [];
    const statuses = Object.entries(summary.jobs).sort((a, b) => b[1] - a[1]);
    if (statuses.length === 0) statuses.push(["finished", 0]);
    for (const [status, count] of statuses) {
      const tile = element("div", null, `tile ${status}`);
      tile.append(element("span", count, "count"), element("span", `${status} jobs`, "label"));
      tiles.push(tile);
    }
    for (const [kind, count] of Object.entries(summary.failures_by_kind).sort((a, b) => b[1] - a[1])) {
      const tile = element("div", null, "tile failed");
      tile.append(element("span", count, "count"), element("span", `failed: ${kind}`, "label"));
      tiles.push(tile);
    }
    $("totals").replaceChildren(...tiles);
  }

  function rankCodes(series) {
    const totals = new Map();
    for (const hour of series) {
      for (const [code, count] of Object.entries(hour.failures_by_code)) {
        totals.set(code, (totals.get(code) || 0) + count);
      }
    }
    return [...totals.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  }

  function formatHour(iso, withDay) {
    const date = new Date(iso);
    const hour = `${String(date.getHours()).padStart(2, "0")}:00`;
    if (!withDay) return hour;
    return `${date.toLocaleDateString([], { month: "short", day: "numeric" })} ${hour}`;
  }

  function axisText(chart, x, y, text, anchor, className) {
    const label = svg("text", { x, y, "text-anchor": anchor, class: className || "tick" });
    label.textContent = text;
    chart.append(label);
  }

  function renderChart(series) {
    lastSeries = series;
    const ranked = rankCodes(series);
    const colours = new Map(ranked.map(([code], i) => [code, PALETTE[i % PALETTE.length]]));
    const { height, left, right, top, bottom } = CHART;
    drawnWidth = $("chart").clientWidth;
    const width = Math.max(drawnWidth, 320);
    const plotWidth = width - left - right;
    const plotHeight = height - top - bottom;
    const peak = Math.max(1, ...series.map((hour) =>
      Object.values(hour.failures_by_code).reduce((sum, n) => sum + n, 0)));
    const slot = plotWidth / Math.max(series.length, 1);
    const multiDay = series.length > 24;
    const chart = svg("svg", {
      width, height, viewBox: `0 0 ${width} ${height}`, role: "img", id: "failures-chart",
    });
    for (const value of [...new Set([0, Math.ceil(peak / 2), peak])]) {
      const y = top + plotHeight - (value / peak) * plotHeight;
      chart.append(svg("line", { x1: left, x2: width - right, y1: y, y2: y, class: "grid" }));
      axisText(chart, left - 8, y + 4, String(value), "end");
    }
    const marks = [];
    // Room for a label every ~64 px (wider ones when they carry the day too).
    const labelEvery = Math.max(1, Math.ceil((multiDay ? 110 : 64) / slot));
    series.forEach((hour, i) => {
      const x = left + i * slot;
      let y = top + plotHeight;
      for (const [code] of ranked) {
        const count = hour.failures_by_code[code] || 0;
        if (count === 0) continue;
        const barHeight = (count / peak) * plotHeight;
        y -= barHeight;
        const bar = svg("rect", {
          x: x + slot * 0.15, y, width: Math.max(slot * 0.7, 2), height: barHeight,
          fill: colours.get(code), class: "bar", "data-code": code, "data-count": count,
        });
        chart.append(bar);
        marks.push([bar, `${formatHour(hour.hour, true)}: ${count} failed with ${code}`]);
      }
      if (i % labelEvery === 0) {
        axisText(chart, x + slot / 2, top + plotHeight + 18, formatHour(hour.hour, multiDay), "middle");
      }
    });
    chart.append(svg("line", {
      x1: left, x2: width - right, y1: top + plotHeight, y2: top + plotHeight, class: "axis",
    }));
    axisText(chart, left + plotWidth / 2, height - 6, "Hour (local time)", "middle", "axis-title");
    const yTitle = svg("text", {
      x: 0, y: 0, "text-anchor": "middle", class: "axis-title",
      transform: `translate(14 ${top + plotHeight / 2}) rotate(-90)`,
    });
    yTitle.textContent = "Failed jobs";
    chart.append(yTitle);
    walkable(chart, marks, "Failed jobs per hour, stacked by diagnostic code");
    $("chart").replaceChildren(chart);

    const legend = ranked.map(([code, total]) => {
      const item = element("li");
      const swatch = svg("svg", { width: 12, height: 12, "aria-hidden": "true" });
      swatch.append(svg("rect", { width: 12, height: 12, fill: colours.get(code) }));
      item.append(swatch, element("code", code), document.createTextNode(` ${total}`));
      item.dataset.code = code;
      return item;
    });
    if (legend.length === 0) legend.push(element("li", "No failures in this window.", "empty"));
    $("legend").replaceChildren(...legend);
  }

  function renderJobs(recent) {
    fillTable("jobs", recent.jobs.map((job) => {
      const row = element("tr");
      row.dataset.jobId = job.id;
      const link = element("a", job.id.slice(0, 10));
      link.href = `jobs/${encodeURIComponent(job.id)}/page`;
      link.title = `Open job ${job.id}`;
      const jobCell = element("td");
      jobCell.append(link);
      row.append(
        element("td", formatTime(job.finished_at)),
        element("td", job.status, `status ${job.status}`),
        element("td", formatDuration(job.duration_ms), "num"),
        element("td", job.requirements.join(", ")),
        element("td", job.failure_kind || ""),
        jobCell,
      );
      return row;
    }));
  }

  function renderPackages(summary) {
    fillTable("packages", summary.top_failing_packages.map((entry) => {
      const row = element("tr");
      row.append(element("td", entry.package), element("td", entry.count, "num"));
      return row;
    }));
  }

  function renderUpstream(summary) {
    const statuses = [...new Set(summary.upstream_responses.map((u) => u.status))].sort((a, b) => a - b);
    const byIndex = new Map();
    for (const { index, status, count } of summary.upstream_responses) {
      if (!byIndex.has(index)) byIndex.set(index, new Map());
      byIndex.get(index).set(status, count);
    }
    const head = element("tr");
    head.append(element("th", "Index"), ...statuses.map((s) => element("th", s, `num http${Math.floor(s / 100)}`)));
    $("upstream").tHead.replaceChildren(head);
    const rows = [...byIndex.keys()].sort().map((index) => {
      const row = element("tr");
      row.dataset.index = index;
      row.append(element("td", index));
      for (const status of statuses) {
        const cell = element("td", byIndex.get(index).get(status) || 0, `num http${Math.floor(status / 100)}`);
        cell.dataset.status = status;
        row.append(cell);
      }
      return row;
    });
    fillTable("upstream", rows);
  }

  // -- what each mirror blocks ----------------------------------------------------------------

  function sparkline(days, counts, what) {
    const { width, height } = SPARK;
    const peak = Math.max(1, ...counts);
    const slot = width / Math.max(days.length, 1);
    const chart = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "spark", role: "img" });
    chart.append(svg("line", { x1: 0, x2: width, y1: height - 0.5, y2: height - 0.5, class: "axis" }));
    const marks = days.map((day, i) => {
      const barHeight = counts[i] ? Math.max((counts[i] / peak) * (height - 2), 2) : 0;
      const bar = svg("rect", {
        x: i * slot + slot * 0.1, y: height - 1 - barHeight, width: Math.max(slot * 0.8, 1),
        height: barHeight, class: "bar", "data-day": day, "data-count": counts[i],
      });
      // An empty day still gets a mark to hover and to walk to: a transparent full-height slot.
      const hit = svg("rect", { x: i * slot, y: 0, width: slot, height, class: "hit" });
      chart.append(bar, hit);
      const jobs = counts[i] === 1 ? "1 job" : `${counts[i]} jobs`;
      return [hit, `${formatDay(day)}: ${what} refused in ${jobs}`];
    });
    walkable(chart, marks, `Jobs that met ${what}'s refusal per day`);
    return chart;
  }

  function renderBlocked(catalogues) {
    const blocks = catalogues.map(({ index, catalogue }) => {
      const block = element("div", null, "blocked-index");
      block.dataset.index = index;
      const caption = `${index}: ${catalogue.total} refused in this window`;
      block.append(element("h3", caption));
      if (catalogue.versions.length === 0) {
        block.append(element("p", `Nothing refused by ${index} in this window.`, "empty"));
        return block;
      }
      const table = element("table", null, "blocked");
      const head = element("tr");
      for (const [title, numeric] of [
        ["Package", false], ["Version", false], ["Status", false], ["First seen", false],
        ["Last seen", false], ["Jobs", true], ["Forced to another version", true],
        ["Failed", true], ["Jobs per day", false],
      ]) {
        const th = element("th", title, numeric ? "num" : "");
        th.scope = "col";
        head.append(th);
      }
      table.createTHead().append(head);
      const body = table.createTBody();
      for (const entry of catalogue.versions) {
        const row = element("tr");
        row.dataset.package = entry.package;
        row.dataset.version = entry.version || "";
        row.dataset.status = entry.status;
        const what = entry.version ? `${entry.package}==${entry.version}` : `${entry.package} (project page)`;
        const spark = element("td");
        spark.append(sparkline(catalogue.days, entry.per_day, what));
        row.append(
          element("td", entry.package),
          element("td", entry.version || "every version (project page)"),
          element("td", describeStatus(entry.status), "http4"),
          element("td", formatTime(entry.first_seen)),
          element("td", formatTime(entry.last_seen)),
          element("td", entry.jobs, "num jobs"),
          element("td", entry.forced, "num forced"),
          element("td", entry.failed, "num failed"),
          spark,
        );
        body.append(row);
      }
      block.append(table);
      if (catalogue.total > catalogue.versions.length) {
        block.append(element("p", `The ${catalogue.versions.length} most recently seen of ${catalogue.total}.`, "empty"));
      }
      return block;
    });
    if (blocks.length === 0) blocks.push(element("p", "No index is configured.", "empty"));
    $("blocked").replaceChildren(...blocks);
  }

  function renderImpact(catalogues) {
    const rows = [];
    for (const { index, catalogue } of catalogues) {
      for (const { status, jobs } of catalogue.policy_impact) {
        const row = element("tr");
        row.dataset.index = index;
        row.dataset.status = status;
        row.append(element("td", index), element("td", describeStatus(status)), element("td", jobs, "num"));
        rows.push(row);
      }
    }
    fillTable("impact", rows);
  }

  async function loadCatalogues(since) {
    const indexes = await fetchJSON("indexes");
    return Promise.all(indexes.map(async ({ name }) => ({
      index: name,
      catalogue: await fetchJSON(
        `indexes/${encodeURIComponent(name)}/blocked?since=${encodeURIComponent(since)}`),
    })));
  }

  // -- the window, in the URL ---------------------------------------------------------------

  function selectedWindow() {
    const chosen = $("window").value;
    return chosen in WINDOWS ? chosen : "24h";
  }

  function keepWindowInURL() {
    const query = new URLSearchParams(window.location.search);
    query.set("window", selectedWindow());
    window.history.replaceState(null, "", `${window.location.pathname}?${query}`);
  }

  function schedule() {
    window.clearTimeout(timer);
    timer = window.setTimeout(refresh, refreshSeconds * 1000);
  }

  async function refresh() {
    // Someone is reading a chart with the keyboard: redrawing it would take their focus away.
    if (document.activeElement instanceof SVGSVGElement) {
      schedule();
      return;
    }
    const hours = WINDOWS[selectedWindow()];
    const since = new Date(Date.now() - hours * 3600 * 1000).toISOString();
    try {
      const [summary, recent, catalogues] = await Promise.all([
        fetchJSON(`diagnostics/summary?since=${encodeURIComponent(since)}`),
        fetchJSON(`diagnostics/recent?limit=${RECENT_LIMIT}`),
        loadCatalogues(since),
      ]);
      renderTotals(summary);
      renderChart(summary.series);
      renderJobs(recent);
      renderPackages(summary);
      renderUpstream(summary);
      renderBlocked(catalogues);
      renderImpact(catalogues);
      showError("");
      tokenAccepted();
      $("updated").textContent = `Updated ${new Date().toLocaleTimeString()} · every ${refreshSeconds} s`;
      document.body.dataset.state = "ready";
    } catch (error) {
      if (error instanceof NeedsToken) {
        tokenRefused();
        return; // no polling until a token is entered
      }
      showError(`Could not load the figures: ${error.message}`);
      document.body.dataset.state = "error";
    }
    schedule();
  }

  document.addEventListener("DOMContentLoaded", () => {
    const asked = params.get("window");
    if (asked in WINDOWS) $("window").value = asked;
    setUpToken(refresh, () => window.clearTimeout(timer));
    $("window").addEventListener("change", () => {
      keepWindowInURL();
      refresh();
    });
    // Redraw the chart when its box changes width (its labels keep their pixel size); a
    // change of height alone (a full-page screenshot, say) leaves it as it is.
    let resizing = null;
    window.addEventListener("resize", () => {
      window.clearTimeout(resizing);
      resizing = window.setTimeout(() => {
        if (lastSeries && $("chart").clientWidth !== drawnWidth) renderChart(lastSeries);
      }, 150);
    });
    refresh();
  });
})();
