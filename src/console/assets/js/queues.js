// Queues: every queue's counts; one queue's jobs in a state (#/queues/<name>/<state>),
// page by page, each leading to its job; and its dead jobs, which can be retried or
// deleted one by one or all at once after a confirmation.
Console.queueTable = function (queues) {
  const { h, table } = Console;
  const n = (key) => ({ title: key.replace(/_/g, " "), num: true, cell: (q) => q[key] });
  return table([
    { title: "Queue", cell: (q) => h("a", { href: "#/queues/" + encodeURIComponent(q.name) }, q.name) },
    n("ready"), n("scheduled"), n("running"), n("retrying"), n("dead"), n("succeeded_last_minute"), n("failed_last_minute"),
  ], queues);
};

Console.jobLink = function (id) {
  const { h } = Console;
  return h("a", { href: "#/job/" + encodeURIComponent(id) }, h("code", {}, id));
};

Console.pages.queues = {
  title: "Queues",
  live: true,
  async render(main, arg) {
    const { h, api } = Console;
    const listed = await api("GET", "/api/v1/queues");
    const find = h("form", { class: "row panel", role: "search", onsubmit(event) {
      event.preventDefault();
      const id = input.value.trim();
      if (id) location.hash = "#/job/" + encodeURIComponent(id);
    } });
    const input = h("input", { id: "find-job", name: "id", placeholder: "Find a job by id", "aria-label": "Job id" });
    find.append(input, h("button", { type: "submit" }, "Find"));
    const parts = [h("h1", {}, "Queues"), find, h("div", { class: "panel" }, Console.queueTable(listed.queues))];
    const [queue, state = "ready"] = (arg || "").split("/");
    const counts = listed.queues.find((q) => q.name === queue);
    if (counts) parts.push(...(await Console.queueJobs(queue, state, counts)));
    main.replaceChildren(...parts);
  },
};

// One queue's tabs by state and the jobs of the chosen one.
Console.queueJobs = async function (queue, state, counts) {
  const { h } = Console;
  const states = ["ready", "scheduled", "running", "retrying", "dead"];
  const tabs = h("nav", { class: "tabs", "aria-label": "Jobs of " + queue + " by state" }, states.map((s) =>
    h("a", { href: "#/queues/" + encodeURIComponent(queue) + "/" + s, "aria-current": s === state ? "page" : null },
      s + " (" + counts[s] + ")")));
  const body = state === "dead" ? await Console.deadJobs(queue) : await Console.liveJobs(queue, state);
  return [h("h2", {}, (state === "dead" ? "Dead jobs" : "Jobs " + state) + " in " + queue), tabs, ...body];
};

// Jobs Redis holds in one state, fifty at a time, with a button for the next fifty. A live
// redraw reads as many as were shown (up to 200), so it does not undo "Show more".
Console.shown = {};
Console.liveJobs = async function (queue, state) {
  const { h, api, table, when } = Console;
  const key = queue + "/" + state;
  const path = "/api/v1/queues/" + encodeURIComponent(queue) + "/jobs?state=" + state;
  const columns = [
    { title: "Job", cell: (j) => Console.jobLink(j.id) },
    { title: "Kind", cell: (j) => j.kind },
    { title: "Attempts", num: true, cell: (j) => j.attempts + " / " + j.max_attempts },
    { title: state === "running" ? "Started" : state === "ready" ? "Created" : "Due", cell: (j) =>
        when(state === "running" ? j.started_at : state === "ready" ? j.created_at : j.run_at) },
    { title: "Last error", cell: (j) => h("pre", {}, j.last_error || "") },
  ];
  const first = await api("GET", path + "&limit=" + Math.min(200, Math.max(50, Console.shown[key] || 0)));
  const panel = h("div", { class: "panel" });
  const jobs = first.jobs.slice();
  const more = (cursor) => h("button", { class: "quiet gap-top", onclick: Console.action(async () => {
    const next = await api("GET", path + "&limit=50&cursor=" + encodeURIComponent(cursor));
    jobs.push(...next.jobs);
    draw(next.next_cursor);
  }) }, "Show more");
  const draw = (cursor) => {
    Console.shown[key] = jobs.length;
    panel.replaceChildren(
      h("p", { class: "muted" }, "Showing " + jobs.length + " of " + first.total + "."),
      table(columns, jobs), ...(cursor ? [more(cursor)] : []));
  };
  draw(first.next_cursor);
  return [panel];
};

// Dead jobs from Postgres: retry or delete each, or all of them after a confirmation.
Console.deadJobs = async function (queue) {
  const { h, api, table, when, action } = Console;
  const base = "/api/v1/queues/" + encodeURIComponent(queue) + "/dead";
  const dead = await api("GET", base + "?limit=50");
  // Deleting all removes what this listing covers: the jobs that died no later than the
  // newest one shown (the list is newest first), by the server's clock, not the page's; a
  // job that dies after the listing stays.
  const newest = dead.jobs.length ? Date.parse(dead.jobs[0].finished_at) : Date.now();
  const diedBefore = new Date(newest + 1).toISOString();
  const none = dead.jobs.length === 0;
  const retryAll = h("button", { class: "quiet", disabled: none, onclick: action(async () => {
    if (!confirm("Retry every dead job of " + queue + "?")) return;
    const done = await api("POST", base + "/retry", {});
    Console.flashed = "Retried " + done.retried + " dead jobs of " + queue + ".";
    Console.refresh();
  }) }, "Retry all");
  const deleteAll = h("button", { class: "quiet", disabled: none, onclick: action(async () => {
    if (!confirm("Delete every dead job of " + queue + " for good? This cannot be undone.")) return;
    const done = await api("DELETE", base + "?died_before=" + encodeURIComponent(diedBefore));
    Console.flashed = "Deleted " + done.deleted + " dead jobs of " + queue + ".";
    Console.refresh();
  }) }, "Delete all");
  return [h("div", { class: "panel" },
    h("div", { class: "row" }, retryAll, deleteAll),
    table([
      { title: "Job", cell: (j) => Console.jobLink(j.id) },
      { title: "Kind", cell: (j) => j.kind },
      { title: "Attempts", num: true, cell: (j) => j.attempts + " / " + j.max_attempts },
      { title: "Last error", cell: (j) => h("pre", {}, j.last_error || "") },
      { title: "Died", cell: (j) => when(j.finished_at) },
      { title: "", cell: (j) => h("div", { class: "row" },
          h("button", { onclick: action(async () => {
            await api("POST", "/api/v1/jobs/" + encodeURIComponent(j.id) + "/retry", {});
            Console.refresh();
          }) }, "Retry"),
          h("button", { class: "quiet", onclick: action(async () => {
            if (!confirm("Delete dead job " + j.id + "?")) return;
            await api("DELETE", base + "/" + encodeURIComponent(j.id));
            Console.refresh();
          }) }, "Delete")) },
    ], dead.jobs))];
};
