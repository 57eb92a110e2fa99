// Schedules: cron, time zone, next run, last run and its job's state; run one now, pause
// and resume one (a schedule disabled in the configuration stays off).
Console.pages.schedules = {
  title: "Schedules",
  async render(main) {
    const { h, api, table, when } = Console;
    const listed = await api("GET", "/api/v1/schedules");
    const status = h("p", { class: "muted", role: "status" });
    main.replaceChildren(
      h("h1", {}, "Schedules"),
      status,
      h("div", { class: "panel" }, table([
        { title: "Name", cell: (s) => s.name },
        { title: "Cron", cell: (s) => h("code", {}, s.cron) },
        { title: "Time zone", cell: (s) => s.timezone },
        { title: "Job", cell: (s) => s.kind + (s.queue ? " on " + s.queue : "") },
        { title: "State", cell: (s) => (!s.enabled ? "disabled in config" : s.paused ? "paused" : "active") },
        { title: "Next runs", cell: (s) => s.next_runs.length
            ? h("ol", { class: "plain" }, s.next_runs.map((t) => h("li", {}, h("time", { datetime: t }, when(t)))))
            : "—" },
        { title: "Last run", cell: (s) => s.last_run
            ? h("span", {}, when(s.last_run.tick) + " · ", h("a", { href: "#/job/" + encodeURIComponent(s.last_run.job_id) }, s.last_job_state || "job"))
            : "never" },
        { title: "", cell: (s) => h("div", { class: "row" },
            h("button", { async onclick() {
              const ran = await api("POST", "/api/v1/schedules/" + encodeURIComponent(s.name) + "/run", {});
              status.replaceChildren("Started ", s.name, ": ", h("a", { href: "#/job/" + encodeURIComponent(ran.id || ran.job_id) }, "its job"));
            } }, "Run now"),
            s.enabled ? h("button", { class: "quiet", onclick: Console.action(async () => {
              await api("PATCH", "/api/v1/schedules/" + encodeURIComponent(s.name), { paused: !s.paused });
              Console.flashed = (s.paused ? "Resumed " : "Paused ") + s.name + ".";
              Console.refresh();
            }) }, s.paused ? "Resume" : "Pause") : null) },
      ], listed.schedules)));
  },
};
