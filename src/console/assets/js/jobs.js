// A job by id: its kind, payload, its history (made, due, each failed attempt, started,
// finished) and its attempts' errors; retry, cancel, and delete once dead. The search box
// on the queues page leads here.
Console.pages.job = {
  title: "Jobs",
  live: true,
  async render(main, id) {
    const { h, api, table, when } = Console;
    const search = h("form", { class: "row panel", async onsubmit(event) {
      event.preventDefault();
      location.hash = "#/job/" + encodeURIComponent(input.value.trim());
    } });
    const input = h("input", { id: "job-id", name: "id", placeholder: "Job id", value: id || "", "aria-label": "Job id" });
    search.append(input, h("button", { type: "submit" }, "Find"));
    if (!id) return main.replaceChildren(h("h1", {}, "Find a job"), search);
    let job;
    try {
      job = await api("GET", "/api/v1/jobs/" + encodeURIComponent(id));
    } catch (problem) {
      if (problem.status !== 404) throw problem;
      return main.replaceChildren(h("h1", {}, "Find a job"), search, h("p", { class: "error", role: "alert" }, problem.message));
    }
    const act = (label, method, path, quiet, question) => h("button", { class: quiet ? "quiet" : null, onclick: Console.action(async () => {
      if (question && !confirm(question)) return;
      await api(method, path, method === "POST" ? {} : undefined);
      Console.flashed = label + ": done for job " + job.id + ".";
      Console.refresh();
    }) }, label);
    const path = "/api/v1/jobs/" + encodeURIComponent(job.id);
    const facts = [
      ["Queue", job.queue], ["Kind", job.kind], ["State", job.state],
      ["Attempts", job.attempts + " / " + job.max_attempts], ["Timeout", job.timeout_ms + " ms"],
      ["Created", when(job.created_at)], ["Runs at", when(job.run_at)],
      ["Started", when(job.started_at)], ["Finished", when(job.finished_at)],
    ];
    main.replaceChildren(
      h("h1", {}, "Job ", h("code", {}, job.id)),
      search,
      h("div", { class: "panel" },
        h("dl", { class: "facts" }, facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v || "—")])),
        h("div", { class: "row" },
          ["dead", "succeeded", "cancelled"].includes(job.state) ? act("Retry", "POST", path + "/retry") : null,
          ["queued", "scheduled", "retrying"].includes(job.state) ? act("Cancel", "DELETE", path, true) : null,
          job.state === "dead"
            ? act("Delete", "DELETE", "/api/v1/queues/" + encodeURIComponent(job.queue) + "/dead/" + encodeURIComponent(job.id), true,
                "Delete dead job " + job.id + " for good?")
            : null)),
      h("h2", {}, "History"),
      h("div", { class: "panel" }, h("ol", { class: "history" }, Console.jobHistory(job).map(([at, what]) =>
        h("li", {}, h("time", { datetime: at }, when(at)), " · ", what)))),
      h("h2", {}, "Payload"),
      h("div", { class: "panel" }, h("pre", {}, JSON.stringify(job.payload, null, 2))),
      h("h2", {}, "Failed attempts"),
      h("div", { class: "panel" }, table([
        { title: "Attempt", num: true, cell: (a) => a.attempt },
        { title: "When", cell: (a) => when(a.at) },
        { title: "Error", cell: (a) => h("pre", {}, a.error) },
      ], job.errors || [])));
  },
};

// A job's states in time order, from the times and errors its record keeps.
Console.jobHistory = function (job) {
  const steps = [[job.created_at, "enqueued"]];
  if (job.run_at && job.run_at !== job.created_at) steps.push([job.run_at, "due"]);
  for (const e of job.errors || []) steps.push([e.at, "attempt " + e.attempt + " failed: " + e.error]);
  if (job.started_at) steps.push([job.started_at, "attempt " + job.attempts + " started"]);
  if (job.finished_at) steps.push([job.finished_at, job.state]);
  else steps.push([null, "now " + job.state]);
  return steps.filter(([at, what], i) => at || i === steps.length - 1)
    .sort((a, b) => (a[0] && b[0] ? new Date(a[0]) - new Date(b[0]) : a[0] ? -1 : 1));
};
