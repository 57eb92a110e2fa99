// A job by id: its kind, payload, attempts with their errors, and its state's times;
// retry, cancel. The search box on the queues page leads here.
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
    const act = (label, method, path, quiet) => h("button", { class: quiet ? "quiet" : null, async onclick() {
      await api(method, path, method === "POST" ? {} : undefined);
      Console.refresh();
    } }, label);
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
          ["queued", "scheduled", "retrying"].includes(job.state) ? act("Cancel", "DELETE", path, true) : null)),
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
