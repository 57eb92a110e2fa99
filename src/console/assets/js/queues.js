// Queues: each queue's jobs by state, and its dead jobs, which can be retried one by one
// or all at once (after a confirmation) and deleted.
Console.queueTable = function (queues) {
  const { h, table } = Console;
  const n = (key) => ({ title: key.replace(/_/g, " "), num: true, cell: (q) => q[key] });
  return table([
    { title: "Queue", cell: (q) => h("a", { href: "#/queues/" + encodeURIComponent(q.name) }, q.name) },
    n("ready"), n("scheduled"), n("running"), n("retrying"), n("dead"), n("succeeded_last_minute"), n("failed_last_minute"),
  ], queues);
};

Console.pages.queues = {
  title: "Queues",
  live: true,
  async render(main, queue) {
    const { h, api, table, when } = Console;
    const listed = await api("GET", "/api/v1/queues");
    const parts = [h("h1", {}, "Queues"), h("div", { class: "panel" }, Console.queueTable(listed.queues))];
    if (queue) {
      const dead = await api("GET", "/api/v1/queues/" + encodeURIComponent(queue) + "/dead?limit=50");
      const status = h("p", { class: "muted", role: "status" });
      const retryAll = h("button", {
        class: "quiet", disabled: dead.jobs.length === 0,
        async onclick() {
          if (!confirm("Retry every dead job of " + queue + "?")) return;
          const done = await api("POST", "/api/v1/queues/" + encodeURIComponent(queue) + "/dead/retry", {});
          status.textContent = "Retried " + (done.retried ?? "the") + " jobs.";
          Console.refresh();
        },
      }, "Retry all");
      parts.push(
        h("h2", {}, "Dead jobs in " + queue),
        h("div", { class: "panel" },
          h("div", { class: "row" }, retryAll, status),
          table([
            { title: "Job", cell: (j) => h("code", {}, j.id) },
            { title: "Kind", cell: (j) => j.kind },
            { title: "Attempts", num: true, cell: (j) => j.attempts + " / " + j.max_attempts },
            { title: "Last error", cell: (j) => h("pre", {}, j.last_error || "") },
            { title: "Died", cell: (j) => when(j.finished_at || j.died_at) },
            { title: "", cell: (j) => h("div", { class: "row" },
                h("button", { onclick: Console.action(async () => { await api("POST", "/api/v1/jobs/" + encodeURIComponent(j.id) + "/retry", {}); Console.refresh(); }) }, "Retry"),
                h("button", { class: "quiet", async onclick() {
                  if (!confirm("Delete dead job " + j.id + "?")) return;
                  await api("DELETE", "/api/v1/queues/" + encodeURIComponent(queue) + "/dead/" + encodeURIComponent(j.id));
                  Console.refresh();
                } }, "Delete")) },
          ], dead.jobs)));
    }
    main.replaceChildren(...parts);
  },
};
