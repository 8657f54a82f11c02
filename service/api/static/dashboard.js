// resolvd dashboard: reads /diagnostics/summary and /diagnostics/recent and draws them.
// Plain DOM and SVG, no libraries; every value from the server goes in as text, never markup.
// Query parameters: ?refresh=N reloads the figures every N seconds (default 15).
"use strict";

(() => {
  const TOKEN_KEY = "resolvd.token";
  const SVG_NS = "http://www.w3.org/2000/svg";
  const RECENT_LIMIT = 50;
  // Bar colours in the order codes are ranked (most failures first); dashboard tests read them
  // back from the drawn bars, so change them freely.
  const PALETTE = [
    "#d62728", "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
  ];
  const CHART = { width: 720, height: 220, left: 36, right: 8, top: 10, bottom: 26 };

  const params = new URLSearchParams(window.location.search);
  const refreshSeconds = Math.min(Math.max(Number(params.get("refresh")) || 15, 1), 3600);

  const $ = (id) => document.getElementById(id);
  let timer = null;

  class NeedsToken extends Error {}

  function element(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function svg(tag, attributes) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      node.setAttribute(name, String(value));
    }
    return node;
  }

  function formatDuration(ms) {
    if (ms === null || ms === undefined) return "—";
    if (ms < 1000) return `${ms} ms`;
    if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
    const minutes = Math.floor(ms / 60000);
    return `${minutes} min ${Math.round((ms % 60000) / 1000)} s`;
  }

  function formatTime(iso) {
    if (!iso) return "—";
    return new Date(iso).toLocaleString([], {
      month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit",
    });
  }

  function formatHour(iso) {
    const date = new Date(iso);
    return `${String(date.getHours()).padStart(2, "0")}:00`;
  }

  async function fetchJSON(path) {
    const headers = { Accept: "application/json" };
    const token = window.sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = `Bearer ${token}`;
    const response = await fetch(path, { headers, cache: "no-store" });
    if (response.status === 401) throw new NeedsToken(path);
    if (!response.ok) {
      let detail = response.statusText;
      try {
        const problem = await response.json();
        detail = problem.detail || problem.title || detail;
      } catch (_) {
        // Not a problem document; the status line says enough.
      }
      throw new Error(`${path} answered ${response.status}: ${detail}`);
    }
    return response.json();
  }

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

  function renderChart(series) {
    const ranked = rankCodes(series);
    const colours = new Map(ranked.map(([code], i) => [code, PALETTE[i % PALETTE.length]]));
    const { width, height, left, right, top, bottom } = CHART;
    const plotWidth = width - left - right;
    const plotHeight = height - top - bottom;
    const peak = Math.max(1, ...series.map((hour) =>
      Object.values(hour.failures_by_code).reduce((sum, n) => sum + n, 0)));
    const slot = plotWidth / Math.max(series.length, 1);
    const chart = svg("svg", {
      viewBox: `0 0 ${width} ${height}`, role: "img", id: "failures-chart",
      "aria-label": "Failed jobs per hour, stacked by diagnostic code",
    });
    for (const value of [0, Math.ceil(peak / 2), peak]) {
      const y = top + plotHeight - (value / peak) * plotHeight;
      chart.append(svg("line", { x1: left, x2: width - right, y1: y, y2: y, class: "grid" }));
      const label = svg("text", { x: left - 6, y: y + 4, "text-anchor": "end" });
      label.textContent = String(value);
      chart.append(label);
    }
    const labelEvery = Math.max(1, Math.ceil(series.length / 12));
    series.forEach((hour, i) => {
      const x = left + i * slot;
      let y = top + plotHeight;
      for (const [code] of ranked) {
        const count = hour.failures_by_code[code] || 0;
        if (count === 0) continue;
        const barHeight = (count / peak) * plotHeight;
        y -= barHeight;
        const bar = svg("rect", {
          x: x + slot * 0.15, y, width: Math.max(slot * 0.7, 1), height: barHeight,
          fill: colours.get(code), class: "bar", "data-code": code, "data-count": count,
        });
        const tip = svg("title");
        tip.textContent = `${formatHour(hour.hour)}: ${code} × ${count}`;
        bar.append(tip);
        chart.append(bar);
      }
      if (i % labelEvery === 0) {
        const label = svg("text", { x: x + slot / 2, y: height - 8, "text-anchor": "middle" });
        label.textContent = formatHour(hour.hour);
        chart.append(label);
      }
    });
    chart.append(svg("line", {
      x1: left, x2: width - right, y1: top + plotHeight, y2: top + plotHeight, class: "axis",
    }));
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
      link.href = `jobs/${encodeURIComponent(job.id)}`;
      link.title = job.id;
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

  function askForToken(refused) {
    $("token-reason").textContent = refused
      ? "The server refused that token. Enter another one."
      : "This server needs a bearer token to show its figures.";
    $("token-form").hidden = false;
    $("token").focus();
    document.body.dataset.state = "needs-token";
  }

  function schedule() {
    window.clearTimeout(timer);
    timer = window.setTimeout(refresh, refreshSeconds * 1000);
  }

  async function refresh() {
    const hours = Number($("window").value);
    const since = new Date(Date.now() - hours * 3600 * 1000).toISOString();
    try {
      const [summary, recent] = await Promise.all([
        fetchJSON(`diagnostics/summary?since=${encodeURIComponent(since)}`),
        fetchJSON(`diagnostics/recent?limit=${RECENT_LIMIT}`),
      ]);
      renderTotals(summary);
      renderChart(summary.series);
      renderJobs(recent);
      renderPackages(summary);
      renderUpstream(summary);
      $("error").hidden = true;
      $("token-form").hidden = true;
      $("forget-token").hidden = !window.sessionStorage.getItem(TOKEN_KEY);
      $("updated").textContent = `Updated ${new Date().toLocaleTimeString()} · every ${refreshSeconds} s`;
      document.body.dataset.state = "ready";
    } catch (error) {
      if (error instanceof NeedsToken) {
        const refused = window.sessionStorage.getItem(TOKEN_KEY) !== null;
        window.sessionStorage.removeItem(TOKEN_KEY);
        askForToken(refused);
        return; // no polling until a token is entered
      }
      $("error").textContent = `Could not load the figures: ${error.message}`;
      $("error").hidden = false;
      document.body.dataset.state = "error";
    }
    schedule();
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("token-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const token = $("token").value.trim();
      if (!token) return;
      window.sessionStorage.setItem(TOKEN_KEY, token);
      $("token").value = "";
      $("token-form").hidden = true;
      refresh();
    });
    $("forget-token").addEventListener("click", () => {
      window.sessionStorage.removeItem(TOKEN_KEY);
      window.clearTimeout(timer);
      askForToken(false);
    });
    $("window").addEventListener("change", refresh);
    refresh();
  });
})();
