// Overview: the health of each dependency, the queues at a glance, jobs per minute over
// the last hour, realtime sockets, and the live instances by mode.
Console.pages.overview = {
  title: "Overview",
  live: true,
  async render(main) {
    const { h, api, table } = Console;
    // Instances need metrics:read; a key without it sees the rest.
    const [health, queues, metrics, hour, realtime] = await Promise.all([
      api("GET", "/api/health").catch((p) => p),
      api("GET", "/api/v1/queues"),
      api("GET", "/api/metrics").catch(() => null),
      api("GET", "/api/v1/queues/throughput"),
      api("GET", "/api/v1/realtime/stats").catch(() => null),
    ]);
    const instances = (metrics && metrics.instances) || [];
    const modes = instances.reduce((m, i) => ((m[i.mode] = (m[i.mode] || 0) + 1), m), {});
    const checks = health && health.checks ? Object.entries(health.checks) : [];
    const totals = queues.queues.reduce((t, q) => {
      for (const k of ["ready", "running", "retrying", "dead", "succeeded_last_minute", "failed_last_minute"]) t[k] += q[k];
      return t;
    }, { ready: 0, running: 0, retrying: 0, dead: 0, succeeded_last_minute: 0, failed_last_minute: 0 });
    const stat = (label, value) => h("div", { class: "panel" }, h("div", { class: "muted" }, label), h("div", { class: "stat" }, value));
    main.replaceChildren(
      h("h1", {}, "Overview"),
      h("div", { class: "grid" },
        stat("Ready", totals.ready), stat("Running", totals.running), stat("Retrying", totals.retrying),
        stat("Dead", totals.dead), stat("Succeeded, last minute", totals.succeeded_last_minute),
        stat("Failed, last minute", totals.failed_last_minute),
        realtime ? stat("Realtime sockets", realtime.connections) : null),
      h("h2", {}, "Jobs per minute, last hour"),
      h("div", { class: "panel" }, Console.chart(hour)),
      h("h2", {}, "Dependencies"),
      h("div", { class: "panel" },
        h("p", {}, "Status ", h("span", { class: "badge " + (health.status || "down") }, health.status || "unreachable"),
          health.version ? h("span", { class: "muted" }, " · version " + health.version + " · " + health.mode + " · up " + health.uptime_s + " s") : null),
        table([
          { title: "Dependency", cell: ([name]) => name },
          { title: "Status", cell: ([, c]) => h("span", { class: "badge " + c.status }, c.status) },
          { title: "Latency", num: true, cell: ([, c]) => (c.latency_ms === undefined ? "" : c.latency_ms + " ms") },
          { title: "Error", cell: ([, c]) => c.error || "" },
        ], checks)),
      h("h2", {}, "Queues"),
      h("div", { class: "panel" }, Console.queueTable(queues.queues)),
      ...(metrics ? [
        h("h2", {}, "Instances"),
        h("div", { class: "panel" },
          h("p", { class: "muted" }, Object.entries(modes).map(([mode, n]) => n + " " + mode).join(" · ") || "none"),
          table([
            { title: "Mode", cell: (i) => i.mode },
            { title: "Service", cell: (i) => i.service + " / " + i.replica },
            { title: "Version", cell: (i) => i.version },
            { title: "Details", cell: (i) => h("div", { class: "details" }, Object.entries(i.details || {}).map(([k, v]) =>
                h("div", {}, h("span", { class: "muted" }, k.replace(/_/g, " ") + ": "), Array.isArray(v) ? v.join(", ") : String(v)))) },
            { title: "Started", cell: (i) => Console.when(i.started_at) },
            { title: "Heartbeat", cell: (i) => Console.when(i.heartbeat_at) },
          ], instances)),
      ] : []));
  },
};

// Succeeded and failed attempts per minute as two lines over a scale from nothing to the
// busiest minute, with the figures in words for screen readers.
Console.chart = function (hour) {
  const { h } = Console;
  const ns = "http://www.w3.org/2000/svg";
  const svg = (tag, attrs, ...kids) => {
    const node = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    node.append(...kids);
    return node;
  };
  const n = hour.succeeded.length;
  const sum = (series) => series.reduce((a, b) => a + b, 0);
  const busiest = Math.max(0, ...hour.succeeded, ...hour.failed);
  const summary = "Over the last " + n + " minutes: " + sum(hour.succeeded) + " succeeded, " + sum(hour.failed) +
    " failed; the busiest minute had " + busiest + ".";
  const scale = Math.max(1, busiest);
  const [width, height, pad] = [600, 120, 4];
  const x = (i) => pad + (i * (width - 2 * pad)) / Math.max(1, n - 1);
  const y = (v) => height - pad - (v * (height - 2 * pad)) / scale;
  const line = (series, cls) => svg("polyline", { class: cls, points: series.map((v, i) => x(i) + "," + y(v)).join(" ") });
  return h("figure", { class: "chart" },
    h("div", { class: "plot" },
      h("span", { class: "muted top" }, busiest + "/min"),
      svg("svg", { viewBox: "0 0 " + width + " " + height, role: "img", "aria-label": summary, preserveAspectRatio: "none" },
        svg("line", { class: "axis", x1: 0, x2: width, y1: pad, y2: pad }),
        svg("line", { class: "axis", x1: 0, x2: width, y1: height - pad, y2: height - pad }),
        line(hour.succeeded, "succeeded"), line(hour.failed, "failed")),
      busiest === 0 ? h("span", { class: "muted empty" }, "No job finished in the last hour.") : null),
    h("figcaption", { class: "row muted" },
      h("span", {}, n + " min ago"),
      h("span", { class: "key succeeded" }, "succeeded"), h("span", { class: "key failed" }, "failed"),
      h("span", { class: "now" }, "now")));
};
