// resolvd pages' shared code: requests with the tab's bearer token, DOM and SVG nodes built from
// text (a value from the server never becomes markup), formats, tooltips, keyboard-walkable bar
// charts, authenticated downloads and the token form. Loaded before each page's own script.
"use strict";

window.resolvd = (() => {
  const TOKEN_KEY = "resolvd.token";
  const SVG_NS = "http://www.w3.org/2000/svg";
  // The app's root, from this script's own URL (…/static/common.js): the pages work at any
  // depth (/, /jobs/{id}/page) and behind a path prefix.
  const root = new URL("../", document.currentScript.src);
  const STATUS_PHRASES = {
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    407: "Proxy Authentication Required", 408: "Request Timeout", 409: "Conflict", 410: "Gone",
    429: "Too Many Requests", 451: "Unavailable For Legal Reasons", 500: "Internal Server Error",
    502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
  };

  class NeedsToken extends Error {}

  class HttpError extends Error {
    constructor(path, status, detail) {
      super(`${path} answered ${status}: ${detail}`);
      this.status = status;
      this.detail = detail;
    }
  }

  const $ = (id) => document.getElementById(id);

  function url(path) {
    return new URL(path, root).toString();
  }

  function token() {
    return window.sessionStorage.getItem(TOKEN_KEY);
  }

  function headers(accept) {
    const sent = { Accept: accept };
    const held = token();
    if (held) sent.Authorization = `Bearer ${held}`;
    return sent;
  }

  // A response for the app-relative ``path``; a 401 raises NeedsToken, another error HttpError.
  async function request(path, accept = "application/json", options = {}) {
    const response = await fetch(url(path), { headers: headers(accept), cache: "no-store", ...options });
    if (response.status === 401) throw new NeedsToken(path);
    if (!response.ok) {
      let detail = response.statusText;
      try {
        const problem = await response.json();
        detail = problem.detail || problem.title || detail;
      } catch (_) {
        // Not a problem document; the status line says enough.
      }
      throw new HttpError(path, response.status, detail);
    }
    return response;
  }

  async function fetchJSON(path) {
    return (await request(path)).json();
  }

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
    if (ms < 1000) return `${Math.round(ms)} ms`;
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

  function formatDay(isoDate) {
    // A UTC calendar day ("2026-11-25") as "Nov 25", without shifting it to local time.
    return new Date(`${isoDate}T00:00:00Z`).toLocaleDateString([], {
      month: "short", day: "numeric", timeZone: "UTC",
    });
  }

  function describeStatus(status) {
    if (status === null || status === undefined) return "—";
    const phrase = STATUS_PHRASES[status];
    return phrase ? `${status} ${phrase}` : String(status);
  }

  function between(startIso, endIso) {
    if (!startIso || !endIso) return null;
    return new Date(endIso).getTime() - new Date(startIso).getTime();
  }

  // -- tooltips ---------------------------------------------------------------------------
  // One floating box for every chart mark; shown on hover and on keyboard focus, and read out
  // by screen readers (aria-live).
  let tooltip = null;

  function showTip(mark, text) {
    if (!tooltip) {
      tooltip = element("div", null, "tooltip");
      tooltip.id = "tooltip";
      tooltip.setAttribute("role", "status");
      tooltip.setAttribute("aria-live", "polite");
      document.body.append(tooltip);
    }
    tooltip.textContent = text;
    tooltip.hidden = false;
    const box = mark.getBoundingClientRect();
    const tip = tooltip.getBoundingClientRect();
    const left = Math.min(
      Math.max(window.scrollX + box.left + box.width / 2 - tip.width / 2, window.scrollX + 4),
      window.scrollX + document.documentElement.clientWidth - tip.width - 4,
    );
    tooltip.style.left = `${left}px`;
    tooltip.style.top = `${window.scrollY + box.top - tip.height - 8}px`;
  }

  function hideTip() {
    if (tooltip) tooltip.hidden = true;
  }

  // Make a chart one tab stop whose marks the arrow keys walk (Home/End jump), each showing its
  // tooltip; the mouse shows the same tooltips. ``marks`` are [node, text] pairs, left to right.
  function walkable(chart, marks, label) {
    chart.setAttribute("tabindex", "0");
    chart.setAttribute("aria-label", `${label}. Use the arrow keys to read each bar.`);
    let active = -1;
    const activate = (index) => {
      if (marks.length === 0) return;
      if (active >= 0) marks[active][0].classList.remove("active");
      active = Math.min(Math.max(index, 0), marks.length - 1);
      const [node, text] = marks[active];
      node.classList.add("active");
      showTip(node, text);
    };
    for (const [node, text] of marks) {
      node.setAttribute("aria-label", text);
      node.addEventListener("mouseenter", () => showTip(node, text));
      node.addEventListener("mouseleave", hideTip);
    }
    chart.addEventListener("focus", () => activate(active >= 0 ? active : marks.length - 1));
    chart.addEventListener("blur", () => {
      if (active >= 0) marks[active][0].classList.remove("active");
      hideTip();
    });
    chart.addEventListener("keydown", (event) => {
      const moves = { ArrowLeft: active - 1, ArrowRight: active + 1, Home: 0, End: marks.length - 1 };
      if (!(event.key in moves)) return;
      event.preventDefault();
      activate(moves[event.key]);
    });
  }

  // -- downloads ----------------------------------------------------------------------------
  // A link to a file the API serves: its href stays a real URL (copyable, openable without
  // authentication), and a click fetches it with the tab's token and saves it under ``filename``.
  function downloadLink(text, path, filename, onError) {
    const link = element("a", text);
    link.href = url(path);
    link.download = filename;
    link.addEventListener("click", async (event) => {
      event.preventDefault();
      try {
        const response = await request(path, "*/*");
        const blob = await response.blob();
        const saved = document.createElement("a");
        saved.href = URL.createObjectURL(blob);
        saved.download = filename;
        document.body.append(saved);
        saved.click();
        saved.remove();
        window.setTimeout(() => URL.revokeObjectURL(saved.href), 10000);
      } catch (error) {
        onError(error);
      }
    });
    return link;
  }

  // -- the token form -------------------------------------------------------------------------
  // ``load`` draws the page; it is called again once a token is entered.
  function setUpToken(load, stop) {
    $("token-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const entered = $("token").value.trim();
      if (!entered) return;
      window.sessionStorage.setItem(TOKEN_KEY, entered);
      $("token").value = "";
      $("token-form").hidden = true;
      load();
    });
    $("forget-token").addEventListener("click", () => {
      window.sessionStorage.removeItem(TOKEN_KEY);
      stop();
      askForToken(false);
    });
  }

  function askForToken(refused) {
    $("token-reason").textContent = refused
      ? "The server refused that token. Enter another one."
      : "This server needs a bearer token to show this page.";
    $("token-form").hidden = false;
    $("token").focus();
    document.body.dataset.state = "needs-token";
  }

  // After a 401: forget the token that failed and ask for another. A page loads several
  // documents at once: the later 401s of one load find the token gone and the form up, and
  // leave it as the first one put it ("refused" stays said).
  function tokenRefused() {
    const refused = token() !== null;
    window.sessionStorage.removeItem(TOKEN_KEY);
    if (!refused && document.body.dataset.state === "needs-token") return;
    askForToken(refused);
  }

  function tokenAccepted() {
    $("token-form").hidden = true;
    $("forget-token").hidden = !token();
  }

  function showError(text) {
    $("error").textContent = text;
    $("error").hidden = !text;
  }

  return {
    $, NeedsToken, HttpError, url, request, fetchJSON, element, svg, formatDuration,
    formatTime, formatDay, describeStatus, between, walkable, downloadLink, setUpToken,
    tokenRefused, tokenAccepted, showError, showTip, hideTip,
  };
})();
