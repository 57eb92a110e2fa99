// Overview: the health of each dependency, this process, and the queues at a glance.
Console.pages.overview = {
  title: "Overview",
  live: true,
  async render(main) {
    const { h, api, table } = Console;
    // Instances need metrics:read; a key without it sees the rest.
    const [health, queues, metrics] = await Promise.all([
      api("GET", "/api/health").catch((p) => p),
      api("GET", "/api/v1/queues"),
      api("GET", "/api/metrics").catch(() => null),
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
        stat("Failed, last minute", totals.failed_last_minute)),
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
            { title: "Details", cell: (i) => h("pre", {}, JSON.stringify(i.details)) },
            { title: "Started", cell: (i) => Console.when(i.started_at) },
            { title: "Heartbeat", cell: (i) => Console.when(i.heartbeat_at) },
          ], instances)),
      ] : []));
  },
};
