// resolvd job view, at /jobs/{id}/page: one job for a person. Reads /jobs/{id} with the tab's
// token (a job is visible to its owner only), follows /jobs/{id}/events while it runs, and draws
// the status and timing; for a failure the explanation, the hints with the setting each one
// changes and the fetch errors by index and status; for a success the lock downloads, what the
// resolution worked around, the changes from a previous lock, and the packages (filterable).
"use strict";

(() => {
  const {
    $, NeedsToken, HttpError, request, fetchJSON, element, formatDuration, formatTime,
    describeStatus, between, downloadLink, setUpToken, tokenRefused, tokenAccepted, showError,
  } = window.resolvd;

  const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
  const LOCKS = [
    ["pylock", "pylock.toml"],
    ["requirements", "requirements.txt"],
    ["pip-report", "pip-report.json"],
  ];
  // What an index refused: skipped under ignore_error_codes (a warning) or fatal (an error).
  const REFUSAL_CODES = new Set([
    "metadata_unavailable", "index_forbidden", "index_unauthorized", "index_error",
  ]);
  const POLL_SECONDS = 10;

  // /jobs/{id}/page: the id is the segment before "page".
  const segments = window.location.pathname.split("/");
  const jobId = decodeURIComponent(segments[segments.length - 2] || "");
  const jobPath = `jobs/${encodeURIComponent(jobId)}`;

  let current = null;
  let ticker = null;
  let following = null;

  function definitions(id, pairs) {
    const items = [];
    for (const [term, value] of pairs) {
      if (value === null || value === undefined || value === "") continue;
      const dt = element("dt", term);
      const dd = element("dd");
      if (value instanceof Node) dd.append(value);
      else dd.textContent = String(value);
      items.push(dt, dd);
    }
    $(id).replaceChildren(...items);
  }

  function codeList(values) {
    const list = element("span");
    values.forEach((value, i) => {
      if (i > 0) list.append(document.createTextNode(", "));
      list.append(element("code", value));
    });
    return list;
  }

  function describeIndexes(indexes) {
    if (!indexes || indexes.length === 0) return "the server's configured indexes";
    return indexes.map((index) => {
      const policy = index.ignore_error_codes;
      const parts = policy
        ? Object.entries(policy).map(([where, codes]) => `${where}: ${codes.join(", ") || "none"}`)
        : [];
      const name = index.format === "flat" ? `${index.name || index.url} (flat)` : index.name || index.url;
      return parts.length ? `${name} (ignoring ${parts.join("; ")})` : name;
    }).join(", ");
  }

  function describeSources(sources) {
    const pairs = Object.entries(sources || {});
    return pairs.length ? pairs.map(([name, index]) => `${name} → ${index}`).join(", ") : null;
  }

  function describeCutoffs(request) {
    const parts = [];
    if (request.exclude_newer) {
      const span = request.exclude_newer_span;
      parts.push(span ? `${request.exclude_newer} (${span} before it was accepted)` : request.exclude_newer);
    }
    for (const [name, cutoff] of Object.entries(request.exclude_newer_package || {})) {
      parts.push(`${name}: ${cutoff === false ? "none" : cutoff}`);
    }
    return parts.length ? parts.join("; ") : null;
  }

  function renderOverview(job) {
    const status = $("status");
    status.textContent = job.status;
    status.className = `badge ${job.status}`;
    const roots = job.request.requirements;
    $("subject").textContent = roots.join(", ");
    document.title = `${job.status}: ${roots.join(", ")} · resolvd`;
    const stats = job.result ? job.result.stats : null;
    const counters = stats || job.progress;
    definitions("timing", [
      ["Created", formatTime(job.created_at)],
      ["Started", job.started_at ? formatTime(job.started_at) : "not yet"],
      ["Finished", job.finished_at ? formatTime(job.finished_at) : null],
      ["Waited in the queue", job.started_at ? formatDuration(between(job.created_at, job.started_at)) : null],
      ["Ran for", formatDuration(between(job.started_at, job.finished_at))],
      ["Requests", counters ? `${counters.requests} (${counters.cache_hits} from cache)` : null],
      ["Rounds", counters ? counters.rounds : null],
    ]);
    const target = job.request.universal
      ? "every environment (universal)"
      : `Python ${job.request.environment.python_version} on ${job.request.environment.platform}`;
    definitions("request", [
      ["Requirements", codeList(roots)],
      ["Constraints", job.request.constraints.length ? codeList(job.request.constraints) : null],
      ["Overrides", job.request.overrides.length ? codeList(job.request.overrides) : null],
      ["Target", target],
      ["Indexes", `${describeIndexes(job.request.indexes)} · ${job.request.index_strategy}`],
      ["Pinned to an index", describeSources(job.request.sources)],
      ["Upload cutoff", describeCutoffs(job.request)],
      ["Deadline", `${job.request.deadline_seconds} s`],
    ]);
  }

  // -- while it runs --------------------------------------------------------------------------

  function renderProgress(job) {
    const live = !TERMINAL.has(job.status);
    $("progress-section").hidden = !live;
    window.clearInterval(ticker);
    if (!live) return;
    const bar = $("progress-bar");
    const draw = () => {
      const p = job.progress;
      if (job.status === "queued" || !job.started_at) {
        bar.removeAttribute("value"); // indeterminate: waiting for a worker
        $("progress-text").textContent = "Queued: waiting for a worker.";
        return;
      }
      const elapsed = Date.now() - new Date(job.started_at).getTime();
      const deadline = job.request.deadline_seconds * 1000;
      bar.max = deadline;
      bar.value = Math.min(elapsed, deadline);
      $("progress-text").textContent =
        `Running for ${formatDuration(elapsed)} of its ${formatDuration(deadline)} deadline · ` +
        `${p.packages} packages · ${p.versions_tried} versions tried · ${p.rounds} rounds · ` +
        `${p.requests} requests (${p.cache_hits} from cache)`;
    };
    draw();
    ticker = window.setInterval(draw, 1000);
  }

  // -- a failure --------------------------------------------------------------------------------

  function settingAdvice(hint) {
    const data = hint.data || {};
    const advice = [];
    if (data.setting) {
      const line = element("p", null, "setting");
      line.append(document.createTextNode("Setting to change: "), element("code", data.setting));
      if (data.value !== undefined) {
        line.append(document.createTextNode(" → "), element("code", JSON.stringify(data.value)));
      }
      advice.push(line);
    }
    const suggestion = data.suggestion;
    if (suggestion && typeof suggestion === "object" && suggestion.ignore_error_codes) {
      // Where the policy goes: this job's request, or the index's entry in the server's config.
      const fragment = {
        indexes: [{ name: suggestion.index, ignore_error_codes: suggestion.ignore_error_codes }],
      };
      const policy = Object.entries(suggestion.ignore_error_codes)
        .map(([where, codes]) => `${where} = [${codes.join(", ")}]`).join(", ");
      advice.push(element("p", "In the request (POST /resolve):", "setting"));
      advice.push(element("pre", JSON.stringify(fragment), "snippet request"));
      advice.push(element("p", `Or for every job, in the server's [[index]] named "${suggestion.index}":`, "setting"));
      advice.push(element("pre", `ignore_error_codes = { ${policy} }`, "snippet config"));
    } else if (typeof suggestion === "string") {
      const line = element("p", null, "setting");
      line.append(document.createTextNode("Did you mean "), element("code", suggestion),
        document.createTextNode("?"));
      advice.push(line);
    }
    return advice;
  }

  function renderHints(hints) {
    const items = hints.map((hint) => {
      const item = element("li", null, `hint ${hint.severity}`);
      item.dataset.code = hint.code;
      const head = element("p");
      head.append(element("code", hint.code, "code"), document.createTextNode(` ${hint.message}`));
      item.append(head, ...settingAdvice(hint));
      return item;
    });
    $("hints").replaceChildren(...items);
    $("hints-empty").hidden = items.length > 0;
  }

  function renderFetchErrors(errors) {
    const groups = new Map();
    for (const error of errors) {
      const key = `${error.index || "—"}\u001f${error.status ?? ""}`;
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push(error);
    }
    const seen = new Set();
    const table = $("fetch-errors");
    for (const body of [...table.tBodies]) body.remove();
    const keys = [...groups.keys()].sort();
    for (const key of keys) {
      const [index, status] = key.split("\u001f");
      const body = table.createTBody();
      body.dataset.index = index;
      body.dataset.status = status;
      const rows = groups.get(key).filter((e) => {
        const id = `${e.code}|${e.package}|${e.version}|${e.url}`;
        if (seen.has(id)) return false;
        seen.add(id);
        return true;
      });
      const heading = element("tr", null, "group");
      const th = element("th", `${index} · ${status ? describeStatus(Number(status)) : "no status"} · ${rows.length}`);
      th.colSpan = 4;
      th.scope = "rowgroup";
      heading.append(th);
      body.append(heading);
      for (const error of rows) {
        const row = element("tr");
        row.dataset.code = error.code;
        row.append(
          element("td", error.package || "—"),
          element("td", error.version || "—"),
          element("td", error.code, "code"),
          element("td", error.message),
        );
        body.append(row);
      }
    }
    $("fetch-errors-block").hidden = keys.length === 0;
  }

  function renderFailure(job) {
    const failure = job.failure;
    $("failure-section").hidden = !failure;
    if (!failure) return;
    $("failure-title").textContent = job.status === "cancelled" ? "Why it stopped" : "Why it failed";
    $("failure-kind").textContent = failure.kind;
    $("explanation").textContent = failure.message;
    renderHints(failure.hints || []);
    renderFetchErrors(failure.fetch_errors || []);
  }

  // -- a success ----------------------------------------------------------------------------------

  function renderLocks(job) {
    const succeeded = job.status === "succeeded";
    $("locks-section").hidden = !succeeded;
    if (!succeeded) return;
    const onError = (error) => {
      if (error instanceof NeedsToken) {
        tokenRefused();
        return;
      }
      $("lock-error").textContent = `Could not download: ${error.message}`;
      $("lock-error").hidden = false;
    };
    const links = [];
    for (const [format, filename] of LOCKS) {
      const link = downloadLink(filename, `${jobPath}/lock?format=${format}`, filename, onError);
      link.className = "download";
      link.dataset.format = format;
      links.push(link);
    }
    links.push(downloadLink("job document (JSON)", jobPath, `job-${jobId}.json`, onError));
    $("locks").replaceChildren(...links);
  }

  function warningTable(title, warnings, columns) {
    const block = element("div", null, "warning-group");
    block.append(element("h3", `${title} (${warnings.length})`));
    const table = element("table", null, "warnings");
    const head = element("tr");
    for (const [name] of columns) {
      const th = element("th", name);
      th.scope = "col";
      head.append(th);
    }
    table.createTHead().append(head);
    const body = table.createTBody();
    for (const warning of warnings) {
      const row = element("tr");
      row.dataset.code = warning.code;
      if (warning.package) row.dataset.package = warning.package;
      if (warning.version) row.dataset.version = warning.version;
      for (const [, value, className] of columns) row.append(element("td", value(warning), className));
      body.append(row);
    }
    block.append(table);
    return block;
  }

  function renderWarnings(warnings) {
    $("warnings-section").hidden = warnings.length === 0;
    const skipped = warnings.filter((w) => REFUSAL_CODES.has(w.code));
    const yanked = warnings.filter((w) => w.code === "yanked");
    const others = warnings.filter((w) => !REFUSAL_CODES.has(w.code) && w.code !== "yanked");
    const groups = [];
    if (skipped.length) {
      groups.push(warningTable("Versions skipped under a policy", skipped, [
        ["Package", (w) => w.package || "—"],
        ["Version", (w) => w.version || "every version (project page)"],
        ["Index", (w) => w.index || "—"],
        ["Status", (w) => describeStatus(w.status), "status-code"],
        ["Setting", (w) => (w.data && w.data.setting) || "ignore_error_codes"],
        ["What happened", (w) => w.message],
      ]));
    }
    if (yanked.length) {
      groups.push(warningTable("Yanked versions passed over", yanked, [
        ["Package", (w) => w.package || "—"],
        ["Version", (w) => w.version || "—"],
        ["Index", (w) => w.index || "—"],
        ["What happened", (w) => w.message],
      ]));
    }
    if (others.length) {
      groups.push(warningTable("Other warnings", others, [
        ["Code", (w) => w.code],
        ["Package", (w) => w.package || "—"],
        ["What happened", (w) => w.message],
      ]));
    }
    $("warnings").replaceChildren(...groups);
  }

  function renderChanges(changes) {
    // ``changes`` is there only when the request gave a previous lock.
    $("changes-section").hidden = !Array.isArray(changes);
    if (!Array.isArray(changes)) return;
    const rows = changes.map((change) => {
      const row = element("tr", null, `change ${change.kind}`);
      row.dataset.name = change.name;
      row.dataset.kind = change.kind;
      row.append(
        element("td", change.name),
        element("td", change.from || "—"),
        element("td", change.to || "—"),
        element("td", change.kind),
        element("td", change.reason || ""),
      );
      return row;
    });
    $("changes").tBodies[0].replaceChildren(...rows);
    $("changes-empty").hidden = rows.length > 0;
  }

  function renderPackages(packages) {
    $("packages-section").hidden = false;
    const withMarkers = packages.some((p) => p.markers);
    const columns = [
      ["Package", (p) => element("td", p.name)],
      ["Version", (p) => element("td", p.version)],
      ...(withMarkers ? [["Installed when", (p) => element("td", p.markers || "always", "markers")]] : []),
      ["Index", (p) => element("td", p.index)],
      ["Requested", (p) => element("td", p.requested ? "yes" : "")],
      ["Required by", (p) => element("td", p.required_by.join(", "))],
      ["File", (p) => element("td", p.file ? p.file.filename : `${(p.files || []).length} files`)],
    ];
    const head = $("packages").tHead.rows[0];
    head.replaceChildren(...columns.map(([name]) => {
      const th = element("th", name);
      th.scope = "col";
      return th;
    }));
    const rows = packages.map((p) => {
      const row = element("tr");
      row.dataset.name = p.name;
      row.dataset.version = p.version;
      row.dataset.search = `${p.name} ${p.version}`.toLowerCase();
      row.append(...columns.map(([, cell]) => cell(p)));
      return row;
    });
    $("packages").tBodies[0].replaceChildren(...rows);
    applyFilter();
  }

  function applyFilter() {
    const needle = $("package-filter").value.trim().toLowerCase();
    const rows = [...$("packages").tBodies[0].rows];
    let shown = 0;
    for (const row of rows) {
      row.hidden = needle !== "" && !row.dataset.search.includes(needle);
      if (!row.hidden) shown += 1;
    }
    $("package-count").textContent = needle ? `${shown} of ${rows.length}` : `${rows.length}`;
    $("packages-empty").hidden = shown > 0;
  }

  function renderResult(job) {
    const result = job.result;
    if (!result) {
      for (const id of ["warnings-section", "changes-section", "packages-section"]) $(id).hidden = true;
      return;
    }
    renderWarnings(result.warnings || []);
    renderChanges(result.changes);
    renderPackages(result.packages);
  }

  function render(job) {
    current = job;
    renderOverview(job);
    renderProgress(job);
    renderFailure(job);
    renderLocks(job);
    renderResult(job);
    $("job").hidden = false;
    showError("");
    tokenAccepted();
    $("updated").textContent = TERMINAL.has(job.status)
      ? `Finished ${formatTime(job.finished_at)}`
      : `Live · updated ${new Date().toLocaleTimeString()}`;
    document.body.dataset.status = job.status;
    document.body.dataset.state = "ready";
  }

  // -- following a live job ---------------------------------------------------------------------

  // Server-sent events read with fetch (EventSource cannot send the bearer token): each `job`
  // event carries the whole document.
  async function followEvents(signal) {
    const response = await request(`${jobPath}/events`, "text/event-stream", { signal });
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value.replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let event = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if (event === "job") render(JSON.parse(data.join("\n")));
        else if (event === "gone") throw new HttpError(jobPath, 404, "the job expired");
      }
    }
  }

  async function follow() {
    if (following) following.abort();
    following = new AbortController();
    const { signal } = following;
    try {
      await followEvents(signal);
    } catch (error) {
      if (signal.aborted) return;
      if (!(error instanceof TypeError)) throw error; // a dropped stream: poll instead
    }
    // The stream ended (or dropped) before the job did: long-poll until it ends.
    while (!signal.aborted && current && !TERMINAL.has(current.status)) {
      render(await fetchJSON(`${jobPath}?wait=${POLL_SECONDS}`));
    }
  }

  function stop() {
    if (following) following.abort();
    window.clearInterval(ticker);
  }

  async function load() {
    $("job-id").textContent = jobId;
    try {
      const job = await fetchJSON(jobPath);
      render(job);
      if (!TERMINAL.has(job.status)) await follow();
    } catch (error) {
      stop();
      if (error instanceof NeedsToken) {
        $("job").hidden = true;
        tokenRefused();
        return;
      }
      $("job").hidden = true;
      tokenAccepted(); // the server knew the token; "Forget token" lets another client in
      if (error instanceof HttpError && error.status === 404) {
        showError(`No job ${jobId} here: it never existed, it has expired, or it belongs to ` +
          "another client (a job is visible only to the client that submitted it).");
        document.body.dataset.state = "not-found";
        return;
      }
      showError(`Could not load the job: ${error.message}`);
      document.body.dataset.state = "error";
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    setUpToken(load, stop);
    $("package-filter").addEventListener("input", applyFilter);
    load();
  });
})();
